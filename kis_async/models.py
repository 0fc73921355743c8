"""Typed views of what KIS returns, decoded by msgspec straight from the response bytes.

One contract for every ``decode_*`` here: it returns the typed value or raises
:class:`~kis_async.errors.DecodeError` (naming the field, and the ticker where known), never
anything else.

Numbers
-------
KIS sends every number as a JSON string. Only the forms KIS is known to send are read, exactly:
quantities become ``int``; prices, amounts and rates an exact ``Decimal``.

=======================================  ===================================================
what KIS sends                           read as
=======================================  ===================================================
``"120"``, ``"71250.0000"``              ``120``, ``Decimal("71250.0000")``
``""``, ``"  "`` (a ticker not held)     ``0``
``" 120 "``                              ``120``: ASCII blanks around a number are padding
``"0000115"``                            ``115``: so are leading zeros
``"8,550,000"``, ``"1,234.5"``           commas, in groups of three, are thousands separators
``"-102000"``, ``"-1.19"``               negative: only ``evlu_pfls_amt``/``evlu_pfls_rt``
=======================================  ===================================================

Anything else is a :class:`DecodeError` naming the field: digits other than ASCII 0-9 (``"１２０"``,
which Python's ``int()`` takes), ``"1_000"``, ``"1e3"``, ``"0x10"``, ``"NaN"``, ``"Infinity"``,
``"1."``, ``".5"``, ``"1,23"``, ``"+5"`` (KIS writes a gain unsigned), a sign on a quantity, price
or amount (``"-0"`` too), a fraction on a quantity, a JSON number or ``null`` instead of a string
(KIS documents strings; a JSON number would need rules of its own), and more digits than the
field's documented Length (:data:`~kis_async.spec.SELLABLE_DIGITS`; :class:`Position`'s in
:data:`~kis_async.spec.BALANCE_DIGITS`). Leading zeros do not count towards the Length; for a
price, amount or rate it bounds the digits before the point, and the fraction is not bounded (its
width differs between KIS's fields and pages, and more digits only say the value more exactly).

Two paths, one reading
----------------------
The fast path decodes each row with its numbers as text, each no longer than its Length, and
reads them all in one msgspec call as a JSON array of numbers: a plain ``120`` or ``-1.19`` is
valid JSON, while each quirk above (padding, leading zeros, commas) and each refused form is not,
or is not a number of the right kind, and sends the body to the slow path. The slow path reads
each number by the table above into the same plain text and converts that with the same msgspec
reader, so the two paths cannot disagree about a number both accept. A body that is not UTF-8 is
re-encoded from EUC-KR/CP949 first, whichever path finds out (see Encodings).

The envelope
------------
- ``rt_cd`` "0" is success, except with one of the gateway's documented refusals as ``msg_cd``
  (:data:`~kis_async.spec.GATEWAY_ERROR_CODES`, e.g. ``EGW00201``): :func:`read_answer` reports
  such a body as the error it names, with ``rt_cd`` "1", so that the per-second limit is waited
  out and a dead token renewed instead of an empty "success" (no holdings, nothing to sell) being
  believed. Other codes with ``rt_cd`` "0" are successes (KIS uses ``KIOK0510``, ``APBK0013``...).
- A key repeated within one object (``{"rt_cd": "1", "rt_cd": "0"}``) is read as msgspec reads
  it: the last one wins, on both paths. It is not refused because msgspec gives no sign of it,
  a byte count would miss the same key written with an escape (``"rt\\u005fcd"``), and an exact
  check is a second parse of every body that costs more than decoding it.
- Two rows about the asked ticker that differ (in ``output1``, ``output`` or both) make the
  answer ambiguous: :func:`pick_sellable` raises a :class:`DecodeError` for field ``output1``.
  The same row repeated, equal field by field, is read once.
- A body nested more than :data:`MAX_NESTING` levels deep anywhere, even under a key nothing
  reads, is a :class:`DecodeError` for that ticker, on every supported Python alike, in time and
  memory linear in the body. It is refused before msgspec reads it: msgspec's own guard is the
  interpreter's recursion limit, which trips at 1,000 levels on 3.11 and only past 5,000 on 3.12.

Encodings
---------
A body that fails to decode and is not UTF-8 is read again as EUC-KR/CP949. Whether it is UTF-8 is
checked on the bytes themselves, once a decode has failed: which exception a msgspec release
raises for a bad byte changed in 0.23 (``DecodeError``, where earlier ones raised
``UnicodeDecodeError``), so the exception is not the test, and a UTF-8 answer that decodes is
never validated a second time.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar, cast, get_args

import msgspec

from . import spec
from .errors import DecodeError

NonNegative = Annotated[int, msgspec.Meta(ge=0)]

_BLANKS = " \t\r\n"
_GROUPED = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_QUANTITY = re.compile(_GROUPED)
_AMOUNT = re.compile(_GROUPED + r"(?:\.[0-9]+)?")
_SIGNED = re.compile("-?" + _GROUPED + r"(?:\.[0-9]+)?")
_PLAIN = bytes(byte if chr(byte) in "0123456789.,-[]" else 0 for byte in range(256))
"""Changes every byte the fast path refuses in its JSON array of numbers (a blank, an exponent, a
quote, a letter, any byte of a character beyond ASCII) to NUL, which JSON refuses there too. A
comma inside a number adds an element, and the array no longer fits its tuple."""
_SHOWN = 40
"""Characters of a refused value quoted in an error."""
_FIELD_PATTERNS = (
    re.compile(r"missing required field `(\w+)`"),
    re.compile(r"`(\w+)` is not"),
    re.compile(r"at `\$[^`]*?\.(\w+)`"),
)
MAX_NESTING = 64
"""Levels of arrays and objects a body may nest; deeper is a :class:`DecodeError`. KIS nests
three (the envelope, a list of rows, a row), so any KIS inquiry read through ``get()`` fits with
room to spare, and msgspec never recurses anywhere near an interpreter's limit."""
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEP = [1 if byte in b"[{" else -1 if byte in b"]}" else 0 for byte in range(256)]
_SELLABLE = spec.SELLABLE_DIGITS
_BALANCE = spec.BALANCE_DIGITS
_read_int = msgspec.json.Decoder(int)
_read_decimal = msgspec.json.Decoder(Decimal)

E = TypeVar("E", bound="Envelope")
R = TypeVar("R", bound=msgspec.Struct)
S = TypeVar("S", bound=msgspec.Struct)


def _text(digits: int) -> msgspec.Meta:
    """A number as the fast path takes it: text of at most ``digits`` characters (blank is 0:
    the all-blank answer for a ticker not held is common, and read here too)."""
    return msgspec.Meta(max_length=digits)


class Envelope(msgspec.Struct):
    """The three fields every KIS body carries."""

    rt_cd: str
    msg_cd: str = ""
    msg1: str = ""


class SellableQuantity(msgspec.Struct, frozen=True):
    """One ticker's answer from 매도가능수량조회 (inquire-psbl-sell), under the KIS field names.

    ``ord_psbl_qty`` is what can be sold right now. Quantities are non-negative ``int`` of at most
    their documented digits; prices, amounts and the rate are exact, finite ``Decimal``, negative
    only for the profit or loss. Fields KIS adds later are ignored.
    """

    pdno: str
    prdt_name: str
    buy_qty: NonNegative
    """Bought today."""
    sll_qty: NonNegative
    """Sold today."""
    cblc_qty: NonNegative
    """Held (잔고수량)."""
    nsvg_qty: NonNegative
    """Non-savings quantity (비저축수량)."""
    ord_psbl_qty: NonNegative
    """Sellable now (주문가능수량)."""
    pchs_avg_pric: Decimal
    pchs_amt: Decimal
    now_pric: Decimal
    evlu_amt: Decimal
    evlu_pfls_amt: Decimal
    """Valuation profit or loss; negative for a loss."""
    evlu_pfls_rt: Decimal
    """Valuation profit or loss in percent."""


_Output = SellableQuantity | list[SellableQuantity] | None


class SellableEnvelope(Envelope):
    """The whole body: the result arrives as ``output1`` (reference) or ``output`` (live)."""

    output1: _Output = None
    output: _Output = None


class Position(msgspec.Struct, frozen=True):
    """One holding from 주식잔고조회 (inquire-balance ``output1``), under the KIS field names.

    ``hldg_qty`` is held, ``ord_psbl_qty`` sellable as the balance sees it; ``prpr`` is the
    current price. A position sold out today can still be listed with ``hldg_qty`` 0. Numbers
    follow the same rules as :class:`SellableQuantity`'s.
    """

    pdno: str
    prdt_name: str
    hldg_qty: NonNegative
    ord_psbl_qty: NonNegative
    pchs_avg_pric: Decimal
    prpr: Decimal


class BalancePage(Envelope):
    """One page of inquire-balance; the ``ctx_area_*`` keys ask for the next one."""

    output1: list[Position] = msgspec.field(default_factory=list)
    ctx_area_fk100: str = ""
    ctx_area_nk100: str = ""


class TokenAnswer(Envelope):
    """tokenP's answer, read as an envelope so one classifier judges it like any other.

    KIS states a refusal as ``msg_cd``/``msg1`` or as ``error_code``/``error_description``; both
    land in ``msg_cd``/``msg1``. An answer with a token has ``rt_cd`` "0".
    """

    rt_cd: str = ""
    access_token: str = ""
    access_token_token_expired: str = ""
    expires_in: float = 0
    error_code: str = ""
    error_description: str = ""

    def __post_init__(self) -> None:
        self.msg_cd = self.msg_cd or self.error_code
        self.msg1 = self.msg1 or self.error_description
        if self.access_token:
            self.rt_cd = spec.RT_OK
        elif not self.msg_cd:
            raise ValueError("neither a token nor a refusal")
        elif self.rt_cd in ("", spec.RT_OK):
            self.rt_cd = spec.RT_FAILED


class _SellableText(msgspec.Struct):
    """A :class:`SellableQuantity` row with its numbers still text, as the fast path decodes
    it: the same fields in the same order, each number at most its documented digits long."""

    pdno: str
    prdt_name: str
    buy_qty: Annotated[str, _text(_SELLABLE["buy_qty"])]
    sll_qty: Annotated[str, _text(_SELLABLE["sll_qty"])]
    cblc_qty: Annotated[str, _text(_SELLABLE["cblc_qty"])]
    nsvg_qty: Annotated[str, _text(_SELLABLE["nsvg_qty"])]
    ord_psbl_qty: Annotated[str, _text(_SELLABLE["ord_psbl_qty"])]
    pchs_avg_pric: Annotated[str, _text(_SELLABLE["pchs_avg_pric"])]
    pchs_amt: Annotated[str, _text(_SELLABLE["pchs_amt"])]
    now_pric: Annotated[str, _text(_SELLABLE["now_pric"])]
    evlu_amt: Annotated[str, _text(_SELLABLE["evlu_amt"])]
    evlu_pfls_amt: Annotated[str, _text(_SELLABLE["evlu_pfls_amt"])]
    evlu_pfls_rt: Annotated[str, _text(_SELLABLE["evlu_pfls_rt"])]


class _SellableEnvelopeText(Envelope):
    """:class:`SellableEnvelope` as the fast path decodes it."""

    output1: _SellableText | list[_SellableText] | None = None
    output: _SellableText | list[_SellableText] | None = None


class _PositionText(msgspec.Struct):
    """A :class:`Position` row with its numbers still text (see :class:`_SellableText`)."""

    pdno: str
    prdt_name: str
    hldg_qty: Annotated[str, _text(_BALANCE["hldg_qty"])]
    ord_psbl_qty: Annotated[str, _text(_BALANCE["ord_psbl_qty"])]
    pchs_avg_pric: Annotated[str, _text(_BALANCE["pchs_avg_pric"])]
    prpr: Annotated[str, _text(_BALANCE["prpr"])]


class _BalancePageText(Envelope):
    """:class:`BalancePage` as the fast path decodes it."""

    output1: list[_PositionText] = msgspec.field(default_factory=list)
    ctx_area_fk100: str = ""
    ctx_area_nk100: str = ""


@dataclass(frozen=True, slots=True)
class _Rule:
    """How the slow path reads one number: its grammar, its digits, its msgspec reader."""

    name: str
    grammar: re.Pattern[str]
    digits: int
    read: msgspec.json.Decoder[Any]


@dataclass(frozen=True, slots=True)
class _Rows(Generic[R]):
    """One kind of KIS row, read by the same rules on both paths.

    ``kind``'s fields are its text fields, then its numbers in the order and types of the
    ``numbers`` tuple: the quantities (``int``), then the ``Decimal`` ones, those that may be
    negative last.
    """

    kind: type[R]
    numbers: msgspec.json.Decoder[tuple[Any, ...]]
    rules: tuple[_Rule, ...]
    first: int
    """Index of the first number among ``kind``'s fields."""
    signed: int
    """Index of the first field that may be negative (``len(fields)`` if none may)."""

    @classmethod
    def of(
        cls,
        kind: type[R],
        numbers: msgspec.json.Decoder[tuple[Any, ...]],
        digits: Mapping[str, int],
        signed: frozenset[str],
    ) -> _Rows[R]:
        names = kind.__struct_fields__
        first = len(names) - len(digits)
        rules = tuple(
            _Rule(name, _SIGNED if name in signed else _AMOUNT, digits[name], _read_decimal)
            if kind_of_number is Decimal
            else _Rule(name, _QUANTITY, digits[name], _read_int)
            for name, kind_of_number in zip(names[first:], get_args(numbers.type), strict=True)
        )
        return cls(kind, numbers, rules, first, len(names) - len(signed))

    def typed(self, row: msgspec.Struct) -> R:
        """The fast path: ``row``'s numbers, if all are plain, read exactly into ``kind``.

        Anything else raises msgspec's ``ValidationError``, which sends the body to the slow path.
        """
        values = msgspec.structs.astuple(row)
        first = self.first
        numbers: Sequence[str] = values[first:]
        if "" in numbers:  # blank is 0: a ticker not held comes back all blank
            numbers = [v or "0" for v in numbers]
        joined = ",".join(numbers)
        if "-" in joined and "-" in "".join(numbers[: self.signed - first]):
            raise msgspec.ValidationError("a number is not plain")
        text = f"[{joined}]".encode()
        if text.translate(_PLAIN) != text:
            raise msgspec.ValidationError("a number is not plain")
        try:
            return self.kind(*values[:first], *self.numbers.decode(text))
        except msgspec.DecodeError as exc:
            raise msgspec.ValidationError(f"a number is not plain: {exc}") from None

    def normalize(self, item: dict[str, Any], pdno: str | None) -> None:
        """The slow path: each number of ``item`` (a row as plain JSON) replaced by its value.

        A number the rules refuse raises :class:`DecodeError` naming it and the ticker (the
        asked one, else the row's own).
        """
        ticker = pdno if pdno is not None else _pdno_of(item)
        for rule in self.rules:
            if rule.name in item:
                item[rule.name] = _number(item[rule.name], rule, ticker)


_SELLABLE_ROWS = _Rows.of(
    SellableQuantity,
    msgspec.json.Decoder(
        tuple[int, int, int, int, int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]
    ),
    _SELLABLE,
    frozenset({"evlu_pfls_amt", "evlu_pfls_rt"}),
)
_POSITION_ROWS = _Rows.of(
    Position, msgspec.json.Decoder(tuple[int, int, Decimal, Decimal]), _BALANCE, frozenset()
)
_SELLABLE_OUTPUTS = {"output1": _SELLABLE_ROWS, "output": _SELLABLE_ROWS}
_BALANCE_OUTPUTS = {"output1": _POSITION_ROWS}
_envelope_decoder = msgspec.json.Decoder(Envelope)
_sellable_decoder = msgspec.json.Decoder(_SellableEnvelopeText)
_balance_decoder = msgspec.json.Decoder(_BalancePageText)
_token_decoder = msgspec.json.Decoder(TokenAnswer, strict=False)


def decode_envelope(body: bytes) -> Envelope:
    """Read ``rt_cd``/``msg_cd``/``msg1`` alone."""
    return _decode(body, _envelope_decoder.decode, Envelope, {}, None)


def decode_sellable(body: bytes, pdno: str) -> SellableEnvelope:
    """Decode a full inquire-psbl-sell body; the envelope may still report an error."""
    return _decode(body, _fast_sellable, SellableEnvelope, _SELLABLE_OUTPUTS, pdno)


def decode_balance(body: bytes) -> BalancePage:
    """Decode one inquire-balance page; a bad number names the row's ticker."""
    return _decode(body, _fast_balance, BalancePage, _BALANCE_OUTPUTS, None)


def decode_token(body: bytes) -> TokenAnswer:
    """Decode tokenP's answer, a token or a refusal; anything else is a :class:`DecodeError`."""
    return _decode(body, _token_decoder.decode, TokenAnswer, {}, None)


def read_answer(body: bytes, decode: Callable[[bytes], E]) -> E | Envelope | DecodeError:
    """The body as ``decode`` reads it, or what to judge it by when that fails or contradicts
    itself.

    ``rt_cd`` "0" with a gateway refusal as ``msg_cd`` is returned as a bare envelope with
    ``rt_cd`` "1" (see the module docstring). When the full shape does not decode but the bare
    envelope does and reports an error, the envelope is returned: KIS's error matters more than
    the shape of the rest. Otherwise the :class:`DecodeError` is returned (not raised), for the
    classifier to weigh with the status.
    """
    try:
        answer = decode(body)
    except DecodeError as problem:
        try:
            envelope = _refusal(decode_envelope(body))
        except DecodeError:
            return problem
        return problem if envelope.rt_cd == spec.RT_OK else envelope
    return _refusal(answer)


def pick_sellable(envelope: SellableEnvelope, pdno: str) -> SellableQuantity:
    """The one result in a successful envelope, checked to be about ``pdno``.

    Rows are looked for in ``output1`` and ``output``. A lone object with a blank ``pdno`` is
    taken to be about the asked ticker; a lone object about another ticker is refused (field
    ``pdno``); rows in a list about other tickers are skipped. Rows about ``pdno`` that differ
    are refused as ambiguous (field ``output1``); equal ones are read once.
    """
    single = envelope.output1
    if envelope.output is None and type(single) is SellableQuantity and single.pdno == pdno:
        return single  # the usual answer: one object, about the ticker asked
    found: list[SellableQuantity] = []
    for output in (envelope.output1, envelope.output):
        if isinstance(output, list):
            found += [row for row in output if _same_pdno(row.pdno, pdno)]
        elif output is None:
            continue
        elif output.pdno == pdno or not output.pdno.strip() or _same_pdno(output.pdno, pdno):
            found.append(output)
        else:
            raise DecodeError(
                f"response is about {output.pdno.strip()!r}, not the ticker asked",
                field="pdno",
                pdno=pdno,
            )
    if not found:
        raise DecodeError("response carries no output1/output object", field="output1", pdno=pdno)
    answer = found[0] if found[0].pdno == pdno else msgspec.structs.replace(found[0], pdno=pdno)
    for row in found[1:]:
        if row != answer and msgspec.structs.replace(row, pdno=pdno) != answer:
            raise DecodeError(
                "ambiguous answer: rows for the ticker differ", field="output1", pdno=pdno
            )
    return answer


def _fast_sellable(body: bytes) -> SellableEnvelope:
    text = _sellable_decoder.decode(body)
    output = None if text.output is None else _typed_output(text.output)
    return SellableEnvelope(text.rt_cd, text.msg_cd, text.msg1, _typed_output(text.output1), output)


def _typed_output(output: _SellableText | list[_SellableText] | None) -> _Output:
    if isinstance(output, list):
        return [_SELLABLE_ROWS.typed(row) for row in output]
    return None if output is None else _SELLABLE_ROWS.typed(output)


def _fast_balance(body: bytes) -> BalancePage:
    text = _balance_decoder.decode(body)
    return BalancePage(
        rt_cd=text.rt_cd,
        msg_cd=text.msg_cd,
        msg1=text.msg1,
        output1=[_POSITION_ROWS.typed(row) for row in text.output1],
        ctx_area_fk100=text.ctx_area_fk100,
        ctx_area_nk100=text.ctx_area_nk100,
    )


def _refusal(answer: E) -> E | Envelope:
    """``answer``, unless it says success with a gateway refusal's code: then that refusal."""
    if answer.rt_cd == spec.RT_OK and answer.msg_cd.strip() in spec.GATEWAY_ERROR_CODES:
        return Envelope(spec.RT_FAILED, answer.msg_cd.strip(), answer.msg1)
    return answer


def _decode(
    body: bytes,
    fast: Callable[[bytes], S],
    kind: type[S],
    rows: Mapping[str, _Rows[Any]],
    pdno: str | None,
) -> S:
    """The fast path, else the slow one; a body that is not UTF-8 is read again as CP949.

    The nesting is checked first (see :data:`MAX_NESTING`); a body with few brackets, every KIS
    answer, is passed by counting them. Only a body whose decoding failed is checked for UTF-8
    (see the module docstring's Encodings), and msgspec's exception is never the test.
    """
    if body.count(b"{") + body.count(b"[") > MAX_NESTING:
        if not _is_utf8(body):  # a CP949 byte can look like a quote or a bracket
            return _decode(_transcoded(body, pdno), fast, kind, rows, pdno)
        if (depth := _depth(body)) > MAX_NESTING:
            raise DecodeError(
                f"response is nested too deeply to be a KIS answer "
                f"({depth} levels, more than {MAX_NESTING})",
                pdno=pdno,
            )
    try:
        try:
            return fast(body)
        except msgspec.ValidationError:
            return _relaxed(msgspec.json.decode(body), kind, rows, pdno)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        if not _is_utf8(body):
            return _decode(_transcoded(body, pdno), fast, kind, rows, pdno)
        raise DecodeError(f"response is not valid JSON: {exc}", pdno=pdno) from None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _depth(body: bytes) -> int:
    """How deep ``body`` (UTF-8) nests its arrays and objects, brackets inside strings aside.

    Escaped backslashes, then escaped quotes, are dropped, so that every quote left opens or
    closes a string; the text between the odd and even quotes is outside. Each step reads the
    bytes in order, so up to the first byte that is not JSON this reads the body as msgspec
    does, and msgspec stops there: the count is never lower than the depth msgspec would reach.
    """
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(plain.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _transcoded(body: bytes, pdno: str | None) -> bytes:
    """A body in EUC-KR/CP949 (Korea's legacy encoding) re-encoded as the UTF-8 JSON requires."""
    try:
        return body.decode("cp949").encode()
    except UnicodeDecodeError:
        raise DecodeError("response is neither UTF-8 nor EUC-KR", pdno=pdno) from None


def _relaxed(raw: Any, kind: type[S], rows: Mapping[str, _Rows[Any]], pdno: str | None) -> S:
    """The slow path: every number of the rows read by KIS's rules, then the shape checked."""
    if not isinstance(raw, dict):
        raise DecodeError("response is not a JSON object", pdno=pdno)
    for key, row_kind in rows.items():
        value = raw.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                row_kind.normalize(item, pdno)
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        what = f"malformed field `{field}`" if field else "malformed answer"
        raise DecodeError(f"{what}: {exc}", field=field, pdno=pdno) from None


def _number(raw: object, rule: _Rule, pdno: str | None) -> Any:
    """One number read by KIS's rules (see the module docstring), or a DecodeError naming it."""
    if not isinstance(raw, str):
        raise DecodeError(
            f"`{rule.name}` is not a number in a string: {_shown(raw)}", field=rule.name, pdno=pdno
        )
    text = raw.strip(_BLANKS)
    if not text:
        return rule.read.decode("0")
    if rule.grammar.fullmatch(text) is None:
        raise DecodeError(
            f"`{rule.name}` is not a number as KIS writes it: {_shown(raw)}",
            field=rule.name,
            pdno=pdno,
        )
    sign, unsigned = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, point, fraction = unsigned.replace(",", "").partition(".")
    whole = whole.lstrip("0") or "0"
    if len(whole) > rule.digits:
        raise DecodeError(
            f"`{rule.name}` has more than the {rule.digits} digits KIS documents: {_shown(raw)}",
            field=rule.name,
            pdno=pdno,
        )
    return rule.read.decode(f"{sign}{whole}{point}{fraction}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}..."


def _pdno_of(item: Mapping[str, Any]) -> str | None:
    found = item.get("pdno")
    return found.strip() or None if isinstance(found, str) else None


def _field_of(message: str) -> str | None:
    """Pull the offending field's name out of a msgspec validation message."""
    for pattern in _FIELD_PATTERNS:
        found = pattern.search(message)
        if found:
            return found[1]
    return None


def _same_pdno(found: str, asked: str) -> bool:
    return found.strip().upper() == asked


T = TypeVar("T")


def decode_as(body: bytes, kind: type[T]) -> T:
    """Decode a whole KIS body as ``kind``: a msgspec ``Struct`` (fields KIS adds are ignored;
    numbers sent as strings are read as msgspec's lax mode reads them) or ``dict``, by the same
    contract as the ``decode_*`` above. This module's own types keep their own rules."""
    known = _KNOWN.get(kind)
    if known is not None:
        return cast(T, known(body))
    decoder: msgspec.json.Decoder[Any] = _decoder_for(cast(Hashable, kind))
    decoded: T = _decode(body, decoder.decode, cast(Any, kind), {}, None)
    return decoded


@functools.lru_cache(maxsize=64)
def _decoder_for(kind: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(kind, strict=False)


class Continuation(msgspec.Struct):
    """The keys a paged KIS inquiry returns for its next page, under either naming."""

    ctx_area_fk100: str | None = None
    ctx_area_nk100: str | None = None
    ctx_area_fk200: str | None = None
    ctx_area_nk200: str | None = None

    def params(self) -> dict[str, str]:
        """The next request's query: each key KIS sent, upper-cased, its value stripped."""
        return {
            name.upper(): value.strip()
            for name in self.__struct_fields__
            if isinstance(value := getattr(self, name), str)
        }


def decode_continuation(body: bytes) -> Continuation:
    """The continuation keys of a page (absent keys stay ``None``)."""
    return _decode(body, _continuation_decoder.decode, Continuation, {}, None)


_continuation_decoder = msgspec.json.Decoder(Continuation, strict=False)
_KNOWN: dict[object, Callable[[bytes], object]] = {
    BalancePage: decode_balance,
    TokenAnswer: decode_token,
    Envelope: decode_envelope,
}
"""Types with numbers read by KIS's rules: :func:`decode_as` hands them to their decoder."""
