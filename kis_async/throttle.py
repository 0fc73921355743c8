"""Pacing under the KIS call limit, built on ``aiolimiter``.

KIS counts calls as they *arrive* and rejects the one that makes more than ``rate`` in any one
second. A plain ``AsyncLimiter(rate, 1)`` admits a burst of ``rate`` on top of its steady flow and
so lets up to ``2 * rate - 1`` calls into one second.

:class:`Throttle` uses a leaky bucket of capacity ``1 + slack`` that drains one call every
``interval = (1 + margin) / (rate - slack)`` seconds, and admits a call only when one full unit
fits. Just before the ``(rate + 1)``-th of any run of consecutive calls the bucket still holds
``rate - elapsed / interval``, so that call waits until ``elapsed >= (rate - slack) * interval =
1 + margin``. Hence:

- any ``rate + 1`` consecutive calls leave at least ``1 + margin`` seconds apart, so no one-second
  window at the server sees more than ``rate`` of them unless one call's trip is ``margin``
  seconds slower than another's;
- there is no burst: the first second of a batch is paced like every other;
- a waiter woken up to ``slack * interval`` late (the event loop's timers fire up to a
  millisecond late) loses no throughput, because the bucket kept draining meanwhile.

Steady throughput is ``(rate - slack) / (1 + margin)``: about 0.98 of the limit by default.
"""

from __future__ import annotations

from typing import Protocol

from aiolimiter import AsyncLimiter

DEFAULT_MARGIN = 0.02
"""Seconds of arrival jitter tolerated before two calls could share a window they should not."""
TIMER_SLACK = 0.002
"""Seconds of event-loop lateness per wake-up that the bucket absorbs without losing pace."""


class Pacer(Protocol):
    """What the transport needs from a pacer: wait until one more call may leave."""

    async def acquire(self) -> None: ...


class Throttle:
    """Evenly spaced admissions: never more than ``rate`` calls in any 1-second window.

    One instance is shared by every request of a client, retries included, so the whole client
    stays under the limit however many tasks call it at once. Waiters are served first come,
    first served.
    """

    def __init__(self, rate: float, *, margin: float = DEFAULT_MARGIN) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of calls per second, got {rate!r}")
        if not 0 <= margin < 1:
            raise ValueError(f"margin must be in [0, 1) seconds, got {margin!r}")
        self.rate = rate
        self.margin = margin
        self.slack = min(0.5, TIMER_SLACK * rate)
        self.interval = (1 + margin) / (rate - self.slack)
        capacity = 1 + self.slack
        self._limiter = AsyncLimiter(capacity, capacity * self.interval)

    async def acquire(self) -> None:
        """Return once the next call may leave; cancellable while waiting."""
        await self._limiter.acquire()

    def __repr__(self) -> str:
        return f"Throttle(rate={self.rate!r}, margin={self.margin!r})"
