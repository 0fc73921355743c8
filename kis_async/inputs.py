"""What a user hands the command line: ticker lists and ``.env`` files, read as people write them.

A ticker list is a plain list (one code a line, ``#`` comments), or a CSV as Korean Excel saves it
(CP949, a header row, the codes in a column named ``종목코드`` or ``pdno``), from a file or stdin;
a list of sell orders is read the same way (:func:`read_text`), by :mod:`kis_async.orders_input`.
A ``.env`` file is parsed by python-dotenv (comments, quotes, ``export``). Every mistake is a
:class:`UsageError`: one line, naming the file and what is wrong with it. Neither is read past
:data:`MAX_INPUT_BYTES`, so ``--file /dev/zero`` or an endless pipe is refused, not read until
memory runs out.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dotenv import dotenv_values

from . import config as cfg
from .validate import KRX_CODE_DIGITS

ENVIRONMENT = "the environment"
"""Where a variable came from when no ``--env-file`` set it."""
TICKER_HEADERS = ("pdno", "종목코드", "종목번호", "단축코드", "ticker", "code", "symbol")
"""Header cells that name the ticker column of a CSV, compared lower-cased."""
_KRX_CODE = re.compile(r"[0-9][0-9A-Z]{5}")
"""What a cell of an unnamed ticker column looks like: a KRX short code (005930, 0080G0)."""
MAX_INPUT_BYTES = 16 * 1024 * 1024
"""The most a ticker or order list or an env file may hold (16 MiB). Every KRX listing, one code a
line, is under 30 KB, and a whole account exported from Excel a few hundred: a bigger input is
not one of those, and reading it whole could take all the memory there is (``/dev/zero``)."""
STDIN = "standard input"
"""How a message names ``--file -``."""


class UsageError(Exception):
    """Bad input or configuration: reported as one line, exit status 2."""


def environment(
    env_file: Path | None, note: Callable[[str], None]
) -> tuple[dict[str, str], dict[str, str]]:
    """The ``KIS_*`` values in force, and where each was set (the environment, or the file).

    A variable set (and not empty) in the environment wins over the file: a one-off
    ``KIS_BASE_URL=... kis-async check --env-file .env`` works, as with docker compose and
    python-dotenv's own ``load_dotenv``. When the two differ, a note says which was used.
    """
    values = {name: os.environ[name] for name in cfg.ALL if os.environ.get(name, "").strip()}
    origin = dict.fromkeys(values, ENVIRONMENT)
    if env_file is None:
        return values, origin
    for name, value in _read_env_file(env_file).items():
        if name not in cfg.ALL:
            if name.startswith("KIS_"):
                note(f"{env_file}: {name} is not a kis-async variable; ignored")
            continue
        if value is None or not value.strip():
            continue
        if name in values:
            if values[name] != value:
                note(f"{name}: the environment's value wins over {env_file}'s")
            continue
        values[name] = value
        origin[name] = str(env_file)
    return values, origin


def account(
    path: Path, shared: dict[str, str], origin: dict[str, str], note: Callable[[str], None]
) -> tuple[dict[str, str], dict[str, str]]:
    """One ``--account`` file's variables, and where each was set.

    The file is one account: its credentials (and a partner firm's variables) are read from it
    alone, never from the environment or ``--env-file``, where they would make two accounts one.
    The optional variables (:data:`kis_async.config.OPTIONAL`: the host, Redis) come from the
    file, else from ``shared`` (the environment and ``--env-file``), so one ``.env`` can point
    every account at the same host; a note says when the file's value overrides another (a
    paper account's file names its own host).
    """
    values: dict[str, str] = {}
    where: dict[str, str] = {}
    for name, value in _read_env_file(path).items():
        if name not in cfg.ALL:
            if name.startswith("KIS_"):
                note(f"{path}: {name} is not a kis-async variable; ignored")
            continue
        if value is not None and value.strip():
            values[name], where[name] = value, str(path)
    for name in cfg.OPTIONAL:
        if name not in values and name in shared:
            values[name], where[name] = shared[name], origin.get(name, ENVIRONMENT)
        elif name in values and name in shared and shared[name] != values[name]:
            elsewhere = origin.get(name, ENVIRONMENT)
            note(f"{name}: {path}'s value wins over {elsewhere}'s for that account")
    return values, where


def _read_env_file(path: Path) -> dict[str, str | None]:
    try:
        with path.open("rb") as stream:
            data = _bounded(stream, f"env file {path}")
    except OSError as exc:
        raise UsageError(f"cannot read env file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"env file {path} is not UTF-8 text") from None
    return dict(dotenv_values(stream=io.StringIO(text)))


def with_zeros(codes: list[str], name: str, note: Callable[[str], None]) -> list[str]:
    """``codes`` with every all-digit one shorter than six zero-padded (``5930`` → ``005930``),
    and one note naming ``name`` if any was.

    Every all-digit KRX code has six digits, so a shorter one lost its zeros (to a spreadsheet,
    or a hand that typed it as a number): the padded code is what was meant. The CLI pads,
    where the library refuses, because its input comes from such files and hands; the note
    (once per source, not per code) keeps it visible, so a column of quantities misread as
    tickers is not padded in silence. Anything else is left for the library to refuse.
    """
    padded = [
        code.zfill(KRX_CODE_DIGITS) if code.isascii() and code.isdigit() else code for code in codes
    ]
    changed = [(a, b) for a, b in zip(codes, padded, strict=True) if a != b]
    if changed:
        first, restored = changed[0]
        note(
            f"{name}: {len(changed)} code(s) had lost their leading zeros; restored "
            f"({first} → {restored})"
        )
    return padded


def read_codes(source: str, note: Callable[[str], None]) -> list[str]:
    """The tickers in a file (or stdin for ``-``): a plain list, or a CSV column, with the
    leading zeros a spreadsheet drops given back (:func:`with_zeros`)."""
    name, text = read_text(source, note, "reading tickers from stdin, one a line; end with Ctrl-D")
    return with_zeros(_codes(text, name, note), name, note)


def read_text(source: str, note: Callable[[str], None], prompt: str) -> tuple[str, str]:
    """The name messages give ``source`` and its text: a file, or stdin for ``-`` (saying
    ``prompt`` first when a person is typing it), read within :data:`MAX_INPUT_BYTES` and
    decoded by :func:`_decoded`. Every failure is a :class:`UsageError` naming the source."""
    name = STDIN if source == "-" else source
    try:
        if source == "-":
            if sys.stdin.isatty():
                note(prompt)
            data = _bounded(sys.stdin.buffer, name)
        else:
            with Path(source).open("rb") as stream:
                data = _bounded(stream, name)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    return name, _decoded(data, name)


def _bounded(stream: BinaryIO, name: str) -> bytes:
    """At most :data:`MAX_INPUT_BYTES` of ``stream``, or a :class:`UsageError` naming ``name``
    if there is more: one byte past the limit says so without reading the rest. Read until
    the end, since a raw stream (a pipe) hands over what has arrived, not what was asked."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_INPUT_BYTES:
        chunk = stream.read(MAX_INPUT_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_INPUT_BYTES:
        raise UsageError(
            f"{name} is larger than {MAX_INPUT_BYTES >> 20} MiB, more than any ticker or order "
            "list or env file: not read"
        )
    return b"".join(chunks)


def _decoded(data: bytes, name: str) -> str:
    """UTF-8 (a BOM is fine), else CP949: what Korean Excel writes as "CSV (쉼표로 분리)"."""
    for encoding in ("utf-8-sig", "cp949"):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode(encoding)
    raise UsageError(f"{name} is neither UTF-8 nor CP949 text")


def _codes(text: str, name: str, note: Callable[[str], None]) -> list[str]:
    """A plain list (one code a line, ``#`` comments, a lone header line skipped), or a CSV
    when the first line has a comma, tab or semicolon in it.

    A plain-list line may go on after its code, past a space, with a name (``005930 삼성전자``),
    as a list copied from a web page does. Only a first field with a digit in it is taken for a
    code: ``SK 000660`` is passed on whole, for the library to refuse, rather than read as
    ticker ``SK``.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.lstrip().startswith("#")]
    if not lines:
        return []
    first = lines[0].split("#", 1)[0]
    delimiter = next((d for d in (",", "\t", ";") if d in first), None)
    if delimiter is None:
        codes = [_plain_code(line.split("#", 1)[0]) for line in lines]
        if codes[0].split(maxsplit=1)[0].lower() in TICKER_HEADERS:
            codes = codes[1:]
        return codes
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=delimiter)]
    except csv.Error as exc:  # a cell over the csv module's 128 KiB, say: no ticker list
        raise UsageError(f"{name}: not CSV this reads ({exc})") from None
    return _csv_codes(rows, name, note)


def _plain_code(line: str) -> str:
    """A plain-list line's code: its first field when that has a digit (every KRX code does,
    no company name in Latin letters does), else the whole line, left for the check to refuse."""
    fields = line.split(maxsplit=1)
    if len(fields) > 1 and any(c.isdigit() for c in fields[0]) and fields[0].isascii():
        return fields[0]
    return line.strip()


def _csv_codes(rows: list[list[str]], name: str, note: Callable[[str], None]) -> list[str]:
    """The ticker column: the one its header names, else the first whose cells look like
    tickers. The zeros Excel strips (5930) are given back by :func:`read_codes`."""
    header = [cell.lower() for cell in rows[0]]
    named = next((header.index(n) for n in TICKER_HEADERS if n in header), None)
    if named is not None:
        codes = [row[named] for row in rows[1:] if len(row) > named and row[named]]
        if not codes:
            raise UsageError(f"{name}: no tickers under '{rows[0][named]}'")
        note(f"{name}: tickers from column {named + 1} ('{rows[0][named]}')")
        return codes
    if len(rows) == 1:
        return [cell for cell in rows[0] if cell]
    for column in range(max(map(len, rows))):
        cells = [row[column].upper() for row in rows if len(row) > column and row[column]]
        looks = [bool(_KRX_CODE.fullmatch(cell)) for cell in cells]
        if len(looks) > 1 and all(looks[1:]):
            note(
                f"{name}: no pdno/종목코드 header; tickers from column {column + 1}, "
                "whose cells look like tickers"
            )
            return cells if looks[0] else cells[1:]
    raise UsageError(
        f"{name}: no column of tickers; name one pdno or 종목코드 (header: {', '.join(rows[0])})"
    )
