"""Typed views of what KIS returns, decoded by msgspec straight from the response bytes.

One contract for every ``decode_*`` here: it returns the typed value or raises
:class:`~kis_async.errors.DecodeError`, never anything else.

KIS sends every number as a JSON string. A well-formed body takes the fast path: one reusable
``msgspec`` decoder in lax mode turns ``"120"`` into ``120`` and ``"71250.0000"`` into an exact
``Decimal``. Only a body that fails it is looked at again: a body in EUC-KR/CP949 is re-encoded,
blanks (a ticker not held) become zero, thousands separators and padding are read, and anything
still wrong becomes a :class:`DecodeError` naming the ticker and the field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Hashable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar, cast

import msgspec

from . import spec
from .errors import DecodeError

NonNegative = Annotated[int, msgspec.Meta(ge=0)]

_QUANTITY_FIELDS = ("buy_qty", "sll_qty", "cblc_qty", "nsvg_qty", "ord_psbl_qty")
_DECIMAL_FIELDS = (
    "pchs_avg_pric",
    "pchs_amt",
    "now_pric",
    "evlu_amt",
    "evlu_pfls_amt",
    "evlu_pfls_rt",
)
_NUMERIC = frozenset(_QUANTITY_FIELDS + _DECIMAL_FIELDS)
_NUMERIC_SUFFIXES = ("_qty", "_amt", "_pric", "_rt", "prpr")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FIELD_PATTERNS = (
    re.compile(r"missing required field `(\w+)`"),
    re.compile(r"`(\w+)` is not"),
    re.compile(r"at `\$[^`]*?\.(\w+)`"),
)


class Envelope(msgspec.Struct):
    """The three fields every KIS body carries."""

    rt_cd: str
    msg_cd: str = ""
    msg1: str = ""


class SellableQuantity(msgspec.Struct, frozen=True):
    """One ticker's answer from 매도가능수량조회 (inquire-psbl-sell), under the KIS field names.

    ``ord_psbl_qty`` is what can be sold right now. Quantities are ``int``; prices, amounts and the
    rate are exact ``Decimal``. Fields KIS adds later are ignored.
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

    def __post_init__(self) -> None:
        for name in _DECIMAL_FIELDS:
            if not getattr(self, name).is_finite():
                raise ValueError(f"`{name}` is not a finite number")


_Output = SellableQuantity | list[SellableQuantity] | None


class SellableEnvelope(Envelope):
    """The whole body: the result arrives as ``output1`` (reference) or ``output`` (live)."""

    output1: _Output = None
    output: _Output = None


class Position(msgspec.Struct, frozen=True):
    """One holding from 주식잔고조회 (inquire-balance ``output1``), under the KIS field names.

    ``hldg_qty`` is held, ``ord_psbl_qty`` sellable as the balance sees it; ``prpr`` is the
    current price. A position sold out today can still be listed with ``hldg_qty`` 0.
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
            self.rt_cd = "1"


E = TypeVar("E", bound=Envelope)

_envelope_decoder = msgspec.json.Decoder(Envelope)
_sellable_decoder = msgspec.json.Decoder(SellableEnvelope, strict=False)
_balance_decoder = msgspec.json.Decoder(BalancePage, strict=False)
_token_decoder = msgspec.json.Decoder(TokenAnswer, strict=False)


def decode_envelope(body: bytes) -> Envelope:
    """Read ``rt_cd``/``msg_cd``/``msg1`` alone."""
    return _decode(body, _envelope_decoder, (), None)


def decode_sellable(body: bytes, pdno: str) -> SellableEnvelope:
    """Decode a full inquire-psbl-sell body; the envelope may still report an error."""
    return _decode(body, _sellable_decoder, ("output1", "output"), pdno)


def decode_balance(body: bytes) -> BalancePage:
    """Decode one inquire-balance page."""
    return _decode(body, _balance_decoder, ("output1",), None)


def decode_token(body: bytes) -> TokenAnswer:
    """Decode tokenP's answer, a token or a refusal; anything else is a :class:`DecodeError`."""
    return _decode(body, _token_decoder, (), None)


def read_answer(body: bytes, decode: Callable[[bytes], E]) -> E | Envelope | DecodeError:
    """The body as ``decode`` reads it, or what to judge it by when that fails.

    When the full shape does not decode but the bare envelope does and reports an error, the
    envelope is returned: KIS's error matters more than the shape of the rest. Otherwise the
    :class:`DecodeError` is returned (not raised), for the classifier to weigh with the status.
    """
    try:
        return decode(body)
    except DecodeError as problem:
        try:
            envelope = decode_envelope(body)
        except DecodeError:
            return problem
        return problem if envelope.rt_cd == spec.RT_OK else envelope


def pick_sellable(envelope: SellableEnvelope, pdno: str) -> SellableQuantity:
    """The one result in a successful envelope, checked to be about ``pdno``."""
    found = envelope.output1 if envelope.output1 is not None else envelope.output
    if isinstance(found, list):
        found = next((item for item in found if _same_pdno(item.pdno, pdno)), None)
    if found is None:
        raise DecodeError("response carries no output1/output object", field="output1", pdno=pdno)
    if not found.pdno.strip():
        return msgspec.structs.replace(found, pdno=pdno)
    if not _same_pdno(found.pdno, pdno):
        raise DecodeError(
            f"response is about {found.pdno.strip()!r}, not the ticker asked",
            field="pdno",
            pdno=pdno,
        )
    if found.pdno != pdno:
        return msgspec.structs.replace(found, pdno=pdno)
    return found


S = TypeVar("S", bound=msgspec.Struct)


def _decode(
    body: bytes, decoder: msgspec.json.Decoder[S], outputs: tuple[str, ...], pdno: str | None
) -> S:
    """The fast path, then for a body that fails it: UTF-8 -> CP949, then relaxed numbers."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError:
        pass
    except UnicodeDecodeError:
        return _decode(_transcoded(body, pdno), decoder, outputs, pdno)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _not_json(exc, pdno) from None
    return _relaxed(body, decoder.type, outputs, pdno)


def _transcoded(body: bytes, pdno: str | None) -> bytes:
    """A body in EUC-KR/CP949 (Korea's legacy encoding) re-encoded as the UTF-8 JSON requires."""
    try:
        return body.decode("cp949").encode()
    except UnicodeDecodeError:
        raise DecodeError("response is neither UTF-8 nor EUC-KR", pdno=pdno) from None


def _relaxed(body: bytes, kind: type[S], outputs: tuple[str, ...], pdno: str | None) -> S:
    """The slow path: normalize numeric strings the fast decoder refused, then validate again."""
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _not_json(exc, pdno) from None
    if not isinstance(raw, dict):
        raise DecodeError("response is not a JSON object", pdno=pdno)
    for key in outputs:
        value = raw.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                _normalize_numbers(item)
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        what = f"malformed field `{field}`" if field else "malformed answer"
        raise DecodeError(f"{what}: {exc}", field=field, pdno=pdno) from None


def _not_json(exc: Exception, pdno: str | None) -> DecodeError:
    if isinstance(exc, RecursionError):
        return DecodeError("response is nested too deeply to be a KIS answer", pdno=pdno)
    return DecodeError(f"response is not valid JSON: {exc}", pdno=pdno)


def _normalize_numbers(item: dict[str, Any]) -> None:
    for key, value in item.items():
        if not isinstance(value, str) or not (key in _NUMERIC or key.endswith(_NUMERIC_SUFFIXES)):
            continue
        text = value.strip()
        if not text:
            item[key] = 0
            continue
        if _GROUPED.fullmatch(text):
            text = text.replace(",", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            continue
        integral = number.is_finite() and number.adjusted() < 20
        item[key] = int(number) if integral and number == number.to_integral_value() else text


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
    numbers sent as strings are read) or ``dict``, by the same contract as the ``decode_*`` above.
    """
    decoder: msgspec.json.Decoder[Any] = _decoder_for(cast(Hashable, kind))
    decoded: T = _decode(body, decoder, _OUTPUTS, None)
    return decoded


_OUTPUTS = ("output", "output1", "output2")


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
    return _decode(body, _continuation_decoder, (), None)


_continuation_decoder = msgspec.json.Decoder(Continuation, strict=False)
