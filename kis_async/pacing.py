"""What a pacer is: the contract the transport calls, and the parts both pacers share.

Two pacers keep the rule of :mod:`kis_async.pace`: :class:`~kis_async.throttle.Throttle` for one
process, :class:`~kis_async.redis_backend.RedisPacer` for every process on an appkey. The
transport knows either only as a :class:`Pacer`: before each try it hands over the :class:`Call`
it is about to make (its tr_id and its :class:`Priority`) and gets back a *ticket*, the pacer's
own record of that departure, which it gives back if the gateway refuses the call. What a ticket
holds, and how the pacer keeps its books, is each pacer's own business.

The call is carried for what comes next, and not read yet: limits that KIS counts per tr_id,
and single calls served before bulk work. Today both pacers keep one limit and serve callers in
the order they came.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

import msgspec

from . import config
from .clock import Clock
from .pace import Pace

progress = logging.getLogger(config.PROGRESS_LOGGER)

TicketT = TypeVar("TicketT")


class Priority(enum.Enum):
    """Which kind of work a call is part of."""

    INTERACTIVE = "interactive"
    """A call someone waits on by itself: one ticker, a page of holdings, a bot's own inquiry."""
    BULK = "bulk"
    """One call of a batch (:meth:`~kis_async.KISClient.check_sellable` and its kin)."""


class Call(msgspec.Struct, frozen=True):
    """What a call is, as a pacer sees it before it leaves."""

    tr_id: str
    priority: Priority = Priority.INTERACTIVE


class Pacer(abc.ABC, Generic[TicketT]):
    """What the transport needs from a pacer: leave in time, and hear about refusals.

    Every try of every call goes through :meth:`try_acquire` or else :meth:`acquire`, retries
    included; the ticket either returns is handed to :meth:`refused` if the gateway refuses
    that try (``EGW00201``). ``TicketT`` is the pacer's own record of a departure.
    """

    def try_acquire(self, call: Call) -> TicketT | None:
        """A ticket at once, without awaiting anything, if this pacer can grant one from what it
        knows here and now; else ``None``, and the caller awaits :meth:`acquire`.

        This default never grants one: it is for a pacer whose every slot takes a round trip.
        The request path asks before every try, since a call that leaves without awaiting is
        cheaper than one that awaits a slot already free.
        """
        return None

    @abc.abstractmethod
    async def acquire(self, call: Call) -> TicketT:
        """Return once ``call`` may leave; the ticket names that departure. Cancellable."""

    @abc.abstractmethod
    async def refused(self, ticket: TicketT) -> None:
        """The gateway refused the call that left with ``ticket``: learn from it."""

    @property
    @abc.abstractmethod
    def pace(self) -> Pace:
        """The pace in force."""

    @property
    @abc.abstractmethod
    def refusals(self) -> int:
        """Calls reported refused so far."""

    @abc.abstractmethod
    def close(self) -> None:
        """Let every waiting caller go at once: the client is closing and their calls will fail."""


class Line:
    """Callers take turns in arrival order; only the one whose turn it is goes on.

    Why not ``asyncio.Lock``: its fairness is not part of its contract, and a pacer that lets a
    late caller overtake one that has waited breaks the order every caller relies on.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sleeper: asyncio.Task[object] | None = None
        self._woken = False
        self.closed = False
        """Set by :meth:`close`: nobody waits any more."""

    @property
    def empty(self) -> bool:
        return not self._waiters

    async def sleep(self, delay: float) -> None:
        """The head's wait on the clock, cut short by :meth:`close`.

        It is the clock's own sleep, with no task in between (each would cost a turn of the
        event loop on every wake-up); :meth:`close` cuts it short by cancelling the sleeping
        task and taking that cancellation back here, as ``asyncio.timeout`` does. A
        cancellation from anywhere else goes on as usual.
        """
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a pacer waits inside a task")
        cancelling = task.cancelling()
        self._sleeper = task
        try:
            await self._clock.sleep(delay)
        except asyncio.CancelledError:
            if not self._woken or task.uncancel() > cancelling:
                raise
        finally:
            self._sleeper = None
            self._woken = False

    def close(self) -> None:
        """End every wait in line now, and every later one before it starts."""
        self.closed = True
        for waiter in self._waiters:
            _wake(waiter)
        if self._sleeper is not None and not self._woken:
            self._woken = True
            self._sleeper.cancel()

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


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
