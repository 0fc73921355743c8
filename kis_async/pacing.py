"""What a pacer is: the contract the transport calls, and the parts both pacers share.

Two pacers keep the rule of :mod:`kis_async.pace`: :class:`~kis_async.throttle.Throttle` for one
process, :class:`~kis_async.redis_backend.RedisPacer` for every process on an appkey. The
transport knows either only as a :class:`Pacer`: before each try it hands over the :class:`Call`
it is about to make (its tr_id and its :class:`Priority`) and gets back a *ticket*, the pacer's
own record of that departure, which it gives back if the gateway refuses the call. What a ticket
holds, and how the pacer keeps its books, is each pacer's own business.

Both pacers queue their callers in one :class:`Line`, which reads the call's priority: single
calls go ahead of bulk work, each kind first in, first out, and bulk work keeps at least one turn
in :data:`BULK_EVERY` while both wait. Priority orders departures and nothing else: every call
still keeps the same pace. The tr_id is carried for what comes next, and not read yet: limits
that KIS counts per tr_id. Today both pacers keep one limit.
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
    """Which kind of work a call is part of: a pacer lets single calls leave before bulk work."""

    INTERACTIVE = "interactive"
    """A call someone waits on by itself: one ticker, a bot's own inquiry
    (:meth:`~kis_async.KISClient.sellable_quantity`, :meth:`~kis_async.KISClient.get`)."""
    BULK = "bulk"
    """One call of a batch (:meth:`~kis_async.KISClient.check_sellable` and its kin), or a page
    of a listing (:meth:`~kis_async.KISClient.holdings`, :meth:`~kis_async.KISClient.pages`)."""


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


BULK_EVERY = 5
"""While single calls and bulk work both wait, every this-many-th turn is bulk work's: an
interactive flood leaves bulk work a fifth of the pace, and a single call waits for at most one
bulk departure more than it would behind single calls alone."""


class _Place:
    """One caller's place in a :class:`Line`: its kind, and the future its turn sets."""

    __slots__ = ("bulk", "ready")

    bulk: bool
    ready: asyncio.Future[None]

    def __init__(self, bulk: bool) -> None:
        self.bulk = bulk


class Line:
    """Callers take turns, single calls before bulk work, each kind first in, first out; only
    the one whose turn it is goes on.

    When a turn ends the next goes to the longest-waiting :attr:`Priority.INTERACTIVE` caller,
    unless ``BULK_EVERY - 1`` of them in a row have gone ahead of bulk work that was waiting:
    then to the longest-waiting :attr:`Priority.BULK` caller, so bulk work is never starved. A
    bulk caller whose turn it is, waiting on the clock for a slot it has promised nothing for
    (:meth:`sleep` with ``give_way``), steps aside for a single call that is waiting or comes
    meanwhile, on the same rule, and is first of the bulk callers again.

    Why not ``asyncio.Lock``: its fairness is not part of its contract, and a pacer that lets a
    late caller overtake one of its kind that has waited breaks the order every caller relies on.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._holder: _Place | None = None
        """Whose turn it is; ``None`` while nobody waits."""
        self._interactive: deque[_Place] = deque()
        self._bulk: deque[_Place] = deque()
        self._passed = 0
        """Single calls given a turn in a row while bulk work waited, since its last turn."""
        self._sleeper: asyncio.Task[object] | None = None
        self._gives_way = False
        """The sleeper is bulk work that may step aside for a single call."""
        self._cut = False
        """This line cancelled the sleeper: for :meth:`close`, or to let a single call go."""
        self.closed = False
        """Set by :meth:`close`: nobody waits any more."""

    @property
    def empty(self) -> bool:
        return self._holder is None

    async def sleep(self, delay: float, *, give_way: bool = False) -> None:
        """The head's wait on the clock, cut short by :meth:`close`.

        ``give_way``: the head has promised nothing for the slot it waits for (a Throttle's has
        not; a RedisPacer's has booked it), so if it is bulk work and a single call comes, it
        steps aside as the class says, and this returns once its turn has come back.

        It is the clock's own sleep, with no task in between (each would cost a turn of the
        event loop on every wake-up); the line cuts it short by cancelling the sleeping task
        and taking that cancellation back here, as ``asyncio.timeout`` does. A cancellation
        from anywhere else goes on as usual.
        """
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a pacer waits inside a task")
        holder = self._holder
        if give_way and holder is not None and holder.bulk:
            if self._interactive and self._passed < BULK_EVERY - 1:
                # A single call came between this caller's turn and this wait.
                await self._step_aside(holder)
                return
            self._gives_way = True
        cancelling = task.cancelling()
        self._sleeper = task
        try:
            await self._clock.sleep(delay)
        except asyncio.CancelledError:
            if not self._cut or task.uncancel() > cancelling:
                raise
        finally:
            self._sleeper = None
            self._gives_way = False
            cut, self._cut = self._cut, False
        if cut and holder is not None and not self.closed:
            await self._step_aside(holder)

    def close(self) -> None:
        """End every wait in line now, and every later one before it starts."""
        self.closed = True
        for place in (*self._interactive, *self._bulk):
            _wake(place.ready)
        self._interactive.clear()
        self._bulk.clear()
        if self._sleeper is not None and not self._cut:
            self._cut = True
            self._sleeper.cancel()

    @contextlib.asynccontextmanager
    async def turn(self, priority: Priority) -> AsyncIterator[None]:
        """Wait for this caller's turn; the next caller's turn starts when the block ends."""
        place = _Place(priority is Priority.BULK)
        if self._holder is None:
            self._holder = place
        elif not self.closed:
            self._join(place)
            await self._wait(place)
        try:
            yield
        finally:
            if self._holder is place:
                if place.bulk:
                    self._passed = 0
                self._pass_on()

    async def _step_aside(self, place: _Place) -> None:
        """The bulk caller whose turn it is lets the single calls waiting go first, and waits
        for its turn again, first of the bulk callers."""
        self._join(place, first=True)
        self._pass_on()
        await self._wait(place)

    def _join(self, place: _Place, *, first: bool = False) -> None:
        """Queue ``place`` (a bulk caller stepping aside goes ``first``); a single call cuts
        short the sleep of bulk work that may give way to it."""
        place.ready = asyncio.get_running_loop().create_future()
        if not place.bulk:
            self._interactive.append(place)
            sleeper = self._sleeper
            if self._gives_way and sleeper and not self._cut and self._passed < BULK_EVERY - 1:
                self._cut = True
                sleeper.cancel()
        elif first:
            self._bulk.appendleft(place)
        else:
            self._bulk.append(place)

    async def _wait(self, place: _Place) -> None:
        """Until ``place``'s turn; cancelled, it leaves the line (or passes on a turn just come)."""
        try:
            await place.ready
        except BaseException:
            if self._holder is place:
                self._pass_on()
            else:
                with contextlib.suppress(ValueError):
                    (self._bulk if place.bulk else self._interactive).remove(place)
            raise

    def _pass_on(self) -> None:
        """Give the turn to the next caller, by the class's rule; or to nobody."""
        interactive, bulk = self._interactive, self._bulk
        if interactive and (not bulk or self._passed < BULK_EVERY - 1):
            place = interactive.popleft()
            self._passed = self._passed + 1 if bulk else 0
        elif bulk:
            place = bulk.popleft()
        else:
            self._holder = None
            return
        self._holder = place
        _wake(place.ready)


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
