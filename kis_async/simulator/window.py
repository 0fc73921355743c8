"""How a gateway counts calls as they arrive: a strict sliding window (how KIS is reported to
count) or fixed buckets (how a server may count instead)."""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """Counts events in the half-open window ``(now - span, now]``.

    :meth:`admit` answers whether one more event fits under ``limit``; :meth:`record` just
    notes an event. ``peak`` is the most events any window has held, which is the figure that
    decides whether a client ever went over the limit.
    """

    __slots__ = ("_times", "peak", "span")

    def __init__(self, span: float = 1.0) -> None:
        self.span = span
        self._times: deque[float] = deque()
        self.peak = 0

    def _expire(self, now: float) -> None:
        edge = now - self.span
        times = self._times
        while times and times[0] <= edge:
            times.popleft()

    def count(self, now: float) -> int:
        """Events in the window ending at ``now``."""
        self._expire(now)
        return len(self._times)

    def record(self, now: float) -> int:
        """Note an event at ``now``; return how many the window now holds."""
        self._expire(now)
        self._times.append(now)
        held = len(self._times)
        self.peak = max(self.peak, held)
        return held

    def admit(self, now: float, limit: int) -> bool:
        """Record an event at ``now`` if the window has room for it under ``limit``."""
        if self.count(now) >= limit:
            return False
        self.record(now)
        return True


class FixedWindow:
    """Counts events in fixed buckets ``[offset + k*span, offset + (k+1)*span)``.

    The other way a server may count: what a client sees when the server's second does not
    start when the client's does. Same :meth:`admit` as :class:`SlidingWindow`.
    """

    __slots__ = ("_bucket", "_count", "offset", "span")

    def __init__(self, span: float = 1.0, offset: float = 0.0) -> None:
        self.span = span
        self.offset = offset
        self._bucket = -1
        self._count = 0

    def admit(self, now: float, limit: int) -> bool:
        """Count an event at ``now`` if its bucket has room for it under ``limit``."""
        bucket = int((now - self.offset) // self.span)
        if bucket != self._bucket:
            self._bucket, self._count = bucket, 0
        if self._count >= limit:
            return False
        self._count += 1
        return True
