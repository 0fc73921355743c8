"""A strict sliding one-second window: how KIS is reported to count calls as they arrive."""

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
