"""Each KIS inquiry the client knows, declared once: where it is, its tr_id, its fixed query,
and the shape of its answer, whose number fields carry their kind and KIS Length.

A declaration is all a new typed GET endpoint needs: :mod:`kis_async.models` derives its
decoders (the fast path's text twin and number tuple, the slow path's rules) from the row type's
field metadata (:mod:`kis_async.numbers`), and the client sends its path, tr_id and query. The
simulator reads paths and tr_ids from here too; the tests keep answers written out by hand in the
shape KIS sends, so a wrong declaration cannot pass by agreeing with itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Generic, TypeVar

import msgspec

from .numbers import amount, quantity, signed

R = TypeVar("R", bound=msgspec.Struct)
A = TypeVar("A")


class Envelope(msgspec.Struct):
    """The three fields every KIS body carries."""

    rt_cd: str
    msg_cd: str = ""
    msg1: str = ""


class OneRow(Envelope, Generic[R]):
    """An answer about one thing: a row under ``output`` (the live service) or ``output1`` (the
    reference page), as an object or, in places, a list."""

    output1: R | list[R] | None = None
    output: R | list[R] | None = None


class RowPage(Envelope, Generic[R]):
    """One page of a paged listing: rows under ``output1``; the ``ctx_area_*`` keys ask for
    the next page."""

    output1: list[R] = msgspec.field(default_factory=list)
    ctx_area_fk100: str = ""
    ctx_area_nk100: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[A]):
    """One KIS GET inquiry: its path, its tr_id, the query it always sends, and its answer's
    type (:class:`OneRow` or :class:`RowPage` of a row Struct; ``dict`` when untyped)."""

    path: str
    tr_id: str
    answer: type[A]
    query: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


class SellableQuantity(msgspec.Struct, frozen=True):
    """One ticker's answer from 매도가능수량조회 (inquire-psbl-sell), under the KIS field names.

    ``ord_psbl_qty`` is what can be sold right now. Quantities are non-negative ``int`` of at most
    their documented digits; prices, amounts and the rate are exact, finite ``Decimal``, negative
    only for the profit or loss. Fields KIS adds later are ignored. The Lengths are the reference
    page's; it prints those of ``pchs_avg_pric`` and ``evlu_pfls_rt`` as "184" and "72", read
    here as 18.4 and 7.2 (integer and fraction digits; 18 + 4 and 7 + 2 are the lengths
    inquire-balance gives the same two fields).
    """

    pdno: str
    prdt_name: str
    buy_qty: Annotated[int, quantity(10)]
    """Bought today."""
    sll_qty: Annotated[int, quantity(10)]
    """Sold today."""
    cblc_qty: Annotated[int, quantity(19)]
    """Held (잔고수량)."""
    nsvg_qty: Annotated[int, quantity(19)]
    """Non-savings quantity (비저축수량)."""
    ord_psbl_qty: Annotated[int, quantity(10)]
    """Sellable now (주문가능수량)."""
    pchs_avg_pric: Annotated[Decimal, amount(18)]
    pchs_amt: Annotated[Decimal, amount(19)]
    now_pric: Annotated[Decimal, amount(8)]
    evlu_amt: Annotated[Decimal, amount(19)]
    evlu_pfls_amt: Annotated[Decimal, signed(19)]
    """Valuation profit or loss; negative for a loss."""
    evlu_pfls_rt: Annotated[Decimal, signed(7)]
    """Valuation profit or loss in percent."""


class Position(msgspec.Struct, frozen=True):
    """One holding from 주식잔고조회 (inquire-balance ``output1``), under the KIS field names.

    ``hldg_qty`` is held, ``ord_psbl_qty`` sellable as the balance sees it; ``prpr`` is the
    current price. A position sold out today can still be listed with ``hldg_qty`` 0. Numbers
    follow the same rules as :class:`SellableQuantity`'s. That page is not in the reference set:
    quantities get 19 digits (the widest quantity on the reference page), the average price 18
    as on inquire-psbl-sell, the current price 19 as KIS's amounts.
    """

    pdno: str
    prdt_name: str
    hldg_qty: Annotated[int, quantity(19)]
    ord_psbl_qty: Annotated[int, quantity(19)]
    pchs_avg_pric: Annotated[Decimal, amount(18)]
    prpr: Annotated[Decimal, amount(19)]
    """``"0"`` in places (KIS's own example)."""
    trad_dvsn_name: str = ""
    """현금 (cash), or the loan the shares were bought on (자기융자...): with ``INQR_DVSN=01``
    a ticker held partly on a loan is listed once per loan."""
    loan_dt: str = ""
    """The loan's date, ``YYYYMMDD``; blank for cash."""


SellableEnvelope = OneRow[SellableQuantity]
BalancePage = RowPage[Position]

SELLABLE: Endpoint[SellableEnvelope] = Endpoint(
    "/uapi/domestic-stock/v1/trading/inquire-psbl-sell", "TTTC8408R", SellableEnvelope
)
"""매도가능수량조회; the query is the account and ``PDNO``."""
BALANCE: Endpoint[BalancePage] = Endpoint(
    "/uapi/domestic-stock/v1/trading/inquire-balance",
    "TTTC8434R",
    BalancePage,
    MappingProxyType(
        {
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "01",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
        }
    ),
)
"""주식잔고조회; the fixed query asks for regular hours, no fund settlement, no auto-repay.

``INQR_DVSN`` is ``01`` (by loan date), not the ``02`` (by ticker) of older references: KIS
announced on 2026-02-10 that ``02`` is refused ("ERROR : INPUT INVALID_CHECK_INQR_DVSN",
OPSQ2001), as users of other KIS libraries reported. With ``01`` a ticker held partly on margin
can be listed once per loan date; :meth:`~kis_async.KISClient.held_tickers` asks about it once.
"""
PRICE: Endpoint[dict[str, Any]] = Endpoint(
    "/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", dict
)
"""주식현재가 시세: not used by the library itself; the simulator serves it, so a bot's other
calls through :meth:`~kis_async.KISClient.get` can be shown and tested."""
