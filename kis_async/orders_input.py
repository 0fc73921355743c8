"""Sell orders as a user hands them over (``kis-async check --sells FILE``): a ticker and a
quantity a row, read as people write them, so each can be judged against what may be sold.

Two shapes are read, from a file or stdin (``-``), UTF-8 or CP949, within
:data:`~kis_async.inputs.MAX_INPUT_BYTES` (:func:`~kis_async.inputs.read_text`):

- a CSV, as Excel saves one: a header row naming a ticker column (``pdno``, ``종목코드`` or
  another of :data:`~kis_async.inputs.TICKER_HEADERS`), a quantity column (``qty``,
  ``quantity``, ``수량`` or ``주문수량``) and, if orders name their account, an account column
  (``account``, ``계좌번호`` or ``계좌``); other columns, and cells past them, are ignored;
- a plain list: ``code quantity`` a line, blanks or a comma between (a quoted ``"1,000"`` is one
  field), ``#`` comments.

The first line that is neither blank nor a comment tells them apart: when it has a comma, tab or
semicolon in it (the CSV's delimiter, as :func:`~kis_async.inputs.read_codes` finds it) and one
of its cells is one of those names, it is a header and the file a CSV; otherwise every line is
an order. Header cells are matched whole (ASCII without regard to case), never by a part: a
holdings export's ``보유수량`` or ``매도가능수량`` says what is held or sellable, and read as
order quantities it would sell everything, so a header without an order quantity column is
refused, naming those columns for what they are. Two columns named for one thing are refused too.

Every mistake is a :class:`~kis_async.inputs.UsageError`, one line: every bad row is named in
it, by line number, so the file is fixed in one pass.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from .errors import ArgumentError
from .inputs import TICKER_HEADERS, UsageError, read_text, with_zeros
from .numbers import Kind
from .spec import QUANTITY_DIGITS
from .validate import normalize_pdno, parse_account, shown

_QUANTITY_HEADERS = ("qty", "quantity", "수량", "주문수량")
_ACCOUNT_HEADERS = ("account", "계좌번호", "계좌")
_ALL_HEADERS = frozenset(TICKER_HEADERS + _QUANTITY_HEADERS + _ACCOUNT_HEADERS)
_SHOWN_BAD_ROWS = 10
MAX_ORDERS = 100_000
"""The most orders one ``--sells`` file may hold: every KRX listing is under 3,000 tickers, and a
file of more orders than this is no one's list of sells (16 MiB holds 1.7 million rows, and
judging and printing them would take a minute and gigabytes)."""
_PLAIN_FIELD = re.compile(r'"[^"]*"|[^\s,"]+|"')
"""A plain-list field: a quoted cell (Excel's ``"1,000"``), a run of anything but blanks,
commas and quotes, or a stray quote (no code or quantity, so its line is refused)."""
_PROMPT = "reading sell orders from stdin, a code and a quantity a line; end with Ctrl-D"


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One intended sell order, in file order: repeats of a ticker are kept as rows of their own,
    for a later check to judge on their running total."""

    pdno: str
    """The ticker, normalized (:func:`~kis_async.validate.normalize_pdno`), its zeros restored."""
    qty: int
    """Shares to sell: at least 1, at most 19 digits."""
    account: str | None
    """``12345678-01``; ``None`` when the file has no account column."""
    line: int
    """Where the order starts in the file, counting from 1, for messages."""


class _Columns(NamedTuple):
    pdno: int
    qty: int
    account: int | None


class _Row(NamedTuple):
    line: int
    cells: list[str]
    problem: str | None
    """What makes the row no order before its cells are read (a plain line of three fields)."""


_PLAIN = _Columns(0, 1, None)


def read_sells(source: str, note: Callable[[str], None]) -> list[OrderRow]:
    """The sell orders in a file (or stdin for ``-``), in file order; ``[]`` if it holds none.

    Tickers get back the zeros a spreadsheet drops (:func:`~kis_async.inputs.with_zeros`), one
    note saying so. Raises :class:`~kis_async.inputs.UsageError` for a file that cannot be read
    or has no order columns, and for any bad row: every one named, with its line.
    """
    name, text = read_text(source, note, _PROMPT)
    columns, rows = _table(io.StringIO(text, newline="").readlines(), name, note)
    codes = [_cell(row, columns.pdno) if row.problem is None else "" for row in rows]
    read = [
        _order(row, code, columns)
        for row, code in zip(rows, with_zeros(codes, name, note), strict=True)
    ]
    if len(read) > MAX_ORDERS:
        raise UsageError(
            f"{name} holds {len(read):,} orders, more than the {MAX_ORDERS:,} one check takes: "
            "split it"
        )
    bad = [order for order in read if isinstance(order, str)]
    if len(bad) == 1:
        raise UsageError(f"{name} {bad[0]}")
    if bad:
        listed = "; ".join(bad[:_SHOWN_BAD_ROWS])
        if len(bad) > _SHOWN_BAD_ROWS:
            listed += f"; and {len(bad) - _SHOWN_BAD_ROWS} more"
        raise UsageError(f"{name}: {len(bad)} bad order(s): {listed}")
    return [order for order in read if isinstance(order, OrderRow)]


def _order(row: _Row, code: str, columns: _Columns) -> OrderRow | str:
    """The row's order (``code`` its ticker, zeros restored), or ``line N: `` and everything
    wrong with it."""
    problems = [row.problem] if row.problem else []
    pdno, qty, account = "", 0, None
    if not problems:
        if not code:
            problems.append("no ticker")
        else:
            try:
                pdno = normalize_pdno(code)
            except ArgumentError as exc:
                problems.append(str(exc))
        try:
            qty = _quantity(_cell(row, columns.qty))
        except ValueError as exc:
            problems.append(str(exc))
        if columns.account is not None:
            try:
                account = _account(_cell(row, columns.account))
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        return f"line {row.line}: {', '.join(problems)}"
    return OrderRow(pdno, qty, account, row.line)


def _table(lines: list[str], name: str, note: Callable[[str], None]) -> tuple[_Columns, list[_Row]]:
    """Where the ticker, quantity and account are in a row, and the rows: the module
    docstring's two shapes, told apart by the first line that is no comment."""
    start = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
        len(lines),
    )
    first = lines[start].split("#", 1)[0] if start < len(lines) else ""
    delimiter = next((d for d in (",", "\t", ";") if d in first), None)
    if delimiter is not None:
        reader = csv.reader(lines[start:], delimiter=delimiter)
        try:
            header = [cell.strip() for cell in next(reader)]
            if any(_key(cell) in _ALL_HEADERS for cell in header):
                columns = _columns(header, name, note)
                rows: list[_Row] = []
                end = start + reader.line_num
                for raw in reader:
                    line, end = end + 1, start + reader.line_num
                    cells = [cell.strip() for cell in raw]
                    if any(cells) and not cells[0].startswith("#"):
                        rows.append(_Row(line, cells, None))
                return columns, rows
        except csv.Error as exc:  # a cell over the csv module's 128 KiB, say
            raise UsageError(f"{name}: not CSV this reads ({exc})") from None
    plain = [
        (number, line.split("#", 1)[0])
        for number, line in enumerate(lines, 1)
        if not line.lstrip().startswith("#") and line.split("#", 1)[0].strip()
    ]
    return _PLAIN, [_plain_row(number, text, number == start + 1) for number, text in plain]


def _plain_row(number: int, text: str, first: bool) -> _Row:
    """A plain-list line: a code and a quantity, or the problem with it."""
    fields = [field.strip('"').strip() for field in _PLAIN_FIELD.findall(text)]
    if first and not any(c.isdigit() for c in text):
        return _Row(
            number,
            fields,
            f"{shown(text.strip())} is no order, nor a header this reads (a header names its "
            "columns pdno or 종목코드 and qty or 주문수량, commas, tabs or semicolons between)",
        )
    if len(fields) != 2:
        hint = " (write 1000, not 1,000)" if len(fields) > 2 and "," in text else ""
        problem = f"{len(fields)} field(s); a line is a code and a quantity{hint}"
        return _Row(number, fields, problem)
    return _Row(number, fields, None)


def _columns(header: list[str], name: str, note: Callable[[str], None]) -> _Columns:
    """The columns a header names, or a :class:`UsageError` saying what it lacks."""
    pdno = _column(header, TICKER_HEADERS, "ticker", name)
    qty = _column(header, _QUANTITY_HEADERS, "quantity", name)
    account = _column(header, _ACCOUNT_HEADERS, "account", name)
    listed = ", ".join(map(shown, header))
    if pdno is None:
        raise UsageError(f"{name}: no ticker column; name one pdno or 종목코드 (header: {listed})")
    if qty is None:
        held = [
            shown(c) for c in header if "수량" in c or "qty" in _key(c) or "quantity" in _key(c)
        ]
        what = ""
        if held:
            kind = (
                "is a holdings/sellable column"
                if len(held) == 1
                else "are holdings/sellable columns"
            )
            what = f"{', '.join(held)} {kind}, not an order quantity; "
        raise UsageError(
            f"{name}: no order quantity column (header: {listed}); {what}"
            "name the order column qty or 주문수량"
        )
    read = f"tickers from {shown(header[pdno])}, quantities from {shown(header[qty])}"
    if account is not None:
        read += f", accounts from {shown(header[account])}"
    note(f"{name}: {read}")
    return _Columns(pdno, qty, account)


def _column(header: list[str], names: tuple[str, ...], role: str, name: str) -> int | None:
    """The one column named as one of ``names``; two are refused, neither being the obvious
    one to sell by."""
    found = [i for i, cell in enumerate(header) if _key(cell) in names]
    if len(found) > 1:
        raise UsageError(
            f"{name}: {len(found)} {role} columns ({', '.join(shown(header[i]) for i in found)}); "
            "keep one"
        )
    return found[0] if found else None


def _key(cell: str) -> str:
    """A header cell as names are compared: ASCII lower-cased, anything else as written."""
    return cell.lower() if cell.isascii() else cell


def _cell(row: _Row, column: int) -> str:
    """A row's cell, ``""`` past its end (a short row: its missing cells are named as such)."""
    return row.cells[column] if column < len(row.cells) else ""


def _quantity(cell: str) -> int:
    """Whole shares, at least one, in the grammar of KIS's own quantities (ASCII digits,
    Excel's ``1,000``: :mod:`kis_async.numbers`), and no wider than the widest of them."""
    if not cell:
        raise ValueError("no quantity")
    if Kind.QUANTITY.grammar.fullmatch(cell) is None:
        raise ValueError(f"quantity {shown(cell)} is not a whole number of shares")
    digits = cell.replace(",", "").lstrip("0")
    if digits and cell[0] == "0":
        raise ValueError(
            f"quantity {shown(cell)} starts with a zero, as a ticker does: are the code and "
            "quantity columns the other way round?"
        )
    if len(digits) > QUANTITY_DIGITS:
        raise ValueError(
            f"quantity {shown(cell)} has more than {QUANTITY_DIGITS} digits, more than any "
            "KIS quantity"
        )
    if not digits:
        raise ValueError("quantity 0: an order sells at least 1 share")
    return int(digits)


def _account(cell: str) -> str:
    """``12345678-01``, from that or ``1234567801``. A bad cell is shown with its digits
    masked but for its first and last two characters: messages end up in logs, and a mistyped
    account is most of the real one."""
    if not cell:
        raise ValueError("no account")
    try:
        return str(parse_account(cell))
    except ArgumentError:
        masked = cell if len(cell) <= 4 else cell[:2] + re.sub("[0-9]", "*", cell[2:-2]) + cell[-2:]
        raise ValueError(
            f"account {shown(masked)} must look like 12345678-01 or 1234567801"
        ) from None
