"""One clock for the whole client: what a clock must be, and that every part reads this one."""

from __future__ import annotations

import asyncio

import pytest

from kis_async import Clock, KISClient
from kis_async.clock import SYSTEM_CLOCK, SystemClock
from kis_async.simulator import Fault, Simulator

from .conftest import ClientFactory


class Counting(SystemClock):
    """The system's clock, counting what is asked of it."""

    def __init__(self) -> None:
        self.asked = {"monotonic": 0, "time": 0, "sleep": 0}

    def monotonic(self) -> float:
        self.asked["monotonic"] += 1
        return super().monotonic()

    def time(self) -> float:
        self.asked["time"] += 1
        return super().time()

    async def sleep(self, seconds: float, /) -> None:
        self.asked["sleep"] += 1
        await asyncio.sleep(seconds)


def test_the_system_clock_is_a_clock() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert repr(SYSTEM_CLOCK) == "SYSTEM_CLOCK"


@pytest.mark.parametrize(
    "clock",
    [object(), 1.5, type("NoSleep", (), {"monotonic": float, "time": float})()],
)
def test_a_client_refuses_what_is_not_a_clock(clock: object) -> None:
    with pytest.raises(TypeError, match="clock"):
        KISClient("key", "secret", "12345678-01", clock=clock)  # type: ignore[arg-type]


def test_a_sleep_that_is_not_a_coroutine_function_is_refused() -> None:
    class Blocking(SystemClock):
        def sleep(self, seconds: float, /) -> None:  # type: ignore[override]
            return None

    with pytest.raises(TypeError, match="async sleep"):
        KISClient("key", "secret", "12345678-01", clock=Blocking())


def test_the_system_clock_is_the_default(make_stub_client: ClientFactory) -> None:
    assert make_stub_client().clock is SYSTEM_CLOCK


async def test_pacing_tokens_and_retries_all_read_the_clients_clock(
    sim: Simulator, make_client: ClientFactory
) -> None:
    clock = Counting()
    sim.inject(Fault.HTML_502, pdno="005930")
    async with make_client(clock=clock, rate_limit=50) as kis:
        await kis.check_sellable(["005930", "000660", "035420"])
    assert clock.asked["monotonic"] >= 4, "the pacer: every try"
    assert clock.asked["time"] >= 4, "the token: every call"
    assert clock.asked["sleep"] >= 1, "the retry's backoff"
