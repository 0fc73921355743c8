"""The test clock itself: time moves only when every task waits on it, and never otherwise."""

from __future__ import annotations

import asyncio

import pytest

from kis_async import Clock

from .virtual_clock import EPOCH, Deadlock, VirtualClock


def test_it_is_a_clock_and_time_follows_monotonic_from_its_epoch() -> None:
    clock = VirtualClock()
    assert isinstance(clock, Clock)
    assert (clock.monotonic(), clock.time()) == (0.0, EPOCH)


def test_time_stands_still_while_any_task_can_run() -> None:
    clock = VirtualClock()
    seen: list[float] = []

    async def busy() -> None:
        for _ in range(1000):
            seen.append(clock.monotonic())
            await asyncio.sleep(0)

    async def main() -> float:
        sleeper = asyncio.create_task(clock.sleep(5))
        await busy()
        await sleeper
        return clock.monotonic()

    assert clock.run(main()) == 5.0
    assert set(seen) == {0.0}


def test_sleepers_wake_at_their_deadlines_in_order() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def main() -> None:
        await asyncio.gather(nap("c", 3600), nap("a", 0.25), nap("b", 60), nap("a2", 0.25))

    clock.run(main())
    assert woke == [("a", 0.25), ("a2", 0.25), ("b", 60.0), ("c", 3600.0)]
    assert clock.jumps == 3


def test_a_cancelled_sleep_holds_no_time() -> None:
    clock = VirtualClock()

    async def main() -> float:
        long = asyncio.create_task(clock.sleep(1000))
        await asyncio.sleep(0)
        long.cancel()
        await clock.sleep(1)
        return clock.monotonic()

    assert clock.run(main()) == 1.0


def test_tasks_that_wait_on_nothing_but_each_other_are_a_deadlock_not_a_hang() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(Deadlock):
        VirtualClock().run(main())


def test_real_io_is_refused() -> None:
    clock = VirtualClock()

    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        async with server:
            await clock.sleep(1)

    with pytest.raises(RuntimeError, match="real I/O"):
        clock.run(main())
