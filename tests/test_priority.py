"""Single calls go ahead of bulk work, each kind in order, and bulk work is never starved.

The rule (:class:`kis_async.pacing.Line`) is checked in virtual time, where it is exact: a single
call asked during a batch leaves within one interval, calls of one kind leave in the order they
asked, an interactive flood leaves bulk work one departure in ``BULK_EVERY``, and the pace's own
rules hold whatever the mix. Then over real loopback HTTP against the simulator, in real time:
the same three promises through the client, the connection pool that must not become a second
queue, and a :class:`~kis_async.redis_backend.RedisPacer` that orders its own process's callers.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from kis_async import KISClient, Priority, endpoints
from kis_async.pace import DEFAULT_MARGIN, TIMER_SLACK, Pace
from kis_async.pacing import BULK_EVERY, Call
from kis_async.redis_backend import Keys, RedisPacer
from kis_async.simulator import Simulator
from kis_async.throttle import Throttle

from .conftest import ClientFactory, codes
from .test_redis import RedisServer, _redis_binary
from .test_throttle import busiest
from .virtual_clock import VirtualClock

RATE = 20
PACE = Pace.start(RATE, DEFAULT_MARGIN)
INTERVAL = PACE.interval
INTERACTIVE = Call(endpoints.SELLABLE.tr_id, Priority.INTERACTIVE)
BULK = Call(endpoints.SELLABLE.tr_id, Priority.BULK)
QUOTE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


@dataclass
class Departures:
    """What left a pacer, in order: when, and of which kind; and each single call's wait."""

    left: list[tuple[float, Priority]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)
    batch_done: float = 0.0

    def kinds(self) -> list[Priority]:
        return [kind for _, kind in self.left]


def batch_with_single_calls(
    single: Call, *, bulk_calls: int = 300, workers: int = 40, every: float = 0.5
) -> Departures:
    """A 300-call batch on ``workers`` tasks through one Throttle at 20/s (each answer 60 ms
    after it left), and a ``single`` call asked every ``every`` seconds while it runs, in its
    own task; in virtual time."""
    clock = VirtualClock()
    throttle = Throttle(RATE, clock=clock)
    seen = Departures()

    async def one(call: Call) -> None:
        ticket = throttle.try_acquire(call) or await throttle.acquire(call)
        seen.left.append((ticket.sent_at, call.priority))
        await clock.sleep(0.06)

    async def asked(call: Call) -> None:
        start = clock.monotonic()
        ticket = throttle.try_acquire(call) or await throttle.acquire(call)
        seen.left.append((ticket.sent_at, call.priority))
        seen.waits.append(ticket.sent_at - start)

    async def main() -> None:
        left = iter(range(bulk_calls))

        async def worker() -> None:
            for _ in left:
                await one(BULK)

        batch = asyncio.gather(*(worker() for _ in range(workers)))
        singles: list[asyncio.Task[None]] = []
        for n in itertools.count():
            # 0.5 s is 9.8 intervals: the asks fall at every phase of the interval.
            await clock.sleep(0.137 + n * every - clock.monotonic())
            if batch.done():
                break
            singles.append(asyncio.create_task(asked(single)))
        await batch
        seen.batch_done = max(t for t, kind in seen.left if kind is Priority.BULK)
        await asyncio.gather(*singles)

    clock.run(main())
    return seen


def test_a_single_call_during_a_batch_leaves_within_one_interval_of_asking() -> None:
    ahead = batch_with_single_calls(INTERACTIVE)
    assert len(ahead.waits) >= 25
    assert max(ahead.waits) <= INTERVAL + 1e-5, "it takes the slot the batch's head waited for"
    behind = batch_with_single_calls(BULK)
    assert statistics.median(behind.waits) > 1.5, "as one more bulk call, it waits for the batch"
    assert ahead.batch_done == pytest.approx(behind.batch_done, abs=INTERVAL)


def test_priority_only_reorders_departures_the_pace_holds_for_every_call() -> None:
    seen = batch_with_single_calls(INTERACTIVE, every=0.13)
    sent = sorted(t for t, _ in seen.left)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= INTERVAL - TIMER_SLACK - 1e-9
    assert busiest(sent, span=PACE.window) == PACE.window_calls
    assert len(sent) == 300 + len(seen.waits)


@settings(max_examples=40, deadline=None)
@given(
    asks=st.lists(
        st.tuples(st.floats(0.0, 0.2), st.sampled_from(list(Priority))), min_size=1, max_size=80
    )
)
def test_calls_of_one_kind_leave_in_the_order_they_asked(
    asks: list[tuple[float, Priority]],
) -> None:
    """Callers ask at random times (some at once), of either kind; within each kind, the order
    of departure is the order of asking."""
    clock = VirtualClock()
    throttle = Throttle(RATE, clock=clock)
    asked: dict[Priority, list[int]] = {kind: [] for kind in Priority}
    left: dict[Priority, list[int]] = {kind: [] for kind in Priority}

    async def one(n: int, after: float, kind: Priority) -> None:
        await clock.sleep(after)
        call = Call(endpoints.SELLABLE.tr_id, kind)
        asked[kind].append(n)
        throttle.try_acquire(call) or await throttle.acquire(call)
        left[kind].append(n)

    async def main() -> None:
        await asyncio.gather(*(one(n, after, kind) for n, (after, kind) in enumerate(asks)))

    clock.run(main())
    assert left == asked


def test_an_interactive_flood_leaves_bulk_work_one_departure_in_bulk_every() -> None:
    """Thirty tasks asking single calls without pause, beside a batch: four single calls, then
    one bulk, over and over; once the flood ends, the batch has the pace to itself."""
    clock = VirtualClock()
    throttle = Throttle(RATE, clock=clock)
    kinds: list[Priority] = []
    flood_until = 10.0

    async def one(call: Call) -> None:
        throttle.try_acquire(call) or await throttle.acquire(call)
        kinds.append(call.priority)
        await clock.sleep(0.06)

    async def flooder() -> None:
        while clock.monotonic() < flood_until:
            await one(INTERACTIVE)

    async def main() -> None:
        left = iter(range(200))

        async def worker() -> None:
            for _ in left:
                await one(BULK)

        await asyncio.gather(*(worker() for _ in range(40)), *(flooder() for _ in range(30)))

    clock.run(main())
    flooded = kinds[40 : int(flood_until * PACE.calls_per_second) - 10]
    runs = [len(list(run)) for kind, run in itertools.groupby(flooded) if kind is not BULK.priority]
    assert max(runs) == BULK_EVERY - 1
    assert flooded.count(Priority.BULK) / len(flooded) == pytest.approx(1 / BULK_EVERY, abs=0.01)
    assert kinds.count(Priority.BULK) == 200, "the batch finished"


def test_a_single_call_cancelled_after_it_cut_in_gives_the_bulk_head_its_own_slot_back() -> None:
    clock = VirtualClock()
    throttle = Throttle(1, clock=clock)
    left: list[tuple[str, float]] = []

    async def one(name: str, call: Call) -> None:
        throttle.try_acquire(call) or await throttle.acquire(call)
        left.append((name, clock.monotonic()))

    async def main() -> None:
        await one("a", BULK)
        b = asyncio.create_task(one("b", BULK))
        c = asyncio.create_task(one("c", BULK))
        await clock.sleep(0.5)
        single = asyncio.create_task(one("single", INTERACTIVE))
        await asyncio.sleep(0)  # it has asked, and cut b's wait short
        single.cancel()
        await asyncio.gather(b, c)
        assert single.cancelled()

    clock.run(main())
    assert left == [("a", 0.0), ("b", pytest.approx(1.02)), ("c", pytest.approx(2.04))]


def test_a_single_call_asked_as_a_bulk_caller_gets_its_turn_still_goes_first() -> None:
    """b leaves and, in the same step, asks a single call: c has been given the turn but not
    yet started its wait. c still steps aside when it does."""
    clock = VirtualClock()
    throttle = Throttle(1, clock=clock)
    left: list[tuple[str, float]] = []

    async def one(name: str, call: Call) -> None:
        throttle.try_acquire(call) or await throttle.acquire(call)
        left.append((name, clock.monotonic()))

    async def b_then_single() -> None:
        await one("b", BULK)
        await one("single", INTERACTIVE)

    async def main() -> None:
        await one("a", BULK)
        await asyncio.gather(b_then_single(), one("c", BULK))

    clock.run(main())
    assert left == [
        ("a", 0.0),
        ("b", pytest.approx(1.02)),
        ("single", pytest.approx(2.04)),
        ("c", pytest.approx(3.06)),
    ]


def test_close_while_a_bulk_head_stood_aside_lets_everyone_go_uncancelled() -> None:
    clock = VirtualClock()
    throttle = Throttle(1, clock=clock)
    left: list[tuple[str, float, int]] = []

    async def one(name: str, call: Call) -> None:
        throttle.try_acquire(call) or await throttle.acquire(call)
        task = asyncio.current_task()
        assert task is not None
        left.append((name, clock.monotonic(), task.cancelling()))

    async def main() -> None:
        await one("a", BULK)
        waiting = [asyncio.create_task(one(name, BULK)) for name in "bc"]
        await clock.sleep(0.5)
        waiting.append(asyncio.create_task(one("single", INTERACTIVE)))
        await clock.sleep(0.2)
        throttle.close()
        await asyncio.gather(*waiting)

    clock.run(main())
    assert sorted(left) == [
        ("a", 0.0, 0),
        ("b", pytest.approx(0.7), 0),
        ("c", pytest.approx(0.7), 0),
        ("single", pytest.approx(0.7), 0),
    ]


async def asked_during(
    batch: asyncio.Future[object], single: Callable[[], Awaitable[object]], every: float
) -> list[float]:
    """Seconds each ``single`` call took, asked every ``every`` seconds while ``batch`` runs."""
    took: list[float] = []

    async def timed() -> None:
        start = time.perf_counter()
        await single()
        took.append(time.perf_counter() - start)

    singles = []
    while not batch.done():
        await asyncio.wait([batch], timeout=every)
        singles.append(asyncio.create_task(timed()))
    await asyncio.gather(*singles)
    return took


@pytest.mark.parametrize("priority", list(Priority))
async def test_a_single_call_does_not_wait_behind_a_batch_over_loopback(
    sim: Simulator, make_client: ClientFactory, priority: Priority
) -> None:
    """At 50/s a batch's 100 workers queue two seconds deep: a single call goes ahead of them,
    unless it is told it is bulk work too (the control: this test sees a FIFO)."""
    sim.config.rate_limit = 50
    async with make_client(rate_limit=50) as kis:
        await kis.sellable_quantity("005930")  # the token, before timing
        batch = asyncio.ensure_future(kis.check_sellable(codes(150)))
        single = functools.partial(kis.sellable_quantity, "005930", priority=priority)
        took = await asked_during(batch, single, 0.25)  # answered at once: its wait to leave
        assert (await batch).ok
    assert len(took) >= 8
    if priority is Priority.INTERACTIVE:
        assert max(took) < 0.5
    else:
        assert statistics.median(took) > 1.0
    assert sim.stats.rejected == 0 and sim.stats.max_window <= 50


async def test_an_interactive_flood_leaves_a_batch_its_share_over_loopback(
    sim: Simulator, make_client: ClientFactory
) -> None:
    """Thirty tasks calling ``get`` without pause beside a batch: the batch's calls are a fifth
    of what the gateway sees meanwhile, no fewer (not starved) and not many more (the single
    calls do go first)."""
    sim.config.rate_limit = 100
    counted = sim.stats.calls_by_tr_id
    async with make_client(rate_limit=100) as kis:
        await kis.sellable_quantity("005930")
        batch = asyncio.create_task(kis.check_sellable(codes(5000)))
        quotes = 0
        bulk_at: dict[int, int] = {}

        async def flooder() -> None:
            nonlocal quotes
            while quotes < 200:
                await kis.get(endpoints.PRICE.path, tr_id=endpoints.PRICE.tr_id, params=QUOTE)
                quotes += 1
                if quotes in (20, 200):  # from once the flood is under way to its end
                    bulk_at[quotes] = counted[endpoints.SELLABLE.tr_id]

        await asyncio.gather(*(flooder() for _ in range(30)))
        batch.cancel()
        await asyncio.wait([batch])
    bulk = bulk_at[200] - bulk_at[20]
    share = bulk / (bulk + 180)
    assert 0.15 <= share <= 0.3, share
    assert sim.stats.rejected == 0


async def test_a_single_call_does_not_wait_for_a_connection_behind_a_batch(
    sim: Simulator, make_client: ClientFactory
) -> None:
    """Four bulk workers hold four connections for 0.4 s each (``max_concurrency=4``): a single
    call asked then still leaves at once, on a connection of its own, and does not wait for one
    of theirs to come free."""
    sim.config.latency = 0.4
    all_in_flight = asyncio.Event()
    async with make_client(max_concurrency=4) as kis:
        await kis.sellable_quantity("005930")
        sim.after_calls(5, all_in_flight.set)  # the token's check above was the first
        batch = asyncio.create_task(kis.check_sellable(codes(8)))
        await all_in_flight.wait()
        start = time.perf_counter()
        await kis.sellable_quantity("000660")
        took = time.perf_counter() - start
        assert (await batch).ok
    arrivals = [t for t, _ in sim.stats.arrivals]
    assert arrivals[5] - arrivals[4] < 0.2, "it arrived while the batch's four were in flight"
    assert took < 0.4 + 0.3


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer(_redis_binary())
    server.start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("priority", list(Priority))
async def test_a_redis_pacer_lets_its_own_processs_single_calls_go_first(
    redis_url: str, priority: Priority
) -> None:
    """Fifty bulk tasks at 50/s queue a second deep in this process: a single call waits its
    process's booked head and one slot of its own (about two intervals), not the queue."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    try:
        pacer = RedisPacer(client, Keys(f"priority-{priority.value}"), 50)
        left = iter(range(150))

        async def worker() -> None:
            for _ in left:
                await pacer.acquire(BULK)

        single = functools.partial(pacer.acquire, Call(endpoints.SELLABLE.tr_id, priority))

        batch = asyncio.gather(*(worker() for _ in range(50)))
        waits = await asked_during(batch, single, 0.3)
        await batch
    finally:
        await client.aclose()
    if priority is Priority.INTERACTIVE:
        assert max(waits) < 0.3
    else:
        assert statistics.median(waits) > 0.6


async def test_a_priority_that_is_not_a_priority_is_refused_before_any_request(
    sim: Simulator, kis: KISClient
) -> None:
    path, tr_id = endpoints.PRICE.path, endpoints.PRICE.tr_id
    wrong: Any = "bulk"
    with pytest.raises(TypeError, match="priority must be Priority"):
        await kis.sellable_quantity("005930", priority=wrong)
    with pytest.raises(TypeError, match="priority must be Priority"):
        await kis.get(path, tr_id=tr_id, params=QUOTE, priority=wrong)
    with pytest.raises(TypeError, match="priority must be Priority"):
        kis.pages(path, tr_id=tr_id, params=QUOTE, priority=wrong)
    assert sim.stats.calls == 0
