"""KIS's second rate limit: the account ledger's, one limit per account across some tr_ids.

Besides the appkey's per-second limit (``EGW00201``), KIS refuses calls the account ledger (원장)
cannot take that fast: ``EGW00215``, HTTP 500, ``rt_cd`` "1". Its users met it in 2026 on
inquire-balance during a re-check, and one project measured ledger inquiries (TTTC8434R,
TTTC8001R, TTTC8036R) at about one call a second **per account**, across those tr_ids together.
Which tr_ids KIS counts there is not documented, so none is assumed:

- a tr_id joins the ledger the first time KIS answers it with ``EGW00215``, and from then on
  every call of it waits for the ledger's pace, then for the appkey's pace like every call;
- the ledger's pace is one :class:`~kis_async.pacing.Pacer` for the account, shared by every
  tr_id that joined (in one process a :class:`~kis_async.throttle.Throttle`; with Redis a
  :class:`~kis_async.redis_backend.RedisPacer` on the account's ledger keys, so the pace
  learned is shared as the appkey's is). It starts at the measured
  :data:`~kis_async.spec.LEDGER_CALLS_PER_SECOND` as though a refusal just above it had been
  seen, and learns by the rule of :mod:`kis_async.pace`, under the appkey's ceiling;
- its refusals go to the ledger's pacer, never to the appkey's: a balance listing slowed to
  one call a second does not slow psbl-sell calls, unless psbl-sell draws ``EGW00215`` itself.

A refused call is retried, like an ``EGW00201``, through both pacers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import spec
from .clock import SYSTEM_CLOCK
from .pace import Pace
from .pacing import Call, Pacer

log = logging.getLogger(__name__)

PacerMaker = Callable[[Pace], Pacer[Any]]
"""Makes the ledger's pacer, starting from the given pace."""


class Ledger:
    """One account's ledger limit: which tr_ids it covers, and the pacer that keeps it."""

    def __init__(
        self,
        make_pacer: PacerMaker,
        *,
        ceiling: float,
        margin: float,
        now: Callable[[], float] = SYSTEM_CLOCK.monotonic,
    ) -> None:
        """``now`` reads the clock the pacer's rule runs on (:attr:`Pace.changed_at`): the
        client's monotonic clock for a :class:`~kis_async.throttle.Throttle`, epoch seconds
        (as the Redis server's clock reads) for a :class:`~kis_async.redis_backend.RedisPacer`."""
        self._make_pacer = make_pacer
        self._ceiling = ceiling
        self._margin = margin
        self._now = now
        self._pacer: Pacer[Any] | None = None
        self.tr_ids: set[str] = set()
        """The tr_ids that have drawn ``EGW00215``: the ones this ledger paces."""

    @property
    def pacer(self) -> Pacer[Any] | None:
        """The ledger's pacer, once a tr_id has drawn ``EGW00215``."""
        return self._pacer

    def covers(self, tr_id: str) -> bool:
        return tr_id in self.tr_ids

    async def acquire(self, call: Call) -> object | None:
        """Wait for the ledger's pace (asked only for a tr_id it :meth:`covers`); the ticket."""
        pacer = self._pacer
        if pacer is None:
            return None
        ticket: object = pacer.try_acquire(call) or await pacer.acquire(call)
        return ticket

    async def refused(self, call: Call, ticket: object | None) -> None:
        """KIS answered ``call`` with ``EGW00215``: the tr_id joins the ledger (its pacer made
        on the first), or the ledger's pacer learns from the refusal of a call it let go."""
        if self._pacer is None:
            self._pacer = self._make_pacer(self._start())
            # The refused call reached the ledger: it takes the first slot, so the retry waits
            # one interval rather than leaving at once into the same second.
            await self.acquire(call)
        if call.tr_id not in self.tr_ids:
            self.tr_ids.add(call.tr_id)
            log.warning(
                "KIS's account ledger refused %s (%s): its calls now keep the ledger's pace "
                "as well, %.1f calls/s to start",
                call.tr_id,
                spec.LEDGER_LIMITED,
                self._pacer.pace.calls_per_second,
            )
        elif ticket is not None:
            await self._pacer.refused(ticket)

    def _start(self) -> Pace:
        """The measured ledger limit, as though a refusal one call a second above it had just
        been seen: :func:`~kis_async.pace.after_clean` then probes warily past it."""
        rate = min(self._ceiling, spec.LEDGER_CALLS_PER_SECOND)
        start = Pace.start(self._ceiling, self._margin)
        return Pace(
            start.ceiling,
            start.base_margin,
            rate,
            start.margin,
            wall=rate + 1.0,
            changed_at=self._now(),
        )

    def close(self) -> None:
        if self._pacer is not None:
            self._pacer.close()
