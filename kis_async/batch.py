"""Many tickers at once: a fixed pool of workers, one outcome per ticker, nothing dropped.

A batch of any size runs on ``concurrency`` worker tasks that pull tickers from one iterator, so
memory and open connections stay bounded however long the list is. The pacer, not the worker
count, sets the speed; the workers only have to be enough to keep the pacer busy while earlier
calls are still waiting for their answers.

Each ticker's error is its own copy, with the ticker set, and carries no traceback, context or
cause: those would keep the request's frames (its headers, the token) alive for as long as the
caller keeps the batch. An exception that is not a :class:`KISError` (a bug, or a fault nothing
anticipated) is contained the same way, as that ticker's error, and logged.

A :class:`Progress`, if given, hears how far a batch has got: every ticker as pending when the
batch starts, each one as it ends, and the ones never done when it is closed or cancelled.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeAlias, TypeVar

from .errors import KISError

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Succeeded(Generic[T]):
    """A ticker that was answered: ``result`` is its answer, ``error`` is ``None``."""

    pdno: str
    result: T
    error: None = None

    @property
    def ok(self) -> Literal[True]:
        """Always true: the ticker was answered."""
        return True


@dataclass(frozen=True, slots=True)
class Failed:
    """A ticker that was not: ``error`` says why, ``result`` is ``None``."""

    pdno: str
    error: KISError
    result: None = None

    @property
    def ok(self) -> Literal[False]:
        """Always false: the ticker was not answered."""
        return False


Outcome: TypeAlias = Succeeded[T] | Failed
"""What became of one ticker: exactly one of ``result`` and ``error`` is set.

Two classes rather than one with two optional fields, so that a type checker knows the other
field once one is tested: after ``if outcome.error: continue`` (or ``outcome.error is not
None``, or ``not outcome.ok``), ``outcome.result`` is the answer, not ``T | None``.
``isinstance`` and ``match`` take :class:`Succeeded` and :class:`Failed`."""


@dataclass(slots=True)
class Batch(Generic[T]):
    """Every ticker of a bulk check, each in exactly one of the two dicts, in input order."""

    results: dict[str, T] = field(default_factory=dict)
    errors: dict[str, KISError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every ticker succeeded."""
        return not self.errors

    def add(self, outcome: Outcome[T]) -> None:
        """File one ticker's outcome under ``results`` or ``errors``."""
        if outcome.error is not None:
            self.errors[outcome.pdno] = outcome.error
        else:
            self.results[outcome.pdno] = outcome.result

    def __len__(self) -> int:
        return len(self.results) + len(self.errors)


class Progress(Protocol):
    """Who hears how far a batch has got (:class:`~kis_async.metrics.Metrics`)."""

    def pending(self, tickers: int) -> None:
        """``tickers`` joined the batch; negative, they left it undone (closed, cancelled)."""

    def done(self, error: KISError | None) -> None:
        """One ticker ended: answered (``None``), or failed with ``error``."""


async def stream(
    pdnos: Sequence[str],
    fetch: Callable[[str], Awaitable[T]],
    concurrency: int,
    progress: Progress | None = None,
) -> AsyncGenerator[Outcome[T], None]:
    """Yield one :data:`Outcome` per ticker in completion order.

    Closing or cancelling the iterator cancels the calls still in flight and waits for them to
    unwind, so no task outlives it.
    """
    queue: asyncio.Queue[Outcome[T]] = asyncio.Queue(maxsize=max(1, concurrency))
    pending = iter(pdnos)
    ended = 0

    async def work() -> None:
        nonlocal ended
        for pdno in pending:
            outcome: Outcome[T]
            try:
                outcome = Succeeded(pdno, await fetch(pdno))
            except Exception as exc:
                outcome = Failed(pdno, _error_of(exc, pdno))
            if progress is not None:
                ended += 1
                progress.done(outcome.error)
            await queue.put(outcome)

    if progress is not None:
        progress.pending(len(pdnos))
    workers = [asyncio.create_task(work()) for _ in range(min(concurrency, len(pdnos)))]
    try:
        for _ in range(len(pdnos)):
            yield await queue.get()
    finally:
        await _stop(workers)
        if progress is not None and ended < len(pdnos):
            progress.pending(ended - len(pdnos))


async def collect(
    pdnos: Sequence[str],
    fetch: Callable[[str], Awaitable[T]],
    concurrency: int,
    progress: Progress | None = None,
) -> Batch[T]:
    """Run the whole batch and return it with both dicts in input order.

    The same worker pool as :func:`stream`, writing straight into the two dicts: no outcome
    objects and no queue, since nobody consumes the outcomes one by one.
    """
    results: dict[str, T] = {}
    errors: dict[str, KISError] = {}
    pending = iter(pdnos)

    async def work() -> None:
        for pdno in pending:
            try:
                results[pdno] = await fetch(pdno)
            except Exception as exc:
                error = errors[pdno] = _error_of(exc, pdno)
                if progress is not None:
                    progress.done(error)
            else:
                if progress is not None:
                    progress.done(None)

    if progress is not None:
        progress.pending(len(pdnos))
    workers = [asyncio.create_task(work()) for _ in range(min(concurrency, len(pdnos)))]
    try:
        await asyncio.gather(*workers)
    finally:
        await _stop(workers)
        ended = len(results) + len(errors)
        if progress is not None and ended < len(pdnos):
            progress.pending(ended - len(pdnos))
    ordered: Batch[T] = Batch()
    for pdno in pdnos:
        if pdno in results:
            ordered.results[pdno] = results[pdno]
        else:
            ordered.errors[pdno] = errors[pdno]
    return ordered


def _error_of(exc: Exception, pdno: str) -> KISError:
    """The ticker's own error for ``exc``: a copy free of the frames that raised it, with the
    ticker set; an exception that is not a :class:`KISError` is contained and logged."""
    if isinstance(exc, KISError):
        mine = copy.copy(exc)
        if mine.pdno is None:
            mine.pdno = pdno
        return mine
    log.warning("unexpected %s checking %s", type(exc).__name__, pdno)
    return KISError(f"unexpected {type(exc).__name__}; please report it", pdno=pdno)


async def _stop(workers: list[asyncio.Task[None]]) -> None:
    """Cancel the workers still running and wait for them to unwind."""
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
