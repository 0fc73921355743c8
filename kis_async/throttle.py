"""Pacing one process's calls under the limit the gateway enforces, as learned by the pace rule.

KIS counts calls as they *arrive* and refuses the one that makes more than its limit in any one
second. A plain ``AsyncLimiter(rate, 1)`` admits a burst of ``rate`` on top of its steady flow and
so lets up to ``2 * rate - 1`` calls into one second; a limiter that books each caller a future
slot cannot slow down when the gateway says so, because the slots already handed out stay
committed. :class:`Throttle` is therefore a gate written for this job rather than a wrapped
``aiolimiter``:

- callers queue in a :class:`~kis_async.pacing.Line`: single calls ahead of bulk work, each kind
  in order, bulk work keeping a share; only the head waits on the clock, and it re-reads the pace
  each time it wakes, so a pace cut applies to the very next call. A bulk head has booked
  nothing while it waits, so a single call that comes meanwhile takes its turn (and its slot):
  a single call waits about one ``interval`` behind a batch, not behind the whole batch;
- the head leaves at the next ideal time (one ``interval`` after the previous departure's ideal
  time, so a timer that fires a little late costs no throughput) and only while fewer than
  ``window_calls`` un-refused calls left in the last ``1 + margin`` seconds. After a refusal this
  second rule is what waits for the oldest accepted calls to leave the gateway's window.
- the transport reports each refused call (:meth:`Throttle.refused`); the pace changes as
  :func:`~kis_async.pace.after_refusal` says, and probes back up while callers are waiting, as
  :func:`~kis_async.pace.after_clean` says.

A caller that finds the gate empty and the pace free leaves without awaiting anything.

What it guarantees, on its clock's :meth:`~kis_async.clock.Clock.monotonic` seconds, however
many tasks call it and however late their wake-ups:

- first in, first out within a class: calls of one :class:`~kis_async.pacing.Priority` leave in
  the order they asked; a single call may leave before bulk work that asked earlier, but while
  both wait at least one departure in :data:`~kis_async.pacing.BULK_EVERY` is bulk work's
  (until :meth:`Throttle.close`, which lets every waiting and later caller go at once);
- priority only reorders departures: every call, of either kind, keeps the rules below;
- two consecutive departures are at least ``interval - TIMER_SLACK`` apart (``interval`` at the
  pace in force; the slack is at most half an interval);
- a departure never makes more than ``window_calls`` un-refused calls in the ``1 + margin``
  seconds up to it, so no one-second window ever holds more than ``rate_limit`` un-refused
  departures (the pace never goes above that ceiling).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from . import validate
from .clock import SYSTEM_CLOCK, Clock
from .pace import DEFAULT_MARGIN, HISTORY, TIMER_SLACK, Pace, after_clean, after_refusal
from .pacing import Call, Line, Pacer, log_change

_EPSILON = 1e-6


class Ticket(NamedTuple):
    """One departure: when it left on the throttle's clock, and which call it was."""

    sent_at: float
    number: int


class Throttle(Pacer[Ticket]):
    """Evenly spaced departures, never more than the learned limit in any window.

    One instance is shared by every request of a client, retries included, so the whole client
    stays under the limit however many tasks call it at once. Its tickets are :class:`Ticket`;
    every reading of time and every wait is ``clock``'s.
    """

    def __init__(
        self,
        rate: float,
        *,
        margin: float = DEFAULT_MARGIN,
        start: Pace | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``start`` is a pace already learned (``rate`` and ``margin`` its ceiling and base
        margin): where a ledger's pace begins (:mod:`kis_async.ledger`)."""
        rate = validate.positive("rate", rate)
        margin = validate.non_negative("margin", margin, below=1.0)
        self._now = clock.monotonic
        self._pace = start if start is not None else Pace.start(rate, margin)
        self._interval = self._window = self._horizon = self._slack = 0.0
        self._calls = 1
        self._derive()
        self._sent: deque[Ticket] = deque()
        """Un-refused departures of the last window plus a second, oldest first."""
        self._next_at = float("-inf")
        self._line = Line(clock)
        self._number = 0
        self._refusals = 0

    @property
    def pace(self) -> Pace:
        return self._pace

    @property
    def refusals(self) -> int:
        return self._refusals

    def try_acquire(self, call: Call) -> Ticket | None:
        """Leave now without awaiting anything, if the line is empty and the pace allows it."""
        now = self._now()
        if self._line.closed or (self._line.empty and self._due(now) <= 0):
            return self._leave(now)
        return None

    async def acquire(self, call: Call) -> Ticket:
        """Wait in line (by the call's priority), then until the pace lets one more call leave;
        cancellable."""
        ticket = self.try_acquire(call)
        if ticket is not None:
            return ticket
        async with self._line.turn(call.priority):
            while True:
                now = self._now()
                self._learn(after_clean(self._pace, now=now), "probing up")
                wait = self._due(now)
                if wait <= 0 or self._line.closed:
                    return self._leave(now)
                await self._line.sleep(wait, give_way=True)

    async def refused(self, ticket: Ticket) -> None:
        """Learn from a refusal: see :func:`~kis_async.pace.after_refusal`."""
        self._refusals += 1
        sent = self._sent
        if ticket in sent:
            sent.remove(ticket)
        start = ticket.sent_at - 1.0
        accepted = sum(1 for t in sent if start < t.sent_at < ticket.sent_at)
        now = self._now()
        self._learn(
            after_refusal(self._pace, sent_at=ticket.sent_at, accepted=accepted, now=now),
            f"the gateway refused a call ({accepted} accepted in the second before)",
        )

    def close(self) -> None:
        self._line.close()

    def _learn(self, pace: Pace, why: str) -> None:
        if pace != self._pace:
            self._pace = pace
            self._derive()
            log_change(pace, why)

    def _derive(self) -> None:
        """The pace's numbers the hot path reads, worked out once per change."""
        pace = self._pace
        self._interval = pace.interval
        self._window = pace.window
        self._horizon = pace.window + HISTORY
        self._calls = pace.window_calls
        self._slack = min(TIMER_SLACK, pace.interval / 2)

    def _due(self, now: float) -> float:
        """Seconds until the next call may leave (0 or less: now)."""
        sent = self._sent
        edge = now - self._horizon
        while sent and sent[0].sent_at <= edge:
            sent.popleft()
        due = self._next_at
        calls = self._calls
        if len(sent) >= calls:
            due = max(due, sent[-calls].sent_at + self._window + _EPSILON)
        return due - now

    def _leave(self, now: float) -> Ticket:
        self._next_at = max(self._next_at, now - self._slack) + self._interval
        self._number += 1
        ticket = _ticket(Ticket, (now, self._number))
        self._sent.append(ticket)
        return ticket

    def __repr__(self) -> str:
        pace = self._pace
        return f"Throttle(rate={pace.rate!r}, margin={pace.margin!r}, ceiling={pace.ceiling!r})"


_ticket = tuple.__new__
"""Builds a :class:`Ticket` without the Python-level ``__new__`` a NamedTuple has: a third of
the cost of leaving, on the path every call takes."""
