"""What one attempt's outcome means: the single place that judges an answer from KIS.

:func:`classify` is pure: it takes the HTTP status and what came back (the decoded envelope, the
:class:`~kis_async.errors.DecodeError` of a body that is not one, or the exception of a request
that got no answer) and returns one of four verdicts, each carrying the error to surface if no
further try is made:

- :class:`Ok`: ``rt_cd`` "0" on a 1xx/2xx status.
- :class:`Retry`: worth another try after a wait. Connection failures, timeouts, 5xx/429 pages
  that are not KIS JSON (a proxy's), ``EGW00201`` (per-second limit: ``throttled``, so the pacer
  can learn from it), ``EGW00215`` (the account ledger's limit: ``ledger``, for the ledger's
  pacer, never the appkey's) and, on the token endpoint, ``EGW00133`` (one token a minute:
  ``token_interval``). ``after`` is the wait the server asked for, if it said.
- :class:`Renew`: ``EGW00123``/``EGW00121``, the token was refused; a new one may help.
- :class:`Fail`: asking again gives the same answer (any other KIS error envelope, a malformed
  success, an answer that is not HTTP (``status`` 0), a redirect, an answer too large to be
  KIS's, a closed client, or an exception nothing here knows, which is contained as a
  :class:`~kis_async.errors.TransportError`).

The loops that act on verdicts live in :mod:`kis_async.transport` (API calls) and
:mod:`kis_async.auth` (token issuance); how long to wait is :mod:`kis_async.retry`'s business.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from dataclasses import dataclass

import aiohttp

from . import spec
from .endpoints import Envelope
from .errors import (
    AccountError,
    APIError,
    AuthError,
    ClientClosedError,
    DecodeError,
    KISError,
    RateLimitError,
    RequestTimeout,
    Source,
    TransportError,
)
from .wire import Closed, TooLarge

_RETRYABLE_CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)


@dataclass(frozen=True, slots=True)
class Ok:
    """The answer is a success; the caller reads its body."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Another try may succeed, after a wait."""

    error: KISError
    after: float | None = None
    """Seconds the server asked to wait (``Retry-After``), if it said."""
    throttled: bool = False
    """The gateway refused the call rate (``EGW00201``): feedback for the pacer."""
    ledger: bool = False
    """The account ledger refused the call rate (``EGW00215``): feedback for the ledger's pace
    (:mod:`kis_async.ledger`), not the appkey's."""
    token_interval: bool = False
    """The token endpoint says one issuance a minute (``EGW00133``): wait out the interval."""


@dataclass(frozen=True, slots=True)
class Renew:
    """The token was refused; the call may succeed with a new one."""

    error: APIError


@dataclass(frozen=True, slots=True)
class Fail:
    """Asking again would get the same answer. ``setup``: so would any other call of this
    client (the account, the appkey or the host refused), so the client remembers it."""

    error: KISError
    setup: bool = False


Verdict = Ok | Retry | Renew | Fail
_OK = Ok()
Answer = Envelope | DecodeError | BaseException
"""What one try got: an envelope, a body that is not one, or the exception that stopped it (no
answer at all; :class:`~kis_async.wire.Closed` and :class:`~kis_async.wire.TooLarge` among
them)."""


def classify(
    status: int,
    answer: Answer,
    *,
    retry_after: float | None = None,
    tr_id: str | None = None,
    pdno: str | None = None,
    token_endpoint: bool = False,
) -> Verdict:
    """Judge one attempt. ``status`` is 0 when no answer arrived (``answer`` is then the
    exception). ``token_endpoint`` marks tokenP, where every refusal is an :class:`AuthError`."""
    if status < 300 and isinstance(answer, Envelope) and answer.rt_cd == spec.RT_OK:
        return _OK
    source: Source = "token" if token_endpoint else "api"
    if isinstance(answer, TooLarge):
        detail = f"HTTP {status} answer larger than {answer.limit} bytes: not KIS's"
        return Fail(TransportError(detail, status=status, pdno=pdno, source=source))
    if isinstance(answer, BaseException) and not isinstance(answer, DecodeError):
        return _no_answer(answer, source, pdno)
    if 300 <= status < 400:
        detail = f"HTTP {status} redirect refused: kis_async only talks to base_url"
        return Fail(TransportError(detail, status=status, pdno=pdno, source=source))
    if isinstance(answer, DecodeError):
        if status < 400:
            return Fail(answer)
        detail = f"HTTP {status} without a KIS body"
        page = TransportError(detail, status=status, pdno=pdno, source=source)
        return Retry(page, retry_after) if status >= 500 or status == 429 else Fail(page)
    if answer.rt_cd == spec.RT_OK and status < 400:
        return _OK
    code = answer.msg_cd
    kind: type[APIError] = APIError
    if code in (spec.RATE_LIMITED, spec.LEDGER_LIMITED):
        kind = RateLimitError
    elif token_endpoint or code in spec.STALE_TOKEN_CODES or code in spec.CREDENTIAL_CODES:
        kind = AuthError
    elif code in spec.ACCOUNT_CODES or spec.ACCOUNT_REFUSED_MARK in answer.msg1:
        kind = AccountError
    error = kind(
        rt_cd=answer.rt_cd,
        msg_cd=code,
        msg1=answer.msg1,
        status=status,
        tr_id=tr_id,
        pdno=pdno,
    )
    if code == spec.RATE_LIMITED:
        return Retry(error, retry_after, throttled=True)
    if code == spec.LEDGER_LIMITED:
        return Retry(error, retry_after, ledger=True)
    if token_endpoint and code == spec.TOKEN_ISSUE_TOO_SOON:
        return Retry(error, retry_after, token_interval=True)
    if code in spec.STALE_TOKEN_CODES and not token_endpoint:
        return Renew(error)
    return Fail(error, setup=not token_endpoint and kind in (AuthError, AccountError))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (seconds, or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text) if len(text) < 10 else math.inf
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _no_answer(exc: BaseException, source: Source, pdno: str | None) -> Verdict:
    """A request that got no answer. The message names what failed, never anything from the
    request (its headers hold the appsecret and the token)."""
    if isinstance(exc, Closed):
        return Fail(ClientClosedError(pdno=pdno, source=source))
    if isinstance(exc, TimeoutError):
        return Retry(
            RequestTimeout("no answer within the request timeout", pdno=pdno, source=source)
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's parser refused the status line or a header. Its str() holds the request URL
        # (the account is in the query) and its status 400 is its own, not the peer's: neither is
        # used. Status 0 says an answer came, so the host was reached.
        said = _said(exc.message.partition("\n")[0].partition("'")[0].rstrip(" :"))
        detail = f"{type(exc).__name__}: a malformed answer: {said or 'unreadable'}"
        return Fail(TransportError(detail, status=0, pdno=pdno, source=source))
    if isinstance(exc, aiohttp.ClientError):
        cause = getattr(exc, "os_error", None) or exc
        error = TransportError(
            f"{type(exc).__name__}: {_said(str(cause))}", pdno=pdno, source=source
        )
        return Retry(error) if isinstance(exc, _RETRYABLE_CONNECTION_ERRORS) else Fail(error)
    return Fail(TransportError(f"request failed: {type(exc).__name__}", pdno=pdno, source=source))


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_LONG_NUMBER = re.compile(r"[0-9]{8,}")
_SAID_LIMIT = 120


def _said(text: str) -> str:
    """An exception's text fit for a message: without URLs (a request's holds the account),
    with every run of 8 or more digits masked as an account is (``12****78``), on one line of
    printable ASCII and at most 120 characters; a peer's bytes may be quoted in it."""
    text = _LONG_NUMBER.sub(lambda m: f"{m[0][:2]}****{m[0][-2:]}", _URL.sub("<url>", text))
    text = "".join(c if c.isascii() and c.isprintable() else " " for c in text[:_SAID_LIMIT])
    return text.strip()
