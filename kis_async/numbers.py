"""What a KIS number field is, and how a number KIS wrote is read: one place for both.

KIS sends every number as a JSON string. A row's field says what it holds in metadata on its
type, ``Annotated[int, quantity(10)]``, ``Annotated[Decimal, amount(18)]`` or
``Annotated[Decimal, signed(19)]``, with the Length of the reference page: the most digits of a
quantity, or of a price, amount or rate before its decimal point. :mod:`kis_async.models` derives
every decoding rule of a row from that metadata, so a field's kind and Length are written once,
on the field.

=======================================  ===================================================
what KIS sends                           read as
=======================================  ===================================================
``"120"``, ``"71250.0000"``              ``120``, ``Decimal("71250.0000")``
``""``, ``"  "`` (a ticker not held)     ``0``
``" 120 "``                              ``120``: ASCII blanks around a number are padding
``"0000115"``                            ``115``: so are leading zeros
``"8,550,000"``, ``"1,234.5"``           commas, in groups of three, are thousands separators
``"-102000"``, ``"-1.19"``               negative: only a :func:`signed` field
=======================================  ===================================================

Anything else is a :class:`~kis_async.errors.DecodeError` naming the field: digits other than
ASCII 0-9 (``"１２０"``, which Python's ``int()`` takes), ``"1_000"``, ``"1e3"``, ``"0x10"``,
``"NaN"``, ``"Infinity"``, ``"1."``, ``".5"``, ``"1,23"``, ``"+5"`` (KIS writes a gain unsigned), a
sign on a quantity, price or amount (``"-0"`` too), a fraction on a quantity, a JSON number or
``null`` instead of a string (KIS documents strings; a JSON number would need rules of its own),
and more digits than the field's Length. Leading zeros do not count towards the Length; for a
price, amount or rate it bounds the digits before the point, and the fraction is not bounded
(its width differs between KIS's fields and pages, and more digits only say the value more
exactly).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, get_args, get_origin

import msgspec

from .errors import DecodeError

_BLANKS = " \t\r\n"
_GROUPED = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_SHOWN = 40
"""Characters of a refused value quoted in an error."""
_KEY = "kis_number"
"""The key of :class:`Number` in a ``msgspec.Meta``'s ``extra``."""
_read_int = msgspec.json.Decoder(int)
_read_decimal = msgspec.json.Decoder(Decimal)


class Kind(enum.Enum):
    """What a number field holds, which decides its type and whether it may be negative."""

    QUANTITY = (int, re.compile(_GROUPED))
    AMOUNT = (Decimal, re.compile(_GROUPED + r"(?:\.[0-9]+)?"))
    SIGNED = (Decimal, re.compile("-?" + _GROUPED + r"(?:\.[0-9]+)?"))

    @property
    def type(self) -> type[int] | type[Decimal]:
        kind: type[int] | type[Decimal] = self.value[0]
        return kind

    @property
    def grammar(self) -> re.Pattern[str]:
        grammar: re.Pattern[str] = self.value[1]
        return grammar


@dataclass(frozen=True, slots=True)
class Number:
    """A number field's kind and its Length in digits."""

    kind: Kind
    digits: int

    def read(self, raw: object, field: str, pdno: str | None) -> Any:
        """``raw`` as KIS writes this number (the module's table), or a ``DecodeError``
        naming ``field`` and ``pdno``."""
        if not isinstance(raw, str):
            raise DecodeError(
                f"`{field}` is not a number in a string: {_shown(raw)}", field=field, pdno=pdno
            )
        read = _read_int if self.kind is Kind.QUANTITY else _read_decimal
        text = raw.strip(_BLANKS)
        if not text:
            return read.decode("0")
        if self.kind.grammar.fullmatch(text) is None:
            raise DecodeError(
                f"`{field}` is not a number as KIS writes it: {_shown(raw)}", field=field, pdno=pdno
            )
        sign, unsigned = ("-", text[1:]) if text.startswith("-") else ("", text)
        whole, point, fraction = unsigned.replace(",", "").partition(".")
        whole = whole.lstrip("0") or "0"
        if len(whole) > self.digits:
            raise DecodeError(
                f"`{field}` has more than the {self.digits} digits KIS documents: {_shown(raw)}",
                field=field,
                pdno=pdno,
            )
        return read.decode(f"{sign}{whole}{point}{fraction}")


def quantity(digits: int) -> msgspec.Meta:
    """A count of shares: a non-negative ``int`` of at most ``digits`` digits."""
    return msgspec.Meta(ge=0, extra={_KEY: Number(Kind.QUANTITY, digits)})


def amount(digits: int) -> msgspec.Meta:
    """A price or an amount: a non-negative, exact ``Decimal``, ``digits`` before the point."""
    return msgspec.Meta(extra={_KEY: Number(Kind.AMOUNT, digits)})


def signed(digits: int) -> msgspec.Meta:
    """A profit or loss, or its rate: an exact ``Decimal`` that may be negative."""
    return msgspec.Meta(extra={_KEY: Number(Kind.SIGNED, digits)})


def number_of(annotation: object) -> Number | None:
    """The :class:`Number` an ``Annotated`` field type carries, or ``None`` for a text field.

    A field marked as a number must be of the type its kind reads into: a mismatch is a
    ``TypeError`` when the declaration is read, not a wrong value at run time.
    """
    if get_origin(annotation) is None or not hasattr(annotation, "__metadata__"):
        return None
    base, *metadata = get_args(annotation)
    for meta in metadata:
        if isinstance(meta, msgspec.Meta) and isinstance(meta.extra, dict):
            number = meta.extra.get(_KEY)
            if isinstance(number, Number):
                if base is not number.kind.type:
                    raise TypeError(
                        f"a {number.kind.name.lower()} field must be "
                        f"{number.kind.type.__name__}, not {base!r}"
                    )
                return number
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}..."
