"""The simulator is never kinder than KIS: the network bunches calls before the gateway counts them,
the gateway may enforce less than the client was told, and another program shares the appkey.

The sender here is plain aiohttp on a perfect schedule, so what is rejected is the simulator's
doing, not a client's. It sends a tenth under the limit: on this schedule the gateway could only
see more than the limit in one second if something moved a call by 100 ms relative to another.
"""

from __future__ import annotations

import asyncio
import itertools
import math

import aiohttp
import pytest

from kis_async import endpoints, spec
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Simulator

from .conftest import codes

LIMIT = 50
UNDER = LIMIT / 1.1
"""Calls per second the sender makes: any LIMIT + 1 of them leave 1.1 s apart."""
CALLS = 100
BACKGROUND_TASK = "kis-simulator-background"

Arrivals = list[tuple[float, bool]]


async def send_evenly(sim: Simulator, rate: float = UNDER, count: int = CALLS) -> None:
    """``count`` inquire-psbl-sell calls, the n-th sent at ``n / rate`` s whatever became of the
    calls before it (each on its own connection if need be), as a perfect pacer would."""
    credentials = {"appkey": DEMO_APP_KEY, "appsecret": DEMO_APP_SECRET}
    async with aiohttp.ClientSession(sim.url) as http:
        grant = {"grant_type": "client_credentials", **credentials}
        async with http.post(spec.TOKEN_PATH, json=grant) as resp:
            token = (await resp.json())["access_token"]
        headers = credentials | {
            "authorization": f"Bearer {token}",
            "tr_id": endpoints.SELLABLE.tr_id,
            "custtype": "P",
        }
        cano, _, product = DEMO_ACCOUNT.partition("-")

        async def one(pdno: str) -> None:
            query = {"CANO": cano, "ACNT_PRDT_CD": product, "PDNO": pdno}
            async with http.get(endpoints.SELLABLE.path, params=query, headers=headers) as resp:
                await resp.read()

        loop = asyncio.get_running_loop()
        start = loop.time()
        calls = []
        for n, pdno in enumerate(codes(count)):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            calls.append(asyncio.create_task(one(pdno)))
        await asyncio.gather(*calls)


async def background_calls(sim: Simulator, calls: int) -> None:
    """Wait until the background program has made ``calls`` calls (counted from the start)."""
    made = asyncio.Event()
    sim.after_background_calls(calls, made.set)
    await asyncio.wait_for(made.wait(), 20)


async def stopped(tasks: list[asyncio.Task[object]]) -> None:
    if tasks:
        await asyncio.wait_for(asyncio.wait(tasks), 5)


def busiest_admitted(arrivals: Arrivals, since: float = -math.inf) -> int:
    """Most admitted arrivals in any window ``(t - 1, t]`` ending at an admitted arrival at or
    after ``since``: what the gateway let through, by its own record."""
    admitted = sorted(t for t, ok in arrivals if ok)
    return max(
        (sum(1 for u in admitted if t - 1 < u <= t) for t in admitted if t >= since), default=0
    )


def per_bucket(arrivals: Arrivals, origin: float) -> dict[int, int]:
    """Admitted arrivals per fixed one-second bucket whose boundaries fall at ``origin + k``."""
    buckets: dict[int, int] = {}
    for t, ok in arrivals:
        if ok:
            bucket = math.floor(t - origin)
            buckets[bucket] = buckets.get(bucket, 0) + 1
    return buckets


def background_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == BACKGROUND_TASK and not t.done()]


async def test_arrivals_are_recorded_and_served(sim: Simulator) -> None:
    await send_evenly(sim, count=3)
    async with (
        aiohttp.ClientSession(sim.url) as http,
        http.get("/_simulator/arrivals") as arrivals_resp,
        http.get("/_simulator/stats") as stats_resp,
    ):
        served = await arrivals_resp.json()
        stats = await stats_resp.json()
    times = [t for t, _ in sim.stats.arrivals]
    assert len(times) == 3 and times == sorted(times) and times[0] > 0
    assert served == {"client": [[t, True] for t in times], "background": []}
    assert (stats["calls"], stats["background_calls"], stats["max_window_total"]) == (3, 0, 3)


@pytest.mark.parametrize(("jitter", "bunched"), [(0.0, False), (0.2, True)])
async def test_request_jitter_bunches_evenly_sent_calls_before_the_gateway_counts_them(
    sim: Simulator, jitter: float, bunched: bool
) -> None:
    """4 s at 1/20 under a limit of 20/s (any 21 calls leave 1.05 s apart). Simulated with the
    simulator's window, ±200 ms leaves such a run without a rejection less than once in 10,000
    tries; without jitter, only a 50 ms hiccup of this machine could cause one."""
    limit, count = 20, 76
    sim.config.rate_limit = limit
    sim.config.request_latency, sim.config.request_jitter = 0.2, jitter
    await send_evenly(sim, rate=limit / 1.05, count=count)
    assert sim.stats.calls == count
    if bunched:
        assert sim.stats.rejected > 0, "the gateway saw calls bunched by the network"
        assert sim.stats.max_window > limit
    else:
        # A steady one-way delay bunches nothing; only this machine can: a stall of the one loop
        # that sends and serves fires the delayed arrivals together. On a busy machine (CI's
        # four workers on two cores) that is a few calls, and it never reorders them: the
        # reordering below is what tells jitter apart.
        assert sim.stats.rejected <= 5, "a steady one-way delay bunches nothing"
        assert sim.stats.max_window <= limit + 5
    assert sum(not ok for _, ok in sim.stats.arrivals) == sim.stats.rejected
    admitted_in_order = list(sim.stats.per_pdno)  # a Counter keeps first-seen order
    assert (admitted_in_order != sorted(admitted_in_order)) is bunched, "reordered, or not"


@pytest.mark.parametrize("poisson", [False, True])
async def test_another_program_on_the_appkey_takes_its_share_of_the_budget(
    sim: Simulator, poisson: bool
) -> None:
    sim.config.rate_limit = LIMIT
    sim.config.background_rate, sim.config.background_poisson = LIMIT / 2, poisson
    await send_evenly(sim)
    stats = sim.stats
    # Sent evenly, the client's calls alone stay under the limit; a stall of the one loop that
    # sends and serves can fire a call or two together on a busy machine (as above).
    assert stats.max_window <= LIMIT + 5, "the client alone stays under the limit"
    assert stats.rejected > 0, "but not with the other program's calls on top"
    assert stats.background_calls >= LIMIT / 2, "it ran throughout the batch"
    assert stats.max_window_total > LIMIT
    assert len(stats.background_arrivals) == stats.background_calls
    assert sum(not ok for _, ok in stats.background_arrivals) == stats.background_rejected
    everything = stats.arrivals + stats.background_arrivals
    assert busiest_admitted(everything) <= LIMIT, "the gateway admits both within one limit"


@pytest.mark.parametrize(("poisson", "regular"), [(False, True), (True, False)])
async def test_background_calls_are_evenly_spaced_or_poisson(
    sim: Simulator, poisson: bool, regular: bool
) -> None:
    rate, gaps = 50.0, 100
    sim.config.background_rate, sim.config.background_poisson = rate, poisson
    await send_evenly(sim, count=1)
    await background_calls(sim, gaps + 1)
    times = [t for t, _ in sim.stats.background_arrivals[: gaps + 1]]
    on_beat = sum(0.6 / rate <= b - a <= 1.4 / rate for a, b in itertools.pairwise(times))
    if regular:
        assert on_beat > 0.6 * gaps, "even: most gaps on the beat (a busy machine delays a few)"
    else:
        assert on_beat < 0.5 * gaps, "exponential gaps: about 30 % fall within ±40 % of the mean"


async def test_background_program_starts_when_asked_and_stops_with_the_simulator(
    sim: Simulator,
) -> None:
    assert background_tasks() == []
    sim.config.background_rate = 100.0
    await send_evenly(sim, count=1)
    await background_calls(sim, 10)
    assert len(background_tasks()) == 1
    sim.config.background_rate = 0.0
    await stopped(background_tasks())
    assert background_tasks() == []
    stopped_at = sim.stats.background_calls
    sim.config.background_rate = 100.0
    await send_evenly(sim, count=1)
    await background_calls(sim, stopped_at + 10)
    await sim.close()
    assert background_tasks() == []


@pytest.mark.parametrize("fixed_window_offset", [None, 0.37])
async def test_limit_schedule_lowers_the_limit_mid_batch(
    sim: Simulator, fixed_window_offset: float | None
) -> None:
    lower, switch = 20, 0.8
    sim.config.rate_limit = LIMIT
    sim.config.limit_schedule = ((switch, lower),)
    sim.config.fixed_window_offset = fixed_window_offset
    await send_evenly(sim)
    arrivals = sim.stats.arrivals
    first = arrivals[0][0]
    assert all(ok for t, ok in arrivals if t < first + switch - 0.1), "the old limit at first"
    assert sim.stats.rejected > CALLS / 3
    if fixed_window_offset is None:
        assert busiest_admitted(arrivals, since=first + switch + 0.05) <= lower
    else:
        buckets = per_bucket(arrivals, first + fixed_window_offset)
        after = [count for bucket, count in buckets.items() if bucket >= 1]
        assert after and max(after) <= lower, buckets


async def test_fixed_window_with_jitter_and_another_program(sim: Simulator) -> None:
    limit, offset = 20, 0.37
    config = sim.config
    config.rate_limit, config.fixed_window_offset = limit, offset
    config.request_latency, config.request_jitter = 0.05, 0.02
    config.background_rate = 5.0
    await send_evenly(sim, rate=limit * 0.9, count=60)
    stats = sim.stats
    assert stats.rejected + stats.background_rejected > 0, "18 + 5 calls a second do not fit in 20"
    everything = stats.arrivals + stats.background_arrivals
    origin = min(t for t, _ in everything) + offset
    assert max(per_bucket(everything, origin).values()) <= limit
