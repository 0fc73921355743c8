"""The access token: issued over OAuth, one issuance in flight, reused by every request.

Every issuance sends a KakaoTalk message to the account holder and KIS allows one a minute, so
issuing is treated as expensive:

- :class:`TokenIssuer` is the OAuth exchange itself (``POST /oauth2/tokenP``), retried over the
  same verdicts as API calls (:func:`kis_async.verdict.classify`) through the same
  :class:`~kis_async.retry.Backoff`.
- :class:`TokenManager` decides *when* to issue: a single flight under a lock, a minimum interval
  between issuances (remembered by the store, so a restarted bot honours it too), a failure
  remembered instead of retried by each waiting request, and a re-issue on a refused token that
  happens once however many requests saw the refusal.
- :class:`TokenStore` is where the token lives between issuances: a file
  (:mod:`kis_async.tokencache`) or Redis (:mod:`kis_async.redis_backend`).

Both read the wall clock and wait on the client's :class:`~kis_async.clock.Clock`: a token's
expiry is a date, so its times are epoch seconds (:meth:`~kis_async.clock.Clock.time`).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import math
import re
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

import msgspec

from . import config, spec
from .clock import SYSTEM_CLOCK, Clock
from .errors import APIError, AuthError, DecodeError, KISError, SameTokenError
from .models import TokenAnswer, decode_token, read_answer
from .redaction import scrub
from .retry import Backoff, RetryPolicy
from .verdict import Ok, Retry, classify, parse_retry_after
from .wire import Closed, Wire

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)
progress = logging.getLogger(config.PROGRESS_LOGGER)

_TOKEN_CHARS = re.compile(rf"[\x21-\x7e]{{1,{spec.TOKEN_MAX_LENGTH}}}")
_JSON_HEADERS = {"content-type": "application/json; charset=utf-8"}


class Token(msgspec.Struct, frozen=True):
    """An access token and the wall-clock times (epoch seconds) it was issued and expires.

    ``dead``, when not empty, is the code KIS refused the token with, and marks one it hands
    back when asked for a new one, revoked or not (its 6-hour rule): stored so, until
    ``expires_at``, it tells every process sharing the store not to ask again, since each
    asking texts the account holder and brings back the same token.
    """

    access_token: str
    expires_at: float
    issued_at: float
    dead: str = ""

    def refresh_at(self) -> float:
        """When to refresh: a tenth of its life, at most 5 min, before it expires."""
        return self.expires_at - min(300.0, (self.expires_at - self.issued_at) / 10)

    def fresh(self, now: float) -> bool:
        """Still good for a while (see :meth:`refresh_at`)."""
        return now < self.refresh_at()

    def __repr__(self) -> str:
        dead = f", dead={self.dead!r}" if self.dead else ""
        return f"Token(expires_at={self.expires_at!r}, access_token=<redacted>{dead})"


class TokenIssuer:
    """``POST /oauth2/tokenP`` for one appkey: a token, or the error that prevented one.

    Transient faults are retried as :class:`~kis_async.retry.RetryPolicy` says. An ``EGW00133``
    answer (another process issued under a minute ago) waits out ``issue_interval`` once and asks
    again; that wait is not a retry. A refusal raises :class:`~kis_async.errors.AuthError`.
    :meth:`revoke` is ``POST /oauth2/revokeP``, for the token KIS refuses yet hands back.
    """

    def __init__(
        self,
        wire: Wire,
        *,
        app_key: str,
        app_secret: str,
        retry: RetryPolicy,
        issue_interval: float = spec.TOKEN_ISSUE_INTERVAL,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._wire = wire
        self._grant = {
            "grant_type": "client_credentials",
            "appkey": app_key,
            "appsecret": app_secret,
        }
        self._retry = retry
        self._interval = issue_interval
        self._clock = clock
        self._warned_past_expiry = False
        self._warned_clamped = False

    async def __call__(self) -> Token:
        tries = Backoff(self._retry, self._clock, "token request")
        waited_interval = False
        while True:
            reply = await self._wire.send(
                "POST", spec.TOKEN_PATH, headers=_JSON_HEADERS, json=self._grant
            )
            outcome = reply.failure or read_answer(reply.body, decode_token)
            if isinstance(outcome, TokenAnswer) and outcome.msg1:
                outcome.msg1 = scrub(outcome.msg1, (self._grant["appsecret"],))
            verdict = classify(
                reply.status,
                outcome,
                retry_after=parse_retry_after(
                    reply.headers.get("Retry-After"), now=self._clock.time()
                ),
                token_endpoint=True,
            )
            match verdict:
                case Ok():
                    answer = cast(TokenAnswer, outcome)
                    token, past, clamped = _token(answer, self._clock.time())
                    if past is not None and not self._warned_past_expiry:
                        self._warned_past_expiry = True
                        log.warning(
                            "KIS stated the new token's expiry as %s KST, already past on this "
                            "host's clock: clock skew (this host's clock or KIS's is off; check "
                            "NTP); using expires_in",
                            past,
                        )
                    if clamped and not self._warned_clamped:
                        self._warned_clamped = True
                        log.warning(
                            "KIS stated a token lifetime over the %.0f days it documents "
                            "(expires_in %.3g s, or the stated expiry): keeping the token that "
                            "long at most",
                            spec.TOKEN_MAX_LIFETIME / 86400,
                            answer.expires_in,
                        )
                    return token
                case Retry(token_interval=True) if not waited_interval:
                    waited_interval = True
                    progress.info(
                        "waiting %.0f s: KIS says a token was issued under a minute ago",
                        self._interval,
                        extra={"wait_s": self._interval},
                    )
                    await self._clock.sleep(self._interval)
                case Retry() if tries.left:
                    await tries.wait(verdict.error, verdict.after)
                case _:
                    raise verdict.error

    async def revoke(self, access_token: str) -> bool:
        """Ask KIS to revoke ``access_token``; whether it said it did (HTTP 200). A fault is
        retried like an issuance's; a refusal is logged, not raised: the caller asks for a new
        token either way, and judges what comes back."""
        body = {"appkey": self._grant["appkey"], "appsecret": self._grant["appsecret"]}
        body["token"] = access_token
        tries = Backoff(self._retry, self._clock, "token revocation")
        while True:
            reply = await self._wire.send(
                "POST", spec.REVOKE_PATH, headers=_JSON_HEADERS, json=body
            )
            if reply.failure is None and reply.status == 200:
                return True
            if reply.failure is not None and not isinstance(reply.failure, Closed) and tries.left:
                await tries.wait(reply.failure, None)
                continue
            said = reply.failure if reply.failure is not None else f"HTTP {reply.status}"
            log.warning("KIS did not confirm revoking the refused token (%s)", said)
            return False


def _token(answer: TokenAnswer, now: float) -> tuple[Token, str | None, bool]:
    """The token with the earlier of the two expiries KIS states, unless the stated time is
    already past: then ``now + expires_in``, and the stated time comes back for a warning; and
    whether the expiry was clamped to :data:`~kis_async.spec.TOKEN_MAX_LIFETIME` from now.

    KIS was seen live on 2026-08-19 stating an ``access_token_token_expired`` 20 minutes before
    the request, and a host whose clock runs fast (by a day, say) sees the same. Believing it
    would make the fresh token stale on arrival and re-issue it on every call, each issuance
    texting the account holder; the API judges the token instead (EGW00123 renews it if it
    really expired).

    A lifetime over the bound (``expires_in`` of 1e308 overflowed the store's expiry) is clamped,
    not refused: refusing leaves the client without a token and each retry texts the account
    holder, while a token kept too long costs nothing, since the API refuses it once it expires
    and it is renewed then.
    """
    if not _TOKEN_CHARS.fullmatch(answer.access_token):
        raise DecodeError("token endpoint sent an access_token that cannot be a header value")
    expiries = [now + answer.expires_in] if answer.expires_in > 0 else []
    past = None
    if answer.access_token_token_expired:
        try:
            stated = datetime.strptime(answer.access_token_token_expired, spec.EXPIRY_FORMAT)
        except ValueError:
            log.warning("unreadable access_token_token_expired; using expires_in")
        else:
            stated_at = stated.replace(tzinfo=spec.KST).timestamp()
            if stated_at > now or not expiries:
                expiries.append(stated_at)
            else:
                past = answer.access_token_token_expired
    if not expiries:
        raise DecodeError("token answer states no expiry", field="expires_in")
    expires_at = min(expiries)
    clamped = not expires_at <= now + spec.TOKEN_MAX_LIFETIME
    if clamped:
        expires_at = now + spec.TOKEN_MAX_LIFETIME
    return Token(answer.access_token, expires_at, now), past, clamped


def appkey_digest(app_key: str, host: str) -> str:
    """A name for one appkey on one host that does not reveal the appkey; stores key by it."""
    return hashlib.sha256(f"{host}\0{app_key}".encode()).hexdigest()[:32]


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


class TokenManager:
    """Hands every request the current token, issuing at most one at a time.

    - :meth:`get` returns a token that is not about to expire; while a refresh is under way the
      old one is still handed out if it has not actually expired.
    - :meth:`renew` is for a token KIS refused (EGW00123/EGW00121): the first caller re-issues,
      every later caller holding the same stale token gets the new one without another issuance
      (in another process too, when the store is shared).
    - KIS hands back the same token for 6 hours after an issuance, reportedly even one its API
      now refuses. A renewal that brings back the refused token revokes it (``revoke``, once,
      under the store's lock) and issues once more, after the interval; the same token again is
      an :class:`~kis_async.errors.AuthError` naming the 6-hour rule, remembered for the
      client's life and, marked :attr:`Token.dead` in the store, by every process sharing it.
      So a refused token costs at most two issuances, however many calls or processes saw it.
    - Issuances are at least ``issue_interval`` seconds apart (KIS: one a minute), counted from
      the last issuance this process *or the store* knows of, and never wait longer than that:
      an issuance dated ahead of this host's clock (the clock stepped back, or another host's
      clock fast) is warned of once.
    - The store is input, checked as an answer from KIS is (:func:`_doubt`): a stored token no
      header can carry, or with times this client could not have written (issued ahead of this
      host's clock by over :data:`~kis_async.spec.CLOCK_TOLERANCE`, expiring before its issue,
      living longer than :data:`~kis_async.spec.TOKEN_MAX_LIFETIME`), is discarded with a
      warning and issued anew, and its ``issued_at`` is not counted.
    - A failure is remembered: credentials refused for the client's lifetime, anything else (a
      fault of the token endpoint or of the store, or KIS saying "one a minute" (``EGW00133``)
      even after the wait) for one ``issue_interval``. Callers in that time get a copy of the
      same error without a request.
    """

    def __init__(
        self,
        issue: Callable[[], Awaitable[Token]],
        *,
        store: TokenStore | None,
        revoke: Callable[[str], Awaitable[object]] | None = None,
        issue_interval: float = spec.TOKEN_ISSUE_INTERVAL,
        clock: Clock = SYSTEM_CLOCK,
        metrics: Metrics | None = None,
    ) -> None:
        """``metrics`` hears of every issuance (:mod:`kis_async.metrics`)."""
        self._issue = issue
        self._metrics = metrics
        self._revoke = revoke
        self._store = store
        self._interval = issue_interval
        self._clock = clock
        self._now = clock.time
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self._current = ""
        self._refresh_at = -math.inf
        """The fresh token and when it stops being fresh, for the common case in one compare."""
        self._last_issued = float("-inf")
        self._warned_ahead = False
        self._failure: KISError | None = None
        self._failure_until = 0.0
        self.issued = 0
        """Issuances this manager asked KIS for (each one pings the account holder)."""
        self.revoked = 0
        """Revocations this manager asked KIS for."""

    def fresh(self) -> str | None:
        """The token, if it is fresh: the common case, answered without awaiting anything."""
        return self._current if self._now() < self._refresh_at else None

    async def get(self) -> str:
        """A token to send now. Raises the error of a failed issuance (see the class notes)."""
        now = self._now()
        if now < self._refresh_at:
            return self._current
        token = self._token
        if token is not None and (
            token.fresh(now) or (self._lock.locked() and now < token.expires_at)
        ):
            return token.access_token
        async with self._lock:
            token = self._token
            if token is not None and token.fresh(self._now()):
                return token.access_token
            return (await self._obtain(refused=None)).access_token

    async def renew(self, stale: str, refusal: APIError) -> str:
        """KIS refused ``stale`` (``refusal`` is its answer): return a new token, issuing one
        only if nobody else has (see the class notes for the token KIS hands back)."""
        async with self._lock:
            token = self._token
            if token is not None and token.access_token != stale and token.fresh(self._now()):
                return token.access_token
            self._keep(None)
            return (await self._obtain(refused=stale, refusal=refusal)).access_token

    def _keep(self, token: Token | None) -> None:
        self._token = token
        self._current = token.access_token if token is not None else ""
        self._refresh_at = token.refresh_at() if token is not None else -math.inf

    async def _obtain(self, *, refused: str | None, refusal: APIError | None = None) -> Token:
        """Called under the lock: the store's token unless it is ``refused``, else a new one.

        A failure, of the store or of the issuance, is remembered (see the class notes).
        """
        if self._failure is not None and self._now() < self._failure_until:
            raise copy.copy(self._failure)
        try:
            token = await self._stored_or_new(refused, refusal)
        except KISError as exc:
            self._failure = copy.copy(exc)
            refused_for_good = (
                isinstance(exc, AuthError) and exc.msg_cd != spec.TOKEN_ISSUE_TOO_SOON
            )
            self._failure_until = math.inf if refused_for_good else self._now() + self._interval
            raise
        self._keep(token)
        return token

    async def _stored_or_new(self, refused: str | None, refusal: APIError | None) -> Token:
        if self._store is None:
            try:
                return await self._replacement(refused, refusal)
            except _SameToken as same:
                raise same.error from None
        async with self._store.lock():
            shared = await self._store.load()
            doubt = None if shared is None else _doubt(shared, self._now())
            if shared is not None and doubt is not None:
                log.warning(
                    "the stored access token is not used (%s): discarding it, issuing anew", doubt
                )
                await self._store.discard(shared.access_token)
                shared = None
            if shared is not None:
                self._last_issued = max(self._last_issued, shared.issued_at)
                if _believable_mark(shared, self._now()):
                    raise _same_token_error(refusal, shared)
                if shared.access_token == refused:
                    await self._store.discard(refused)
                elif not shared.dead and shared.fresh(self._now()):
                    log.debug("using the stored access token")
                    return shared
            try:
                token = await self._replacement(refused, refusal)
            except _SameToken as same:
                await self._store.save(same.marker)
                raise same.error from None
            await self._store.save(token)
            return token

    async def _replacement(self, refused: str | None, refusal: APIError | None) -> Token:
        """A new token; if KIS hands back the ``refused`` one, revoke it and ask once more."""
        token = await self._issue_new()
        if refused is None or token.access_token != refused:
            return token
        code = refusal.msg_cd if refusal is not None else spec.TOKEN_INVALID
        log.warning(
            "KIS handed back the very token its API had just refused (%s): revoking it, "
            "then asking for a new one once more",
            code,
        )
        if self._revoke is not None:
            self.revoked += 1
            await self._revoke(refused)
        token = await self._issue_new()
        if token.access_token != refused:
            return token
        until = self._now() + spec.SAME_TOKEN_WINDOW
        marker = Token(refused, expires_at=until, issued_at=token.issued_at, dead=code)
        raise _SameToken(_same_token_error(refusal, marker), marker)

    async def _issue_new(self) -> Token:
        wait = self._last_issued + self._interval - self._now()
        if wait > self._interval:
            if not self._warned_ahead:
                self._warned_ahead = True
                log.warning(
                    "the last token issuance is dated %s ahead of this host's clock (stepped "
                    "back, or another host's fast?): waiting the issuance interval (%.0f s)",
                    _seconds(wait - self._interval),
                    self._interval,
                )
            wait = self._interval
        if wait > 0:
            progress.info(
                "waiting %.0f s: KIS issues one token a minute per appkey",
                wait,
                extra={"wait_s": wait},
            )
            await self._clock.sleep(wait)
        progress.info("asking KIS for an access token", extra={"stage": "token"})
        token = await self._issue()
        self.issued += 1
        if self._metrics is not None:
            self._metrics.token_issued()
        self._failure = None
        self._last_issued = token.issued_at
        return token


def _doubt(token: Token, now: float) -> str | None:
    """Why a token read from the store cannot be used, or ``None``.

    The store is input (a file, Redis, another host's clock), so its token is checked as a new
    one from KIS is (:func:`_token`): one no header can carry fails every call for its life, and
    times from a skewed clock or a broken store would stretch the wait before an issuance or the
    token's life without bound. Nothing returned names the token.
    """
    if not _TOKEN_CHARS.fullmatch(token.access_token):
        return f"its access_token of {len(token.access_token)} characters cannot be a header"
    issued, expires = token.issued_at, token.expires_at
    if not (math.isfinite(issued) and math.isfinite(expires)):
        return "its times are not finite"
    if issued > now + spec.CLOCK_TOLERANCE:
        return (
            f"issued {_seconds(issued - now)} ahead of this host's clock: clock skew between "
            "the hosts sharing the store?"
        )
    if expires <= issued:
        return "it expires before it was issued"
    if expires - issued > spec.TOKEN_MAX_LIFETIME:
        return f"it claims a life of {_seconds(expires - issued)}, longer than KIS grants"
    return None


def _seconds(seconds: float) -> str:
    """``seconds`` for a message, short even when a broken store made it absurd."""
    return f"{seconds:.0f} s" if seconds < 1e9 else f"{seconds:.3g} s"


_KIS_CODE = re.compile(r"[A-Z0-9]{1,16}")


def _believable_mark(token: Token, now: float) -> bool:
    """A dead mark this client could have written, and still in force: a KIS code, and an end
    within the 6-hour window from now. The store is input too: a mark claiming longer, or a code
    that could carry terminal escapes into a message, is not believed (and is replaced by the
    next issuance)."""
    return (
        bool(token.dead)
        and _KIS_CODE.fullmatch(token.dead) is not None
        and now < token.expires_at <= now + spec.SAME_TOKEN_WINDOW + spec.TOKEN_ISSUE_INTERVAL
    )


class _SameToken(Exception):
    """Within the manager: the 6-hour error, with the marker the store keeps for the others."""

    def __init__(self, error: SameTokenError, marker: Token) -> None:
        super().__init__(error)
        self.error = error
        self.marker = marker


def _same_token_error(refusal: APIError | None, marker: Token) -> SameTokenError:
    """The 6-hour error for ``marker``'s token: KIS's refusal of it if this process saw one,
    else the code the store's marker keeps."""
    if refusal is None:
        return SameTokenError(
            rt_cd="", msg_cd=marker.dead, msg1="", status=0, until=marker.expires_at
        )
    return SameTokenError(
        rt_cd=refusal.rt_cd,
        msg_cd=refusal.msg_cd,
        msg1=refusal.msg1,
        status=refusal.status,
        tr_id=refusal.tr_id,
        until=marker.expires_at,
    )
