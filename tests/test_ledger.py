"""EGW00215, the account ledger's limit: retried, learned per account, and kept apart.

The simulator's ``ledger_limit`` counts inquire-balance calls per account in a sliding second,
as KIS's users report (about one a second), over loopback; the rules of the ledger's pace are
also checked on a virtual clock.
"""

from __future__ import annotations

import aiohttp

from kis_async import spec
from kis_async.endpoints import BALANCE, SELLABLE
from kis_async.ledger import Ledger
from kis_async.pacing import Call
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Simulator
from kis_async.throttle import Throttle

from .conftest import FAST_RATE, ClientFactory
from .virtual_clock import VirtualClock


async def test_a_throttled_listing_is_retried_and_slows_only_the_ledger(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.ledger_limit = 1
    held = [pdno for pdno, holding in sim.portfolio.items() if holding.quantity]
    async with make_client() as kis:
        listed = await kis.held_tickers()
        batch = await kis.check_sellable(listed)
        stats = kis.stats
    assert listed == held, "every position, none lost to the refusal"
    assert 1 <= sim.stats.ledger_rejected <= 2
    assert sim.stats.ledger_max_window == 1
    assert stats.ledger_tr_ids == (BALANCE.tr_id,)
    assert stats.ledger_pace is not None and stats.ledger_pace <= 1.0
    assert stats.ledger_refusals == sim.stats.ledger_rejected
    assert (stats.pace, stats.refusals) == (FAST_RATE / 1.02, 0), "the appkey's pace untouched"
    assert len(batch) == len(listed) and sim.stats.rejected == 0


async def test_without_a_ledger_refusal_there_is_no_ledger_pace(
    sim: Simulator, make_client: ClientFactory
) -> None:
    async with make_client() as kis:
        await kis.held_tickers()
        assert (kis.stats.ledger_pace, kis.stats.ledger_tr_ids) == (None, ())


def test_the_ledger_paces_only_tr_ids_that_drew_it_and_shares_one_limit_among_them() -> None:
    clock = VirtualClock()
    balance, sellable = Call(BALANCE.tr_id), Call(SELLABLE.tr_id)

    async def main() -> list[float]:
        ledger = Ledger(
            lambda start: Throttle(start.ceiling, start=start, clock=clock),
            ceiling=20,
            margin=0.02,
            now=clock.monotonic,
        )
        assert not ledger.covers(balance.tr_id) and ledger.pacer is None
        await ledger.refused(balance, None)
        assert ledger.covers(balance.tr_id) and not ledger.covers(sellable.tr_id)
        await ledger.refused(sellable, None)  # psbl-sell drew EGW00215 itself: the same limit
        assert ledger.covers(sellable.tr_id)
        departures = []
        for call in [balance, sellable] * 4:
            await ledger.acquire(call)
            departures.append(clock.monotonic())
        return departures

    departures = clock.run(main())
    gaps = [b - a for a, b in zip([0.0, *departures], departures, strict=False)]
    assert all(gap >= 1.0 for gap in gaps), f"one limit across both tr_ids, 1/s: {gaps}"


def test_against_a_ledger_of_one_a_second_the_pace_probes_warily_and_comes_back_down() -> None:
    """Ten minutes of listings against a ledger that takes one call a sliding second: the
    probing costs a refusal now and then, never a run of them, and the pace stays near 1/s."""
    clock = VirtualClock()
    call = Call(BALANCE.tr_id)

    async def main() -> tuple[int, int, float]:
        ledger = Ledger(
            lambda start: Throttle(start.ceiling, start=start, clock=clock),
            ceiling=20,
            margin=0.02,
            now=clock.monotonic,
        )
        await ledger.refused(call, None)
        admitted: list[float] = []
        refused = accepted = 0
        while clock.monotonic() < 600:
            ticket = await ledger.acquire(call)
            now = clock.monotonic()
            if admitted and now - admitted[-1] < 1.0:
                refused += 1
                await ledger.refused(call, ticket)
            else:
                accepted += 1
                admitted.append(now)
        assert ledger.pacer is not None
        return refused, accepted, ledger.pacer.pace.rate

    refused, accepted, rate = clock.run(main())
    assert accepted >= 0.9 * 600, "the ledger's one call a second is used"
    # A wary probe to 2/s every half minute or so, refused and answered at once (about 6 %).
    assert refused <= 0.1 * accepted, "probing past the ledger costs little"
    assert rate <= 2.0


async def test_the_ledger_refusal_is_read_as_kis_sends_it(sim: Simulator) -> None:
    """HTTP 500, rt_cd "1", EGW00215 and KIS's message: a hand-written request, no client."""
    sim.config.ledger_limit = 1
    async with aiohttp.ClientSession() as session:
        grant = {"grant_type": "client_credentials", "appkey": DEMO_APP_KEY}
        async with session.post(
            sim.url + spec.TOKEN_PATH, json=grant | {"appsecret": DEMO_APP_SECRET}
        ) as r:
            token = (await r.json())["access_token"]
        headers = {
            "authorization": f"Bearer {token}",
            "appkey": DEMO_APP_KEY,
            "appsecret": DEMO_APP_SECRET,
            "tr_id": BALANCE.tr_id,
            "custtype": "P",
        }
        cano, product = DEMO_ACCOUNT.split("-")
        query = dict(BALANCE.query) | {"CANO": cano, "ACNT_PRDT_CD": product}
        query |= {"CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
        answers = []
        for _ in range(2):
            async with session.get(sim.url + BALANCE.path, headers=headers, params=query) as r:
                answers.append((r.status, await r.json()))
    (first, _), (status, refused) = answers
    assert first == 200
    assert (status, refused["rt_cd"], refused["msg_cd"]) == (500, "1", spec.LEDGER_LIMITED)
    assert refused["msg1"].strip() == spec.MESSAGES[spec.LEDGER_LIMITED]
