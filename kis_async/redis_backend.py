"""Sharing one appkey's token and call budget across processes and hosts, through Redis.

Installed with the ``redis`` extra; nothing else in kis_async imports this module or ``redis``
unless a client is given a ``redis_url`` or a ``redis`` client. :func:`open_shared` is the one
entry point. It works alike on a plain Redis (or one a Sentinel found), on Valkey and on a Redis
Cluster: every key one appkey uses carries one hash tag (:class:`Keys`), so all of them fall in
one hash slot, and every script is handed each key it touches in ``KEYS``.

- :class:`RedisPacer` books calls on one schedule kept in Redis, by the rules
  :class:`~kis_async.throttle.Throttle` keeps in one process: a Lua script reads the Redis
  server's clock and hands the caller the next slot, one ``interval`` after the previous ideal
  slot and with fewer than ``window_calls`` un-refused departures (of every process) in the
  window before it. The pace itself (:mod:`kis_async.pace`) is shared too, under a version, so
  the processes learn from refusals together. A slot further ahead than ``max_wait`` is refused
  instead of booked, so waiting stays bounded. This needs Redis's clock and an atomic
  read-and-book, which is why it is a script and not a redis-py primitive.
- :class:`RedisTokenStore` keeps the token in Redis and holds redis-py's :class:`~redis.lock.Lock`
  (with a timeout) around issuance, so one process issues and the others read; a holder that
  crashes frees the lock when it times out, and the others say so at WARNING while they wait.
- :class:`Keys` names every key, in one place.

When Redis cannot be reached the pacer fails closed by default (the call fails with a
:class:`~kis_async.errors.TransportError`); with ``fail_open=True`` it paces this process alone
instead, which keeps it working but can exceed the shared budget. A command is retried through
an outage as :data:`OUTAGE` says, with the same :class:`~kis_async.retry.Backoff` as every retry
(not redis-py's own ``Retry``, which sleeps on asyncio's clock rather than the client's). Every
local wait, for a slot, through an outage, for another process's lock, is on the client's
:class:`~kis_async.clock.Clock`; the slots themselves are on the Redis server's clock, the one
clock every process shares. Once a ride-out has failed, the outage is remembered
(:data:`OUTAGE_HOLD`) and the other commands fail at once until a probe.

What is read from Redis is input, not truth: anyone who can write to it can write any value
under these keys. A shared pace is adopted only if this client could have learned it, a schedule
no client would write is deleted rather than retried as an outage, and the token is read up to
:data:`~kis_async.tokencache.MAX_BYTES`. The scripts answer only in printable ASCII, and a token
that is not UTF-8 is no token, so a client handed in that decodes responses
(``decode_responses=True``) reads them as well. The Redis must still be trusted (it holds the
token).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)

from . import config
from .auth import Token, appkey_digest
from .clock import SYSTEM_CLOCK, Clock
from .errors import CallBudgetError, TransportError
from .pace import (
    DEFAULT_MARGIN,
    HISTORY,
    MAX_MARGIN,
    MIN_RATE,
    TIMER_SLACK,
    Pace,
    after_clean,
    after_refusal,
)
from .pacing import Call, Line, Pacer, log_change
from .retry import Backoff, RetryPolicy
from .throttle import Throttle, Ticket
from .tokencache import MAX_BYTES

log = logging.getLogger(__name__)
progress = logging.getLogger(config.PROGRESS_LOGGER)

R = TypeVar("R")

Client: TypeAlias = aioredis.Redis | aioredis.RedisCluster
"""A redis-py asyncio client to share through: a plain one (a Sentinel's ``master_for`` gives one
too) or a cluster's."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Every key kis_async keeps in Redis for one appkey on one host.

    ``name`` is :func:`~kis_async.auth.appkey_digest` of the appkey and host, a hash: neither is
    written to Redis. It is every key's hash tag (the part in braces), so all of one appkey's
    keys, and so every script's, fall in one hash slot, as Redis Cluster requires:

    - ``kis_async:{name}:departures``: a sorted set of every process's un-refused calls, scored
      by their slot (microseconds on the Redis clock), members ``<process>:<number>``;
    - ``kis_async:{name}:next``: the next ideal slot, in microseconds;
    - ``kis_async:{name}:pace:<rate>:<margin>``: a hash, ``version`` and ``pace`` (JSON): the
      pace learned from refusals, kept apart for each configured ceiling and margin;
    - ``kis_async:{name}:token``: the access token (JSON), expiring when it does;
    - ``kis_async:{name}:token:lock``: redis-py's lock around issuance;
    - ``kis_async:{name}:ledger:<account>:departures``, ``...:next`` and ``...:pace:...``: the
      same three for one account's ledger limit (:meth:`ledger`; ``<account>`` is a hash).
    """

    name: str
    scope: str = ""
    """Empty for the appkey's keys; ``ledger:<account hash>`` for an account's ledger."""

    @classmethod
    def of(cls, app_key: str, host: str) -> Keys:
        """The keys of ``app_key`` on ``host``."""
        return cls(appkey_digest(app_key, host))

    def ledger(self, account: str) -> Keys:
        """The keys of ``account``'s ledger pace, in the appkey's hash slot."""
        digest = hashlib.sha256(f"{self.name}\0{account}".encode()).hexdigest()[:16]
        return Keys(self.name, f"ledger:{digest}")

    @property
    def _prefix(self) -> str:
        scope = f":{self.scope}" if self.scope else ""
        return f"kis_async:{{{self.name}}}{scope}"

    @property
    def departures(self) -> str:
        return f"{self._prefix}:departures"

    @property
    def next_slot(self) -> str:
        return f"{self._prefix}:next"

    def pace(self, rate: float, margin: float) -> str:
        return f"{self._prefix}:pace:{rate:g}:{margin:g}"

    @property
    def token(self) -> str:
        return f"{self._prefix}:token"

    @property
    def token_lock(self) -> str:
        return f"{self._prefix}:token:lock"


_BOOK = """
-- Book the next slot at the pace the caller knows, unless another process changed the pace.
-- KEYS: departures, next_slot, pace (see Keys)
-- ARGV: version, interval_us, window_us, window_calls, max_wait_us, member, history_us, slack_us
-- Returns {wait_us, now_us}; {-1, now_us} if the slot is beyond max_wait (nothing booked);
-- {-2, now_us, version, pace} if the pace changed (nothing booked).
-- A value no client writes (a version too long to be a count or not printable ASCII, a slot
-- that is not a number or more than an hour ahead) is an error reply, not a booking: the caller
-- repairs the keys. What is returned is printable ASCII, so a client that decodes responses
-- reads it too: a pace that is not (or is over 4 KiB) is returned as 'unreadable'.
local departures, next_slot, pace = KEYS[1], KEYS[2], KEYS[3]
local version, interval, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local calls, max_wait, member = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local history, slack = tonumber(ARGV[7]), tonumber(ARGV[8])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ahead = 3600000000
local stored = redis.call('HGET', pace, 'version') or '0'
if #stored > 20 or stored:find('[^ -~]') then
  return redis.error_reply('kis_async: corrupt pace version')
end
if stored ~= version then
  local encoded = redis.call('HGET', pace, 'pace') or ''
  if #encoded > 4096 or encoded:find('[^ -~]') then encoded = 'unreadable' end
  return {-2, now, stored, encoded}
end
redis.call('ZREMRANGEBYSCORE', departures, '-inf', now - window - history)
local ideal = tonumber(redis.call('GET', next_slot) or '0')
if ideal == nil or ideal ~= ideal or ideal - now > ahead then
  return redis.error_reply('kis_async: corrupt next slot')
end
local latest = redis.call('ZREVRANGE', departures, 0, 0, 'WITHSCORES')
if latest[2] and tonumber(latest[2]) - now > ahead then
  return redis.error_reply('kis_async: corrupt departures')
end
local slot = math.max(ideal, now)
local nth = redis.call('ZREVRANGE', departures, calls - 1, calls - 1, 'WITHSCORES')
if nth[2] then slot = math.max(slot, tonumber(nth[2]) + window + 1) end
if slot - now > max_wait then return {-1, now} end
redis.call('ZADD', departures, slot, member)
local keep = math.ceil((slot - now + window + history) / 1000) + 1000
redis.call('PEXPIRE', departures, keep)
local after = math.max(ideal, slot - slack) + interval
redis.call('SET', next_slot, string.format('%.0f', after), 'PX', keep)
return {slot - now, now}
"""

_REFUSED = """
-- Forget a refused call; count the calls accepted in the second before it.
-- KEYS: departures, pace (see Keys)
-- ARGV: member, slot_us (the refused call's)
-- Returns {accepted, now_us, version, pace}, printable ASCII as _BOOK's ('unreadable' if not).
local departures, pace = KEYS[1], KEYS[2]
local member, sent = ARGV[1], tonumber(ARGV[2])
redis.call('ZREM', departures, member)
local accepted = redis.call('ZCOUNT', departures, '(' .. (sent - 1000000), '(' .. sent)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local version = string.sub(redis.call('HGET', pace, 'version') or '0', 1, 32)
if version:find('[^ -~]') then version = 'unreadable' end
local encoded = redis.call('HGET', pace, 'pace') or ''
if #encoded > 4096 or encoded:find('[^ -~]') then encoded = 'unreadable' end
return {accepted, now, version, encoded}
"""

_SET_PACE = """
-- Store a new pace, if nobody changed it since the version it was learned from.
-- KEYS: pace (see Keys); ARGV: version, encoded_pace. Returns the new version if stored, else 0.
local pace = KEYS[1]
local version, encoded = ARGV[1], ARGV[2]
if (redis.call('HGET', pace, 'version') or '0') ~= version then return 0 end
local count = tonumber(version)
if count == nil or count ~= count or count < 0 or count > 1e15 then count = 0 end
local new = string.format('%d', count + 1)
redis.call('HSET', pace, 'version', new, 'pace', encoded)
redis.call('PEXPIRE', pace, 86400000)
return new
"""

_DELETE_IF_TOKEN = """
-- Delete the stored token if it is still the one KIS refused.
-- KEYS: token (see Keys); ARGV: access_token. Returns the number of keys deleted.
local token = KEYS[1]
local value = redis.call('GET', token)
if value and cjson.decode(value)['access_token'] == ARGV[1] then
  return redis.call('DEL', token)
end
return 0
"""


OUTAGE = RetryPolicy(max_retries=8, backoff=0.1, max_backoff=1.0)
"""How long a Redis blip is ridden out (about 3-5 s, as a restart takes) before failing closed."""
_AT_ONCE = RetryPolicy(max_retries=0)
"""Failing open: one try, then this process goes on alone."""
_FAULTS = (RedisError, RedisClusterException, OSError)
"""What a command on Redis may raise: redis-py's errors (a cluster client's own, such as no node
reachable, are not :class:`~redis.exceptions.RedisError`) and the socket's."""
_BUSY = (ReadOnlyError, TryAgainError, ClusterDownError, OutOfMemoryError)
"""Answers that say Redis cannot serve the command now (a failover, a full server), ridden out
like an outage; any other :class:`~redis.exceptions.ResponseError` is Redis refusing the command
itself (a script failing on a value it read, a key of the wrong type, an ACL), which no retry
mends."""


OUTAGE_HOLD = 30.0
"""Seconds an established outage is remembered. Once one command's ride-out has failed, every
other command on the connection fails at once for this long (a Redis that hangs would otherwise
cost each of them its own ride-out, one after another: about 49 s each behind a proxy that stops
forwarding); then one try probes it again. Like the token manager remembering a failure for one
issue interval."""


class Outage:
    """What the commands on one Redis connection know of it being down: the last failed
    ride-out, and until when it holds (on the client's clock)."""

    def __init__(self) -> None:
        self.failure: str | None = None
        self.until = -math.inf

    def holding(self, clock: Clock) -> TransportError | None:
        """The error to fail with at once, while an established outage is remembered."""
        left = self.until - clock.monotonic()
        if self.failure is None or left <= 0:
            return None
        return TransportError(f"{self.failure}; not tried again for {left:.0f} s", source="redis")

    def remember(self, failure: str, clock: Clock) -> None:
        self.failure = failure
        self.until = clock.monotonic() + OUTAGE_HOLD

    def clear(self) -> None:
        self.failure = None
        self.until = -math.inf


def _outage(exc: BaseException) -> bool:
    """True if ``exc`` means Redis could not serve the command, as opposed to refusing it."""
    return not isinstance(exc, ResponseError) or isinstance(exc, _BUSY)


async def _through_outage(
    what: str,
    call: Callable[[], Awaitable[R]],
    *,
    clock: Clock,
    patient: bool = True,
    outage: Outage | None = None,
) -> R:
    """``call()``, retried while Redis is unreachable (if ``patient``); then a
    :class:`TransportError`. A :class:`~redis.exceptions.ResponseError` that is not an outage
    (:func:`_outage`) is raised as it is, at once: Redis answered, and the caller knows what the
    command read.

    With an ``outage`` shared by the connection's commands, a failed ride-out is remembered
    (:data:`OUTAGE_HOLD`): meanwhile every command fails at once, also one riding out already,
    and the first after it tries once, which ends the outage or remembers it again.
    """
    probing = False
    if outage is not None:
        held = outage.holding(clock)
        if held is not None:
            raise held
        probing = outage.failure is not None
    policy = OUTAGE if patient and not probing else _AT_ONCE
    tries = Backoff(policy, clock, "Redis", level=logging.INFO)
    while True:
        try:
            result = await call()
        except _FAULTS as exc:
            if not _outage(exc):
                if outage is not None:
                    outage.clear()
                raise
            failure = f"{what} unreachable ({type(exc).__name__})"
        else:
            if outage is not None:
                outage.clear()
            return result
        if not tries.left:
            if outage is not None:
                outage.remember(failure, clock)
            raise TransportError(failure, source="redis")
        await tries.wait(failure)
        held = outage.holding(clock) if outage is not None else None
        if held is not None:
            raise held


@dataclass(frozen=True, slots=True)
class Shared:
    """What a client uses from Redis: the shared pacer and token store, and the connection."""

    pacer: RedisPacer
    store: RedisTokenStore
    connection: Client
    keys: Keys
    fail_open: bool = False
    clock: Clock = SYSTEM_CLOCK
    outage: Outage = field(default_factory=Outage)
    """Shared by every command on ``connection``: one failed ride-out fails the rest fast."""
    owned: bool = True
    """Whether :meth:`aclose` closes ``connection``: not a client its owner handed in."""

    def ledger_pacer(self, account: str, start: Pace) -> RedisPacer:
        """The pacer of ``account``'s ledger limit (:mod:`kis_async.ledger`), shared by every
        process on the appkey like the appkey's pace, starting from ``start``."""
        return RedisPacer(
            self.connection,
            self.keys.ledger(account),
            start.ceiling,
            margin=start.base_margin,
            fail_open=self.fail_open,
            start=start,
            clock=self.clock,
            outage=self.outage,
        )

    async def aclose(self) -> None:
        """Close the connection if it is this one's own; a client handed in is left open."""
        if self.owned:
            await self.connection.aclose()


def open_shared(
    redis: str | Client,
    *,
    app_key: str,
    host: str,
    rate: float,
    margin: float = DEFAULT_MARGIN,
    fail_open: bool = False,
    clock: Clock = SYSTEM_CLOCK,
) -> Shared:
    """Share this appkey's budget and token through ``redis``: a URL (``redis://host:port/db``)
    to connect to, which :meth:`Shared.aclose` closes, or a client handed in (:data:`Client`),
    used as it is (its timeouts, its retries) and left open: it is its owner's.

    Keys are named by a hash of ``host`` and ``app_key`` (:class:`Keys`); neither is written to
    Redis.
    """
    connection: Client
    if isinstance(redis, str):
        connection = aioredis.Redis.from_url(redis, socket_connect_timeout=2.0, socket_timeout=5.0)
        owned = True
    else:
        connection, owned = redis, False
    keys = Keys.of(app_key, host)
    outage = Outage()
    return Shared(
        RedisPacer(
            connection, keys, rate, margin=margin, fail_open=fail_open, clock=clock, outage=outage
        ),
        RedisTokenStore(connection, keys, fail_open=fail_open, clock=clock, outage=outage),
        connection,
        keys,
        fail_open,
        clock,
        outage,
        owned,
    )


class Booking(NamedTuple):
    """A departure booked on the shared schedule: its slot (seconds on the Redis clock), and its
    member in the departures set."""

    sent_at: float
    member: str


class RedisPacer(Pacer[Booking | Ticket]):
    """One pace for everyone sharing ``keys``: at most the learned limit in any window.

    Callers in this process queue in a :class:`~kis_async.pacing.Line`; only the head books a
    slot (so a pace cut binds every process's next call, give or take one booked slot each),
    sleeps until it, and leaves. A refusal is learned from with the same rule as in one process
    (:func:`~kis_async.pace.after_refusal`), counting every process's departures, and the result
    is stored only if no other process changed the pace first (a compare-and-set on a version):
    four processes refused together slow down once, together.

    Its tickets are a :class:`Booking`, or the fallback :class:`~kis_async.throttle.Throttle`'s
    :class:`~kis_async.throttle.Ticket` for a call it let out alone while Redis was down
    (``fail_open``). Every slot is booked in Redis, which takes a round trip, so it keeps the
    contract's :meth:`~kis_async.pacing.Pacer.try_acquire`, which never grants one at once.
    """

    def __init__(
        self,
        client: Client,
        keys: Keys,
        rate: float,
        *,
        margin: float = DEFAULT_MARGIN,
        max_wait: float = 30.0,
        fail_open: bool = False,
        start: Pace | None = None,
        clock: Clock = SYSTEM_CLOCK,
        outage: Outage | None = None,
    ) -> None:
        pace_key = keys.pace(rate, margin)
        self._book_keys = [keys.departures, keys.next_slot, pace_key]
        self._refused_keys = [keys.departures, pace_key]
        self._pace_keys = [pace_key]
        self._max_wait_us = round(max_wait * 1_000_000)
        self._book = client.register_script(_BOOK)
        self._refused = client.register_script(_REFUSED)
        self._set_pace = client.register_script(_SET_PACE)
        self._clock = clock
        self._outage = outage if outage is not None else Outage()
        self._fallback = Throttle(rate, margin=margin, clock=clock) if fail_open else None
        self._pace = start if start is not None else Pace.start(rate, margin)
        """Until a process stores one, every process starts from the same ``start``."""
        self._configured = self._pace
        """What a corrupt shared pace falls back to."""
        self._warned_corrupt = False
        self._warned_repair = False
        self._redis = client
        self._version = "0"
        self._line = Line(clock)
        self._id = secrets.token_hex(6)
        self._number = 0
        self._redis_now = 0.0
        self._bound = False
        self._refusals = 0

    @property
    def pace(self) -> Pace:
        return self._pace

    @property
    def refusals(self) -> int:
        return self._refusals

    async def acquire(self, call: Call) -> Booking | Ticket:
        """Wait for this call's slot. Raises :class:`~kis_async.errors.TransportError` if Redis
        stays down (fail closed), :class:`~kis_async.errors.CallBudgetError` if the wait would
        be longer than ``max_wait``."""
        async with self._line.turn(call.priority):
            while not self._line.closed:
                if self._bound:
                    await self._store(after_clean(self._pace, now=self._redis_now), "probing up")
                member = self._next_member()
                try:
                    answer = await self._book_next(member)
                except TransportError as exc:
                    if self._fallback is None:
                        raise
                    log.warning("%s; pacing this process alone", exc.reason)
                    return await self._fallback.acquire(call)
                wait_us, now_us = int(answer[0]), int(answer[1])
                self._redis_now = now_us / 1e6
                if wait_us == -2:
                    self._sync(answer[2], answer[3])
                    continue
                if wait_us < 0:
                    raise CallBudgetError(
                        f"the shared call budget is booked more than {self._max_wait_us / 1e6:g} s "
                        "ahead (max_wait); this call was not sent"
                    )
                self._bound = wait_us > 0
                if wait_us:
                    await self._line.sleep(wait_us / 1e6)
                return Booking((now_us + wait_us) / 1e6, member)
            return Booking(self._redis_now, "")

    def _next_member(self) -> str:
        self._number += 1
        return f"{self._id}:{self._number}"

    async def _book_next(self, member: str) -> list[Any]:
        """Book ``member`` the next slot at the pace this process knows (the script says if the
        pace is stale).

        Failing open, a Redis fault is not ridden out: this process paces itself at once (and
        a refusal of a call it let out is learned by that local pacer).
        """
        pace = self._pace
        args: list[str | int] = [
            self._version,
            round(pace.interval * 1e6),
            round(pace.window * 1e6),
            pace.window_calls,
            self._max_wait_us,
            member,
            round(HISTORY * 1e6),
            round(TIMER_SLACK * 1e6),
        ]

        async def book() -> list[Any]:
            answer: list[Any] = await _through_outage(
                "shared pacer",
                lambda: self._book(keys=self._book_keys, args=args),
                clock=self._clock,
                patient=self._fallback is None,
                outage=self._outage,
            )
            return answer

        try:
            return await book()
        except ResponseError as exc:
            await self._repair(exc)
        try:
            return await book()
        except ResponseError as exc:
            raise TransportError(
                f"shared pacer: Redis refused the booking script ({type(exc).__name__})",
                source="redis",
            ) from None

    async def _repair(self, exc: ResponseError) -> None:
        """The booking script failed on what it read (a value no client writes, or a key of
        another type): delete this pacer's keys, which loses only pacing history and the learned
        pace, and say so once at WARNING. Not an outage: Redis answered."""
        if not self._warned_repair:
            self._warned_repair = True
            log.warning(
                "the shared pacer's keys in Redis are corrupt (%s); deleting them "
                "(only pacing history is lost)",
                type(exc).__name__,
            )
        with contextlib.suppress(*_FAULTS):
            await self._redis.delete(*self._book_keys)
        self._version = "0"
        self._pace = self._configured

    def close(self) -> None:
        self._line.close()

    async def refused(self, ticket: Booking | Ticket) -> None:
        """Learn from a refusal, counting the calls every process sent in the second before."""
        self._refusals += 1
        if isinstance(ticket, Ticket):
            if self._fallback is not None:
                await self._fallback.refused(ticket)
            return
        if self._outage.holding(self._clock) is not None:
            log.warning("shared pacer unreachable; refusal not shared")
            return
        try:
            answer = await self._refused(
                keys=self._refused_keys, args=[ticket.member, round(ticket.sent_at * 1e6)]
            )
        except _FAULTS as exc:
            failed = "unreachable" if _outage(exc) else "refused the command"
            log.warning("shared pacer %s (%s); refusal not shared", failed, type(exc).__name__)
            return
        accepted, now = int(answer[0]), int(answer[1]) / 1e6
        self._sync(answer[2], answer[3])
        await self._store(
            after_refusal(self._pace, sent_at=ticket.sent_at, accepted=accepted, now=now),
            f"the gateway refused a call ({accepted} accepted in the second before)",
        )

    async def _store(self, pace: Pace, why: str) -> None:
        """Make ``pace`` the shared one, unless another process changed it first."""
        if pace == self._pace or self._outage.holding(self._clock) is not None:
            return
        with contextlib.suppress(*_FAULTS):
            stored = await self._set_pace(
                keys=self._pace_keys, args=[self._version, msgspec.json.encode(pace)]
            )
            if stored:
                self._pace = pace
                self._version = stored.decode() if isinstance(stored, bytes) else str(stored)
                log_change(pace, why)

    def _sync(self, version: bytes | str, encoded: bytes | str) -> None:
        """Adopt the shared pace another process stored, if this client could have stored it.

        Redis is input, not truth: whoever can write to it could otherwise set a pace far over
        ``rate_limit``, or one that divides by zero or stops every call. A pace out of bounds
        is corrupt: said once at WARNING, and this client goes on at its configured pace (its
        next change replaces the stored one, by the same compare-and-set).
        """
        version = version.decode() if isinstance(version, bytes) else version
        if version == self._version:
            return
        self._version = version
        if not encoded:
            return
        # Decoded as numbers by name, then built by Pace itself: msgspec 0.18 (the floor) fails
        # to fill a frozen, slotted dataclass's defaults (FrozenInstanceError), and an unknown
        # or missing field is as corrupt as a wrong number.
        try:
            raw: dict[str, Any] = msgspec.json.decode(encoded, type=dict[str, int | float | None])
            pace = Pace(**raw)
            believable = _believable(pace, self._configured)
        except (msgspec.MsgspecError, TypeError):  # TypeError: a field missing, unknown or null
            believable = False
        if believable:
            self._pace = pace
            return
        self._pace = self._configured
        if not self._warned_corrupt:
            self._warned_corrupt = True
            log.warning(
                "the pace stored in Redis is corrupt or out of bounds; "
                "this process keeps its configured pace"
            )


_MAX_WARY_STEPS = 64
"""More clean wary steps than this is no pace a client wrote (each halves a 30 s wait)."""


def _believable(pace: Pace, configured: Pace) -> bool:
    """True if a client configured as ``configured`` could have learned ``pace``."""

    def finite(value: float | None) -> bool:
        return value is None or math.isfinite(value)

    return (
        pace.ceiling == configured.ceiling
        and pace.base_margin == configured.base_margin
        and MIN_RATE <= pace.rate <= configured.ceiling
        and 0 <= pace.margin <= MAX_MARGIN
        and finite(pace.changed_at)
        and finite(pace.wall)
        and (pace.wall is None or pace.wall >= 0)
        and isinstance(pace.wary_steps, int)
        and 0 <= pace.wary_steps <= _MAX_WARY_STEPS
    )


class RedisTokenStore:
    """The appkey's token in Redis (:attr:`Keys.token`), with a lock (:attr:`Keys.token_lock`,
    and a timeout on it) around issuance.

    Waiting for another process's lock polls it every ``poll`` seconds on the client's clock, and
    says so at WARNING every ``warn_every`` seconds, for at most ``lock_wait`` seconds. Failing
    open (``fail_open=True``), an unreachable Redis is not waited for: this process issues and
    keeps its own token meanwhile, as it would without Redis.
    """

    def __init__(
        self,
        client: Client,
        keys: Keys,
        *,
        lock_timeout: float = 150.0,
        lock_wait: float = 300.0,
        poll: float = 0.05,
        warn_every: float = 10.0,
        fail_open: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        outage: Outage | None = None,
    ) -> None:
        self._fail_open = fail_open
        self._outage = outage if outage is not None else Outage()
        self._redis = client
        self._key = keys.token
        self._lock_key = keys.token_lock
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait
        self._poll = poll
        self._warn_every = warn_every
        self._clock = clock
        self._discard = client.register_script(_DELETE_IF_TOKEN)

    def lock(self) -> AbstractAsyncContextManager[object]:
        return self._locked()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        lock = self._redis.lock(self._lock_key, timeout=self._lock_timeout, thread_local=False)
        token = secrets.token_hex(16)

        async def take() -> bool:
            taken: bool = await self._call(
                lambda: lock.acquire(token=token, blocking=False), otherwise=True
            )
            return taken

        now = self._clock.monotonic
        started = warned = now()
        acquired = await take()
        if not acquired:
            progress.info("waiting for another process's token lock: it is issuing the token")
        while not acquired:
            await self._clock.sleep(self._poll)
            acquired = await take()
            waited = now() - started
            if acquired:
                break
            if waited >= self._lock_wait:
                raise TransportError(
                    "another process has held the token lock too long", source="redis"
                )
            if now() - warned >= self._warn_every:
                warned = now()
                log.warning(
                    "waiting %.0f s for another process's token lock (a crashed holder's lock "
                    "expires after %.0f s)",
                    waited,
                    self._lock_timeout,
                )
        try:
            yield
        finally:
            with contextlib.suppress(TransportError):
                await self._call(lock.release)

    async def load(self) -> Token | None:
        """The stored token, read up to :data:`~kis_async.tokencache.MAX_BYTES` as the file
        cache is: redis-py reads a reply of any size, and a token is a few hundred bytes.

        A value over that, undecodable, or not a string is no token (said at WARNING): the next
        issuance replaces it. The token manager checks the token itself.
        """

        async def read() -> bytes | str:
            try:
                data: bytes | str = await self._redis.getrange(self._key, 0, MAX_BYTES)
            except ResponseError as exc:
                if _outage(exc):
                    raise
                log.warning("the token stored in Redis is not a string; ignoring it")
                return b""
            except UnicodeDecodeError:  # a client handed in that decodes responses
                log.warning("the token stored in Redis is corrupt; ignoring it")
                return b""
            return data

        data = await self._call(read)
        if not data:
            return None
        if len(data) > MAX_BYTES:
            log.warning("the token stored in Redis is over %d KiB; ignoring it", MAX_BYTES >> 10)
            return None
        try:
            return msgspec.json.decode(data, type=Token)
        except msgspec.MsgspecError:
            log.warning("the token stored in Redis is corrupt; ignoring it")
            return None

    async def save(self, token: Token) -> None:
        ttl_ms = max(1, round((token.expires_at - self._clock.time()) * 1000))
        encoded = msgspec.json.encode(token)
        await self._call(lambda: self._redis.set(self._key, encoded, px=ttl_ms))

    async def discard(self, access_token: str) -> None:
        await self._call(lambda: self._discard(keys=[self._key], args=[access_token]))

    async def _call(self, call: Callable[[], Awaitable[Any]], otherwise: Any = None) -> Any:
        """``call()`` through an outage; failing open, ``otherwise`` at once instead.

        Redis refusing the command (a script failing on what it read, a key of another type)
        fails the same way as an outage, but at once and said as what it is."""
        try:
            try:
                return await _through_outage(
                    "token store",
                    call,
                    clock=self._clock,
                    patient=not self._fail_open,
                    outage=self._outage,
                )
            except ResponseError as refused:
                raise TransportError(
                    f"token store: Redis refused the command ({type(refused).__name__})",
                    source="redis",
                ) from None
        except TransportError as exc:
            if not self._fail_open:
                raise
            log.warning("%s; this process keeps its own token meanwhile", exc.reason)
            return otherwise
