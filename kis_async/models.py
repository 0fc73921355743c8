"""Typed views of what KIS returns, decoded by msgspec straight from the response bytes.

One contract for every ``decode_*`` here: it returns the typed value or raises
:class:`~kis_async.errors.DecodeError` (naming the field, and the ticker where known), never
anything else.

Numbers
-------
KIS sends every number as a JSON string; which forms are read, and how, is
:mod:`kis_async.numbers`'s table. A row type says which of its fields are numbers, of which kind
and Length, in metadata on the field (see :mod:`kis_async.endpoints`); everything below is
derived from that, once per row type.

Two paths, one reading
----------------------
The fast path decodes each row as its text twin (a Struct derived from the row type, its numbers
as text, each no longer than its Length) and reads them all in one msgspec call as a JSON array
of numbers: a plain ``120`` or ``-1.19`` is valid JSON, while each quirk (padding, leading zeros,
commas) and each refused form is not, or is not a number of the right kind, and sends the body to
the slow path. The slow path reads each number by :mod:`kis_async.numbers`'s table into the same
plain text and converts that with the same msgspec reader, so the two paths cannot disagree
about a number both accept. A body that is not UTF-8 is
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
import typing
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar, cast, get_args, get_origin

import msgspec

from . import spec
from .endpoints import BALANCE, SELLABLE, BalancePage, Envelope, SellableEnvelope
from .endpoints import SellableQuantity as SellableQuantity
from .errors import DecodeError, PagingError
from .numbers import Kind, Number, number_of

_PLAIN = bytes(byte if chr(byte) in "0123456789.,-[]" else 0 for byte in range(256))
"""Changes every byte the fast path refuses in its JSON array of numbers (a blank, an exponent, a
quote, a letter, any byte of a character beyond ASCII) to NUL, which JSON refuses there too. A
comma inside a number adds an element, and the array no longer fits its tuple."""
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

E = TypeVar("E", bound="Envelope")
R = TypeVar("R", bound=msgspec.Struct)
S = TypeVar("S", bound=msgspec.Struct)


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


@dataclass(frozen=True, slots=True)
class _Rows(Generic[R]):
    """One row type, read by the same rules on both paths; derived from its fields' metadata.

    ``text`` is the row's text twin: the same fields in the same order, each number as text of
    at most its Length (blank is 0: the all-blank answer for a ticker not held is common, and
    read here too). The numbers are declared together, between the text fields before them and
    any after (which have defaults), so that the fast path reads them as one slice.
    """

    kind: type[R]
    text: type[msgspec.Struct]
    numbers: msgspec.json.Decoder[tuple[Any, ...]]
    rules: tuple[tuple[str, Number], ...]
    first: int
    """Index of the first number among ``kind``'s fields."""
    end: int
    """Index of the first text field after the numbers (``len(fields)`` if none)."""
    unsigned: tuple[int, ...]
    """Positions, among the numbers, of those that may not be negative."""

    @classmethod
    def of(cls, kind: type[R]) -> _Rows[R]:
        hints = typing.get_type_hints(kind, include_extras=True)
        fields = msgspec.structs.fields(kind)
        numbers = [number_of(hints[f.name]) for f in fields]
        first = next((i for i, n in enumerate(numbers) if n is not None), len(fields))
        end = len(fields) - next((i for i, n in enumerate(reversed(numbers)) if n is not None), 0)
        for f, number in zip(fields[first:end], numbers[first:end], strict=True):
            if number is None:
                raise TypeError(
                    f"{kind.__name__}.{f.name}: a text field among the numbers; declare the "
                    "numbers together, so the fast path reads them as one slice"
                )
        twin: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for f, number in zip(fields, numbers, strict=True):
            hint = hints[f.name] if number is None else _text(number.digits)
            if f.default is not msgspec.NODEFAULT:
                default = f.default if number is None else str(f.default)
                twin.append((f.name, hint, default))
            elif f.default_factory is not msgspec.NODEFAULT:
                twin.append((f.name, hint, msgspec.field(default_factory=f.default_factory)))
            else:
                twin.append((f.name, hint))
        rules = tuple(
            (f.name, number)
            for f, number in zip(fields, numbers, strict=True)
            if number is not None
        )
        types = tuple(number.kind.type for _, number in rules)
        return cls(
            kind=kind,
            text=msgspec.defstruct(f"_{kind.__name__}Text", twin, module=__name__),
            numbers=msgspec.json.Decoder(tuple[types]),  # type: ignore[valid-type]
            rules=rules,
            first=first,
            end=end,
            unsigned=tuple(
                i for i, (_, number) in enumerate(rules) if number.kind is not Kind.SIGNED
            ),
        )

    def typed(self, row: msgspec.Struct) -> R:
        """The fast path: ``row``'s numbers, if all are plain, read exactly into ``kind``.

        Anything else raises msgspec's ``ValidationError``, which sends the body to the slow path.
        """
        values = msgspec.structs.astuple(row)
        first, end = self.first, self.end
        numbers: Sequence[str] = values[first:end]
        if "" in numbers:  # blank is 0: a ticker not held comes back all blank
            numbers = [v or "0" for v in numbers]
        joined = ",".join(numbers)
        if "-" in joined and any("-" in numbers[i] for i in self.unsigned):
            raise msgspec.ValidationError("a number is not plain")
        text = f"[{joined}]".encode()
        if text.translate(_PLAIN) != text:
            raise msgspec.ValidationError("a number is not plain")
        try:
            return self.kind(*values[:first], *self.numbers.decode(text), *values[end:])
        except msgspec.DecodeError as exc:
            raise msgspec.ValidationError(f"a number is not plain: {exc}") from None

    def normalize(self, item: dict[str, Any], pdno: str | None) -> None:
        """The slow path: each number of ``item`` (a row as plain JSON) replaced by its value.

        A number the rules refuse raises :class:`DecodeError` naming it and the ticker (the
        asked one, else the row's own).
        """
        ticker = pdno if pdno is not None else _pdno_of(item)
        for name, number in self.rules:
            if name in item:
                item[name] = number.read(item[name], name, ticker)


def _text(digits: int) -> Any:
    return Annotated[str, msgspec.Meta(max_length=digits)]


@dataclass(frozen=True, slots=True)
class _Answer(Generic[S]):
    """How one answer type (:class:`~kis_async.endpoints.OneRow` or
    :class:`~kis_async.endpoints.RowPage` of a row type) is decoded: derived once, from the
    declaration."""

    kind: type[S]
    rows: Mapping[str, _Rows[Any]]
    """The envelope's fields that hold rows, each with its row type's rules."""
    text: msgspec.json.Decoder[Any]
    """The whole body with every row as its text twin."""

    @classmethod
    def of(cls, kind: type[S]) -> _Answer[S]:
        origin: Any = get_origin(kind)
        (row,) = get_args(kind)
        hints = typing.get_type_hints(origin)
        (var,) = origin.__parameters__
        rows = _Rows.of(row)
        holding = {name: rows for name, hint in hints.items() if _mentions(hint, var)}
        return cls(kind, holding, msgspec.json.Decoder(origin[rows.text]))

    def fast(self, body: bytes) -> S:
        """The body with its rows read from their text twins (see :meth:`_Rows.typed`)."""
        text = self.text.decode(body)
        typed = {}
        for name, rows in self.rows.items():
            value = getattr(text, name)
            if type(value) is list:
                typed[name] = [rows.typed(row) for row in value]
            elif value is not None:
                typed[name] = rows.typed(value)
        return cast(S, msgspec.structs.replace(text, **typed) if typed else text)


def _mentions(hint: object, var: object) -> bool:
    return hint is var or any(_mentions(arg, var) for arg in get_args(hint))


@functools.lru_cache(maxsize=64)
def _answer(kind: Any) -> _Answer[Any] | None:
    """The decoding plan of an endpoint answer type, or ``None`` for any other type."""
    if get_origin(kind) not in _SHAPES or len(get_args(kind)) != 1:
        return None
    return _Answer.of(kind)


_SHAPES = tuple(get_origin(endpoint.answer) for endpoint in (SELLABLE, BALANCE))
_SELLABLE = _Answer.of(SELLABLE.answer)
_BALANCE = _Answer.of(BALANCE.answer)
_envelope_decoder = msgspec.json.Decoder(Envelope)
_token_decoder = msgspec.json.Decoder(TokenAnswer, strict=False)


def decode_envelope(body: bytes) -> Envelope:
    """Read ``rt_cd``/``msg_cd``/``msg1`` alone."""
    return _decode(body, _envelope_decoder.decode, Envelope, {}, None)


def decode_sellable(body: bytes, pdno: str) -> SellableEnvelope:
    """Decode a full inquire-psbl-sell body; the envelope may still report an error."""
    return _decode(body, _SELLABLE.fast, SellableEnvelope, _SELLABLE.rows, pdno)


def decode_balance(body: bytes) -> BalancePage:
    """Decode one inquire-balance page; a bad number names the row's ticker."""
    return _decode(body, _BALANCE.fast, BalancePage, _BALANCE.rows, None)


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
    live, reference = envelope.output, envelope.output1
    if reference is None and type(live) is SellableQuantity and live.pdno == pdno:
        return live  # the usual answer: one object under ``output``, about the ticker asked
    if live is None and type(reference) is SellableQuantity and reference.pdno == pdno:
        return reference  # the same under the reference page's ``output1``
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
    """Decode a whole KIS body as ``kind``, by the same contract as the ``decode_*`` above.

    ``kind`` is an endpoint answer type (``OneRow[Row]`` or ``RowPage[Row]`` of a row whose
    number fields are declared as :mod:`kis_async.endpoints` declares them: its numbers are read
    by KIS's rules, exactly), any other msgspec ``Struct`` (fields KIS adds are ignored; numbers
    sent as strings are read as msgspec's lax mode reads them), or ``dict``. This module's own
    types keep their own rules.
    """
    known = _KNOWN.get(kind)
    if known is not None:
        return cast(T, known(body))
    answer = _answer(cast(Hashable, kind))
    if answer is not None:
        return cast(T, _decode(body, answer.fast, answer.kind, answer.rows, None))
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
        """The next request's query: each key KIS sent, upper-cased, its value exactly as sent,
        blank padding included (as KIS's own sample client echoes it).

        A value that is not printable ASCII, or longer than its name says (100 or 200), cannot
        be a key KIS means to be echoed: :class:`~kis_async.errors.PagingError`, naming the key
        and its length but not its value (``ctx_area_fk100`` holds the account number).
        """
        keys = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if not isinstance(value, str):
                continue
            printable = value.isascii() and value.isprintable()
            if len(value) > int(name[-3:]) or not printable:
                what = "printable ASCII" if printable else "not printable ASCII"
                raise PagingError(f"{name} is not a key to echo: {len(value)} characters, {what}")
            keys[name.upper()] = value
        return keys

    def last_page(self) -> bool:
        """A next-page key was sent and is blank: this page is the last, whatever ``tr_cont``
        says (KIS answered ``M`` on the only page of an account holding exactly 50)."""
        keys = [self.ctx_area_nk100, self.ctx_area_nk200]
        return any(key is not None for key in keys) and not any(key and key.strip() for key in keys)


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
