"""The token kept in a file between runs, so a restarted bot does not ask KIS for another.

Every issuance texts the account holder and KIS allows one a minute, while a token lives a day:
so the token goes to a file that outlives the process, and a restarted bot (or a second process
on the same appkey) reuses it. :class:`TokenCache` is the file; :class:`FileTokenStore` is the
:class:`~kis_async.auth.TokenStore` over it that a client uses when no Redis is configured.

The threat model is other local users and a hostile or broken filesystem:

- The token is in the file (it must be, to be reused); the appkey and appsecret never are.
  Entries are keyed by :func:`~kis_async.auth.appkey_digest`, so several appkeys and hosts can
  share one file and none is handed another's token.
- The file is mode 0600 and its folder 0700. A file others can read or that belongs to another
  user raises :class:`~kis_async.errors.TokenCacheError`. A folder others can write to is closed
  (``chmod 700``, with a warning) when it is ours, and refused when it is not ours to change
  (another user's, or a shared sticky one such as ``/tmp``). Only the file's own folder is
  checked: whatever is read is checked on the open descriptor and whatever is written is a new
  0600 file of ours, so someone who can rename a folder higher up can delete the token but
  neither read it nor slip in their own.
- Only a regular file is read. A FIFO, socket, device, folder or symbolic link in its place
  raises :class:`~kis_async.errors.TokenCacheError`: it is opened without blocking and without
  following links, then checked. At most 64 KiB are read (an entry is under 1 KiB): a larger
  file, like a corrupt one, is ignored with a warning and replaced on the next save.
- Writes are atomic (temporary file, fsync, rename): a crash leaves the old file or the new one.
- On Windows the mode and owner checks are skipped: the bits mean little there, and the default
  folder (from :mod:`platformdirs`, under the user's profile) is private by its ACL.

:class:`FileTokenStore` does all of this in a worker thread, never on the event loop, and holds
an OS lock on ``<file>.lock`` around "load the token, else issue one and save it", so processes
that start together on one file issue one token between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import filelock
import msgspec
import platformdirs

from .auth import Token, appkey_digest
from .errors import KISError, TokenCacheError

log = logging.getLogger(__name__)

_WINDOWS = os.name == "nt"
"""Skip the POSIX mode and owner checks (see the module notes)."""

MAX_BYTES = 64 * 1024
"""A cache file larger than this is not read."""

LOCK_TIMEOUT = 300.0
"""Seconds :meth:`FileTokenStore.lock` waits for another process before giving up."""

_LOCK_PATIENCE = 10.0
"""Seconds of waiting for the lock after which a warning is logged."""

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
)
_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFLNK: "a symbolic link",
}


class _File(msgspec.Struct):
    """The file: ``{"tokens": {digest: token}}``, each token as :class:`~kis_async.auth.Token`
    encodes it. A file of the earlier one-entry layout reads as holding no token (it does not
    say whose it is) and is replaced on the next save."""

    tokens: dict[str, Token] = {}


class TokenCache:
    """Tokens in a file only its owner can read, one per appkey and host, replaced atomically.

    ``load``, ``save`` and ``discard`` block (they are for a worker thread) and raise
    :class:`TokenCacheError` when the file or its folder is unsafe (see the module notes).
    Processes sharing the file hold :meth:`FileTokenStore.lock` around ``save`` and ``discard``
    (the :class:`~kis_async.auth.TokenManager` does), so none loses another's entry.
    """

    def __init__(self, path: Path, *, app_key: str, host: str) -> None:
        self.path = path
        self.key = appkey_digest(app_key, host)
        """The entry's name in the file: the appkey itself is not kept."""

    @classmethod
    def default(cls, app_key: str, host: str) -> TokenCache:
        """The per-user cache folder of the platform (``$XDG_CACHE_HOME/kis_async`` or
        ``~/.cache/kis_async`` on Linux, ``%LOCALAPPDATA%\\kis_async\\Cache`` on Windows), one
        file per appkey and host."""
        folder = platformdirs.user_cache_path("kis_async", appauthor=False)
        name = f"token-{appkey_digest(app_key, host)}.json"
        return cls(folder / name, app_key=app_key, host=host)

    @property
    def lock_path(self) -> Path:
        """The sidecar file :class:`FileTokenStore` locks."""
        return self.path.with_name(self.path.name + ".lock")

    def load(self) -> Token | None:
        """This appkey's token for this host, or ``None`` when absent, unreadable or corrupt."""
        return self._read(quiet=False).get(self.key)

    def save(self, token: Token) -> None:
        """Store ``token`` for this appkey and host, keeping the other entries that have not
        expired. A write that fails (a full disk, a read-only folder) is logged and skipped."""
        try:
            self.make_folder()
            tokens = self._read(quiet=True)
            now = time.time()
            tokens = {key: kept for key, kept in tokens.items() if kept.expires_at > now}
            tokens[self.key] = token
            self._write(tokens)
        except OSError as exc:
            log.warning("token cache %s not written (%s)", self.path, exc.strerror)

    def discard(self, access_token: str) -> None:
        """Drop this appkey's entry if it still holds ``access_token`` (which KIS has refused).
        Never raises: a token that stays behind is refused again and replaced then."""
        with contextlib.suppress(KISError, OSError):
            tokens = self._read(quiet=True)
            stored = tokens.get(self.key)
            if stored is not None and stored.access_token == access_token:
                del tokens[self.key]
                self._write(tokens)

    def make_folder(self) -> None:
        """Create the file's folder (mode 0700) if it is missing, and check it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._check_folder()

    def _read(self, *, quiet: bool) -> dict[str, Token]:
        level = logging.DEBUG if quiet else logging.WARNING
        try:
            self._check_folder()
            fd = os.open(self.path, _OPEN_FLAGS)
        except FileNotFoundError:
            return {}
        except OSError as exc:  # a symbolic link, a socket, a permission: which is it?
            with contextlib.suppress(OSError):
                self._check_regular(os.lstat(self.path))
            log.log(level, "token cache %s not readable (%s); ignoring it", self.path, exc.strerror)
            return {}
        try:
            self._check_file(os.fstat(fd))
            data = _read_up_to(fd, MAX_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_BYTES:
            log.log(level, "token cache %s is over %d KiB; ignoring it", self.path, MAX_BYTES >> 10)
            return {}
        try:
            return msgspec.json.decode(data, type=_File).tokens
        except msgspec.MsgspecError:
            log.log(level, "token cache %s is corrupt; ignoring it", self.path)
            return {}

    def _write(self, tokens: dict[str, Token]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".token-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(msgspec.json.encode(_File(tokens)))
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _check_regular(self, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "something else")
            raise TokenCacheError(
                f"token cache {self.path} is {kind}, not a regular file; not used"
            )

    def _check_file(self, st: os.stat_result) -> None:
        self._check_regular(st)
        if _WINDOWS:
            return
        if st.st_uid != os.geteuid():
            raise TokenCacheError(f"token cache {self.path} belongs to another user; not used")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise TokenCacheError(
                f"token cache {self.path} is readable by others (mode "
                f"{stat.S_IMODE(st.st_mode):o}); run `chmod 600` on it or delete it"
            )

    def _check_folder(self) -> None:
        if _WINDOWS:
            return
        folder = self.path.parent
        try:
            fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            return
        try:
            st = os.fstat(fd)
            mode = stat.S_IMODE(st.st_mode)
            if not mode & 0o022:
                return
            if st.st_uid != os.geteuid() or mode & stat.S_ISVTX:
                raise TokenCacheError(
                    f"token cache folder {folder} can be written by others (mode {mode:o}) and is "
                    "not yours to change; keep the token cache in a folder only you can write to"
                )
            os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
        log.warning(
            "token cache folder %s could be written by others (mode %o); made it 0700", folder, mode
        )


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks = []
    while limit > 0 and (chunk := os.read(fd, limit)):
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


class FileTokenStore:
    """The store over a :class:`TokenCache`: file work in a worker thread, issuance under a lock.

    :meth:`lock` holds an OS lock (``flock``, a byte-range lock on Windows; via :mod:`filelock`)
    on :attr:`TokenCache.lock_path`, which the OS releases if the process dies. Waiting for it
    polls off the event loop, logs a warning after 10 s and raises :class:`TokenCacheError` after
    ``lock_timeout`` seconds. Where no lock file can be made (a read-only folder), it warns and
    goes on without one, as without a cache.
    """

    def __init__(self, cache: TokenCache, *, lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.cache = cache
        self.lock_timeout = lock_timeout

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """Held around "load the token, else issue one and save it" (see the class notes)."""
        path = self.cache.lock_path
        lock = filelock.AsyncFileLock(path, mode=0o600)
        try:
            await asyncio.to_thread(self.cache.make_folder)
            await self._acquire(lock)
        except OSError as exc:
            log.warning("token cache lock %s not taken (%s); going on without", path, exc.strerror)
        try:
            yield
        finally:
            if lock.is_locked:
                await lock.release()

    async def _acquire(self, lock: filelock.AsyncFileLock) -> None:
        patience = min(_LOCK_PATIENCE, self.lock_timeout)
        try:
            await lock.acquire(timeout=patience)
        except filelock.Timeout:
            log.warning(
                "token cache lock %s held by another process for %.0f s (issuing a token?); "
                "waiting up to %.0f s",
                lock.lock_file,
                patience,
                self.lock_timeout,
            )
            try:
                await lock.acquire(timeout=self.lock_timeout - patience)
            except filelock.Timeout:
                raise TokenCacheError(
                    f"token cache lock {lock.lock_file} still held by another process after "
                    f"{self.lock_timeout:.0f} s"
                ) from None

    async def load(self) -> Token | None:
        """:meth:`TokenCache.load`, in a worker thread."""
        return await asyncio.to_thread(self.cache.load)

    async def save(self, token: Token) -> None:
        """:meth:`TokenCache.save`, in a worker thread."""
        await asyncio.to_thread(self.cache.save, token)

    async def discard(self, access_token: str) -> None:
        """:meth:`TokenCache.discard`, in a worker thread."""
        await asyncio.to_thread(self.cache.discard, access_token)
