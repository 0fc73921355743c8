"""The token kept in a file between runs, so a restarted bot does not ask KIS for another.

:class:`TokenCache` is the file; :class:`FileTokenStore` is the
:class:`~kis_async.auth.TokenStore` over it that a client uses when no Redis is configured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import tempfile
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import msgspec

from .auth import Token, appkey_digest
from .errors import KISError, TokenCacheError

log = logging.getLogger(__name__)


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
