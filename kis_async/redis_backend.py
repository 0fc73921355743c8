"""Sharing one appkey's token and call budget across processes and hosts, through Redis.

Installed with the ``redis`` extra; nothing else in kis_async imports this module or ``redis``
unless a client is given a ``redis_url``. :func:`open_shared` is the one entry point.

- :class:`RedisPacer` books calls on one schedule kept in Redis: a Lua script reads the Redis
  server's clock and hands each caller the next slot, ``interval`` after the previous one
  (GCRA with a burst of one). However many processes share the key, admissions are evenly
  spaced, so any ``rate + 1`` of them span ``1 + margin`` seconds, as with
  :class:`~kis_async.throttle.Throttle` in one process. A slot further ahead than ``max_wait``
  is refused instead of booked, so waiting stays bounded. This needs Redis's clock and an atomic
  read-and-book, which is why it is a script and not a redis-py primitive.
- :class:`RedisTokenStore` keeps the token in Redis and holds redis-py's :class:`~redis.lock.Lock`
  (with a timeout) around issuance, so one process issues and the others read; a holder that
  crashes frees the lock when it times out, and the others say so at WARNING while they wait.

When Redis cannot be reached the pacer fails closed by default (the call fails with a
:class:`~kis_async.errors.TransportError`); with ``fail_open=True`` it paces this process alone
instead, which keeps it working but can exceed the shared budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .auth import Token, appkey_digest
from .errors import RateLimitError, TransportError
from .throttle import DEFAULT_MARGIN, Throttle

log = logging.getLogger(__name__)

_BOOK_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[2]) then return -1 end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval),
           'PX', math.ceil((wait + interval) / 1000) + 1000)
return wait
"""

_DELETE_IF_TOKEN = """
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value)['access_token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Shared:
    """What a client uses from Redis: the shared pacer and token store, and the connection."""

    pacer: RedisPacer
    store: RedisTokenStore
    connection: aioredis.Redis

    async def aclose(self) -> None:
        await self.connection.aclose()


def open_shared(
    url: str,
    *,
    app_key: str,
    host: str,
    rate: float,
    margin: float = DEFAULT_MARGIN,
    fail_open: bool = False,
) -> Shared:
    """Connect to ``url`` (``redis://host:port/db``) and share this appkey's budget and token.

    Keys are named by a hash of ``host`` and ``app_key``; neither is written to Redis.
    """
    connection = aioredis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
    key = f"kis_async:{appkey_digest(app_key, host)}"
    return Shared(
        RedisPacer(connection, key + ":calls", rate, margin=margin, fail_open=fail_open),
        RedisTokenStore(connection, key + ":token"),
        connection,
    )


class RedisPacer:
    """At most ``rate`` calls in any 1-second window for everyone sharing ``key``."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        rate: float,
        *,
        margin: float = DEFAULT_MARGIN,
        max_wait: float = 30.0,
        fail_open: bool = False,
    ) -> None:
        self._key = key
        self._interval_us = round((1 + margin) / rate * 1_000_000)
        self._max_wait_us = round(max_wait * 1_000_000)
        self._book = client.register_script(_BOOK_SLOT)
        self._fallback = Throttle(rate, margin=margin) if fail_open else None

    async def acquire(self) -> None:
        """Wait for this call's slot; raises if Redis is down (fail closed) or the wait is long."""
        try:
            wait_us = int(
                await self._book(keys=[self._key], args=[self._interval_us, self._max_wait_us])
            )
        except (RedisError, OSError) as exc:
            if self._fallback is None:
                raise TransportError(f"shared pacer unreachable ({type(exc).__name__})") from None
            log.warning(
                "shared pacer unreachable (%s); pacing this process alone", type(exc).__name__
            )
            await self._fallback.acquire()
            return
        if wait_us < 0:
            raise RateLimitError(
                rt_cd="1",
                msg_cd="",
                msg1="the shared call budget is booked further ahead than max_wait",
                status=0,
            )
        if wait_us:
            await asyncio.sleep(wait_us / 1_000_000)


class RedisTokenStore:
    """The appkey's token in Redis, with a lock (and a timeout on it) around issuance."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        *,
        lock_timeout: float = 150.0,
        lock_wait: float = 300.0,
        poll: float = 0.05,
        warn_every: float = 10.0,
    ) -> None:
        self._redis = client
        self._key = key
        self._lock_key = key + ":lock"
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait
        self._poll = poll
        self._warn_every = warn_every
        self._discard = client.register_script(_DELETE_IF_TOKEN)

    def lock(self) -> AbstractAsyncContextManager[object]:
        return self._locked()

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        lock = self._redis.lock(
            self._lock_key, timeout=self._lock_timeout, sleep=self._poll, thread_local=False
        )
        token = secrets.token_hex(16)
        started = time.monotonic()
        while not await self._call(
            lock.acquire(
                token=token,
                blocking_timeout=min(
                    self._warn_every, max(self._poll, started + self._lock_wait - time.monotonic())
                ),
            )
        ):
            waited = time.monotonic() - started
            if waited >= self._lock_wait:
                raise TransportError("another process has held the token lock too long")
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
                await self._call(lock.release())

    async def load(self) -> Token | None:
        data = await self._call(self._redis.get(self._key))
        if data is None:
            return None
        try:
            return msgspec.json.decode(data, type=Token)
        except msgspec.MsgspecError:
            log.warning("the token stored in Redis is corrupt; ignoring it")
            return None

    async def save(self, token: Token) -> None:
        ttl_ms = max(1, round((token.expires_at - time.time()) * 1000))
        await self._call(self._redis.set(self._key, msgspec.json.encode(token), px=ttl_ms))

    async def discard(self, access_token: str) -> None:
        await self._call(self._discard(keys=[self._key], args=[access_token]))

    @staticmethod
    async def _call(pending: Awaitable[Any]) -> Any:
        try:
            return await pending
        except (RedisError, OSError) as exc:
            raise TransportError(f"token store unreachable ({type(exc).__name__})") from None
