"""Before you sell: whether each of a list of intended sell orders fits what the account can sell.

A rebalancer or a stop-loss bot has a list of sells it is about to send. :func:`judge` says, for
each, whether the account can fill it, on the numbers inquire-psbl-sell answered for its ticker:

- ``ok`` (:class:`SellFits`): the order fits ``ord_psbl_qty``;
- ``short`` (:class:`SellShort`): it asks more than is left, with the ``shortfall``;
- ``not_held`` (:class:`SellNotHeld`): KIS says none is held and none can be sold;
- ``error`` (:class:`SellFailed`): the check itself failed, with the error.

It fails closed. A failed check is never ``ok`` and never reads as zero sellable: its
``ord_psbl_qty`` is ``None``, so code that does arithmetic on it has to narrow first
(``if check.verdict == "error"`` or ``check.error is not None``), and a type checker says so.
That is what the bots in the wild got wrong: one read a transient failure as an empty balance and
dropped a stop-loss sell; one read a zero quantity as "sell everything".

Several orders for one ticker draw on one sellable quantity. They are judged in input order on a
running total, so each order from the first overage on is short, by what it asks beyond what is
left (never more than it asks).

The verdict is advisory: it is what KIS answered at ``answered_at``. Quantities can change before
an order reaches the exchange (another order fills, a settlement lands), so an ``ok`` is not a
reservation, and the exchange has the last word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias

from . import validate
from .clock import Clock
from .endpoints import SellableQuantity
from .errors import ArgumentError, KISError
from .spec import KST, QUANTITY_DIGITS

Verdict: TypeAlias = Literal["ok", "short", "not_held", "error"]
"""What became of one order: :data:`SellCheck`'s ``verdict``."""
MAX_QTY = 10**QUANTITY_DIGITS - 1
"""The most shares one order may ask for: KIS's widest quantity field (19 digits)."""
_SHOWN_BAD_ORDERS = 20


@dataclass(frozen=True, slots=True)
class Sell:
    """One intended sell: a ticker and a whole number of shares, checked here.

    ``pdno`` is normalized as every ticker is (``validate.normalize_pdno``); ``qty`` is an
    ``int`` from 1 to :data:`MAX_QTY` (not a ``bool``, not a ``float``), kept as a plain ``int``
    (an ``int`` subclass is taken as its value, so none of its own arithmetic or comparisons
    enter a verdict). A bad value raises
    :class:`~kis_async.errors.ArgumentError` naming the field.
    """

    pdno: str
    qty: int

    def __post_init__(self) -> None:
        try:
            pdno = validate.normalize_pdno(self.pdno)
        except ValueError as exc:
            raise ArgumentError(str(exc), argument="pdno") from None
        object.__setattr__(self, "pdno", pdno)
        object.__setattr__(self, "qty", _checked_qty(self.qty))


@dataclass(frozen=True, slots=True)
class Answered:
    """A ticker's answer, and when it came (the client's clock, in KST)."""

    quantity: SellableQuantity
    answered_at: datetime


@dataclass(frozen=True, slots=True)
class _Judged:
    """What every verdict on an answered ticker carries: the order and KIS's numbers."""

    pdno: str
    qty: int
    """Shares the order asks to sell."""
    ord_psbl_qty: int
    """Sellable now, as KIS answered (주문가능수량)."""
    cblc_qty: int
    """Held (잔고수량)."""
    sll_qty: int
    """Sold today."""
    asked_before: int
    """Shares the earlier orders for this ticker asked for."""
    answered_at: datetime
    """When KIS's answer came (the client's clock, KST): the verdict is as of then."""
    answer: SellableQuantity
    """KIS's whole answer for the ticker (its name, prices...)."""


@dataclass(frozen=True, slots=True)
class SellFits(_Judged):
    """The order fits: ``qty`` and every earlier order for the ticker are within
    ``ord_psbl_qty``."""

    shortfall: Literal[0] = 0
    verdict: Literal["ok"] = "ok"
    error: None = None

    @property
    def ok(self) -> Literal[True]:
        """Always true: the order fits."""
        return True

    def __str__(self) -> str:
        return _row(self, "ok")


@dataclass(frozen=True, slots=True)
class SellShort(_Judged):
    """The order asks more than is left once every earlier order for the ticker is counted:
    ``shortfall`` shares more (at least 1, at most ``qty``). Some shares are held or sellable;
    else the verdict is :class:`SellNotHeld`."""

    shortfall: int
    """``min(qty, asked_before + qty - ord_psbl_qty)``."""
    verdict: Literal["short"] = "short"
    error: None = None

    @property
    def ok(self) -> Literal[False]:
        """Always false."""
        return False

    def __str__(self) -> str:
        return _row(self, f"short by {self.shortfall:,}")


@dataclass(frozen=True, slots=True)
class SellNotHeld(_Judged):
    """KIS answered that none of the ticker is held (``cblc_qty`` 0) and none can be sold
    (``ord_psbl_qty`` 0): the whole order is short."""

    shortfall: int
    """The whole order: ``qty``."""
    verdict: Literal["not_held"] = "not_held"
    error: None = None

    @property
    def ok(self) -> Literal[False]:
        """Always false."""
        return False

    def __str__(self) -> str:
        return _row(self, "not held")


@dataclass(frozen=True, slots=True)
class SellFailed:
    """The check failed (``error`` says why): nothing is known about the order, and none of
    KIS's numbers is set. Never read it as zero sellable; ask again, or do not send it."""

    pdno: str
    qty: int
    error: KISError
    verdict: Literal["error"] = "error"
    ord_psbl_qty: None = None
    cblc_qty: None = None
    sll_qty: None = None
    asked_before: None = None
    answered_at: None = None
    answer: None = None
    shortfall: None = None

    @property
    def ok(self) -> Literal[False]:
        """Always false."""
        return False

    def __str__(self) -> str:
        return (
            f"{self.pdno:<8} sell {self.qty:>9,}  not checked: "
            f"{type(self.error).__name__}: {self.error.reason}"
        )


SellCheck: TypeAlias = SellFits | SellShort | SellNotHeld | SellFailed
"""One order's verdict: test ``verdict`` (or ``isinstance``, or ``match``), and a type checker
knows which fields are set; ``ord_psbl_qty`` is ``int`` on every verdict but ``"error"``."""


def orders(given: Iterable[Sell | tuple[str, int]]) -> list[Sell]:
    """The orders as :class:`Sell`, in input order; every bad one named in one
    :class:`~kis_async.errors.ArgumentError` (``argument="orders"``), so a caller fixes its list
    in one pass. A pair is ``(pdno, qty)``; repeats of a ticker are kept (each is an order)."""
    if isinstance(given, str | bytes | Mapping):
        raise TypeError(
            "orders must be a list of Sell(pdno, qty) or (pdno, qty) pairs"
            + (" (for a dict, pass its .items())" if isinstance(given, Mapping) else "")
        )
    sells: list[Sell] = []
    bad: list[str] = []
    for number, order in enumerate(given, 1):
        if isinstance(order, Sell):
            sells.append(order)
            continue
        if not isinstance(order, tuple | list) or len(order) != 2:
            bad.append(f"#{number} {validate.shown(order)}: not a Sell or a (pdno, qty) pair")
            continue
        try:
            sells.append(Sell(*order))
        except (ValueError, TypeError) as exc:
            bad.append(f"#{number} {validate.shown(tuple(order))}: {exc}")
    if bad:
        listed = "; ".join(bad[:_SHOWN_BAD_ORDERS])
        if len(bad) > _SHOWN_BAD_ORDERS:
            listed += f"; and {len(bad) - _SHOWN_BAD_ORDERS} more"
        raise ArgumentError(f"{len(bad)} bad order(s): {listed}", argument="orders")
    return sells


def judge(sells: Sequence[Sell], answers: Mapping[str, Answered | KISError]) -> list[SellCheck]:
    """Each order's verdict, in the order given, from its ticker's answer or error.

    Every ticker of ``sells`` must be in ``answers`` (a ``KeyError`` otherwise: a verdict is
    never made up for a ticker nobody asked about). Orders for one ticker are judged on a
    running total, in the order given.
    """
    asked: dict[str, int] = {}
    checks: list[SellCheck] = []
    for sell in sells:
        answer = answers[sell.pdno]
        if isinstance(answer, KISError):
            checks.append(SellFailed(sell.pdno, sell.qty, answer))
            continue
        before = asked.get(sell.pdno, 0)
        asked[sell.pdno] = total = before + sell.qty
        q = answer.quantity
        numbers = (q.ord_psbl_qty, q.cblc_qty, q.sll_qty, before, answer.answered_at, q)
        if q.cblc_qty == 0 and q.ord_psbl_qty == 0:
            checks.append(SellNotHeld(sell.pdno, sell.qty, *numbers, shortfall=sell.qty))
        elif total <= q.ord_psbl_qty:
            checks.append(SellFits(sell.pdno, sell.qty, *numbers))
        else:
            shortfall = min(sell.qty, total - q.ord_psbl_qty)
            checks.append(SellShort(sell.pdno, sell.qty, *numbers, shortfall=shortfall))
    return checks


def answered_now(clock: Clock) -> datetime:
    """When an answer came, on ``clock``: the moment a verdict is as of (KST, KIS's zone)."""
    return datetime.fromtimestamp(clock.time(), KST)


def _checked_qty(qty: object) -> int:
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise TypeError(f"qty must be a whole number of shares (int), got {type(qty).__name__}")
    qty = int.__index__(qty)  # the value alone, whatever the subclass says of itself
    if not 1 <= qty <= MAX_QTY:
        raise ArgumentError(
            f"qty must be from 1 to {MAX_QTY} shares, got {qty}"
            if qty > 0
            else f"qty must be at least 1 share, got {qty}",
            argument="qty",
        )
    return qty


def _row(check: _Judged, said: str) -> str:
    """One line a person reads: the order, KIS's numbers, the verdict."""
    return (
        f"{check.pdno:<8} sell {check.qty:>9,}  sellable {check.ord_psbl_qty:>9,}  "
        f"held {check.cblc_qty:>9,}  sold today {check.sll_qty:>7,}  {said}"
    )
