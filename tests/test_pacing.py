"""Never above the limit, in any one-second window at the server; and still near the limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import aiohttp
import pytest
from aiolimiter import AsyncLimiter

from kis_async import endpoints, spec
from kis_async.endpoints import BALANCE, PRICE, SELLABLE
from kis_async.pacing import Call, Priority
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Fault, Simulator
from kis_async.throttle import Throttle, Ticket

from .conftest import ClientFactory, codes


async def test_no_window_above_the_limit_with_latency_jitter(
    sim: Simulator, make_client: ClientFactory
) -> None:
    rate = 100
    sim.config.rate_limit = rate
    sim.config.latency, sim.config.jitter = 0.02, 0.015
    async with make_client(rate_limit=rate) as kis:
        batch = await kis.check_sellable(codes(260))
    assert batch.ok, batch.errors
    assert sim.stats.rejected == 0
    assert sim.stats.max_window <= rate
    # Near the limit, loosely: on a loaded machine this process's loop falls behind 100 calls a
    # second. How full the pacer keeps the window is tests/test_throttle.py's (virtual time)
    # and benchmarks/network.py's to measure; this catches a pacer that has slowed right down.
    assert sim.stats.max_window >= rate * 0.6, "the pacer keeps the window well filled"


async def test_first_second_of_a_batch_is_not_a_burst(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.rate_limit = 50
    async with make_client(rate_limit=50) as kis:
        await kis.check_sellable(codes(60))
    assert sim.stats.rejected == 0
    assert sim.stats.max_window <= 50


async def test_a_plain_async_limiter_bursts_over_the_limit_and_the_simulator_sees_it(
    sim: Simulator,
) -> None:
    """The control for the tests above: the window check does catch a bursting client."""
    rate = 50
    sim.config.rate_limit = rate
    limiter = AsyncLimiter(rate, 1)
    credentials = {"appkey": DEMO_APP_KEY, "appsecret": DEMO_APP_SECRET}
    async with aiohttp.ClientSession(sim.url) as http:
        grant = {"grant_type": "client_credentials", **credentials}
        async with http.post(spec.TOKEN_PATH, json=grant) as resp:
            token = (await resp.json())["access_token"]
        headers = {
            **credentials,
            "authorization": f"Bearer {token}",
            "tr_id": endpoints.SELLABLE.tr_id,
            "custtype": "P",
        }
        cano, _, product = DEMO_ACCOUNT.partition("-")

        async def one(pdno: str) -> None:
            async with limiter:
                query = {"CANO": cano, "ACNT_PRDT_CD": product, "PDNO": pdno}
                async with http.get(endpoints.SELLABLE.path, params=query, headers=headers) as resp:
                    await resp.read()

        await asyncio.gather(*(one(p) for p in codes(2 * rate)))
    assert sim.stats.max_window > rate
    assert sim.stats.rejected > 0


async def test_retries_are_paced_too(sim: Simulator, make_client: ClientFactory) -> None:
    sim.config.rate_limit = 40
    sim.inject(Fault.RATE_LIMIT, times=30)
    async with make_client(rate_limit=40) as kis:
        batch = await kis.check_sellable(codes(40))
    assert batch.ok, batch.errors
    assert sim.stats.max_window <= 40


async def test_the_pacer_is_told_each_calls_tr_id_and_whether_it_is_bulk_work(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single calls are interactive and batches bulk, as is every page of a listing; each
    method that takes ``priority=`` says otherwise when told."""
    told: list[Call] = []
    try_acquire = Throttle.try_acquire

    def spy(self: Throttle, call: Call) -> Ticket | None:
        told.append(call)
        return try_acquire(self, call)

    monkeypatch.setattr(Throttle, "try_acquire", spy)
    price = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    query = {"CANO": DEMO_ACCOUNT[:8], "ACNT_PRDT_CD": DEMO_ACCOUNT[-2:], **BALANCE.query}
    query |= {"CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    sellable, balance, quote = SELLABLE.tr_id, BALANCE.tr_id, PRICE.tr_id
    interactive, bulk = Priority.INTERACTIVE, Priority.BULK

    async def told_for(call: Awaitable[object]) -> set[Call]:
        told.clear()
        await call
        return set(told)

    async def listed(pages: AsyncIterator[object]) -> None:
        async for _ in pages:
            pass

    async with make_client() as kis:
        seen = [
            await told_for(kis.sellable_quantity("005930")),
            await told_for(kis.sellable_quantity("005930", priority=bulk)),
            await told_for(kis.check_sellable(["000660", "035420"])),
            await told_for(listed(kis.iter_sellable(["000660", "035420"]))),
            await told_for(kis.check_sells([("005930", 1)])),
            await told_for(kis.holdings()),
            await told_for(kis.check_holdings()),
            await told_for(kis.get(PRICE.path, tr_id=quote, params=price)),
            await told_for(kis.get(PRICE.path, tr_id=quote, params=price, priority=bulk)),
            await told_for(listed(kis.pages(BALANCE.path, tr_id=balance, params=query))),
            await told_for(
                listed(kis.pages(BALANCE.path, tr_id=balance, params=query, priority=interactive))
            ),
        ]
    assert seen == [
        {Call(sellable, interactive)},
        {Call(sellable, bulk)},
        {Call(sellable, bulk)},
        {Call(sellable, bulk)},
        {Call(sellable, bulk)},
        {Call(balance, bulk)},
        {Call(balance, bulk), Call(sellable, bulk)},
        {Call(quote, interactive)},
        {Call(quote, bulk)},
        {Call(balance, bulk)},
        {Call(balance, interactive)},
    ]
