"""KISClient: one session, one token, one pacer, and the methods a trading bot calls."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import aiohttp
from yarl import URL

from . import batch, spec
from .auth import FileTokenStore, TokenCache, TokenStore, appkey_digest
from .batch import Batch, Outcome
from .errors import PagingError
from .models import Position, SellableQuantity, decode_balance, decode_sellable, pick_sellable
from .throttle import DEFAULT_MARGIN, Pacer, Throttle
from .transport import RetryPolicy, Transport
from .validate import normalize_pdno, normalize_pdnos, parse_account


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default()
"""``token_cache=DEFAULT`` keeps the token in the per-user cache file."""

ENV_APP_KEY: Final = "KIS_APP_KEY"
ENV_APP_SECRET: Final = "KIS_APP_SECRET"
ENV_ACCOUNT: Final = "KIS_ACCOUNT"
ENV_BASE_URL: Final = "KIS_BASE_URL"
ENV_REDIS_URL: Final = "KIS_REDIS_URL"


class KISClient:
    """An async session with KIS for one appkey and account.

    Use it as an async context manager; every request made through it shares one
    ``aiohttp.ClientSession``, one access token and one pacer, so any number of concurrent calls
    stay under ``rate_limit`` calls per second as they arrive at KIS (see
    :mod:`kis_async.throttle`).

    :param account: ``"12345678-01"`` or ``"1234567801"``.
    :param base_url: the real host by default. Plain ``http://`` is accepted only for loopback
        addresses (the embedded simulator); TLS is verified everywhere else.
    :param rate_limit: calls per second KIS allows this appkey (20 for real accounts).
    :param token_cache: ``DEFAULT`` for the per-user cache file, a path for another file,
        ``None`` to keep the token in memory only.
    :param max_concurrency: calls in flight at once; by default enough to sustain ``rate_limit``
        while each call takes up to two seconds.
    :param max_retries: tries after the first for transient faults (see
        :mod:`kis_async.transport`); ``backoff`` is the first delay in seconds.
    :param timeout: seconds one request may take before it counts as a transient fault.
    :param pace_margin: seconds of arrival jitter the pacing absorbs (see
        :class:`~kis_async.throttle.Throttle`).
    :param token_issue_interval: seconds between token issuances (KIS: one a minute).
    :param redis_url: share the token and the call budget with every process using the same
        appkey through this Redis (needs the ``redis`` extra; see
        :mod:`kis_async.redis_backend`). ``redis_fail_open`` paces locally while Redis is down
        instead of failing the calls.
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        account: str,
        *,
        base_url: str = spec.REAL_HOST,
        rate_limit: float = spec.CALLS_PER_SECOND,
        token_cache: Path | str | _Default | None = DEFAULT,
        custtype: str = "P",
        max_concurrency: int | None = None,
        max_retries: int = 5,
        backoff: float = 0.2,
        timeout: float = 10.0,
        pace_margin: float = DEFAULT_MARGIN,
        token_issue_interval: float = spec.TOKEN_ISSUE_INTERVAL,
        redis_url: str | None = None,
        redis_fail_open: bool = False,
    ) -> None:
        for name, value in (("app_key", app_key), ("app_secret", app_secret)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")
        if custtype not in ("P", "B"):
            raise ValueError(
                f"custtype must be 'P' (individual) or 'B' (corporate), got {custtype!r}"
            )
        if max_retries < 0 or timeout <= 0:
            raise ValueError("max_retries must be >= 0 and timeout > 0")
        self.account = parse_account(account)
        self.base_url = _checked_base_url(base_url)
        self.throttle = Throttle(rate_limit, margin=pace_margin)
        self.max_concurrency = max_concurrency or max(4, min(256, math.ceil(rate_limit * 2)))
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._app_key = app_key
        self._app_secret = app_secret
        self._custtype = custtype
        self._retry = RetryPolicy(max_retries=max_retries, backoff=backoff)
        self._timeout = timeout
        self._token_interval = token_issue_interval
        self._token_cache: TokenCache | None
        if token_cache is None:
            self._token_cache = None
        elif isinstance(token_cache, _Default):
            self._token_cache = TokenCache.default(app_key, self.base_url)
        else:
            self._token_cache = TokenCache(Path(token_cache), self.base_url)
        self._redis_url = redis_url
        self._redis_fail_open = redis_fail_open
        self._redis: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._transport: Transport | None = None

    @classmethod
    def from_env(cls, **options: object) -> KISClient:
        """Build from ``KIS_APP_KEY``, ``KIS_APP_SECRET``, ``KIS_ACCOUNT`` (``KIS_BASE_URL``).

        Raises ``ValueError`` naming every variable that is missing or empty. ``options`` are
        passed on to the constructor.
        """
        names = (ENV_APP_KEY, ENV_APP_SECRET, ENV_ACCOUNT)
        missing = [name for name in names if not os.environ.get(name, "").strip()]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
        if os.environ.get(ENV_BASE_URL):
            options.setdefault("base_url", os.environ[ENV_BASE_URL])
        if os.environ.get(ENV_REDIS_URL):
            options.setdefault("redis_url", os.environ[ENV_REDIS_URL])
        return cls(
            os.environ[ENV_APP_KEY].strip(),
            os.environ[ENV_APP_SECRET].strip(),
            os.environ[ENV_ACCOUNT],
            **options,  # type: ignore[arg-type]
        )

    async def __aenter__(self) -> KISClient:
        if self._session is not None and not self._session.closed:
            raise RuntimeError("this KISClient is already open")
        pacer: Pacer = self.throttle
        store: TokenStore | None = FileTokenStore(self._token_cache) if self._token_cache else None
        if self._redis_url:
            from . import redis_backend

            self._redis = redis_backend.connect(self._redis_url)
            key = f"kis_async:{appkey_digest(self._app_key, self.base_url)}"
            pacer = redis_backend.RedisPacer(
                self._redis,
                key + ":calls",
                self.throttle.rate,
                margin=self.throttle.margin,
                fail_open=self._redis_fail_open,
            )
            store = redis_backend.RedisTokenStore(self._redis, key + ":token")
        connector = aiohttp.TCPConnector(limit=self.max_concurrency)
        self._session = aiohttp.ClientSession(connector=connector)
        self._transport = Transport(
            self._session,
            base_url=self.base_url,
            app_key=self._app_key,
            app_secret=self._app_secret,
            custtype=self._custtype,
            pacer=pacer,
            retry=self._retry,
            timeout=self._timeout,
            token_store=store,
            token_issue_interval=self._token_interval,
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
        """Close the session. Calls in flight or still queued fail with a ``TransportError``."""
        if self._session is not None:
            await self._session.close()
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    @property
    def token_issuances(self) -> int:
        """Tokens this client has had KIS issue (each one notifies the account holder)."""
        return self._transport.tokens.issued if self._transport else 0

    async def sellable_quantity(self, pdno: str) -> SellableQuantity:
        """How many shares of ``pdno`` can be sold now (``ord_psbl_qty``), with the position.

        Raises ``ValueError`` for a malformed ticker before any request, and a
        :class:`~kis_async.errors.KISError` subclass if KIS refuses or the answer is unusable.
        """
        return await self._sellable(normalize_pdno(pdno))

    async def check_sellable(self, pdnos: Iterable[str]) -> Batch[SellableQuantity]:
        """Check every ticker concurrently at the full call limit; never raises for one ticker.

        Tickers are normalised and repeats asked once. Every ticker lands in exactly one of
        ``results`` and ``errors``, both in input order. A malformed ticker anywhere raises
        ``ValueError`` naming all of them before any request. Cancelling cancels the calls in
        flight.
        """
        codes = normalize_pdnos(pdnos)
        return await batch.collect(codes, self._sellable, self.max_concurrency)

    def iter_sellable(self, pdnos: Iterable[str]) -> AsyncIterator[Outcome[SellableQuantity]]:
        """Like :meth:`check_sellable`, but yield each ticker's :class:`Outcome` as it completes.

        Input is validated here, before iteration starts. Leaving the ``async for`` early
        cancels the calls still in flight.
        """
        codes = normalize_pdnos(pdnos)
        return batch.stream(codes, self._sellable, self.max_concurrency)

    async def holdings(self, *, max_pages: int = 100) -> list[Position]:
        """Every position of the account (주식잔고조회), following the pages to the end.

        Pages go through the same token, pacing and retries as every call. A server that
        repeats a continuation key, or pages past ``max_pages``, raises :class:`PagingError`.
        """
        transport = self._require_transport()
        query = {"CANO": self.account.cano, "ACNT_PRDT_CD": self.account.product}
        query |= spec.BALANCE_QUERY
        keys = ("", "")
        seen: set[tuple[str, str]] = set()
        positions: list[Position] = []
        for page in range(max_pages):
            response = await transport.get(
                spec.BALANCE_PATH,
                tr_id=spec.BALANCE_TR_ID,
                params=query | {"CTX_AREA_FK100": keys[0], "CTX_AREA_NK100": keys[1]},
                headers={"tr_cont": spec.NEXT_PAGE} if page else None,
            )
            body = decode_balance(response.body)
            positions.extend(body.output1)
            if response.headers.get("tr_cont", "") not in spec.MORE_PAGES:
                return positions
            seen.add(keys)
            keys = (body.ctx_area_fk100.strip(), body.ctx_area_nk100.strip())
            if keys in seen:
                raise PagingError(
                    f"inquire-balance repeated its continuation key on page {page + 2}"
                )
        raise PagingError(f"inquire-balance still had more pages after {max_pages}")

    async def check_holdings(self) -> Batch[SellableQuantity]:
        """:meth:`holdings`, then :meth:`check_sellable` for every ticker actually held.

        Positions with ``hldg_qty`` 0 (sold out today) are skipped. Errors listing the
        holdings raise; errors checking a ticker land in ``errors`` as usual.
        """
        held = [p.pdno for p in await self.holdings() if p.hldg_qty > 0]
        return await self.check_sellable(held)

    async def _sellable(self, pdno: str) -> SellableQuantity:
        response = await self._require_transport().get(
            spec.SELLABLE_PATH,
            tr_id=spec.SELLABLE_TR_ID,
            params={"CANO": self.account.cano, "ACNT_PRDT_CD": self.account.product, "PDNO": pdno},
            pdno=pdno,
        )
        return pick_sellable(decode_sellable(response.body, pdno), pdno)

    def _require_transport(self) -> Transport:
        if self._transport is None:
            raise RuntimeError("KISClient is not open: use `async with KISClient(...) as kis:`")
        return self._transport

    def __repr__(self) -> str:
        masked = f"{self.account.cano[:2]}****{self.account.cano[-2:]}-{self.account.product}"
        return f"KISClient(account={masked!r}, base_url={self.base_url!r})"


def _checked_base_url(base_url: str) -> str:
    url = URL(base_url)
    secure = url.scheme == "https" or (url.scheme == "http" and _is_loopback(url.host or ""))
    if secure and url.host and not url.query_string and not url.fragment:
        return str(url).rstrip("/")
    raise ValueError(
        f"base_url must be https://, or http:// on a loopback address, got {base_url!r}"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
