"""Time, for everything in kis_async that reads it or waits on it: one injectable clock.

Pacing measures seconds on a clock that never goes back (:meth:`Clock.monotonic`); tokens need
the wall clock (:meth:`Clock.time`), since their expiry is a date KIS states and a token cache
outlives the process; every wait, the pacer's, a retry's backoff and the token endpoint's
one-a-minute rule, is the clock's :meth:`Clock.sleep`. A :class:`~kis_async.KISClient` hands its
one clock (``clock=``, :data:`SYSTEM_CLOCK` by default) to every part that reads time, so a test
can run the pacing and token rules on a clock of its own, where a simulated minute passes at once
(``tests/virtual_clock.py`` does).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Final, Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What kis_async needs of a clock: two ways to read it, and a way to wait on it.

    A clock must promise:

    - :meth:`monotonic` never goes back, and counts seconds; only differences between two
      readings mean anything;
    - :meth:`time` is seconds since the Unix epoch (token expiries are compared with it);
    - :meth:`sleep` returns once about ``seconds`` have passed on :meth:`monotonic` (at once,
      after letting other tasks run, for 0 or less) and is cancellable; nothing in kis_async
      assumes it slept exactly that long: a pacer reads the clock again when it wakes.

    :class:`SystemClock` is Python's own. The clock is called from the event loop's thread only.
    """

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float, /) -> None:
        """Return after about ``seconds`` on :meth:`monotonic`."""
        ...


class SystemClock:
    """``time.monotonic``, ``time.time`` and ``asyncio.sleep`` (which counts on the event loop's
    clock: ``time.monotonic`` on asyncio's own loops).

    The functions themselves, not methods that call them: the request path reads the clock on
    every call, and a Python frame in between would cost more than the reading.
    """

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)
    sleep = staticmethod(asyncio.sleep)

    def __repr__(self) -> str:
        return "SYSTEM_CLOCK"


SYSTEM_CLOCK: Final = SystemClock()
"""The clock every part of kis_async uses unless given another."""


def checked_clock(clock: object) -> Clock:
    """``clock`` if it has a :class:`Clock`'s three methods (``sleep`` a coroutine function);
    else ``TypeError`` naming the argument."""
    if isinstance(clock, Clock) and inspect.iscoroutinefunction(clock.sleep):
        return clock
    raise TypeError(
        "clock must have monotonic(), time() and async sleep(seconds) (see kis_async.Clock), "
        f"got {type(clock).__name__}"
    )
