"""Pacing one process's calls under the limit the gateway enforces, as learned by the pace rule.

KIS counts calls as they *arrive* and refuses the one that makes more than its limit in any one
second. A plain ``AsyncLimiter(rate, 1)`` admits a burst of ``rate`` on top of its steady flow and
so lets up to ``2 * rate - 1`` calls into one second; a limiter that books each caller a future
slot cannot slow down when the gateway says so, because the slots already handed out stay
committed. :class:`Throttle` is therefore a FIFO gate written for this job rather than a wrapped
``aiolimiter``:

- callers queue in order; only the head waits on the clock, and it re-reads the pace each time
  it wakes, so a pace cut applies to the very next call;
- the head leaves at the next ideal time (one ``interval`` after the previous departure's ideal
  time, so a timer that fires a little late costs no throughput) and only while fewer than
  ``window_calls`` un-refused calls left in the last ``1 + margin`` seconds. After a refusal this
  second rule is what waits for the oldest accepted calls to leave the gateway's window.
- the transport reports each refused call (:meth:`Throttle.refused`); the pace changes as
  :func:`~kis_async.pace.after_refusal` says, and probes back up while callers are waiting, as
  :func:`~kis_async.pace.after_clean` says.

A caller that finds the gate empty and the pace free leaves without awaiting anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol

from . import config, validate
from .pace import Pace, after_clean, after_refusal

progress = logging.getLogger(config.PROGRESS_LOGGER)

DEFAULT_MARGIN = 0.02
"""Seconds of arrival jitter tolerated before two calls could share a window they should not."""
TIMER_SLACK = 0.002
"""Seconds of event-loop lateness per wake-up that the schedule absorbs without losing pace."""
_EPSILON = 1e-6
HISTORY = 1.0
"""Seconds of departures kept beyond the window, for the refusal estimate (the second before)."""


class Ticket(NamedTuple):
    """One departure: when it left on the pacer's clock, and which call it was."""

    sent_at: float
    number: int
    shared: bool = False
    """Booked on the shared (Redis) schedule, rather than by a pacer in this process."""


class Pacer(Protocol):
    """What the transport needs from a pacer: leave in time, and hear about refusals."""

    def try_acquire(self) -> Ticket | None:
        """The ticket at once if a call may leave now and nobody is waiting; else ``None``."""

    async def acquire(self) -> Ticket:
        """Return once one more call may leave; the ticket names that departure."""

    async def refused(self, ticket: Ticket) -> None:
        """The gateway refused the call that left with ``ticket`` (``EGW00201``)."""

    @property
    def pace(self) -> Pace:
        """The pace in force."""

    @property
    def refusals(self) -> int:
        """Calls reported refused so far."""

    def close(self) -> None:
        """Let every waiting caller go at once: the client is closing and their calls will fail."""


class Line:
    """Callers take turns in arrival order; only the one whose turn it is goes on.

    Why not ``asyncio.Lock``: its fairness is not part of its contract, and a pacer that lets a
    late caller overtake one that has waited breaks the order every caller relies on.
    """

    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._nap: asyncio.Future[None] | None = None
        self.closed = False
        """Set by :meth:`close`: nobody waits any more."""

    @property
    def empty(self) -> bool:
        return not self._waiters

    async def sleep(self, delay: float) -> None:
        """The head's wait on the clock, cut short by :meth:`close`."""
        loop = asyncio.get_running_loop()
        nap: asyncio.Future[None] = loop.create_future()
        self._nap = nap
        timer = loop.call_later(delay, _wake, nap)
        try:
            await nap
        finally:
            timer.cancel()
            self._nap = None

    def close(self) -> None:
        """End every wait in line now, and every later one before it starts."""
        self.closed = True
        for waiter in (*self._waiters, self._nap):
            if waiter is not None:
                _wake(waiter)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wait for this caller's turn; the next caller's turn starts when the block ends."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            if self._waiters[0] is not turn and not self.closed:
                await turn
            yield
        finally:
            self._waiters.remove(turn)
            if self._waiters:
                _wake(self._waiters[0])


class Throttle:
    """Evenly spaced departures, never more than the learned limit in any window.

    One instance is shared by every request of a client, retries included, so the whole client
    stays under the limit however many tasks call it at once.
    """

    def __init__(self, rate: float, *, margin: float = DEFAULT_MARGIN) -> None:
        rate = validate.positive("rate", rate)
        margin = validate.non_negative("margin", margin, below=1.0)
        self._pace = Pace.start(rate, margin)
        self._interval = self._window = self._horizon = self._slack = 0.0
        self._calls = 1
        self._derive()
        self._sent: deque[Ticket] = deque()
        """Un-refused departures of the last window plus a second, oldest first."""
        self._next_at = float("-inf")
        self._line = Line()
        self._number = 0
        self._refusals = 0

    @property
    def pace(self) -> Pace:
        return self._pace

    @property
    def refusals(self) -> int:
        return self._refusals

    def try_acquire(self) -> Ticket | None:
        """Leave now without awaiting anything, if the line is empty and the pace allows it."""
        now = time.monotonic()
        if self._line.closed or (self._line.empty and self._due(now) <= 0):
            return self._leave(now)
        return None

    async def acquire(self) -> Ticket:
        """Wait in line, then until the pace lets one more call leave; cancellable."""
        ticket = self.try_acquire()
        if ticket is not None:
            return ticket
        async with self._line.turn():
            while True:
                now = time.monotonic()
                self._learn(after_clean(self._pace, now=now), "probing up")
                wait = self._due(now)
                if wait <= 0 or self._line.closed:
                    return self._leave(now)
                await self._line.sleep(wait)

    async def refused(self, ticket: Ticket) -> None:
        """Learn from a refusal: see :func:`~kis_async.pace.after_refusal`."""
        self._refusals += 1
        sent = self._sent
        if ticket in sent:
            sent.remove(ticket)
        start = ticket.sent_at - 1.0
        accepted = sum(1 for t in sent if start < t.sent_at < ticket.sent_at)
        now = time.monotonic()
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
        ticket = _ticket(Ticket, (now, self._number, False))
        self._sent.append(ticket)
        return ticket

    def __repr__(self) -> str:
        pace = self._pace
        return f"Throttle(rate={pace.rate!r}, margin={pace.margin!r}, ceiling={pace.ceiling!r})"


def log_change(pace: Pace, why: str) -> None:
    """Say at INFO that the pace changed, and to what."""
    progress.info(
        "%s: pace now %.1f calls/s (%d a window, margin %.0f ms; ceiling %g/s)",
        why,
        pace.calls_per_second,
        pace.window_calls,
        pace.margin * 1000,
        pace.ceiling,
    )


_ticket = tuple.__new__
"""Builds a :class:`Ticket` without the Python-level ``__new__`` a NamedTuple has: a third of
the cost of leaving, on the path every call takes."""


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
