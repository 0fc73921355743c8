"""How fast to go: the pace a client keeps, and how it learns from the gateway's refusals.

KIS does not document how it counts calls, and the limit it enforces can be lower than the one
configured: networks add jitter on the way *in* (the gateway counts a call when it arrives),
other programs on the same appkey take part of the budget unannounced, and users report 15-18/s
holding where 20/s is documented. So ``rate_limit`` is a ceiling, and the pace under it is
learned. This module is the rule alone, pure and clock-free; :mod:`kis_async.throttle` (one
process) and :mod:`kis_async.redis_backend` (many) apply it, each on its own clock, with the
constants below.

A :class:`Pace` is ``rate`` calls a second, sent evenly ``interval = (1 + margin) / rate`` apart,
with never more than ``window_calls`` of the client's un-refused calls in any ``1 + margin``
seconds. Any ``window_calls + 1`` consecutive calls thus leave at least ``1 + margin`` seconds
apart, so a gateway counting a sliding second sees at most ``window_calls`` of them unless one
call's trip is ``margin`` seconds slower than another's.

When the gateway refuses a call (``EGW00201``), :func:`after_refusal` compares how many of the
client's own calls the gateway accepted in the second before that call left (``accepted``) with
what the pace allowed:

- nearly all of them (at least two, and ``window_calls - 1 - window_calls // 10``): the pace was
  right and a call arrived early, so the *margin* is doubled (jitter: 20 ms becomes 40, 80...).
  At two calls a window or fewer (a ledger's pace, :mod:`kis_async.ledger`) one accepted call
  cannot tell jitter from a lower limit, and is read as the limit: widening the margin there
  would keep every other call refused;
- clearly fewer: the gateway's limit, or what other programs left of it, is about ``accepted``,
  so the *rate* drops to that (by at most half at a time: one refusal is one observation), and
  ``wall`` remembers where refusals began.

One change per window: a refusal of a call that left less than a window after the last change
belongs to the episode already answered (those calls were in flight, or the gateway's window still
held calls sent at the old pace), so it changes nothing.

After a clean stretch, :func:`after_clean` probes back up one step at a time, as TCP's CUBIC does
around its last loss: quickly below the wall (by a quarter, every ``PROBE_EVERY`` seconds), warily
at and past it (one call a second, first after ``WALL_PROBE_EVERY`` seconds, then at twice the
speed for every clean step, down to ``PROBE_EVERY``), so it neither walks back into the same
wall nor stays below a limit that has risen. A widened margin narrows by half at the wary speed.
The pace never goes above ``ceiling`` nor below ``MIN_RATE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

DEFAULT_MARGIN = 0.02
"""Seconds of arrival jitter tolerated before two calls could share a window they should not."""
TIMER_SLACK = 0.002
"""Seconds of lateness per wake-up that a pacer's schedule absorbs without losing pace: the next
ideal departure is one ``interval`` after the later of the last ideal one and the last actual
departure less this."""
HISTORY = 1.0
"""Seconds of departures a pacer keeps beyond the window, for :func:`after_refusal`'s count of
the second before a refused call."""
MIN_RATE = 0.5
"""The slowest pace learned: calls per second. A refusal never stops a client entirely."""
MAX_MARGIN = 0.5
"""The widest margin learned, in seconds; jitter beyond ±250 ms is a broken network."""
MARGIN_STEP = 0.02
"""The least a refusal widens the margin by, in seconds (it doubles, or grows by this)."""
PROBE_EVERY = 3.0
"""Clean seconds before a step back up while well below the wall; the wary steps' floor."""
WALL_PROBE_EVERY = 30.0
"""Clean seconds before the first wary step: at the wall, or narrowing the margin."""


@dataclass(frozen=True, slots=True)
class Pace:
    """The pace in force, and what the gateway has taught so far.

    ``changed_at`` is on the clock of whoever applies the rule (the pacer's own monotonic clock
    in one process, the Redis server's clock when shared).
    """

    ceiling: float
    """The configured ``rate_limit``: never exceeded."""
    base_margin: float
    """The configured ``pace_margin``: the margin never narrows below it."""
    rate: float
    margin: float
    wall: float | None = None
    """Calls a second at which the gateway last refused; ``None`` until it has."""
    changed_at: float | None = None
    """When the pace last changed; ``None`` while it is the configured one."""
    wary_steps: int = 0
    """Clean wary steps in a row since the last refusal: each halves the wait for the next."""

    @classmethod
    def start(cls, ceiling: float, margin: float) -> Pace:
        """The configured pace, before the gateway has said anything."""
        return cls(ceiling, margin, ceiling, margin)

    @property
    def interval(self) -> float:
        """Seconds between two calls leaving."""
        return (1 + self.margin) / self.rate

    @property
    def window(self) -> float:
        """The span, in seconds, over which at most :attr:`window_calls` calls may leave."""
        return 1 + self.margin

    @property
    def window_calls(self) -> int:
        return max(1, math.floor(self.rate + 1e-9))

    @property
    def calls_per_second(self) -> float:
        """What this pace delivers: ``rate / (1 + margin)``."""
        return self.rate / (1 + self.margin)

    @property
    def learned(self) -> bool:
        """True when the gateway has moved the pace off the configured one."""
        return self.rate < self.ceiling or self.margin > self.base_margin


def after_refusal(pace: Pace, *, sent_at: float, accepted: int, now: float) -> Pace:
    """The pace after the gateway refused a call that left at ``sent_at``.

    ``accepted`` is how many of the client's other calls that left in the second before
    ``sent_at`` were not refused.
    """
    if pace.changed_at is not None and sent_at < pace.changed_at + pace.window:
        return pace
    calls = pace.window_calls
    if accepted >= max(2, calls - 1 - calls // 10):
        margin = min(MAX_MARGIN, max(pace.margin * 2, pace.margin + MARGIN_STEP))
        return replace(pace, margin=margin, changed_at=now, wary_steps=0)
    rate = _whole(max(float(accepted), pace.rate / 2), pace.ceiling)
    return replace(pace, rate=rate, wall=accepted + 1.0, changed_at=now, wary_steps=0)


def after_clean(pace: Pace, *, now: float) -> Pace:
    """The pace after a stretch without refusals: one probing step up, if one is due."""
    clean = math.inf if pace.changed_at is None else now - pace.changed_at
    wall = math.inf if pace.wall is None else pace.wall
    wary = max(PROBE_EVERY, WALL_PROBE_EVERY / 2**pace.wary_steps)
    if pace.rate < pace.ceiling:
        if pace.rate + 1 < wall:
            if clean < PROBE_EVERY:
                return pace
            rate = _whole(min(wall - 1, pace.rate + max(1.0, pace.rate / 4)), pace.ceiling)
            return replace(pace, rate=rate, changed_at=now)
        if clean < wary:
            return pace
        rate = _whole(pace.rate + 1, pace.ceiling)
        return replace(pace, rate=rate, changed_at=now, wary_steps=pace.wary_steps + 1)
    if pace.margin > pace.base_margin and clean >= wary:
        margin = max(pace.base_margin, pace.margin / 2)
        return replace(pace, margin=margin, changed_at=now, wary_steps=pace.wary_steps + 1)
    return pace


def _whole(rate: float, ceiling: float) -> float:
    """A whole number of calls a second, between ``MIN_RATE`` and ``ceiling``."""
    return min(ceiling, max(MIN_RATE, float(math.floor(rate + 1e-9))))
