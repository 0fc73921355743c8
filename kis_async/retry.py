"""How long to wait before trying again: the one place that computes a retry's delay.

Whether to retry is :func:`kis_async.verdict.classify`'s decision; the loops in the transport and
the token issuer ask :class:`RetryPolicy` only for the delay and for how many tries there are, and
wait on the client's clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from . import validate


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
