"""The access token: one issuance in flight, reused by every request, cached across restarts.

Every issuance sends a KakaoTalk message to the account holder and KIS allows one a minute, so
this module treats issuing as expensive: a single flight under a lock, a minimum interval between
issuances (remembered in the cache file, so a restarted bot honours it too), a failure remembered
instead of retried by each waiting request, and a re-issue on a refused token that happens once
however many requests saw the refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import msgspec

from . import spec
from .errors import AuthError, KISError, TokenCacheError

log = logging.getLogger(__name__)


class Token(msgspec.Struct, frozen=True):
    """An access token and the wall-clock times (epoch seconds) it was issued and expires."""

    access_token: str
    expires_at: float
    issued_at: float

    def fresh(self, now: float) -> bool:
        """Still good for a while: refresh is due a tenth of its life, at most 5 min, early."""
        ahead = min(300.0, (self.expires_at - self.issued_at) / 10)
        return now < self.expires_at - ahead

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at!r}, access_token=<redacted>)"


def appkey_digest(app_key: str, host: str) -> str:
    """A name for one appkey on one host that does not reveal the appkey."""
    return hashlib.sha256(f"{host}\0{app_key}".encode()).hexdigest()[:32]


class _CacheEntry(msgspec.Struct):
    host: str
    access_token: str
    expires_at: float
    issued_at: float


class TokenCache:
    """One token in a file only its owner can read, replaced atomically, never holding a secret.

    The file name is a hash of host and appkey, so two accounts or hosts never share a token
    and the appkey itself is not written anywhere. A corrupt file is ignored with a warning;
    a file others can read, or that belongs to another user, raises :class:`TokenCacheError`.
    """

    def __init__(self, path: Path, host: str) -> None:
        self.path = path
        self.host = host

    @classmethod
    def default(cls, app_key: str, host: str) -> TokenCache:
        """The per-user location: ``$XDG_CACHE_HOME/kis_async`` or ``~/.cache/kis_async``."""
        root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(Path(root) / "kis_async" / f"token-{appkey_digest(app_key, host)}.json", host)

    def load(self) -> Token | None:
        """The cached token for this host, or ``None`` when absent or unreadable."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("token cache %s not readable (%s); ignoring it", self.path, exc.strerror)
            return None
        with os.fdopen(fd, "rb") as file:
            self._check_private(os.fstat(file.fileno()))
            data = file.read()
        try:
            entry = msgspec.json.decode(data, type=_CacheEntry)
        except msgspec.MsgspecError:
            log.warning("token cache %s is corrupt; ignoring it", self.path)
            return None
        if entry.host != self.host:
            return None
        return Token(entry.access_token, entry.expires_at, entry.issued_at)

    def save(self, token: Token) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half of either."""
        entry = _CacheEntry(self.host, token.access_token, token.expires_at, token.issued_at)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".token-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(msgspec.json.encode(entry))
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            log.warning("token cache %s not written (%s)", self.path, exc.strerror)

    def discard(self, access_token: str) -> None:
        """Remove the file if it still holds ``access_token`` (which KIS has refused)."""
        with contextlib.suppress(KISError, OSError):
            cached = self.load()
            if cached is not None and cached.access_token == access_token:
                self.path.unlink()

    def _check_private(self, st: os.stat_result) -> None:
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            raise TokenCacheError(f"token cache {self.path} belongs to another user; not used")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise TokenCacheError(
                f"token cache {self.path} is readable by others (mode "
                f"{stat.S_IMODE(st.st_mode):o}); run `chmod 600` on it or delete it"
            )


Issuer = Callable[[], Awaitable[Token]]


class TokenStore(Protocol):
    """Where the token lives between issuances, shared by everyone who uses the appkey.

    ``lock`` is held around "read the shared token, else issue one and store it", so that only
    one holder issues at a time; a store used by one process may make it a no-op.
    """

    def lock(self) -> AbstractAsyncContextManager[object]: ...

    async def load(self) -> Token | None: ...

    async def save(self, token: Token) -> None: ...

    async def discard(self, access_token: str) -> None:
        """Forget the stored token if it is still ``access_token`` (KIS refused it)."""


class FileTokenStore:
    """The default store: one process at a time, the token kept in a :class:`TokenCache`."""

    def __init__(self, cache: TokenCache) -> None:
        self.cache = cache

    def lock(self) -> AbstractAsyncContextManager[object]:
        return contextlib.nullcontext()

    async def load(self) -> Token | None:
        return self.cache.load()

    async def save(self, token: Token) -> None:
        self.cache.save(token)

    async def discard(self, access_token: str) -> None:
        self.cache.discard(access_token)


class TokenManager:
    """Hands every request the current token, issuing at most one at a time.

    - :meth:`get` returns a token that is not about to expire; while a refresh is under way the
      old one is still handed out if it has not actually expired.
    - :meth:`renew` is for a token KIS refused (EGW00123/EGW00121): the first caller re-issues,
      every later caller holding the same stale token gets the new one without another issuance
      (in another process too, when the store is shared).
    - Issuances are at least ``issue_interval`` seconds apart (KIS: one a minute), counted from
      the last issuance this process *or the store* knows of.
    - A failed issuance is remembered: an :class:`AuthError` (credentials refused) for the
      client's lifetime, anything else (a fault) for one ``issue_interval``. Callers in that
      time get the same error without a request.
    """

    def __init__(
        self,
        issue: Issuer,
        *,
        store: TokenStore | None,
        issue_interval: float = spec.TOKEN_ISSUE_INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issue = issue
        self._store = store
        self._interval = issue_interval
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self._last_issued = float("-inf")
        self._failure: KISError | None = None
        self._failure_until = 0.0
        self.issued = 0
        """Issuances this manager asked KIS for (each one pings the account holder)."""

    async def get(self) -> str:
        """A token to send now. Raises the error of a failed issuance (see the class notes)."""
        now = self._clock()
        token = self._token
        if token is not None and (
            token.fresh(now) or (self._lock.locked() and now < token.expires_at)
        ):
            return token.access_token
        async with self._lock:
            token = self._token
            if token is not None and token.fresh(self._clock()):
                return token.access_token
            return (await self._obtain(refused=None)).access_token

    async def renew(self, stale: str) -> str:
        """KIS refused ``stale``: return a new token, issuing one only if nobody else has."""
        async with self._lock:
            token = self._token
            if token is not None and token.access_token != stale and token.fresh(self._clock()):
                return token.access_token
            self._token = None
            fresh = await self._obtain(refused=stale)
            if fresh.access_token == stale:
                raise AuthError(
                    rt_cd="1",
                    msg_cd="",
                    msg1="KIS re-issued the very token it had just refused",
                    status=200,
                )
            return fresh.access_token

    async def _obtain(self, *, refused: str | None) -> Token:
        """Called under the lock: the store's token unless it is ``refused``, else a new one."""
        if self._failure is not None and self._clock() < self._failure_until:
            raise self._failure.with_traceback(None)
        if self._store is None:
            return await self._issue_new()
        async with self._store.lock():
            shared = await self._store.load()
            if shared is not None:
                self._last_issued = max(self._last_issued, shared.issued_at)
                if shared.access_token == refused:
                    await self._store.discard(refused)
                elif shared.fresh(self._clock()):
                    log.debug("using the stored access token")
                    self._token = shared
                    return shared
            token = await self._issue_new()
            await self._store.save(token)
            return token

    async def _issue_new(self) -> Token:
        wait = self._last_issued + self._interval - self._clock()
        if wait > 0:
            log.info("waiting %.1f s: KIS issues one token a minute per appkey", wait)
            await asyncio.sleep(wait)
        try:
            token = await self._issue_respecting_limit()
        except KISError as exc:
            self._failure = exc
            permanent = isinstance(exc, AuthError)
            self._failure_until = float("inf") if permanent else self._clock() + self._interval
            raise
        self.issued += 1
        self._failure = None
        self._last_issued = token.issued_at
        self._token = token
        return token

    async def _issue_respecting_limit(self) -> Token:
        """Issue; if KIS says too soon (another process issued), wait an interval, try once more."""
        try:
            return await self._issue()
        except AuthError as exc:
            if exc.msg_cd != spec.TOKEN_ISSUE_TOO_SOON:
                raise
        log.info("KIS says a token was issued under a minute ago; waiting %.0f s", self._interval)
        await asyncio.sleep(self._interval)
        return await self._issue()
