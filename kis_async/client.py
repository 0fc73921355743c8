"""KISClient: the methods a trading bot calls, over one session, one token and one pacer.

The client builds the parts and holds them: the :class:`~kis_async.wire.Wire` (the session),
the :class:`~kis_async.auth.TokenManager` with its issuer and store, the pacer (this process's
:class:`~kis_async.throttle.Throttle`, or Redis's), and the :class:`~kis_async.transport.Transport`
that takes one call through them, all on the one :class:`~kis_async.clock.Clock` it was given;
given a meter provider, also the :class:`~kis_async.metrics.Metrics` they report to.
Its methods say *what* to ask KIS, and whether it is a single call or bulk work
(:class:`~kis_async.pacing.Priority`: :meth:`KISClient.sellable_quantity` and
:meth:`KISClient.get` are single calls, the batches and the pages of a listing bulk work, unless
told otherwise); the transport says how.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import math
from asyncio import AbstractEventLoop, get_running_loop
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from . import batch, config, sells, spec, validate
from .auth import TokenIssuer, TokenManager, TokenStore
from .batch import Batch, Outcome
from .clock import SYSTEM_CLOCK, Clock, checked_clock
from .corporate import Corporate
from .endpoints import BALANCE, SELLABLE, BalancePage, Envelope, Position, SellableQuantity
from .errors import (
    APIError,
    ArgumentError,
    KISError,
    ListingChanged,
    PagingError,
    WrongLoopError,
)
from .ledger import Ledger
from .metrics import Metrics, checked_meter_provider
from .models import (
    decode_as,
    decode_continuation,
    decode_envelope,
    decode_sellable,
    pick_sellable,
)
from .pace import DEFAULT_MARGIN, Pace
from .pacing import Call, Pacer, Priority
from .retry import RetryPolicy
from .sells import Answered, Sell, SellCheck
from .throttle import Throttle
from .tokencache import FileTokenStore, TokenCache
from .transport import Response, Transport
from .wire import Wire

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

    from .redis_backend import Client as RedisClient
    from .redis_backend import Shared

log = logging.getLogger(__name__)
T = TypeVar("T")
progress = logging.getLogger(config.PROGRESS_LOGGER)


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of how a client is doing against the gateway: read ``kis.stats`` any time."""

    rate_limit: float
    """The configured ceiling, calls per second."""
    pace: float
    """Calls per second the pacer lets out now: ``rate_limit`` less what the gateway taught."""
    margin: float
    """Seconds of arrival jitter the pacing now allows for."""
    learned: bool
    """True when the gateway's refusals moved the pace off the configured one."""
    refusals: int
    """Calls the gateway refused for the call rate (EGW00201), retried or not."""
    retries: int
    """Tries repeated after any transient fault."""
    token_issuances: int
    """Tokens this client had KIS issue (each one notifies the account holder)."""
    ledger_pace: float | None = None
    """Calls per second the account ledger's pace lets out, once a tr_id has drawn EGW00215
    (:mod:`kis_async.ledger`); ``None`` before."""
    ledger_refusals: int = 0
    """Calls the account ledger refused (EGW00215), retried or not."""
    ledger_tr_ids: tuple[str, ...] = ()
    """The tr_ids that keep the ledger's pace."""


class _DefaultTokenCache:
    def __repr__(self) -> str:
        return "DEFAULT_TOKEN_CACHE"


DEFAULT_TOKEN_CACHE: Final = _DefaultTokenCache()
"""``token_cache=DEFAULT_TOKEN_CACHE`` keeps the token in the per-user cache file."""

_MAX_CONCURRENCY = 1024
_NO_PARAMS: Final[Mapping[str, str]] = MappingProxyType({})
"""``get()``/``pages()`` without a query: read-only, so one shared empty mapping is safe."""
_CREDENTIALS: Final = {
    "app_key": config.ENV_APP_KEY,
    "app_secret": config.ENV_APP_SECRET,
    "account": config.ENV_ACCOUNT,
}
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_MAX_RATE = 1_000_000.0
_SELLABLE = Call(SELLABLE.tr_id, Priority.INTERACTIVE)
_SELLABLE_BULK = Call(SELLABLE.tr_id, Priority.BULK)
_POOL_PER_WORKER = 2
"""Connections per batch worker: a batch holds at most ``max_concurrency`` at once, so as many
again stay free for single calls (which the pacer lets go ahead of the batch, and which must not
then queue for a connection behind it), token requests and a second batch."""


class KISClient:
    """An async session with KIS for one appkey and account.

    Use it as an async context manager; every request made through it shares one
    ``aiohttp.ClientSession``, one access token and one pacer, so any number of concurrent calls
    stay under ``rate_limit`` calls per second as they arrive at KIS, or under the lower pace KIS's
    refusals teach (see :mod:`kis_async.pace`; :attr:`stats` tells it). Every argument is
    checked here, so a mistake is a ``TypeError``, or an :class:`~kis_async.errors.ArgumentError`
    (a ``ValueError``) whose ``argument`` names it, before any request. Once KIS refuses the
    account (:class:`~kis_async.errors.AccountError`), every later call fails with that refusal
    without asking again.

    :param account: ``"12345678-01"`` or ``"1234567801"``.
    :param base_url: the real host by default. Plain ``http://`` is accepted only for loopback
        addresses (the embedded simulator); TLS is verified everywhere else.
    :param rate_limit: calls per second KIS allows this appkey (20 for real accounts).
    :param token_cache: ``DEFAULT_TOKEN_CACHE`` for the per-user cache file, a path for another
        file (one file may serve several appkeys: each keeps its own entry), ``None`` to keep
        the token in memory only.
    :param max_concurrency: a batch's calls in flight at once; by default enough to sustain
        ``rate_limit`` while each call takes up to two seconds. The connection pool holds twice as
        many, so a single call never waits for a connection behind a batch's calls.
    :param retry: how transient faults are retried (see :class:`~kis_async.retry.RetryPolicy`).
    :param timeout: seconds one request may take before it counts as a transient fault.
    :param pace_margin: seconds of arrival jitter the pacing allows for at first (the pace
        widens it when KIS refuses calls that arrived early; see :mod:`kis_async.pace`).
    :param token_issue_interval: seconds between token issuances (KIS: one a minute).
    :param corporate: a partner firm's (제휴사) identification of its member
        (:class:`~kis_async.Corporate`); implies ``custtype="B"``, and every call then carries
        those headers and a fresh ``gt_uid``. ``custtype`` defaults to ``"P"`` without it, which
        is right for individuals and ordinary corporations alike.
    :param redis_url: share the token and the call budget with every process using the same
        appkey through this Redis (needs the ``redis`` extra; see
        :mod:`kis_async.redis_backend`). ``redis_fail_open`` paces locally while Redis is down
        instead of failing the calls.
    :param redis: instead of ``redis_url``, a redis-py client to share through, as it is
        configured: a ``redis.asyncio.Redis`` (a Sentinel's ``master_for(...)`` returns one;
        Valkey too) or a ``redis.asyncio.RedisCluster``. It is the caller's: :meth:`aclose`
        leaves it open.
    :param clock: where every part of the client reads the time and waits: pacing, retries'
        backoff, token expiry and issuance (a :class:`~kis_async.Clock`; the system's by
        default). A test may pass one of its own.
    :param meter_provider: report metrics to this OpenTelemetry ``MeterProvider``
        (``opentelemetry.metrics.get_meter_provider()`` for the global one; needs the ``otel``
        extra): the instruments are in :mod:`kis_async.metrics` and the README's *Metrics*.
        ``None``, the default, reports nothing and imports nothing of OpenTelemetry.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        account: str,
        *,
        base_url: str = spec.REAL_HOST,
        rate_limit: float = spec.CALLS_PER_SECOND,
        token_cache: Path | str | _DefaultTokenCache | None = DEFAULT_TOKEN_CACHE,
        custtype: str | None = None,
        corporate: Corporate | None = None,
        max_concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 10.0,
        pace_margin: float = DEFAULT_MARGIN,
        token_issue_interval: float = spec.TOKEN_ISSUE_INTERVAL,
        redis_url: str | None = None,
        redis: RedisClient | None = None,
        redis_fail_open: bool = False,
        clock: Clock | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._app_key = validate.checked_key("app_key", app_key, max_length=spec.APP_KEY_MAX_LENGTH)
        self._app_secret = validate.checked_key(
            "app_secret", app_secret, max_length=spec.APP_SECRET_MAX_LENGTH
        )
        self.account = validate.parse_account(account)
        self._sellable_query = f"CANO={self.account.cano}&ACNT_PRDT_CD={self.account.product}&PDNO="
        """inquire-psbl-sell's query less the ticker, encoded once: digits, then a ticker of
        letters and digits, so nothing in it needs quoting."""
        self.base_url = validate.checked_base_url(base_url)
        self.custtype, self._corporate = _customer(custtype, corporate)
        self.rate_limit = validate.positive("rate_limit", rate_limit, at_most=_MAX_RATE)
        """The ceiling on calls per second this client (with Redis: every process) sends."""
        self.pace_margin = validate.non_negative("pace_margin", pace_margin, below=1.0)
        self.timeout = validate.positive("timeout", timeout, at_most=3600)
        self.token_issue_interval = validate.non_negative(
            "token_issue_interval", token_issue_interval, below=3601
        )
        if max_concurrency is None:
            max_concurrency = max(4, min(256, math.ceil(self.rate_limit * 2)))
        self.max_concurrency = validate.count(
            "max_concurrency", max_concurrency, minimum=1, maximum=_MAX_CONCURRENCY
        )
        if retry is None:
            retry = RetryPolicy()
        elif not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        self.retry = retry
        self._token_cache = _token_cache(token_cache, self._app_key, self.base_url)
        self._redis = _checked_redis(redis, _checked_redis_url(redis_url))
        """Where the budget is shared: a URL to connect to, a client handed in, or nowhere."""
        if not isinstance(redis_fail_open, bool):
            raise TypeError("redis_fail_open must be True or False")
        self._redis_fail_open = redis_fail_open
        self.clock = SYSTEM_CLOCK if clock is None else checked_clock(clock)
        """The clock every part of this client reads and waits on."""
        self._meter_provider = checked_meter_provider(meter_provider)
        self._metrics: Metrics | None = None
        self._wire: Wire | None = None
        self._shared: Shared | None = None
        self._tokens: TokenManager | None = None
        self._pacer: Pacer[Any] | None = None
        self._ledger: Ledger | None = None
        self._transport: Transport | None = None
        self._loop: AbstractEventLoop | None = None
        """The event loop that opened the client: the only one its calls may come from."""

    @classmethod
    def from_env(cls, **options: object) -> KISClient:
        """Build from ``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ACCOUNT`` (and the optional
        ``KIS_BASE_URL``, ``KIS_REDIS_URL``); see :mod:`kis_async.config`.

        Raises ``ValueError`` naming every required variable that is missing or empty.
        ``options`` are passed on to the constructor, which checks them, and win over the
        environment, the three credentials included (a bot may keep its secret elsewhere).
        """
        given = {name for keyword, name in _CREDENTIALS.items() if keyword in options}
        settings = config.from_environ(given=given)
        keywords: dict[str, Any] = {
            "app_key": settings.app_key,
            "app_secret": settings.app_secret,
            "account": settings.account,
            **settings.options,
            **options,
        }
        return cls(**keywords)

    async def __aenter__(self) -> KISClient:
        if self._wire is not None and not self._wire.closed:
            raise RuntimeError("this KISClient is already open")
        self._loop = get_running_loop()
        pacer: Pacer[Any]
        store: TokenStore | None
        if self._redis is not None:
            from .redis_backend import open_shared

            self._shared = open_shared(
                self._redis,
                app_key=self._app_key,
                host=self.base_url,
                rate=self.rate_limit,
                margin=self.pace_margin,
                fail_open=self._redis_fail_open,
                clock=self.clock,
            )
            pacer, store = self._shared.pacer, self._shared.store
            shared = self._shared
            account = f"{self.account.cano}-{self.account.product}"
            ledger = Ledger(
                lambda start: shared.ledger_pacer(account, start),
                ceiling=self.rate_limit,
                margin=self.pace_margin,
                now=self.clock.time,
            )
        else:
            pacer = Throttle(self.rate_limit, margin=self.pace_margin, clock=self.clock)
            store = FileTokenStore(self._token_cache) if self._token_cache else None
            ledger = Ledger(
                lambda start: Throttle(
                    start.ceiling, margin=start.base_margin, start=start, clock=self.clock
                ),
                ceiling=self.rate_limit,
                margin=self.pace_margin,
                now=self.clock.monotonic,
            )
        if self._meter_provider is not None:
            self._metrics = Metrics(
                self._meter_provider,
                app_key=self._app_key,
                pacer=pacer,
                ledger=ledger,
                clock=self.clock,
            )
        self._wire = Wire(
            self.base_url, timeout=self.timeout, connections=_POOL_PER_WORKER * self.max_concurrency
        )
        issuer = TokenIssuer(
            self._wire,
            app_key=self._app_key,
            app_secret=self._app_secret,
            retry=self.retry,
            issue_interval=self.token_issue_interval,
            clock=self.clock,
        )
        self._tokens = TokenManager(
            issuer,
            store=store,
            revoke=issuer.revoke,
            issue_interval=self.token_issue_interval,
            clock=self.clock,
            metrics=self._metrics,
        )
        self._pacer = pacer
        self._ledger = ledger
        self._transport = Transport(
            self._wire,
            tokens=self._tokens,
            pacer=pacer,
            ledger=ledger,
            retry=self.retry,
            app_key=self._app_key,
            app_secret=self._app_secret,
            custtype=self.custtype,
            corporate=self._corporate,
            redact=self.account.redact,
            clock=self.clock,
            metrics=self._metrics,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session. Calls in flight or still queued fail at once, each with a
        ``TransportError``; so does every call made after."""
        if self._pacer is not None:
            self._pacer.close()
        if self._ledger is not None:
            self._ledger.close()
        if self._metrics is not None:
            self._metrics.close()
        if self._wire is not None:
            await self._wire.close()
        if self._shared is not None:
            shared, self._shared = self._shared, None
            await shared.aclose()

    @property
    def token_issuances(self) -> int:
        """Tokens this client has had KIS issue (each one notifies the account holder)."""
        return self._tokens.issued if self._tokens else 0

    @property
    def stats(self) -> ClientStats:
        """The pace in force, refusals and retries so far (see :class:`ClientStats`)."""
        pacer, transport = self._pacer, self._transport
        ledger_pacer = self._ledger.pacer if self._ledger is not None else None
        pace = pacer.pace if pacer is not None else Pace.start(self.rate_limit, self.pace_margin)
        return ClientStats(
            rate_limit=self.rate_limit,
            pace=pace.calls_per_second,
            margin=pace.margin,
            learned=pace.learned,
            refusals=pacer.refusals if pacer is not None else 0,
            retries=transport.retries if transport is not None else 0,
            token_issuances=self.token_issuances,
            ledger_pace=ledger_pacer.pace.calls_per_second if ledger_pacer is not None else None,
            ledger_refusals=transport.ledger_refusals if transport is not None else 0,
            ledger_tr_ids=tuple(sorted(self._ledger.tr_ids)) if self._ledger is not None else (),
        )

    async def sellable_quantity(
        self, pdno: str, *, priority: Priority = Priority.INTERACTIVE
    ) -> SellableQuantity:
        """How many shares of ``pdno`` can be sold now (``ord_psbl_qty``), with the position.

        A single call: it leaves ahead of any batch waiting for the pacer, unless ``priority``
        is :attr:`~kis_async.Priority.BULK` (a loop of such calls that is a batch in all but
        name). Raises ``ValueError`` for a malformed ticker before any request, ``TypeError``
        for a ``priority`` that is not a :class:`~kis_async.Priority`, and a
        :class:`~kis_async.errors.KISError` subclass if KIS refuses or the answer is unusable.
        """
        call = _SELLABLE if _checked_priority(priority) is Priority.INTERACTIVE else _SELLABLE_BULK
        return await self._sellable(call, validate.normalize_pdno(pdno))

    async def check_sellable(self, pdnos: Iterable[str]) -> Batch[SellableQuantity]:
        """Check every ticker concurrently at the full call limit; never raises for one ticker.

        Tickers are normalized and repeats asked once. Every ticker lands in exactly one of
        ``results`` and ``errors``, both in input order. A malformed ticker anywhere raises
        ``ValueError`` naming all of them before any request. Cancelling cancels the calls in
        flight. Its calls are bulk work: a single call (:meth:`sellable_quantity`, :meth:`get`)
        leaves ahead of them, and they keep a share of the pace however many single calls wait.
        """
        codes = validate.normalize_pdnos(pdnos)
        sellable = functools.partial(self._sellable, _SELLABLE_BULK)
        return await batch.collect(codes, sellable, self.max_concurrency, self._metrics)

    def iter_sellable(
        self, pdnos: Iterable[str]
    ) -> AsyncGenerator[Outcome[SellableQuantity], None]:
        """Like :meth:`check_sellable`, but yield each ticker's :data:`~kis_async.batch.Outcome`
        (a :class:`~kis_async.batch.Succeeded` or a :class:`~kis_async.batch.Failed`) as it
        completes.

        Input is validated here, before iteration starts. Leaving the ``async for`` early
        cancels the calls still in flight once the generator is closed (``aclose()``).
        """
        codes = validate.normalize_pdnos(pdnos)
        sellable = functools.partial(self._sellable, _SELLABLE_BULK)
        return batch.stream(codes, sellable, self.max_concurrency, self._metrics)

    async def check_sells(self, orders: Iterable[Sell | tuple[str, int]]) -> list[SellCheck]:
        """Whether the account can fill each of a list of intended sells, before any is sent.

        ``orders`` are :class:`~kis_async.Sell` or ``(pdno, qty)`` pairs; a bad one anywhere
        (qty 0, negative or not an ``int``, a malformed ticker) raises
        :class:`~kis_async.errors.ArgumentError` naming every bad one, before any request. Each
        distinct ticker is asked once, at the full call limit, as :meth:`check_sellable` does.

        Returns one :data:`~kis_async.sells.SellCheck` per order, in input order: ``ok``,
        ``short`` (with the ``shortfall``), ``not_held``, or ``error`` when the check itself
        failed, which is never ``ok`` and never reads as zero sellable (its ``ord_psbl_qty`` is
        ``None``). Orders for one ticker are judged in input order on a running total. Each
        verdict carries KIS's ``ord_psbl_qty``, ``cblc_qty``, ``sll_qty`` and ``answered_at``.

        The check is advisory: quantities can change between ``answered_at`` and the moment an
        order reaches the exchange (another order fills, a settlement lands), so an ``ok`` is
        not a reservation.
        """
        wanted = sells.orders(orders)
        codes = list(dict.fromkeys(sell.pdno for sell in wanted))
        answered = await batch.collect(codes, self._answered, self.max_concurrency, self._metrics)
        outcomes: dict[str, Answered | KISError] = {**answered.results, **answered.errors}
        return sells.judge(wanted, outcomes)

    async def _answered(self, pdno: str) -> Answered:
        """One ticker of :meth:`check_sells`: its answer, and when it came."""
        quantity = await self._sellable(_SELLABLE_BULK, pdno)
        return Answered(quantity, sells.answered_now(self.clock))

    @overload
    async def get(
        self,
        path: str,
        *,
        tr_id: str,
        params: Mapping[str, str] = _NO_PARAMS,
        type: None = None,
        tr_cont: str = "",
        priority: Priority = Priority.INTERACTIVE,
    ) -> dict[str, Any]: ...

    @overload
    async def get(
        self,
        path: str,
        *,
        tr_id: str,
        params: Mapping[str, str] = _NO_PARAMS,
        type: type[T],
        tr_cont: str = "",
        priority: Priority = Priority.INTERACTIVE,
    ) -> T: ...

    async def get(
        self,
        path: str,
        *,
        tr_id: str,
        params: Mapping[str, str] = _NO_PARAMS,
        type: type[Any] | None = None,
        tr_cont: str = "",
        priority: Priority = Priority.INTERACTIVE,
    ) -> Any:
        """Any KIS inquiry (GET) through this client's one token, one pacer and its retries.

        A bot's other calls (prices, balances...) then share the token and the per-second
        budget with the bulk checks instead of issuing a token and pacing alone. The answer goes
        through the same envelope check and error classes as the built-in calls; it is returned
        as a ``dict``, or decoded as ``type`` (a msgspec ``Struct``) when given. ``tr_cont`` is
        sent as the request header of that name (``"N"`` asks for the next page; see
        :meth:`pages`). It is a single call, ahead of bulk work waiting for the pacer, unless
        ``priority`` is :attr:`~kis_async.Priority.BULK` (a bot's own polling loop, say).

        Only GET: KIS order endpoints are POSTs that need a hashkey and are not idempotent, so a
        retry after a lost answer could place an order twice. This client refuses to guess.
        """
        if tr_cont not in ("", spec.NEXT_PAGE):
            raise ArgumentError(
                f"tr_cont must be '' or {spec.NEXT_PAGE!r}, got {tr_cont!r}", argument="tr_cont"
            )
        call = Call(validate.checked_tr_id(tr_id), _checked_priority(priority))
        response = await self._get(path, call=call, params=params, tr_cont=tr_cont)
        return decode_as(response.body, dict if type is None else type)

    @overload
    def pages(
        self,
        path: str,
        *,
        tr_id: str,
        params: Mapping[str, str] = _NO_PARAMS,
        type: None = None,
        max_pages: int = 100,
        priority: Priority = Priority.BULK,
    ) -> AsyncGenerator[dict[str, Any], None]: ...

    @overload
    def pages(
        self,
        path: str,
        *,
        tr_id: str,
        params: Mapping[str, str] = _NO_PARAMS,
        type: type[T],
        max_pages: int = 100,
        priority: Priority = Priority.BULK,
    ) -> AsyncGenerator[T, None]: ...

    def pages(
        self,
        path: str,
        *,
        tr_id: str,
        params: Mapping[str, str] = _NO_PARAMS,
        type: type[Any] | None = None,
        max_pages: int = 100,
        priority: Priority = Priority.BULK,
    ) -> AsyncGenerator[Any, None]:
        """Every page of a paged KIS inquiry, in order, as :meth:`get` returns one.

        Pages continue while the answer's ``tr_cont`` header is ``F`` or ``M``: the next request
        sends ``tr_cont: N`` and echoes the ``ctx_area_fk100``/``ctx_area_nk100`` (or
        ``..._fk200``/``..._nk200``) keys of the page before as ``CTX_AREA_*`` query parameters.
        A server that repeats a continuation key, sends none, or pages past ``max_pages``
        raises :class:`~kis_async.errors.PagingError`. The pages are bulk work: single calls
        leave ahead of them, unless ``priority`` is :attr:`~kis_async.Priority.INTERACTIVE`.
        """
        validate.count("max_pages", max_pages, minimum=1, maximum=10_000)
        call = Call(validate.checked_tr_id(tr_id), _checked_priority(priority))
        return self._pages(path, call, dict(params), dict if type is None else type, max_pages)

    async def _pages(
        self, path: str, call: Call, params: dict[str, str], kind: type[Any], max_pages: int
    ) -> AsyncGenerator[Any, None]:
        seen = {_continuation_key(params)}
        for page in range(max_pages):
            tr_cont = spec.NEXT_PAGE if page else ""
            try:
                response = await self._get(path, call=call, params=params, tr_cont=tr_cont)
            except APIError as exc:
                if page and exc.msg_cd == spec.DATA_CHANGED:
                    raise ListingChanged(
                        f"{path}: the data changed after page {page} ({spec.DATA_CHANGED}): "
                        "ask again from the first page"
                    ) from None
                raise
            yield decode_as(response.body, kind)
            if response.headers.get("tr_cont", "") not in spec.MORE_PAGES:
                return
            continuation = decode_continuation(response.body)
            if continuation.last_page():
                return
            keys = continuation.params()  # PagingError for a key over its bound: never kept
            if not any(value.strip() for value in keys.values()):
                raise PagingError(f"{path} said more pages follow but sent no continuation key")
            params |= keys
            if (key := _continuation_key(params)) in seen:
                raise PagingError(f"{path} repeated its continuation key on page {page + 2}")
            seen.add(key)
        raise PagingError(f"{path} still had more pages after {max_pages}")

    async def holdings(self, *, max_pages: int = 100) -> list[Position]:
        """Every position of the account (주식잔고조회), following the pages to the end.

        Pages go through the same token, pacing and retries as every call (see :meth:`pages`),
        as bulk work.
        With ``INQR_DVSN=01`` a ticker held partly on a loan is listed once per loan
        (``trad_dvsn_name``, ``loan_dt``). If KIS answers a next page with SYDB0050 (the data
        changed since the first page), the listing starts again from page 1, once, saying so
        at WARNING; a second time raises :class:`~kis_async.errors.ListingChanged`. A listing
        never ends short without an error: a missing position would read as nothing to sell.
        """
        validate.count("max_pages", max_pages, minimum=1, maximum=10_000)
        for attempt in range(2):
            try:
                return await self._list_positions(max_pages)
            except ListingChanged:
                if attempt:
                    raise
                log.warning(
                    "holdings: the account changed while it was listed (%s); listing it again "
                    "from the first page",
                    spec.DATA_CHANGED,
                )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _list_positions(self, max_pages: int) -> list[Position]:
        query = {"CANO": self.account.cano, "ACNT_PRDT_CD": self.account.product}
        query |= dict(BALANCE.query) | {"CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
        positions: list[Position] = []
        pages = self.pages(
            BALANCE.path, tr_id=BALANCE.tr_id, params=query, type=BalancePage, max_pages=max_pages
        )
        number = 0
        async for page in pages:
            number += 1
            positions.extend(page.output1)
            progress.info(
                "holdings: page %d read, %d positions so far",
                number,
                len(positions),
                extra={"stage": "holdings"},
            )
        return positions

    async def held_tickers(self) -> list[str]:
        """The tickers of every position with shares in it, as :meth:`holdings` lists them,
        each once (a ticker held partly on a loan is listed once per loan).

        Positions sold out today (``hldg_qty`` 0) are skipped.
        """
        positions = await self.holdings()
        held = list(dict.fromkeys(p.pdno for p in positions if p.hldg_qty > 0))
        log.info(
            "holdings: %d rows, %d tickers held",
            len(positions),
            len(held),
        )
        return held

    async def check_holdings(self) -> Batch[SellableQuantity]:
        """:meth:`held_tickers`, then :meth:`check_sellable` for each.

        Errors listing the holdings raise; errors checking a ticker land in ``errors`` as usual.
        """
        return await self.check_sellable(await self.held_tickers())

    async def _sellable(self, call: Call, pdno: str) -> SellableQuantity:
        response = await self._require_transport().get(
            SELLABLE.path,
            call=call,
            params=self._sellable_query + pdno,
            decode=functools.partial(decode_sellable, pdno=pdno),
            pdno=pdno,
        )
        return pick_sellable(response.data, pdno)

    async def _get(
        self, path: str, *, call: Call, params: Mapping[str, str], tr_cont: str
    ) -> Response[Envelope]:
        return await self._require_transport().get(
            validate.checked_path(path),
            call=call,
            params=validate.checked_params(params),
            decode=decode_envelope,
            headers={"tr_cont": tr_cont} if tr_cont else None,
        )

    def _require_transport(self) -> Transport:
        """The transport, for one call made on the loop that opened the client.

        Every call comes through here once, so the loop is compared once per call (one
        identity test): a call from another loop would wait forever on this loop's pacer.
        """
        transport = self._transport
        if transport is None:
            raise RuntimeError("KISClient is not open: use `async with KISClient(...) as kis:`")
        if get_running_loop() is not self._loop:
            raise WrongLoopError()
        return transport

    def __repr__(self) -> str:
        return f"KISClient(account={self.account.masked()!r}, base_url={self.base_url!r})"


def _checked_priority(priority: Priority) -> Priority:
    if not isinstance(priority, Priority):
        raise TypeError(f"priority must be Priority.INTERACTIVE or Priority.BULK, got {priority!r}")
    return priority


def _continuation_key(params: Mapping[str, str]) -> bytes:
    """A 16-byte digest of the ``CTX_AREA_*`` keys: what :meth:`KISClient.pages` remembers of
    each page, so a server sending fresh keys grows it by a fixed amount a page, not by their
    size (the keys themselves are bounded, 100 or 200 characters, before they get here)."""
    keys = sorted((k, v) for k, v in params.items() if k.startswith("CTX_AREA_"))
    return hashlib.blake2b(repr(keys).encode(), digest_size=16).digest()


def _customer(custtype: str | None, corporate: Corporate | None) -> tuple[str, Corporate | None]:
    """``P`` for an individual or an ordinary corporation; ``B`` for a partner firm (제휴사),
    which must say which member it calls for."""
    if corporate is not None and not isinstance(corporate, Corporate):
        raise TypeError(f"corporate must be a kis_async.Corporate, got {type(corporate).__name__}")
    if custtype is None:
        return ("P" if corporate is None else "B"), corporate
    validate.checked_custtype(custtype)
    if custtype == "B" and corporate is None:
        raise ArgumentError(
            "custtype 'B' (a partner firm, 제휴사) needs corporate=Corporate(personalseckey=..., "
            "phone_number=..., ip_addr=...): KIS refuses such a call without them; an ordinary "
            "corporation's own account is custtype 'P'",
            argument="custtype",
        )
    if custtype == "P" and corporate is not None:
        raise ArgumentError(
            "custtype 'P' (an individual or an ordinary corporation) cannot send "
            "corporate=...; leave custtype out",
            argument="custtype",
        )
    return custtype, corporate


def _token_cache(
    token_cache: Path | str | _DefaultTokenCache | None, app_key: str, host: str
) -> TokenCache | None:
    if token_cache is None:
        return None
    if isinstance(token_cache, _DefaultTokenCache):
        return TokenCache.default(app_key, host)
    if isinstance(token_cache, str | Path) and str(token_cache).strip():
        return TokenCache(Path(token_cache), app_key=app_key, host=host)
    raise TypeError("token_cache must be DEFAULT_TOKEN_CACHE, a file path, or None")


def _checked_redis_url(redis_url: str | None) -> str | None:
    if redis_url is None:
        return None
    if not isinstance(redis_url, str) or not redis_url.strip().startswith(_REDIS_SCHEMES):
        raise ArgumentError(
            "redis_url must be a redis://, rediss:// or unix:// URL, or None", argument="redis_url"
        )
    if importlib.util.find_spec("redis") is None:
        raise ArgumentError(
            "redis_url is set, but the redis package is not installed: pip install redis "
            "(from a checkout: pip install -e '.[redis]')",
            argument="redis_url",
        )
    return redis_url.strip()


def _checked_redis(redis: object, redis_url: str | None) -> RedisClient | str | None:
    """``redis_url``, or the client ``redis`` if it is one; redis is imported only if it is
    installed (otherwise ``redis`` cannot be one of its clients)."""
    if redis is None:
        return redis_url
    if redis_url is not None:
        raise ArgumentError("give redis or redis_url, not both", argument="redis")
    if importlib.util.find_spec("redis") is not None:
        from redis.asyncio import Redis, RedisCluster

        if isinstance(redis, Redis | RedisCluster):
            return redis
    kind = type(redis)
    raise TypeError(
        "redis must be a redis.asyncio.Redis or redis.asyncio.RedisCluster, "
        f"got {kind.__module__}.{kind.__qualname__}"
    )
