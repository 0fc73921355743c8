"""How long to wait before trying again: the one place that decides a retry's wait.

Whether to retry is :func:`kis_async.verdict.classify`'s decision (or, for Redis, that the server
could not be reached). Every loop that retries, the transport's API calls, the token issuer's
requests and the Redis backend's commands, counts its tries and waits through one
:class:`Backoff` made from a :class:`RetryPolicy` and the client's clock, so the count, the delay
and the sleep are decided here and nowhere else.

Two waits are not retries and are not counted here: re-issuing a refused token (the transport
allows two renewals a call, whatever ``max_retries`` is, so ``max_retries=0`` still survives a
token's expiry) and KIS's one-token-a-minute interval (:mod:`kis_async.auth` waits it out once).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from . import validate
from .clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded, honouring a server's ``Retry-After``.

    Pass one to :class:`~kis_async.KISClient` as ``retry=RetryPolicy(max_retries=3)``, the way
    aiohttp takes a ``ClientTimeout``. ``uniform`` is injectable so a test can check delays
    without chance; the waits themselves are the client's clock's (``KISClient(clock=...)``).
    """

    max_retries: int = 5
    """Tries after the first for a transient fault; 0 means never retry."""
    backoff: float = 0.2
    """First delay in seconds; doubles per try, up to ``max_backoff``, with up to 50% jitter."""
    max_backoff: float = 5.0
    max_retry_after: float = 30.0
    """The longest ``Retry-After`` honoured; a server asking for more gets this much."""
    uniform: Callable[[float, float], float] = field(default=random.uniform, repr=False)

    def __post_init__(self) -> None:
        validate.count("max_retries", self.max_retries, minimum=0, maximum=100)
        validate.positive("backoff", self.backoff, at_most=3600)
        validate.positive("max_backoff", self.max_backoff, at_most=3600)
        validate.non_negative("max_retry_after", self.max_retry_after, below=3601)

    def delay(self, retry: int, after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based).

        The server's ``after`` wins when it asks for longer than the backoff, up to
        ``max_retry_after``.
        """
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** min(retry, 64))
        backoff = ceiling * self.uniform(0.5, 1.0)
        if after is None or math.isnan(after):
            return backoff
        return max(backoff, min(after, self.max_retry_after))


class Backoff(msgspec.Struct):
    """One operation's retries under a :class:`RetryPolicy`, waited out on a clock.

    Made afresh for each operation (an API call, at its first retry; a token request, a Redis
    command): :attr:`left` says whether the policy allows another try, and :meth:`wait` says so
    in the log (``what`` is retried, at ``level``), sleeps the policy's delay for that retry and
    counts it. A msgspec Struct rather than a class with an ``__init__``: a Struct is built in C
    (about 1.4k instructions less, by benchmarks/instructions.py, when one was made for every
    API call).
    """

    policy: RetryPolicy
    clock: Clock
    what: str
    level: int = logging.DEBUG
    used: int = 0
    """Retries waited for so far."""

    @property
    def left(self) -> bool:
        """True while the policy allows another retry."""
        return self.used < self.policy.max_retries

    async def wait(self, why: object, after: float | None = None) -> None:
        """Wait before the next retry: the policy's delay, or the server's ``after`` where the
        policy honours it. ``why`` (the error that failed this try) is logged with the delay."""
        delay = self.policy.delay(self.used, after)
        self.used += 1
        log.log(self.level, "%s retry %d in %.2f s after: %s", self.what, self.used, delay, why)
        await self.clock.sleep(delay)
