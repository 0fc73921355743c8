"""Before you sell: the verdict on each intended sell order, and that a failed check fails closed.

The verdict rules are tested directly on answers written out by hand in the shape KIS sends
(inquire-psbl-sell's live dialect: ``output``, ``KIOK0420``, a padded ``msg1``); the client's
``check_sells`` against the simulator over loopback, under every fault kind the simulator has.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from kis_async import (
    ArgumentError,
    KISError,
    Sell,
    SellFailed,
    SellFits,
    SellNotHeld,
    SellShort,
    TransportError,
)
from kis_async.models import decode_sellable, pick_sellable
from kis_async.sells import MAX_QTY, Answered, judge, orders
from kis_async.simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    HOSTILE,
    ORDINARY,
    REFUSALS,
    Fault,
    Holding,
    Simulator,
    demo_accounts,
)
from kis_async.spec import KST

from .conftest import ClientFactory, retries

# -- the verdict, on KIS's own answers ---------------------------------------------------------

LIVE_ANSWER = """{
  "rt_cd": "0", "msg_cd": "KIOK0420",
  "msg1": "정상적으로 조회되었습니다                                                        ",
  "output": {
    "pdno": "%(pdno)s", "prdt_name": "%(name)s", "buy_qty": "0", "sll_qty": "%(sold)s",
    "cblc_qty": "%(held)s", "nsvg_qty": "0", "ord_psbl_qty": "%(sellable)s",
    "pchs_avg_pric": "71500.0000", "pchs_amt": "7150000", "now_pric": "72300",
    "evlu_amt": "7230000", "evlu_pfls_amt": "80000", "evlu_pfls_rt": "1.11"
  }
}"""
"""inquire-psbl-sell as the live service answers it: every number a string."""
NOT_HELD_ANSWER = """{"rt_cd":"0","msg_cd":"KIOK0420","msg1":"정상적으로 조회되었습니다      ",
"output":{"pdno":"%(pdno)s","prdt_name":"","buy_qty":"","sll_qty":"","cblc_qty":"",
"nsvg_qty":"","ord_psbl_qty":"","pchs_avg_pric":"","pchs_amt":"","now_pric":"",
"evlu_amt":"","evlu_pfls_amt":"","evlu_pfls_rt":""}}"""
"""What KIS answers for a valid ticker the account does not hold: blanks."""
AT = datetime(2026, 12, 1, 9, 30, tzinfo=KST)


def answered(pdno: str, *, held: int, sellable: int, sold: int = 0) -> Answered:
    body = LIVE_ANSWER % {
        "pdno": pdno,
        "name": "삼성전자",
        "held": held,
        "sellable": sellable,
        "sold": sold,
    }
    quantity = pick_sellable(decode_sellable(body.encode(), pdno), pdno)
    return Answered(quantity, AT)


def not_held(pdno: str) -> Answered:
    body = NOT_HELD_ANSWER % {"pdno": pdno}
    return Answered(pick_sellable(decode_sellable(body.encode(), pdno), pdno), AT)


FAILED = TransportError("no usable answer after 3 tries (HTTP 502)", status=502, pdno="000660")

VERDICTS: list[tuple[str, list[tuple[str, int]], dict[str, Answered | KISError], list[Any]]] = [
    ("fits", [("005930", 80)], {"005930": answered("005930", held=100, sellable=80)}, [("ok", 0)]),
    (
        "short by what it asks beyond what is sellable",
        [("005930", 90)],
        {"005930": answered("005930", held=100, sellable=80)},
        [("short", 10)],
    ),
    (
        "held but nothing sellable (pending sells): short, not 'not held'",
        [("005930", 5)],
        {"005930": answered("005930", held=100, sellable=0)},
        [("short", 5)],
    ),
    (
        "KIS says none held: not_held, short by the whole order",
        [("005380", 3)],
        {"005380": not_held("005380")},
        [("not_held", 3)],
    ),
    (
        "the check failed: error, no numbers",
        [("000660", 1)],
        {"000660": FAILED},
        [("error", None)],
    ),
    (
        "repeated ticker: running total, input order, each short by what it adds beyond",
        [("005930", 50), ("005930", 20), ("005930", 30), ("005930", 5)],
        {"005930": answered("005930", held=100, sellable=80)},
        [("ok", 0), ("ok", 0), ("short", 20), ("short", 5)],
    ),
    (
        "a small order after an overage is still short: the total only grows",
        [("005930", 79), ("005930", 2), ("005930", 1)],
        {"005930": answered("005930", held=100, sellable=80)},
        [("ok", 0), ("short", 1), ("short", 1)],
    ),
    (
        "exactly all of it fits",
        [("005930", 40), ("005930", 40)],
        {"005930": answered("005930", held=80, sellable=80)},
        [("ok", 0), ("ok", 0)],
    ),
    (
        "an error for one ticker leaves the others' verdicts alone",
        [("000660", 5), ("005930", 10), ("000660", 1)],
        {"000660": FAILED, "005930": answered("005930", held=10, sellable=10)},
        [("error", None), ("ok", 0), ("error", None)],
    ),
    (
        "every order of a ticker not held is not_held",
        [("005380", 1), ("005380", 2)],
        {"005380": not_held("005380")},
        [("not_held", 1), ("not_held", 2)],
    ),
]


@pytest.mark.parametrize(
    ("case", "given", "answers", "expected"), VERDICTS, ids=[v[0] for v in VERDICTS]
)
def test_the_verdict_table(
    case: str,
    given: list[tuple[str, int]],
    answers: dict[str, Answered | KISError],
    expected: list[tuple[str, int | None]],
) -> None:
    checks = judge(orders(given), answers)
    assert [(c.verdict, c.shortfall) for c in checks] == expected
    assert [(c.pdno, c.qty) for c in checks] == given
    for check in checks:
        assert check.ok is (check.verdict == "ok")
        if check.verdict == "error":
            assert (check.ord_psbl_qty, check.cblc_qty, check.answered_at) == (None, None, None)
            assert check.error is answers[check.pdno]
        else:
            answer = answers[check.pdno]
            assert isinstance(answer, Answered)
            assert check.ord_psbl_qty == answer.quantity.ord_psbl_qty
            assert check.cblc_qty == answer.quantity.cblc_qty
            assert check.answered_at == AT
            assert check.error is None


def test_asked_before_counts_every_earlier_order_of_the_ticker_only() -> None:
    checks = judge(
        orders([("005930", 5), ("000660", 7), ("005930", 6), ("005930", 1)]),
        {
            "005930": answered("005930", held=100, sellable=100),
            "000660": answered("000660", held=100, sellable=100),
        },
    )
    assert [c.asked_before for c in checks] == [0, 0, 5, 11]


def test_a_ticker_without_an_answer_is_never_given_a_verdict() -> None:
    with pytest.raises(KeyError):
        judge(orders([("005930", 1)]), {})


def test_each_verdict_prints_as_one_readable_row() -> None:
    checks = judge(
        orders([("005930", 90), ("005930", 1), ("005380", 3), ("000660", 1)]),
        {
            "005930": answered("005930", held=100, sellable=80, sold=20),
            "005380": not_held("005380"),
            "000660": FAILED,
        },
    )
    rows = [str(c) for c in checks]
    assert rows[0] == (
        "005930   sell        90  sellable        80  held       100  sold today      20  "
        "short by 10"
    )
    assert rows[1].endswith("short by 1")
    assert rows[2].endswith("not held")
    assert rows[3] == (
        "000660   sell         1  not checked: TransportError: no usable answer after 3 tries "
        "(HTTP 502)"
    )
    assert all("\n" not in row for row in rows)


# -- what an order is ----------------------------------------------------------------------------


def test_a_sell_normalizes_its_ticker_and_pairs_become_sells() -> None:
    assert Sell(" 005930 ", 10) == Sell("005930", 10)
    assert orders([("0080g0", 1), Sell("005930", 2), ["000660", 3]]) == [
        Sell("0080G0", 1),
        Sell("005930", 2),
        Sell("000660", 3),
    ]
    assert orders([]) == []


BAD_SELLS: list[tuple[Any, Any, type[Exception], str]] = [
    ("005930", 0, ArgumentError, "at least 1"),
    ("005930", -5, ArgumentError, "at least 1"),
    ("005930", MAX_QTY + 1, ArgumentError, "from 1 to"),
    ("005930", 1.5, TypeError, "float"),
    ("005930", 10.0, TypeError, "float"),
    ("005930", True, TypeError, "bool"),
    ("005930", "10", TypeError, "str"),
    ("005930", None, TypeError, "NoneType"),
    ("5930", 1, ArgumentError, "ticker"),
    ("삼성전자", 1, ArgumentError, "ticker"),
    ("", 1, ArgumentError, "ticker"),
]


@pytest.mark.parametrize(("pdno", "qty", "kind", "said"), BAD_SELLS)
def test_a_bad_sell_is_refused_at_construction(
    pdno: Any, qty: Any, kind: type[Exception], said: str
) -> None:
    with pytest.raises(kind, match=said):
        Sell(pdno, qty)


def test_every_bad_order_is_named_at_once() -> None:
    with pytest.raises(ArgumentError) as refused:
        orders(
            [
                ("005930", 10),
                ("005930", 0),
                ("abc!", 5),
                "005930",
                ("000660", 1, "extra"),
                ("000660", 2.5),
            ]
        )
    message = str(refused.value)
    assert refused.value.argument == "orders"
    assert message.startswith("5 bad order(s): ")
    for part in ("#2 ('005930', 0)", "#3 ('abc!', 5)", "#4 '005930'", "#5 (", "#6 ('000660', 2.5)"):
        assert part in message
    assert "#1" not in message


class _Lenient(int):
    """An ``int`` whose own arithmetic and comparisons say every order fits."""

    def __add__(self, other: object) -> _Lenient:
        return _Lenient(int(self) + int(other))  # type: ignore[call-overload]

    __radd__ = __add__

    def __le__(self, other: object) -> bool:
        return True


def test_a_sells_qty_is_a_plain_int_so_its_verdict_is_the_numbers() -> None:
    """An ``int`` subclass (an ``IntEnum``, a unit type) is taken as its value: no class of the
    caller's takes part in the running total or the comparison with what is sellable."""
    sell = Sell("005930", _Lenient(1_000_000))
    assert type(sell.qty) is int
    (check,) = judge([sell], {"005930": answered("005930", held=126, sellable=126)})
    assert check.verdict == "short"
    assert check.shortfall == 1_000_000 - 126


@pytest.mark.parametrize("given", ["005930", b"005930", {"005930": 10}])
def test_orders_that_are_not_a_list_of_orders_are_refused(given: Any) -> None:
    with pytest.raises(TypeError, match="list of Sell"):
        orders(given)


# -- check_sells against the simulator ---------------------------------------------------------

PORTFOLIO = {
    "005930": Holding("삼성전자", 100, Decimal("71500"), Decimal("72300"), pending_sell=20),
    "000660": Holding("SK하이닉스", 10, Decimal("180000"), Decimal("190000"), pending_sell=10),
    "035420": Holding("NAVER", 50, Decimal("200000"), Decimal("210000"), sold_today=5),
}
"""Sellable: 005930 80 of 100; 000660 0 of 10 (all in pending sells); 035420 50."""


@pytest.fixture
async def held_sim(config: Any) -> Any:
    async with Simulator(config, PORTFOLIO) as simulator:
        yield simulator


async def test_check_sells_judges_every_order_and_asks_each_ticker_once(
    held_sim: Simulator, make_client: ClientFactory
) -> None:
    given = [
        ("005930", 50),
        ("000660", 1),
        ("005930", 20),
        ("035420", 50),
        ("005930", 30),
        ("005380", 3),
        ("999999", 1),
        ("035420", 1),
    ]
    before = datetime.now(KST)
    async with make_client(base_url=held_sim.url, retry=retries(1)) as kis:
        checks = await kis.check_sells([*given[:3], Sell(*given[3]), *given[4:]])
    after = datetime.now(KST)
    assert [(c.pdno, c.qty) for c in checks] == given
    assert [(c.verdict, c.shortfall) for c in checks] == [
        ("ok", 0),
        ("short", 1),
        ("ok", 0),
        ("ok", 0),
        ("short", 20),
        ("not_held", 3),
        ("error", None),
        ("short", 1),
    ]
    assert isinstance(checks[0], SellFits)
    assert (checks[0].ord_psbl_qty, checks[0].cblc_qty, checks[0].sll_qty) == (80, 100, 0)
    assert isinstance(checks[1], SellShort)
    assert (checks[1].ord_psbl_qty, checks[1].cblc_qty) == (0, 10)
    assert isinstance(checks[5], SellNotHeld)
    assert isinstance(checks[6], SellFailed)
    assert checks[6].error.pdno == "999999"
    assert checks[3].sll_qty == 5
    for check in checks:
        if check.answered_at is not None:
            assert before - timedelta(seconds=1) <= check.answered_at <= after
    asked = {p: n for p, n in held_sim.stats.per_pdno.items() if n}
    assert asked == dict.fromkeys(["005930", "000660", "035420", "005380", "999999"], 1)


async def test_bad_orders_cost_no_request(held_sim: Simulator, make_client: ClientFactory) -> None:
    async with make_client(base_url=held_sim.url) as kis:
        with pytest.raises(ArgumentError, match="2 bad order"):
            await kis.check_sells([("005930", 1), ("005930", 0), ("00593!", 1)])
        assert await kis.check_sells([]) == []
    assert held_sim.stats.calls == 0
    assert held_sim.stats.token_requests == 0


TRUE_VERDICTS = {("005930", 80): ("ok", 80, 100), ("005930", 1): ("short", 80, 100)}
"""The right verdicts for the fault test's two orders: 80 of 005930's 80 fit, one more is short."""
EVERY_FAULT = [*ORDINARY, *sorted(HOSTILE), *sorted(REFUSALS)]


@pytest.mark.parametrize("fault", EVERY_FAULT, ids=[f.value for f in EVERY_FAULT])
async def test_a_fault_never_reads_as_a_verdict_it_is_not(
    held_sim: Simulator, make_client: ClientFactory, fault: Fault
) -> None:
    """Whatever the fault, each order is either ``error`` or exactly its true verdict, with the
    true numbers: a fault never makes an order fit, and never reads as zero sellable."""
    held_sim.config.hang_for = 0.5
    held_sim.config.retry_after = 0.01
    held_sim.inject(fault, pdno="005930", times=20)
    async with make_client(base_url=held_sim.url, retry=retries(2), timeout=0.3) as kis:
        checks = await kis.check_sells([("005930", 80), ("005930", 1)])
    assert [(c.pdno, c.qty) for c in checks] == list(TRUE_VERDICTS)
    for check in checks:
        if check.verdict == "error":
            assert check.error is not None and check.ord_psbl_qty is None
            assert not check.ok
        else:
            truth = TRUE_VERDICTS[(check.pdno, check.qty)]
            assert (check.verdict, check.ord_psbl_qty, check.cblc_qty) == truth
    assert held_sim.stats.faults[fault.value] >= 1


async def test_random_faults_of_every_kind_never_make_a_wrong_verdict(
    held_sim: Simulator, make_client: ClientFactory
) -> None:
    config = held_sim.config
    config.fault_rate, config.fault_kinds = 0.4, (*ORDINARY, *HOSTILE)
    config.hang_for, config.retry_after = 0.5, 0.01
    tickers = [f"{100000 + i:06d}" for i in range(40)]
    given = [(p, 1) for p in tickers] + [("005930", 80), ("005930", 1), ("035420", 51)]
    async with make_client(base_url=held_sim.url, retry=retries(1), timeout=0.3) as kis:
        checks = await kis.check_sells(given)
    assert len(checks) == len(given)
    truth = {("005930", 80): "ok", ("005930", 1): "short", ("035420", 51): "short"}
    for check in checks:
        expected = truth.get((check.pdno, check.qty), "not_held")
        assert check.verdict in ("error", expected), check
        if check.verdict == "ok":
            assert check.ord_psbl_qty == 80
    assert sum(c.verdict == "error" for c in checks) >= 1, "the faults happened"
    assert sum(held_sim.stats.faults.values()) > 5


async def test_an_advisory_check_states_when_it_was_answered_on_the_clients_clock(
    held_sim: Simulator, make_client: ClientFactory
) -> None:
    class Clock:
        def monotonic(self) -> float:
            return time.monotonic()

        def time(self) -> float:
            return 1_800_000_000.0

        async def sleep(self, seconds: float) -> None:
            await asyncio.sleep(seconds)

    async with make_client(base_url=held_sim.url, clock=Clock()) as kis:
        (check,) = await kis.check_sells([("035420", 1)])
    assert check.answered_at == datetime.fromtimestamp(1_800_000_000.0, KST)
    assert check.answered_at is not None and check.answered_at.tzinfo is KST


# -- many accounts in one event loop -----------------------------------------------------------


async def test_three_accounts_in_one_loop_each_on_its_own_appkey_at_once(
    config: Any, make_client: ClientFactory
) -> None:
    """The README's pattern: one client per account (KIS binds an appkey to one), all open in
    one event loop, their checks gathered. Each appkey paces alone, so the three overlap."""
    config.accounts = demo_accounts(2)
    config.rate_limit = 20
    async with Simulator(config, PORTFOLIO) as sim:
        credentials = [(DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT)] + [
            (a.app_key, a.app_secret, a.account) for a in config.accounts
        ]
        clients = [
            make_client(base_url=sim.url, app_key=k, app_secret=s, account=a, rate_limit=20)
            for k, s, a in credentials
        ]
        orders_by_account = {
            str(kis.account): [(f"{100000 + i:06d}", 1) for i in range(n, n + 8)] + [("005930", 81)]
            for n, kis in zip((0, 10, 20), clients, strict=True)
        }
        async with contextlib.AsyncExitStack() as stack:
            for kis in clients:
                await stack.enter_async_context(kis)
            results = await asyncio.gather(
                *(kis.check_sells(orders_by_account[str(kis.account)]) for kis in clients)
            )
    for checks in results:
        assert [c.verdict for c in checks] == ["not_held"] * 8 + ["short"]
    arrivals = sim.stats.arrivals_by_app_key
    keys = [k for k, _, _ in credentials]
    assert sorted(arrivals) == sorted(keys) and all(len(arrivals[k]) == 9 for k in keys)
    assert max(min(arrivals[k]) for k in keys) < min(max(arrivals[k]) for k in keys)
    assert sim.stats.max_window <= 20 and sim.stats.rejected == 0
    assert sim.stats.token_issuances == 3
