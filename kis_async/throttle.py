"""Pacing under the KIS call limit, built on ``aiolimiter``.

KIS counts calls as they *arrive* and rejects the one that makes more than ``rate`` in any one
second. A plain ``AsyncLimiter(rate, 1)`` admits a burst of ``rate`` on top of its steady flow and
so lets up to ``2 * rate - 1`` calls into one second. :class:`Throttle` uses a bucket of capacity
one instead: successive calls leave at least ``(1 + margin) / rate`` seconds apart. Any ``rate + 1``
consecutive calls then span at least ``1 + margin`` seconds as sent, so however their arrival is
delayed, as long as no call is held back ``margin`` seconds more than another, no one-second window
at the server sees more than ``rate`` of them. The price is a steady throughput of
``rate / (1 + margin)``: 0.98 of the limit at the default 20 ms margin.
"""

from __future__ import annotations

from typing import Protocol

from aiolimiter import AsyncLimiter

DEFAULT_MARGIN = 0.02
"""Seconds of arrival jitter tolerated before two calls could share a window they should not."""


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
        self.interval = (1 + margin) / rate
        self._limiter = AsyncLimiter(1, self.interval)

    async def acquire(self) -> None:
        """Return once the next call may leave; cancellable while waiting."""
        await self._limiter.acquire()

    def __repr__(self) -> str:
        return f"Throttle(rate={self.rate!r}, margin={self.margin!r})"
