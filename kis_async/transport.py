"""One KIS API call, from token and pacing to the decoded answer, with retries.

:meth:`Transport.get` reads top to bottom as one call's life: take the token, wait for the
pacer, send (:class:`~kis_async.wire.Wire`), decode (:mod:`kis_async.models`), judge
(:func:`~kis_async.verdict.classify`), then act on the verdict:

- ``Ok``: return the decoded body;
- ``Renew``: the token was refused; re-issue it (once for every call that saw the same token
  refused) and repeat. A call survives two token deaths (say, revoked and then expired while it
  was in flight); a third means KIS refuses every token it issues, and re-issuing again would
  only spam the account holder;
- ``Retry``: wait as :class:`~kis_async.retry.RetryPolicy` says (a
  :class:`~kis_async.retry.Backoff`, on the client's clock) and repeat, at most ``max_retries``
  times; a renewal is not a retry and does not use one up. A refusal for the call rate
  (``EGW00201``) is first reported to the pacer, which learns from it; one for the account
  ledger's rate (``EGW00215``) to the :class:`~kis_async.ledger.Ledger`, never to the pacer;
- ``Fail``, or tries spent: raise the verdict's error. A set-up refusal (``Fail.setup``: the
  account refused, ``AccountError``, or the appkey, appsecret or host, ``AuthError`` such as
  EGW00304 or EGW02007) is remembered: every later call, and every call already waiting for the
  pacer, gets a copy of it without asking KIS again (none will become valid mid-session).

Every try goes through the pacer (:class:`~kis_async.pacing.Pacer`), retries and renewals
included, so every call KIS counts is paced; the pacer is told what the call is (its tr_id and
priority, a :class:`~kis_async.pacing.Call`). A tr_id that has drawn ``EGW00215`` waits for
the ledger's pace first. Token issuance is not paced: KIS limits it separately, and
:mod:`kis_async.auth` paces it.

With :class:`~kis_async.metrics.Metrics` (a client given a meter provider), each try's wait for
the pacers and its outcome, each retry and the call's end are reported to it; without, the
call tests ``None`` at those steps and does nothing more.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy

from . import spec
from .auth import TokenManager
from .clock import SYSTEM_CLOCK, Clock
from .corporate import Corporate, with_gt_uid
from .endpoints import Envelope
from .errors import KISError
from .ledger import Ledger
from .metrics import Metrics
from .models import read_answer
from .pacing import Call, Pacer
from .redaction import scrub
from .retry import Backoff, RetryPolicy
from .verdict import Fail, Ok, Renew, Retry, Verdict, classify, parse_retry_after
from .wire import Wire

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)

_MAX_RENEWALS = 2


class Response(msgspec.Struct, Generic[E], frozen=True):
    """A successful answer: the decoded body, the headers (``tr_cont`` for paging), and the
    body's bytes for a caller that decodes it again in a type of its own (a Struct, like
    :class:`~kis_async.wire.Reply`, as one is built per call)."""

    data: E
    headers: CIMultiDictProxy[str]
    body: bytes


class Transport:
    """API calls for one client: one wire, one token manager, one pacer, one retry policy, one
    clock.

    ``redact`` is applied to the message of every error answer, so that the account number KIS
    may quote in it reaches no log or exception whole; the appsecret, the personalseckey and the
    token are taken out of it before (:mod:`kis_async.redaction`).
    """

    def __init__(
        self,
        wire: Wire,
        *,
        tokens: TokenManager,
        pacer: Pacer[Any],
        retry: RetryPolicy,
        ledger: Ledger | None = None,
        app_key: str,
        app_secret: str,
        custtype: str,
        corporate: Corporate | None = None,
        redact: Callable[[str], str] = str,
        clock: Clock = SYSTEM_CLOCK,
        metrics: Metrics | None = None,
    ) -> None:
        self._wire = wire
        self._metrics = metrics
        self._clock = clock
        self._redact = redact
        self._tokens = tokens
        self._pacer = pacer
        self._ledger = ledger
        self._retry = retry
        self._static_headers = {
            "content-type": "application/json; charset=utf-8",
            "custtype": custtype,
            "appkey": app_key,
            "appsecret": app_secret,
            **(corporate.headers() if corporate is not None else {}),
        }
        self._corporate = corporate is not None
        self._secrets = (app_secret, *(corporate.secrets() if corporate is not None else ()))
        """What an error answer's message must never carry (:mod:`kis_async.redaction`), with
        the token the call sent."""
        self._headers_for: dict[tuple[str, str], CIMultiDict[str]] = {}
        self.retries = 0
        """Tries repeated after a transient fault, over every call so far."""
        self.ledger_refusals = 0
        """Tries the account ledger refused (EGW00215), over every call so far."""
        self._refused: KISError | None = None

    async def get(
        self,
        path: str,
        *,
        call: Call,
        params: Mapping[str, str] | str,
        decode: Callable[[bytes], E],
        pdno: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response[E]:
        """GET an API path and decode the answer; raises a :class:`~kis_async.KISError`.

        ``call`` names the tr_id (sent as that header) and the call's priority, for the pacer;
        ``params`` is the query, as a mapping or a string already encoded.
        """
        tr_id = call.tr_id
        metrics = self._metrics
        started = metrics.now() if metrics is not None else 0.0
        verdict: Verdict | None = None
        try:
            token = self._tokens.fresh() or await self._tokens.get()
            tries: Backoff | None = None
            renewals = 0
            ledger = self._ledger
            while True:
                waiting = metrics.now() if metrics is not None else 0.0
                booked = (
                    await ledger.acquire(call)
                    if ledger is not None and tr_id in ledger.tr_ids
                    else None
                )
                ticket = self._pacer.try_acquire(call) or await self._pacer.acquire(call)
                if metrics is not None:
                    metrics.waited(tr_id, waiting)
                if self._refused is not None:
                    raise copy.copy(self._refused)
                reply = await self._wire.send(
                    "GET", path, params=params, headers=self._headers(token, tr_id, headers)
                )
                outcome = reply.failure or read_answer(reply.body, decode)
                if isinstance(outcome, Envelope) and outcome.rt_cd != spec.RT_OK:
                    said = scrub(outcome.msg1, (*self._secrets, token))
                    outcome.msg1 = self._redact(said)
                status = reply.status
                asked = reply.headers.get("Retry-After") if status >= 400 else None
                wait = parse_retry_after(asked, now=self._clock.time()) if asked else None
                verdict = classify(status, outcome, retry_after=wait, tr_id=tr_id, pdno=pdno)
                if isinstance(verdict, Retry):
                    if verdict.throttled:
                        await self._pacer.refused(ticket)
                    elif verdict.ledger and ledger is not None:
                        self.ledger_refusals += 1
                        await ledger.refused(call, booked)
                if metrics is not None:
                    metrics.tried(tr_id, verdict)
                match verdict:
                    case Ok():
                        if metrics is not None:
                            metrics.called(tr_id, started, verdict)
                        # An Ok verdict's outcome is the decoded E; cast() would be a call.
                        return Response(outcome, reply.headers, reply.body)  # type: ignore[arg-type]
                    case Renew() if renewals < _MAX_RENEWALS:
                        renewals += 1
                        log.info("token refused (%s); re-issuing once", verdict.error.msg_cd)
                        token = await self._tokens.renew(token, verdict.error)
                    case Retry() if (tries := tries if tries is not None else self._backoff()).left:
                        if metrics is not None:
                            metrics.retried(tr_id, verdict)
                        await tries.wait(verdict.error, verdict.after)
                        self.retries += 1
                        token = await self._tokens.get()
                    case Fail(error=refused, setup=True):
                        self._refused = copy.copy(refused)
                        self._refused.pdno = None
                        raise refused
                    case _:
                        raise verdict.error
        except BaseException as exc:
            if metrics is not None:
                metrics.called(tr_id, started, verdict, exc)
            raise

    def _backoff(self) -> Backoff:
        """One call's retries, made at its first: most calls never retry."""
        return Backoff(self._retry, self._clock, "API call")

    def _headers(
        self, token: str, tr_id: str, extra: Mapping[str, str] | None
    ) -> Mapping[str, str]:
        """The request headers; the common part is built once per token and tr_id.

        A corporate client's headers carry a fresh ``gt_uid`` on every attempt.
        """
        base = self._headers_for.get((token, tr_id))
        if base is None:
            if len(self._headers_for) > 8:
                self._headers_for.clear()
            base = CIMultiDict(
                {**self._static_headers, "authorization": f"Bearer {token}", "tr_id": tr_id}
            )
            self._headers_for[token, tr_id] = base
        if self._corporate:
            return with_gt_uid(base) | dict(extra or {})
        return base if extra is None else {**base, **extra}
