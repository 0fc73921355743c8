"""One KIS request: headers, pacing, retries with backoff, and the envelope mapped to an error.

What is retried is decided in one place, :meth:`Transport._verdict`:

- connection failures, timeouts and 5xx answers that are not KIS JSON (a proxy's page): retried
  with exponential backoff and jitter, at most ``max_retries`` times;
- ``EGW00201`` (per-second limit): retried the same way, surfacing only when every try was refused;
- ``EGW00123``/``EGW00121`` (token expired or invalid): the token is re-issued (once for all the
  calls that saw the same token refused) and the call repeated; a call gives up with
  :class:`AuthError` when the replacement token is refused too, twice;
- any other KIS error envelope: returned to the caller at once, since asking again gives the same.

Every call KIS counts goes through the pacer, retries included. Token issuance does not: KIS
limits it separately, and :mod:`kis_async.auth` paces it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDictProxy

from . import spec
from .auth import Token, TokenManager, TokenStore
from .errors import (
    APIError,
    AuthError,
    DecodeError,
    KISError,
    RateLimitError,
    RequestTimeout,
    TransportError,
)
from .models import Envelope, decode_envelope
from .throttle import Pacer

log = logging.getLogger(__name__)

_RETRYABLE_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
_MAX_RENEWALS = 2
"""Token refusals one call survives: one death of the token it holds, and one more of the token
that replaced it (say, revoked and then expired while the call was in flight). More means KIS
refuses every token it issues; re-issuing again would only spam the account holder."""


@dataclass(frozen=True, slots=True)
class Response:
    """A successful KIS answer: the raw body for typed decoding, and the headers for paging."""

    body: bytes
    headers: CIMultiDictProxy[str]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    max_retries: int = 5
    backoff: float = 0.2
    """First delay in seconds; doubles per try, up to ``max_backoff``, with up to 50% jitter."""
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_backoff, self.backoff * 2.0**attempt)
        return ceiling * random.uniform(0.5, 1.0)

    async def wait(self, attempt: int, error: KISError) -> None:
        """Sleep before retry number ``attempt``, or raise ``error`` when the tries are spent."""
        if attempt >= self.max_retries:
            raise error from None
        delay = self.delay(attempt)
        log.debug("retry %d in %.2f s after: %s", attempt + 1, delay, error)
        await asyncio.sleep(delay)


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try; carries the error to surface."""

    def __init__(self, error: KISError) -> None:
        self.error = error


class _StaleToken(Exception):
    """Internal: KIS refused the token that was sent."""

    def __init__(self, error: APIError) -> None:
        self.error = error


class Transport:
    """Sends requests for one client: one session, one pacer, one token manager, one policy."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        custtype: str,
        pacer: Pacer,
        retry: RetryPolicy,
        timeout: float,
        token_store: TokenStore | None,
        token_issue_interval: float = spec.TOKEN_ISSUE_INTERVAL,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._credentials = {"appkey": app_key, "appsecret": app_secret}
        self._static_headers = {
            "content-type": "application/json; charset=utf-8",
            "custtype": custtype,
            **self._credentials,
        }
        self._pacer = pacer
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.tokens = TokenManager(
            self.issue_token, store=token_store, issue_interval=token_issue_interval
        )

    async def get(
        self,
        path: str,
        *,
        tr_id: str,
        params: Mapping[str, str],
        pdno: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """GET an API path; returns on ``rt_cd == "0"``, raises a :class:`KISError` otherwise."""
        renewals = 0
        attempt = 0
        token = await self.tokens.get()
        while True:
            await self._pacer.acquire()
            request_headers = {
                **self._static_headers,
                "authorization": f"Bearer {token}",
                "tr_id": tr_id,
                **(headers or {}),
            }
            try:
                return await self._attempt(path, params, request_headers, tr_id, pdno)
            except _StaleToken as stale:
                if renewals >= _MAX_RENEWALS:
                    raise stale.error from None
                renewals += 1
                log.info("token refused (%s); re-issuing once", stale.error.msg_cd)
                token = await self.tokens.renew(token)
            except _Retry as retry:
                await self._retry.wait(attempt, retry.error)
                attempt += 1
                token = await self.tokens.get()

    async def issue_token(self) -> Token:
        """POST /oauth2/tokenP. Transient faults are retried; refusals raise :class:`AuthError`."""
        body = {"grant_type": "client_credentials", **self._credentials}
        attempt = 0
        while True:
            try:
                return await self._post_token(body)
            except _Retry as retry:
                await self._retry.wait(attempt, retry.error)
                attempt += 1

    async def _attempt(
        self,
        path: str,
        params: Mapping[str, str],
        headers: dict[str, str],
        tr_id: str,
        pdno: str | None,
    ) -> Response:
        status, body, resp_headers = await self._exchange(
            "GET", path, pdno, params=params, headers=headers
        )
        envelope = self._verdict(status, body, tr_id, pdno)
        if envelope.rt_cd == spec.RT_OK and status < 400:
            return Response(body, resp_headers)
        raise _api_error(envelope, status, tr_id, pdno)

    async def _exchange(
        self, method: str, path: str, pdno: str | None, **request: Any
    ) -> tuple[int, bytes, CIMultiDictProxy[str]]:
        """Send one request and read the whole answer; network faults become errors here."""
        if self._session.closed:
            raise TransportError("the KISClient was closed before this call", pdno=pdno)
        try:
            async with self._session.request(
                method, self._base_url + path, timeout=self._timeout, **request
            ) as resp:
                return resp.status, await resp.read(), resp.headers
        except TimeoutError:
            raise _Retry(
                RequestTimeout("no answer within the request timeout", pdno=pdno)
            ) from None
        except _RETRYABLE_CONNECTION_ERRORS as exc:
            raise _Retry(_connection_error(exc, pdno)) from None
        except aiohttp.ClientError as exc:
            raise _connection_error(exc, pdno) from None

    def _verdict(self, status: int, body: bytes, tr_id: str, pdno: str | None) -> Envelope:
        """The envelope of a KIS answer; raises for one that should be retried or renewed."""
        try:
            envelope = decode_envelope(body)
        except (msgspec.MsgspecError, UnicodeError):
            if status >= 400:
                raise _not_kis(f"HTTP {status} without a KIS body", status, pdno) from None
            raise DecodeError("response is not a KIS JSON envelope", pdno=pdno) from None
        if envelope.rt_cd == spec.RT_OK:
            return envelope
        if envelope.msg_cd == spec.RATE_LIMITED:
            raise _Retry(_api_error(envelope, status, tr_id, pdno))
        if envelope.msg_cd in spec.STALE_TOKEN_CODES:
            raise _StaleToken(_api_error(envelope, status, tr_id, pdno))
        return envelope

    async def _post_token(self, body: dict[str, str]) -> Token:
        status, data, _ = await self._exchange("POST", spec.TOKEN_PATH, None, json=body)
        try:
            answer = msgspec.json.decode(data, type=_TokenAnswer)
        except msgspec.MsgspecError:
            raise _not_kis(
                f"token endpoint: HTTP {status} without a KIS body", status, None
            ) from None
        if answer.access_token and status < 400:
            return answer.token(time.time())
        if status >= 500 and not (answer.msg_cd or answer.error_code):
            raise _Retry(TransportError(f"token endpoint: HTTP {status}", status=status))
        raise AuthError(
            rt_cd=answer.rt_cd or "1",
            msg_cd=answer.msg_cd or answer.error_code,
            msg1=answer.msg1 or answer.error_description or "token issuance refused",
            status=status,
        )


class _TokenAnswer(msgspec.Struct):
    """tokenP's answer; refusals carry msg_cd/msg1 or error_code/error_description."""

    access_token: str = ""
    access_token_token_expired: str = ""
    expires_in: float = 0
    rt_cd: str = ""
    msg_cd: str = ""
    msg1: str = ""
    error_code: str = ""
    error_description: str = ""

    def token(self, now: float) -> Token:
        """The token with the earlier of the two expiries KIS states."""
        expiries = [now + self.expires_in] if self.expires_in > 0 else []
        if self.access_token_token_expired:
            try:
                stated = datetime.strptime(self.access_token_token_expired, spec.EXPIRY_FORMAT)
                expiries.append(stated.replace(tzinfo=spec.KST).timestamp())
            except ValueError:
                log.warning("unreadable access_token_token_expired; using expires_in")
        if not expiries:
            raise DecodeError("token answer states no expiry", field="expires_in")
        return Token(self.access_token, min(expiries), now)


def _api_error(envelope: Envelope, status: int, tr_id: str, pdno: str | None) -> APIError:
    kind: type[APIError] = APIError
    if envelope.msg_cd == spec.RATE_LIMITED:
        kind = RateLimitError
    elif envelope.msg_cd in spec.STALE_TOKEN_CODES or envelope.msg_cd in spec.CREDENTIAL_CODES:
        kind = AuthError
    return kind(
        rt_cd=envelope.rt_cd,
        msg_cd=envelope.msg_cd,
        msg1=envelope.msg1,
        status=status,
        tr_id=tr_id,
        pdno=pdno,
    )


def _not_kis(message: str, status: int, pdno: str | None) -> Exception:
    """An answer that is not KIS JSON: a proxy's page. Worth another try on 5xx and 429."""
    error = TransportError(message, status=status, pdno=pdno)
    return _Retry(error) if status >= 500 or status == 429 else error


def _connection_error(exc: BaseException, pdno: str | None) -> TransportError:
    """A message naming what failed, without anything from the request (headers hold secrets)."""
    reason: Any = getattr(exc, "os_error", None) or exc
    return TransportError(f"{type(exc).__name__}: {reason}", pdno=pdno)
