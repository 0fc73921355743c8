"""Typed views of what KIS returns, decoded by msgspec straight from the response bytes.

KIS sends every number as a JSON string. A well-formed body takes the fast path: one reusable
``msgspec`` decoder in lax mode turns ``"120"`` into ``120`` and ``"71250.0000"`` into an exact
``Decimal``. Only a body that fails it is looked at again: blanks (a ticker not held) become zero,
thousands separators and zero padding are read, and anything still wrong becomes a
:class:`DecodeError` naming the ticker and the field.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar

import msgspec

from .errors import DecodeError

NonNegative = Annotated[int, msgspec.Meta(ge=0)]


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


_QUANTITY_FIELDS = ("buy_qty", "sll_qty", "cblc_qty", "nsvg_qty", "ord_psbl_qty")
_DECIMAL_FIELDS = (
    "pchs_avg_pric",
    "pchs_amt",
    "now_pric",
    "evlu_amt",
    "evlu_pfls_amt",
    "evlu_pfls_rt",
)

Output = SellableQuantity | list[SellableQuantity] | None


class SellableEnvelope(Envelope):
    """The whole body: the result arrives as ``output1`` (reference) or ``output`` (live)."""

    output1: Output = None
    output: Output = None


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


S = TypeVar("S", bound=Envelope)

_envelope_decoder = msgspec.json.Decoder(Envelope)
_sellable_decoder = msgspec.json.Decoder(SellableEnvelope, strict=False)
_balance_decoder = msgspec.json.Decoder(BalancePage, strict=False)
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def decode_envelope(body: bytes) -> Envelope:
    """Read ``rt_cd``/``msg_cd``/``msg1`` alone.

    Raises ``msgspec.MsgspecError`` or ``UnicodeError`` for a body that is not a KIS envelope.
    """
    try:
        return _envelope_decoder.decode(body)
    except UnicodeDecodeError:
        return _envelope_decoder.decode(transcoded(body))


def transcoded(body: bytes) -> bytes:
    """A body in EUC-KR/CP949 (Korea's legacy encoding) re-encoded as the UTF-8 JSON requires."""
    return body.decode("cp949").encode()


def decode_sellable(body: bytes, pdno: str) -> SellableEnvelope:
    """Decode a full inquire-psbl-sell body; the envelope may still report an error."""
    try:
        return _sellable_decoder.decode(body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise DecodeError(f"response is not valid JSON: {exc}", pdno=pdno) from None
    except UnicodeDecodeError:
        try:
            body = transcoded(body)
        except UnicodeDecodeError:
            raise DecodeError("response is neither UTF-8 nor EUC-KR", pdno=pdno) from None
        return decode_sellable(body, pdno)
    return relaxed_convert(body, SellableEnvelope, ("output1", "output"), pdno)


def decode_balance(body: bytes) -> BalancePage:
    """Decode one inquire-balance page (the transport has already checked its envelope)."""
    try:
        return _balance_decoder.decode(body)
    except msgspec.ValidationError:
        pass
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"balance page is not valid JSON: {exc}") from None
    return relaxed_convert(body, BalancePage, ("output1",), None)


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


def relaxed_convert(body: bytes, kind: type[S], outputs: tuple[str, ...], pdno: str | None) -> S:
    """The slow path: normalise numeric strings the fast decoder refused, then validate again."""
    try:
        raw = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"response is not valid JSON: {exc}", pdno=pdno) from None
    if not isinstance(raw, dict):
        raise DecodeError("response is not a JSON object", pdno=pdno)
    for key in outputs:
        value = raw.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                _normalise_numbers(item)
    try:
        return msgspec.convert(raw, kind, strict=False)
    except msgspec.ValidationError as exc:
        field = _field_of(str(exc))
        raise DecodeError(f"malformed field `{field}`: {exc}", field=field, pdno=pdno) from None


def _normalise_numbers(item: dict[str, Any]) -> None:
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


_FIELD_PATTERNS = (
    re.compile(r"missing required field `(\w+)`"),
    re.compile(r"`(\w+)` is not"),
    re.compile(r"at `\$[^`]*?\.(\w+)`"),
)
_NUMERIC = frozenset(_QUANTITY_FIELDS + _DECIMAL_FIELDS)
_NUMERIC_SUFFIXES = ("_qty", "_amt", "_pric", "_rt", "prpr")


def _field_of(message: str) -> str | None:
    """Pull the offending field's name out of a msgspec validation message."""
    for pattern in _FIELD_PATTERNS:
        found = pattern.search(message)
        if found:
            return found[1]
    return None


def _same_pdno(found: str, asked: str) -> bool:
    return found.strip().upper() == asked
