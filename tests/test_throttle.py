"""The pacing rules in virtual time: a Throttle against a gateway that counts as KIS does.

No HTTP and no real waiting: calls cross a simulated network (latency each way, jitter on the way
in) to a gateway that admits at most its limit in any sliding second and refuses the rest
(``EGW00201``), on a :class:`~tests.virtual_clock.VirtualClock`. Minutes of traffic run in a
fraction of a second, the same way every time, so the assertions can be exact where the rule is.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kis_async.pace import DEFAULT_MARGIN, MAX_MARGIN, MIN_RATE, TIMER_SLACK, Pace
from kis_async.pacing import Call
from kis_async.retry import Backoff, RetryPolicy
from kis_async.simulator.window import SlidingWindow
from kis_async.throttle import Throttle

from .virtual_clock import VirtualClock

CALL = Call("TTTC8408R")
CEILING = 20


@dataclass
class Gateway:
    """Admits a call if fewer than ``limit(now)`` were admitted in the second before it arrived;
    a refused call is not counted. ``background`` calls a second from another program on the
    same appkey arrive evenly and are counted the same way. ``refuse`` refuses the client's
    n-th arrival (from 0) whatever the count, for a refusal pattern written out by hand."""

    limit: Callable[[float], int] = lambda now: 1000
    background: float = 0.0
    refuse: Callable[[int], bool] = lambda n: False
    window: SlidingWindow = field(default_factory=SlidingWindow)
    admitted: list[float] = field(default_factory=list)
    arrivals: int = 0
    background_refused: int = 0

    def admit(self, now: float) -> bool:
        self.arrivals += 1
        if self.refuse(self.arrivals - 1) or not self.window.admit(now, self.limit(now)):
            return False
        self.admitted.append(now)
        return True


@dataclass
class Network:
    latency: float = 0.03
    """Seconds each way."""
    jitter: float = 0.0
    """Up to this much more or less on the way in, at random."""


@dataclass
class Run:
    clock: VirtualClock
    throttle: Throttle
    gateway: Gateway
    departures: list[tuple[float, bool]] = field(default_factory=list)
    """Every try: when it left, and whether the gateway admitted it."""
    paces: list[tuple[float, Pace]] = field(default_factory=list)
    """The pace after every try, when it changed."""
    lost: int = 0
    elapsed: float = 0.0

    @property
    def refused(self) -> int:
        return sum(1 for _, ok in self.departures if not ok)

    @property
    def accepted(self) -> list[float]:
        return [t for t, ok in self.departures if ok]


def limit_of(limit: int) -> Callable[[float], int]:
    return lambda now: limit


def run(
    calls: int,
    gateway: Gateway,
    *,
    network: Network | None = None,
    rate: float = CEILING,
    margin: float = DEFAULT_MARGIN,
    workers: int = 40,
    seed: int = 1,
) -> Run:
    """``calls`` calls through one Throttle by ``workers`` tasks, each retried until admitted
    (a refusal reported to the throttle first, then a backoff, as the transport does)."""
    network = network or Network()
    clock = VirtualClock()
    chance = random.Random(seed)
    throttle = Throttle(rate, margin=margin, clock=clock)
    result = Run(clock, throttle, gateway)
    policy = RetryPolicy(max_retries=30, uniform=chance.uniform)

    async def background() -> None:
        if not gateway.background:
            return
        n = 0
        while True:
            n += 1
            await clock.sleep(n / gateway.background - clock.monotonic())
            if not gateway.window.admit(clock.monotonic(), gateway.limit(clock.monotonic())):
                gateway.background_refused += 1

    def note_pace() -> None:
        if (result.paces[-1][1] if result.paces else Pace.start(rate, margin)) != throttle.pace:
            result.paces.append((clock.monotonic(), throttle.pace))

    async def one() -> None:
        tries = Backoff(policy, clock, "test call")
        while True:
            ticket = throttle.try_acquire(CALL) or await throttle.acquire(CALL)
            note_pace()
            await clock.sleep(network.latency + chance.uniform(-network.jitter, network.jitter))
            admitted = gateway.admit(clock.monotonic())
            result.departures.append((ticket.sent_at, admitted))
            await clock.sleep(network.latency)
            if admitted:
                return
            await throttle.refused(ticket)
            note_pace()
            if not tries.left:
                result.lost += 1
                return
            await tries.wait("EGW00201")

    async def main() -> None:
        left = iter(range(calls))

        async def worker() -> None:
            for _ in left:
                await one()

        noise = asyncio.create_task(background())
        await asyncio.gather(*(worker() for _ in range(workers)))
        noise.cancel()
        result.elapsed = clock.monotonic()

    clock.run(main())
    result.departures.sort()
    return result


def busiest(times: list[float], span: float = 1.0) -> int:
    """The most of ``times`` in any window ``(t - span, t]``."""
    times = sorted(times)
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - span:
            first += 1
        most = max(most, last - first + 1)
    return most


def limits(*steps: tuple[float, int]) -> Callable[[float], int]:
    """A gateway limit that changes: ``(from_second, limit)`` steps, the first from 0."""
    return lambda now: [limit for start, limit in steps if start <= now][-1]


SCENARIOS = {
    "a clean gateway": (Gateway(), Network()),
    "a gateway enforcing 15/s": (Gateway(limits((0, 15))), Network()),
    "a gateway enforcing 10/s": (Gateway(limits((0, 10))), Network()),
    "±40 ms jitter on the way in": (Gateway(limits((0, 20))), Network(0.05, 0.04)),
    "another program taking 5/s": (Gateway(limits((0, 20)), background=5), Network()),
    "a limit that drops and comes back": (Gateway(limits((0, 20), (10, 12), (40, 20))), Network()),
}


def test_calls_leave_evenly_spaced_with_no_first_second_burst() -> None:
    done = run(300, Gateway(), workers=300)
    sent = [t for t, _ in done.departures]
    pace = Pace.start(CEILING, DEFAULT_MARGIN)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= pace.interval - TIMER_SLACK - 1e-9
    assert sum(1 for t in sent if t < 1.0) <= CEILING, "no burst in the first second"
    assert busiest(sent, span=pace.window) == pace.window_calls
    assert len(sent) / sent[-1] == pytest.approx(pace.calls_per_second, rel=0.01)


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_second_holds_more_than_the_ceiling_of_accepted_calls(name: str) -> None:
    gateway, network = SCENARIOS[name]
    done = run(500, copy.deepcopy(gateway), network=network)
    assert done.lost == 0
    assert busiest(done.accepted) <= CEILING
    assert all(p.rate <= CEILING for _, p in done.paces)


@settings(max_examples=40, deadline=None)
@given(
    refused=st.sets(st.integers(0, 299), max_size=100),
    ceiling=st.sampled_from([2, 20, 50]),
    margin=st.sampled_from([0.0, 0.02, 0.1]),
)
def test_whatever_is_refused_calls_stay_spaced_and_under_the_ceiling(
    refused: set[int], ceiling: int, margin: float
) -> None:
    done = run(300, Gateway(refuse=refused.__contains__), rate=ceiling, margin=margin)
    assert busiest(done.accepted) <= ceiling
    fastest = Pace.start(ceiling, margin).interval
    sent = [t for t, _ in done.departures]
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= fastest - min(TIMER_SLACK, fastest / 2) - 1e-9
    assert all(MIN_RATE <= p.rate <= ceiling and p.margin >= margin for _, p in done.paces)


@pytest.mark.parametrize("limit", [15, 10])
def test_a_lower_limit_is_learned_from_a_few_refusals(limit: int) -> None:
    done = run(600, Gateway(limits((0, limit))))
    first_change, cut = done.paces[0]
    assert first_change < 1.0 and cut.rate == limit and cut.wall == limit + 1
    assert done.refused <= 10 and done.lost == 0
    assert len(done.accepted) / done.elapsed >= 0.95 * limit


def test_jitter_widens_the_margin_and_keeps_the_rate() -> None:
    jitter = 0.04
    done = run(600, Gateway(limits((0, CEILING))), network=Network(0.05, jitter))
    assert done.paces, "the jitter was noticed"
    assert all(p.rate == CEILING for _, p in done.paces)
    assert done.throttle.pace.margin >= 2 * jitter
    assert done.refused <= 5 and done.lost == 0


def test_the_margin_doubles_with_each_refusal_of_a_full_pace() -> None:
    done = run(800, Gateway(refuse=lambda n: n % 100 == 99))
    changes = [(p.rate, p.margin) for _, p in done.paces]
    assert changes[:3] == [(20.0, 0.04), (20.0, 0.08), (20.0, 0.16)]
    assert all(p.margin <= MAX_MARGIN for _, p in done.paces)


def test_a_burst_of_refusals_is_answered_once() -> None:
    """Twenty calls refused in a row were all on their way before the first refusal came back:
    one cause, one change. A second burst later is a second cause."""
    one = run(400, Gateway(refuse=lambda n: 100 <= n < 120))
    assert one.refused == 20 and len(one.paces) == 1
    two = run(600, Gateway(refuse=lambda n: 100 <= n < 120 or 400 <= n < 420))
    assert [p.margin for _, p in two.paces] == pytest.approx([0.04, 0.08])


def test_the_pace_probes_back_up_to_the_ceiling_after_the_limit_rises() -> None:
    done = run(2500, Gateway(limits((0, 10), (40, CEILING))))
    assert done.paces[0][1].rate == 10
    back_at, top = next((t, p) for t, p in done.paces if p.rate == CEILING)
    assert 40 < back_at < 40 + 90, "not stuck below a limit that rose"
    assert top.margin > DEFAULT_MARGIN, "the margin widened at the wall narrows after"
    assert done.throttle.pace.rate == CEILING and not done.throttle.pace.learned
    last = [t for t in done.accepted if t > done.elapsed - 10]
    assert len(last) / 10 >= 0.95 * CEILING / (1 + DEFAULT_MARGIN)
    assert busiest(done.accepted) <= CEILING


def test_the_ceiling_holds_when_the_gateway_allows_more() -> None:
    done = run(400, Gateway(limits((0, 100))))
    assert done.refused == 0 and not done.paces
    assert busiest(done.accepted) == CEILING
    assert not done.throttle.pace.learned


def test_another_program_on_the_appkey_is_made_room_for() -> None:
    gateway = Gateway(limits((0, CEILING)), background=5)
    done = run(600, gateway)
    assert done.lost == 0 and done.refused <= 10
    assert done.throttle.pace.rate <= 17
    assert len(done.accepted) / done.elapsed >= 0.9 * (CEILING - 5)
    assert gateway.window.peak <= CEILING


def test_close_lets_every_waiting_caller_go_at_once() -> None:
    clock = VirtualClock()
    throttle = Throttle(1, clock=clock)

    async def main() -> list[float]:
        left: list[float] = []

        async def one() -> None:
            throttle.try_acquire(CALL) or await throttle.acquire(CALL)
            left.append(clock.monotonic())

        callers = [asyncio.create_task(one()) for _ in range(50)]
        await clock.sleep(2.5)
        throttle.close()
        await asyncio.gather(*callers)
        return left

    left = clock.run(main())
    assert left[:3] == pytest.approx([0.0, 1.02, 2.04], abs=1e-5), "the window rule, at 1/s"
    assert left[3:] == [2.5] * 47


def test_a_caller_woken_by_close_is_not_left_cancelled() -> None:
    clock = VirtualClock()
    throttle = Throttle(1, clock=clock)

    async def head() -> tuple[int, float]:
        await throttle.acquire(CALL)
        task = asyncio.current_task()
        assert task is not None
        await clock.sleep(1)  # still able to wait: the close took its cancellation back
        return task.cancelling(), clock.monotonic()

    async def main() -> tuple[int, float]:
        throttle.try_acquire(CALL)
        waiting = asyncio.create_task(head())
        await clock.sleep(0.5)
        throttle.close()
        return await waiting

    assert clock.run(main()) == (0, 1.5)


def test_a_caller_cancelled_as_the_throttle_closes_stays_cancelled() -> None:
    clock = VirtualClock()
    throttle = Throttle(1, clock=clock)

    async def main() -> bool:
        throttle.try_acquire(CALL)
        waiting = asyncio.create_task(throttle.acquire(CALL))
        await clock.sleep(0.5)
        waiting.cancel()
        throttle.close()
        await asyncio.wait([waiting])
        return waiting.cancelled()

    assert clock.run(main())
