"""A clock for tests where time passes only when every task is waiting on it.

:class:`VirtualClock` is a :class:`kis_async.Clock` whose time stands still while any task can
run; when none can and some sleep on the clock, it jumps to the earliest wake-up. A pacing rule
about minutes of traffic then runs in milliseconds, and the same way every time: no timer fires
late, no neighbour's load shifts a departure.

It knows the loop is idle from the event loop itself: :meth:`VirtualClock.run` runs a coroutine
on a loop whose selector, asked to block with nothing ready and no timer due, lets the clock jump
instead. So it drives only code that waits on the clock and on itself: real I/O (a socket, a
subprocess) makes it refuse, and an ``asyncio.sleep`` in the code under test runs in real time
rather than in the clock's, which is how a test notices a wait that bypasses the clock. That is
also why it lives here and not in kis_async: a bot's own tests talk to KIS or the simulator over
sockets, which a virtual clock cannot speed up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

EPOCH = 1_800_000_000.0
"""Where :meth:`VirtualClock.time` starts: a wall-clock date (2027), so tokens look real."""


class Deadlock(RuntimeError):
    """Every task waits, and none on the clock: nothing could ever wake them."""


class VirtualClock:
    """``monotonic()`` starts at 0 and moves only when every task waits; ``time()`` follows it
    from :data:`EPOCH`; ``sleep()`` waits on it."""

    def __init__(self, epoch: float = EPOCH) -> None:
        self._now = 0.0
        self._epoch = epoch
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.jumps = 0
        """Times the clock moved: a measure of how much waiting a test did."""

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._epoch + self._now

    async def sleep(self, seconds: float, /) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), woken))
        await woken

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to its end, as ``asyncio.run`` does, on a loop this clock drives."""
        selector = _IdleSelector(self)
        loop = asyncio.SelectorEventLoop(selector)
        selector.own = len(selector.get_map())
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            return runner.run(main)

    def _advance(self) -> bool:
        """Move to the earliest wake-up and wake everyone due then; False if nobody sleeps."""
        sleepers = self._sleepers
        while sleepers and sleepers[0][2].done():  # cancelled while asleep
            heapq.heappop(sleepers)
        if not sleepers:
            return False
        self._now = max(self._now, sleepers[0][0])
        self.jumps += 1
        while sleepers and sleepers[0][0] <= self._now:
            woken = heapq.heappop(sleepers)[2]
            if not woken.done():
                woken.set_result(None)
        return True


class _IdleSelector(selectors.DefaultSelector):
    """The loop's selector: where the loop would block with nothing to do, the clock jumps."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        self.own = 0
        """File descriptors the loop itself registered (its self-pipe)."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is not None:
            return list(super().select(timeout))  # a real timer: the code under test's own
        if len(self.get_map()) > self.own:
            raise RuntimeError("the virtual clock cannot drive real I/O")
        if not self.clock._advance():
            raise Deadlock("every task waits, and none on the clock")
        return []
