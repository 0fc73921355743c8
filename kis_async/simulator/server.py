"""The embedded KIS stand-in: a real ``aiohttp.web`` server that behaves like the KIS gateway.

It issues tokens under KIS's rules (one a minute per appkey, the same token again within six
hours, a day's lifetime), serves inquire-psbl-sell and paged inquire-balance for a configurable
portfolio with the header and query checks KIS makes, and records what it saw so tests and
benchmarks can judge a client by what actually arrived.

What it serves, and nothing else (any other path or method is a 404 in KIS's envelope,
``SIM00405``, naming the path):

- ``POST /oauth2/tokenP`` and ``POST /oauth2/revokeP``: issue and revoke tokens;
- ``GET /uapi/domestic-stock/v1/trading/inquire-psbl-sell``: the sellable quantity;
- ``GET /uapi/domestic-stock/v1/trading/inquire-balance``: the holdings, paged;
- ``GET /uapi/domestic-stock/v1/quotations/inquire-price``: a ticker's price;
- ``GET /_simulator/stats`` and ``GET /_simulator/arrivals``: what it saw, as JSON (its own).

Faults are injected per call (:meth:`Simulator.inject`) or at random (``fault_rate``).

It is never kinder than KIS about the call limit:

- every request first travels to the gateway (``request_latency`` ± ``request_jitter``), and only
  then is counted, so calls sent evenly can arrive bunched or out of order, as over a real network;
  ``latency`` ± ``jitter`` is the answer's way back, after the count;
- the gateway admits at most ``rate_limit`` calls per appkey in any sliding window of ``window``
  seconds (or per fixed bucket, with ``fixed_window_offset``), and ``limit_schedule`` can lower
  (or raise) that limit while a batch runs, whatever the client was told;
- another program on the same appkey (``background_rate`` calls/s, evenly spaced or Poisson) takes
  its share of the same budget, unannounced.

Error codes KIS documents (``EGW00201``, ``EGW00123``, ``EGW00121``, ``EGW00133``, ``EGW00103``,
``EGW00105``) are used as KIS uses them. Where KIS's code for a refusal is not documented
(unknown ticker, wrong account, bad tr_id) the simulator answers with its own ``SIM`` codes in
the same envelope, so a client can only rely on ``rt_cd``, as it must with KIS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Final, Literal

import msgspec
from aiohttp import web

from .. import config as cfg
from .. import corporate, spec
from ..endpoints import BALANCE, PRICE, SELLABLE
from . import hostile
from .portfolio import UNKNOWN_TICKERS, Holding, not_held, sample_portfolio
from .window import FixedWindow, SlidingWindow

log = logging.getLogger(__name__)

DEMO_APP_KEY = "PSsimulatedAPPKEYforKISasync0000001"
DEMO_APP_SECRET = "simulated-appsecret-not-a-real-one"
DEMO_ACCOUNT = "50123456-01"
DEMO_PERSONALSECKEY = "simulated-personalseckey-of-a-corporate-customer"


class Fault(StrEnum):
    """What can go wrong with one answer."""

    RATE_LIMIT = "rate_limit"
    """EGW00201 on HTTP 500, as if the limit had been hit."""
    TOKEN_EXPIRED = "token_expired"
    """The token this call carries expires now: EGW00123 for it from here on."""
    HTML_500 = "html_500"
    HTML_502 = "html_502"
    HTML_503 = "html_503"
    """A proxy's HTML error page instead of KIS JSON."""
    EMPTY_500 = "empty_500"
    TRUNCATED = "truncated"
    """Headers promise the whole body; half arrives, then the connection closes."""
    RESET = "reset"
    """The connection closes with no answer at all."""
    HANG = "hang"
    """The call is accepted and never answered (until the simulator closes)."""
    MALFORMED = "malformed"
    """HTTP 200 with a body that is not JSON."""
    EUC_KR = "euc_kr"
    """The right answer, encoded in EUC-KR instead of UTF-8."""
    OUTPUT_MISSING = "output_missing"
    OUTPUT_NULL = "output_null"
    THOUSANDS = "thousands"
    """Numbers written with thousands separators: ``"8,550,000"``."""
    PADDED = "padded"
    """Numbers with blanks around them: ``" 120 "``."""
    OUTPUT_LIST = "output_list"
    """The answer under ``output`` as a one-element list, as some live answers come."""
    REDIRECT = "redirect"
    """302 to ``redirect_to``: a client that follows sends its keys to another host."""
    REDIRECT_307 = "redirect_307"
    """307 to ``redirect_to``, which re-sends the body: on tokenP, the appsecret."""
    GZIP_BOMB = "gzip_bomb"
    """About 1 MB of gzip that inflates to 1 GiB."""
    HUGE_BODY = "huge_body"
    """A 50 MB plain body."""
    DEEP_NESTING = "deep_nesting"
    """2 KB of JSON nested 1000 deep."""
    ODD_NUMBER = "odd_number"
    """A quantity KIS never sends: fullwidth digits, ``1_000``, ``1e3``, 23 digits..."""
    AMBIGUOUS = "ambiguous"
    """Two ``output1`` rows for the ticker asked, with different quantities."""
    RETRY_AFTER = "retry_after"
    """503 with ``Retry-After: <retry_after>``."""
    TERMINAL_ESCAPES = "terminal_escapes"
    """The right numbers, and terminal escape sequences in ``prdt_name``."""
    ACCOUNT_QUOTED = "account_quoted"
    """An error whose ``msg1`` quotes the whole account number, with escape sequences."""
    LEDGER_LIMIT = "ledger_limit"
    """EGW00215 on HTTP 500: more calls a second than the account ledger allows."""
    DATA_CHANGED = "data_changed"
    """SYDB0050 (``rt_cd`` "7"): the data changed since the first page."""
    APPSECRET_REFUSED = "appsecret_refused"
    """EGW00304 on HTTP 500: the API refuses the appsecret."""
    PRODUCT_MISMATCH = "product_mismatch"
    """APBK1271: the product code does not match the account."""
    NOT_CONSIGNMENT = "not_consignment"
    """APAC0489: only 위탁 accounts can be queried."""
    PAPER_APPKEY = "paper_appkey"
    """EGW02007: a real appkey sent to the paper host."""


HOSTILE = frozenset(
    {
        Fault.REDIRECT,
        Fault.REDIRECT_307,
        Fault.GZIP_BOMB,
        Fault.HUGE_BODY,
        Fault.DEEP_NESTING,
        Fault.ODD_NUMBER,
        Fault.AMBIGUOUS,
        Fault.RETRY_AFTER,
        Fault.TERMINAL_ESCAPES,
        Fault.ACCOUNT_QUOTED,
    }
)
"""Answers wrong on purpose or by accident (see :mod:`kis_async.simulator.hostile`); random
faults (``fault_kinds``) leave them out unless asked for."""
REFUSALS: Final[Mapping[Fault, tuple[int, str]]] = MappingProxyType(
    {
        Fault.LEDGER_LIMIT: (500, spec.LEDGER_LIMITED),
        Fault.DATA_CHANGED: (500, spec.DATA_CHANGED),
        Fault.APPSECRET_REFUSED: (500, spec.APPSECRET_REFUSED),
        Fault.PRODUCT_MISMATCH: (500, spec.PRODUCT_MISMATCH),
        Fault.NOT_CONSIGNMENT: (500, spec.NOT_CONSIGNMENT),
        Fault.PAPER_APPKEY: (500, spec.NOT_PAPER_APPKEY),
    }
)
"""KIS's own refusals, served with their status and code (and ``rt_cd``, message) on demand;
random faults leave them out: most are set-up mistakes, not weather."""
ORDINARY = tuple(fault for fault in Fault if fault not in HOSTILE and fault not in REFUSALS)
"""The faults KIS is known for."""
TOKEN_FAULTS = frozenset(
    {
        Fault.HTML_500,
        Fault.HTML_502,
        Fault.HTML_503,
        Fault.EMPTY_500,
        Fault.RESET,
        Fault.RATE_LIMIT,
        Fault.HANG,
        Fault.REDIRECT_307,
    }
)
"""Faults :meth:`Simulator.inject_token` accepts; RATE_LIMIT there answers EGW00133."""

_BUILDERS: dict[Fault, hostile.Builder] = {
    Fault.REDIRECT: hostile.redirect(302),
    Fault.REDIRECT_307: hostile.redirect(307),
    Fault.GZIP_BOMB: hostile.gzip_bomb,
    Fault.HUGE_BODY: hostile.huge_body,
    Fault.DEEP_NESTING: hostile.deep_nesting,
    Fault.ODD_NUMBER: hostile.odd_number,
    Fault.AMBIGUOUS: hostile.ambiguous,
    Fault.RETRY_AFTER: hostile.retry_after,
    Fault.TERMINAL_ESCAPES: hostile.terminal_escapes,
    Fault.ACCOUNT_QUOTED: hostile.account_quoted,
}


@dataclass(frozen=True, slots=True)
class SimAccount:
    """Another appkey the simulator serves, bound to its own account (KIS binds each appkey to
    one), with its own tokens and its own call budget; its own holdings, or the simulator's."""

    app_key: str
    app_secret: str
    account: str
    portfolio: Mapping[str, Holding] | None = None
    """None: the simulator's portfolio."""


def demo_accounts(count: int) -> tuple[SimAccount, ...]:
    """``count`` more demo appkeys and accounts (the demo's is apart), each holding the sample
    portfolio: a person with a 종합 account, a 연금저축 and an ISA has three appkeys."""
    return tuple(
        SimAccount(
            f"PSsimulatedAPPKEYforKISasync{n:07d}",
            f"simulated-appsecret-of-account-{n}",
            f"{50123456 + n - 1}-01",
        )
        for n in range(2, count + 2)
    )


@dataclass(slots=True)
class SimulatorConfig:
    """The simulator's knobs; change them at any time, even while a client is running."""

    app_key: str = DEMO_APP_KEY
    app_secret: str = DEMO_APP_SECRET
    account: str = DEMO_ACCOUNT
    personalseckey: str = DEMO_PERSONALSECKEY
    """The corporate customer's key, checked on every custtype B call."""
    accounts: tuple[SimAccount, ...] = ()
    """More appkeys, each bound to its own account (:func:`demo_accounts`); the call limit, the
    ledger and the token rules hold per appkey (per account) for them as for ``app_key``."""
    rate_limit: int = spec.CALLS_PER_SECOND
    """Calls admitted per appkey in any sliding window of ``window`` seconds (the enforced limit,
    whatever the client was told), until an entry of ``limit_schedule`` is due."""
    limit_schedule: tuple[tuple[float, int], ...] = ()
    """``(seconds, limit)`` pairs: from ``seconds`` after the first API call arrived at the
    gateway, it enforces ``limit`` instead of ``rate_limit``. The entry with the latest time that
    has passed wins; before the earliest, ``rate_limit`` holds."""
    window: float = 1.0
    fixed_window_offset: float | None = None
    """Count the limit in fixed buckets of ``window`` seconds instead of sliding: an appkey's
    bucket boundaries fall this many seconds after its first arrival (client or background), and
    every ``window`` seconds from there."""
    request_latency: float = 0.0
    """Seconds each request (API call or tokenP) takes to reach the gateway, plus or minus up to
    ``request_jitter`` (uniform, clipped at zero). API calls are counted when they arrive, so
    jitter here bunches and reorders what the client sent evenly."""
    request_jitter: float = 0.0
    latency: float = 0.0
    """Seconds each API answer takes after the gateway counted the call, plus or minus up to
    ``jitter`` (uniform, clipped at zero)."""
    jitter: float = 0.0
    background_rate: float = 0.0
    """Calls per second another program makes on ``app_key``. They need no HTTP: each is counted
    by the same window as the client's calls and admitted only if it has room. They run from
    :meth:`Simulator.start` (or the next request, if set later) until :meth:`Simulator.close` or
    until this is set back to 0."""
    background_poisson: bool = False
    """Background calls arrive as a Poisson process (random gaps, sometimes bunched: the harsher
    case) instead of evenly spaced."""
    token_lifetime: float = 86400.0
    stated_expiry_ago: float | None = None
    """Seconds before the request that the token answer's ``access_token_token_expired`` states
    (``expires_in`` still says the real lifetime), as KIS was seen doing live on 2026-08-19."""
    token_issue_interval: float = spec.TOKEN_ISSUE_INTERVAL
    same_token_window: float = spec.SAME_TOKEN_WINDOW
    """A token request this soon after the appkey's last minting hands back that same token."""
    refused_token_reissued: bool = True
    """Within ``same_token_window``, hand back the token even once the API refuses it (EGW00121,
    :meth:`Simulator.revoke_tokens`), as KIS's users report; False: only a live one."""
    revoke_frees: bool = True
    """``POST /oauth2/revokeP`` lets the next request mint a new token (the assumption the client
    builds on); False: the revoked token keeps coming back until ``same_token_window`` passes."""
    one_token_per_appkey: bool = False
    """Minting a token makes the appkey's earlier ones answer EGW00121, as one project reports
    (an issuance elsewhere invalidates the earlier token)."""
    ledger_limit: int | None = None
    """Calls a sliding second each account's ledger takes across ``ledger_tr_ids`` together;
    one more answers EGW00215 (HTTP 500). KIS's users report about 1 (not documented; None: no
    ledger limit)."""
    ledger_tr_ids: frozenset[str] = frozenset({BALANCE.tr_id})
    """The tr_ids the ledger counts: inquire-balance (TTTC8434R), as reported."""
    unknown_tickers: frozenset[str] = UNKNOWN_TICKERS
    fault_rate: float = 0.0
    """Chance that any API call gets a random fault from ``fault_kinds``."""
    fault_kinds: tuple[Fault, ...] = ORDINARY
    hang_for: float = 30.0
    redirect_to: str = "http://127.0.0.1:9"
    """Where :attr:`Fault.REDIRECT` sends the client: another host."""
    retry_after: float = 1.0
    """Seconds :attr:`Fault.RETRY_AFTER` asks the client to wait."""
    page_size: int = 50
    """Rows per inquire-balance page (a position held partly on a loan is two rows)."""
    loop_paging: bool = False
    """inquire-balance never ends: every page says more follow, with the same key."""
    dialect: Literal["live", "reference"] = "live"
    """``live`` answers as KIS's users recorded the service (inquire-psbl-sell under ``output``
    with ``KIOK0420`` and a blank-padded ``msg1``; balance rows with KIS's 26 keys, one per
    loan; ``output2`` with 24 keys); ``reference`` as the reference page documents it
    (``output1``, ``KIOK0510``, the few keys it lists)."""
    exact_continuation: bool = True
    """A next-page request must echo ``CTX_AREA_FK100``/``NK100`` exactly as sent, blank padding
    included, as KIS's sample client does; ``False`` also accepts them stripped."""
    full_last_page_says_more: bool = True
    """A last page that is exactly full says ``tr_cont: M`` (with a blank ``ctx_area_nk100``), and
    the request for the next page is answered SYDB0050, as KIS did for an account holding
    exactly 50 (python-kis issue #20)."""
    seed: int | None = None
    """Seeds the random draws (faults, both jitters, Poisson gaps), read when the simulator is
    created: the same seed and the same requests, arriving in the same order, give the same
    delays and faults. Each kind of draw has its own stream, so turning on request jitter, say,
    does not change which calls get which fault."""


@dataclass(slots=True)
class Stats:
    """What the simulator saw; read it after (or during) a run."""

    token_requests: int = 0
    token_issuances: int = 0
    """Successful tokenP answers: each one would ping the account holder's phone."""
    tokens_minted: int = 0
    """Distinct tokens created (a re-issue within six hours returns the same one)."""
    token_revocations: int = 0
    """``POST /oauth2/revokeP`` requests."""
    calls_by_tr_id: Counter[str] = field(default_factory=Counter)
    """Client API calls by tr_id, refused ones included."""
    arrivals_by_app_key: defaultdict[str, list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    """Every client API call's arrival (seconds since start()) under the appkey it carried."""
    ledger_rejected: int = 0
    """Calls the account ledger refused (EGW00215, ``ledger_limit``)."""
    ledger_max_window: int = 0
    """The most ledger calls of one account admitted in any sliding second."""
    calls: int = 0
    """API calls from clients that arrived, rejected ones included (background calls are not)."""
    rejected: int = 0
    """Client calls answered EGW00201 because the window was full."""
    max_window: int = 0
    """Most client API calls that arrived within any one window, for any appkey."""
    background_calls: int = 0
    """Calls the background program made (``background_rate``), rejected ones included."""
    background_rejected: int = 0
    """Background calls the window had no room for."""
    max_window_total: int = 0
    """Most API calls, client and background together, that arrived within any one window for
    any one appkey."""
    arrivals: list[tuple[float, bool]] = field(default_factory=list)
    """Every client API call as ``(seconds since start(), admitted)``, in order of arrival at the
    gateway. The first entry's time is the origin of ``limit_schedule``."""
    background_arrivals: list[tuple[float, bool]] = field(default_factory=list)
    """Every background call as ``(seconds since start(), admitted)``."""
    faults: Counter[str] = field(default_factory=Counter)
    per_pdno: Counter[str] = field(default_factory=Counter)
    gt_uids: set[str] = field(default_factory=set)
    """Every ``gt_uid`` a partner firm's call carried (a repeat is refused)."""
    corporate_headers_from_individuals: int = 0
    """Calls with custtype P that carried a corporate header anyway."""

    def as_dict(self) -> dict[str, Any]:
        """The counters, as ``GET /_simulator/stats`` serves them (arrivals are served apart)."""
        return {
            "token_requests": self.token_requests,
            "token_issuances": self.token_issuances,
            "tokens_minted": self.tokens_minted,
            "token_revocations": self.token_revocations,
            "ledger_rejected": self.ledger_rejected,
            "ledger_max_window": self.ledger_max_window,
            "calls": self.calls,
            "rejected": self.rejected,
            "max_window": self.max_window,
            "background_calls": self.background_calls,
            "background_rejected": self.background_rejected,
            "max_window_total": self.max_window_total,
            "faults": dict(self.faults),
            "calls_by_tr_id": dict(self.calls_by_tr_id),
        }


@dataclass(slots=True)
class _Token:
    app_key: str
    minted_at: float
    expires_at: float
    dead: str = ""
    """The msg_cd this token now earns: expired or refused."""
    revoked: bool = False
    """Revoked with ``POST /oauth2/revokeP``."""


class Simulator:
    """An in-process KIS server on loopback. ``async with Simulator() as sim: sim.url``.

    :param portfolio: pdno -> :class:`Holding`; the demo's sample portfolio by default. A valid
        six-character code not in it answers as "not held" (blank quantities), a code in
        ``config.unknown_tickers`` answers with an error.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        portfolio: Mapping[str, Holding] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.config = config or SimulatorConfig()
        self.portfolio = dict(sample_portfolio() if portfolio is None else portfolio)
        self.stats = Stats()
        self._host = host
        self._port = port
        seed = self.config.seed
        self._rng = random.Random(seed)
        self._trip_rng = random.Random(None if seed is None else f"{seed}:request")
        self._background_rng = random.Random(None if seed is None else f"{seed}:background")
        self._tokens: dict[str, _Token] = {}
        self._last_issue: dict[str, tuple[float, str]] = {}
        self._arrivals: defaultdict[str, SlidingWindow] = defaultdict(self._window)
        """Client calls per appkey: ``max_window``."""
        self._traffic: defaultdict[str, SlidingWindow] = defaultdict(self._window)
        """Client and background calls per appkey: ``max_window_total``."""
        self._admitted: defaultdict[str, SlidingWindow | FixedWindow] = defaultdict(self._limiter)
        self._ledgers: defaultdict[str, SlidingWindow] = defaultdict(SlidingWindow)
        """Ledger calls admitted per account (``ledger_limit``)."""
        self._origin: float | None = None
        """Loop time of start() (or of the first request, if embedded without it)."""
        self._first_call: float | None = None
        """Loop time of the first client API call: the origin of ``limit_schedule``."""
        self._faults: defaultdict[str | None, list[Fault]] = defaultdict(list)
        self._token_faults: list[Fault] = []
        self._balance_faults: list[Fault] = []
        self._page_keys: dict[str, int] = {}
        """Every ``ctx_area_nk100`` sent, exactly as sent, and the row its page starts at."""
        self._after: list[tuple[int, Callable[[], None]]] = []
        self._after_background: list[tuple[int, Callable[[], None]]] = []
        self._background: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def _window(self) -> SlidingWindow:
        return SlidingWindow(self.config.window)

    def _limiter(self) -> SlidingWindow | FixedWindow:
        offset = self.config.fixed_window_offset
        if offset is None:
            return self._window()
        return FixedWindow(self.config.window, asyncio.get_running_loop().time() + offset)

    # -- lifecycle ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The ``aiohttp`` application, for embedding in another server."""
        app = web.Application()
        app.router.add_post(spec.TOKEN_PATH, self._issue_token)
        app.router.add_post(spec.REVOKE_PATH, self._revoke_token)
        app.router.add_get(SELLABLE.path, self._sellable)
        app.router.add_get(BALANCE.path, self._balance)
        app.router.add_get(PRICE.path, self._price)
        app.router.add_get("/_simulator/stats", self._stats)
        app.router.add_get("/_simulator/arrivals", self._arrivals_page)
        app.router.add_route("*", "/{path:.*}", _not_served)
        app.on_cleanup.append(self._cleanup)
        return app

    async def start(self) -> str:
        """Start serving (and the background program, if ``background_rate`` is set); returns
        the base URL (``http://127.0.0.1:<port>``). Arrival times count from here."""
        self._origin = asyncio.get_running_loop().time()
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._run_background()
        return self.url

    async def close(self) -> None:
        """Stop serving and the background program; calls left hanging by :attr:`Fault.HANG`
        are let go first."""
        self._closing.set()
        await self._stop_background()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _cleanup(self, app: web.Application) -> None:
        await self._stop_background()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def write_env_files(self, folder: Path) -> list[Path]:
        """One ``.env`` file per account served (``account1.env`` is the demo's), each with its
        credentials and this simulator's URL: what ``kis-async check --account FILE`` reads.
        Owner-only, as files holding an appsecret should be, though these hold the demo's.

        Each is written whole under a temporary name, then renamed over the old one: a reader
        waiting for the files (a script polling for the last) never reads one half-written, or
        emptied by a rewrite, and a link already at that name is replaced, not followed."""
        config = self.config
        served = (SimAccount(config.app_key, config.app_secret, config.account), *config.accounts)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        written = []
        for number, account in enumerate(served, 1):
            path = folder / f"account{number}.env"
            text = (
                f"{cfg.ENV_APP_KEY}={account.app_key}\n{cfg.ENV_APP_SECRET}={account.app_secret}\n"
                f"{cfg.ENV_ACCOUNT}={account.account}\n{cfg.ENV_BASE_URL}={self.url}\n"
            )
            fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as stream:
                    os.fchmod(stream.fileno(), 0o600)
                    stream.write(text)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            written.append(path)
        return written

    # -- knobs ------------------------------------------------------------------------------------

    def inject(self, fault: Fault, *, pdno: str | None = None, times: int = 1) -> None:
        """Give the next ``times`` calls (for ``pdno``, or any ticker) this fault."""
        self._faults[pdno].extend([fault] * times)

    def inject_balance(self, fault: Fault, *, times: int = 1) -> None:
        """Give the next ``times`` inquire-balance requests this fault (:data:`REFUSALS`, such
        as :attr:`Fault.DATA_CHANGED` on a next page, or :attr:`Fault.RATE_LIMIT`)."""
        self._balance_faults.extend([fault] * times)

    def inject_token(self, fault: Fault, *, times: int = 1) -> None:
        """Give the next ``times`` token requests this fault (one of :data:`TOKEN_FAULTS`)."""
        if fault not in TOKEN_FAULTS:
            raise ValueError(f"token requests cannot get {fault}")
        self._token_faults.extend([fault] * times)

    def after_calls(self, calls: int, action: Callable[[], None]) -> None:
        """Run ``action`` when the ``calls``-th client API call (counted from the start) arrives
        at the gateway, before it is admitted or rejected: a change of ``rate_limit`` made there
        already applies to that call."""
        self._after.append((calls, action))

    def after_background_calls(self, calls: int, action: Callable[[], None]) -> None:
        """Run ``action`` when the background program's ``calls``-th call (counted from the
        start) has been counted, e.g. to set an event a test or benchmark waits on."""
        self._after_background.append((calls, action))

    def expire_tokens(self) -> None:
        """Every token issued so far now answers EGW00123, as after its day is over."""
        self._expire_all(spec.TOKEN_EXPIRED)

    def revoke_tokens(self) -> None:
        """Every token issued so far now answers EGW00121, as after KIS's maintenance; within
        ``same_token_window`` a token request still hands the last one back, unless it is
        revoked (``config.refused_token_reissued``)."""
        self._expire_all(spec.TOKEN_INVALID)

    def _expire_all(self, code: str) -> None:
        for token in self._tokens.values():
            token.dead = token.dead or code

    # -- token endpoint ---------------------------------------------------------------------------

    async def _issue_token(self, request: web.Request) -> web.StreamResponse:
        self._run_background()
        await self._travel()
        self.stats.token_requests += 1
        fault = self._token_faults.pop(0) if self._token_faults else None
        if fault is not None:
            self.stats.faults[f"token:{fault.value}"] += 1
            if fault is Fault.RATE_LIMIT:
                return _token_refusal(spec.TOKEN_ISSUE_TOO_SOON)
            if fault is Fault.REDIRECT_307:
                return _BUILDERS[fault](request, {}, self._hostile_context())
            return await self._broken(request, fault, b"")
        try:
            body = msgspec.json.decode(await request.read(), type=dict[str, str])
        except msgspec.MsgspecError:
            return _error(400, "SIM00400", "요청 본문이 JSON이 아닙니다 (simulated)")
        if body.get("grant_type") != "client_credentials":
            return _error(400, "SIM00401", "grant_type은 client_credentials여야 합니다 (simulated)")
        refusal = self._check_credentials(body.get("appkey", ""), body.get("appsecret", ""), 403)
        if refusal is not None:
            return refusal
        app_key = body["appkey"]
        now = time.time()
        last = self._last_issue.get(app_key)
        if last is not None and now - last[0] < self.config.token_issue_interval:
            return _token_refusal(spec.TOKEN_ISSUE_TOO_SOON)
        value = self._reusable_token(app_key, now) or self._mint(app_key, now)
        self._last_issue[app_key] = (now, value)
        self.stats.token_issuances += 1
        record = self._tokens[value]
        stated = record.expires_at
        if self.config.stated_expiry_ago is not None:
            stated = now - self.config.stated_expiry_ago
        expires = datetime.fromtimestamp(stated, spec.KST).strftime(spec.EXPIRY_FORMAT)
        return _json(
            200,
            {
                "access_token": value,
                "access_token_token_expired": expires,
                "token_type": "Bearer",
                "expires_in": max(1, round(record.expires_at - now)),
            },
        )

    def _reusable_token(self, app_key: str, now: float) -> str | None:
        """The appkey's last token if KIS would hand it back now: minted within the window,
        and neither expired nor (if the knobs say so) refused or revoked."""
        for value, token in reversed(self._tokens.items()):
            if token.app_key != app_key:
                continue
            config = self.config
            recent = now - token.minted_at < config.same_token_window
            expired = token.dead == spec.TOKEN_EXPIRED or now >= token.expires_at
            refused = token.dead == spec.TOKEN_INVALID and not config.refused_token_reissued
            freed = token.revoked and config.revoke_frees
            return value if recent and not (expired or refused or freed) else None
        return None

    def _mint(self, app_key: str, now: float) -> str:
        value = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9." + secrets.token_urlsafe(96)
        if self.config.one_token_per_appkey:
            for token in self._tokens.values():
                if token.app_key == app_key:
                    token.dead = token.dead or spec.TOKEN_INVALID
        self._tokens[value] = _Token(app_key, now, now + self.config.token_lifetime)
        self.stats.tokens_minted += 1
        return value

    async def _revoke_token(self, request: web.Request) -> web.StreamResponse:
        """``POST /oauth2/revokeP`` with ``{"appkey", "appsecret", "token"}``: the token answers
        EGW00121 from now on, and (``config.revoke_frees``) is never handed back again."""
        await self._travel()
        self.stats.token_revocations += 1
        try:
            body = msgspec.json.decode(await request.read(), type=dict[str, str])
        except msgspec.MsgspecError:
            return _error(400, "SIM00400", "요청 본문이 JSON이 아닙니다 (simulated)")
        app_key = body.get("appkey", "")
        refusal = self._check_credentials(app_key, body.get("appsecret", ""), 403)
        if refusal is not None:
            return refusal
        token = self._tokens.get(body.get("token", ""))
        if token is None or token.app_key != app_key:
            return _token_refusal(spec.TOKEN_INVALID)
        token.dead = token.dead or spec.TOKEN_INVALID
        token.revoked = True
        return _json(200, {"code": 200, "message": _REVOKED})

    # -- API --------------------------------------------------------------------------------------

    async def _sellable(self, request: web.Request) -> web.StreamResponse:
        refusal = await self._gate(request, SELLABLE.tr_id)
        if refusal is not None:
            return refusal
        query = request.query
        pdno = query.get("PDNO", "")
        self.stats.per_pdno[pdno] += 1
        app_key = request.headers.get("appkey", "")
        refusal = self._check_account(query, app_key)
        if refusal is not None:
            return refusal
        fault = self._next_fault(pdno)
        await self._delay()
        if not (len(pdno) == 6 and pdno.isascii() and pdno.isalnum()) or (
            pdno in self.config.unknown_tickers
        ):
            return _error(500, "SIM00404", f"{pdno} 종목코드를 확인하세요 (simulated)", rt_cd="1")
        holding = self._portfolio(app_key).get(pdno)
        output = holding.as_kis(pdno) if holding is not None else not_held(pdno)
        if fault is None:
            return self._ok(output)
        return await self._faulty(request, fault, output)

    async def _price(self, request: web.Request) -> web.StreamResponse:
        """주식현재가 시세 (inquire-price): the current price of a ticker in the portfolio."""
        refusal = await self._gate(request, PRICE.tr_id)
        if refusal is not None:
            return refusal
        query = request.query
        pdno = query.get("FID_INPUT_ISCD", "")
        await self._delay()
        if query.get("FID_COND_MRKT_DIV_CODE") != "J":
            return _error(500, "SIM00406", "조회 조건을 확인하세요 (simulated)")
        holding = self.portfolio.get(pdno)
        if holding is None:
            return _error(500, "SIM00404", f"{pdno} 종목코드를 확인하세요 (simulated)")
        price = holding.as_kis(pdno)["now_pric"]
        return _json(
            200, self._success() | {"output": {"stck_prpr": price, "stck_shrn_iscd": pdno}}
        )

    async def _balance(self, request: web.Request) -> web.StreamResponse:
        refusal = await self._gate(request, BALANCE.tr_id)
        if refusal is not None:
            return refusal
        query = request.query
        app_key = request.headers.get("appkey", "")
        refusal = self._check_account(query, app_key)
        if refusal is None and any(query.get(k) != v for k, v in BALANCE.query.items()):
            refusal = _error(500, "SIM00406", "조회 조건을 확인하세요 (simulated)")
        await self._delay()
        if refusal is not None:
            return refusal
        fault = self._balance_faults.pop(0) if self._balance_faults else None
        if fault is not None:
            return await self._faulty(request, fault, {})
        portfolio = self._portfolio(app_key)
        rows = [row for pdno, holding in portfolio.items() for row in self._rows(pdno, holding)]
        search = self._search_key(query)
        start = 0
        if request.headers.get("tr_cont") == spec.NEXT_PAGE:
            found = self._continued(query, search)
            if isinstance(found, web.StreamResponse):
                return found
            start = found
        size = max(1, self.config.page_size)
        page = rows[start : start + size]
        more = self.config.loop_paging or start + size < len(rows)
        says_more = more or (self.config.full_last_page_says_more and start + size == len(rows))
        next_key = ""
        if more:
            next_start = start if self.config.loop_paging else start + size
            next_key = search + f"{page[-1]['pdno']}^{next_start:05d}^"
            next_key = next_key.ljust(100) if self._live else next_key
            self._page_keys[next_key] = next_start
        elif self._live:
            next_key = " " * 100
        body = self._success() | {
            "ctx_area_fk100": self._fk100(search),
            "ctx_area_nk100": next_key,
            "output1": page,
            "output2": [self._summary(portfolio)],
        }
        response = _json(200, body)
        response.headers["tr_cont"] = ("M" if start or not more else "F") if says_more else "D"
        response.headers["tr_id"] = BALANCE.tr_id
        return response

    @property
    def _live(self) -> bool:
        return self.config.dialect == "live"

    def _rows(self, pdno: str, holding: Holding) -> list[dict[str, str]]:
        return holding.as_balance(pdno, live=self._live)

    def _search_key(self, query: Mapping[str, str]) -> str:
        """The listing's search key, as KIS writes it: ``<CANO>^<product>^N^N^01^01^N^``."""
        cano, product = query.get("CANO", ""), query.get("ACNT_PRDT_CD", "")
        return f"{cano}^{product}^N^N^{BALANCE.query['INQR_DVSN']}^01^N^"

    def _fk100(self, search: str) -> str:
        """KIS fills ``ctx_area_fk100`` on every page, the last included, padded to 100."""
        return search.ljust(100) if self._live else search

    def _continued(self, query: Mapping[str, str], search: str) -> int | web.StreamResponse:
        """Where a next-page request starts, or KIS's answer to a key it did not send."""
        fk, nk = query.get("CTX_AREA_FK100", ""), query.get("CTX_AREA_NK100", "")
        if not self.config.exact_continuation:
            fk, nk = fk.strip(), nk.strip()
            keys = {key.strip(): start for key, start in self._page_keys.items()}
            sent_fk = self._fk100(search).strip()
        else:
            keys, sent_fk = dict(self._page_keys), self._fk100(search)
        if not nk.strip():
            return _kis_error(500, spec.DATA_CHANGED)
        if fk != sent_fk or nk not in keys:
            return _error(500, "SIM00407", "연속조회키를 확인하세요 (simulated)")
        return keys[nk]

    def _summary(self, portfolio: Mapping[str, Holding]) -> dict[str, str]:
        """``output2``: the account summary; KIS's 24 keys in the live dialect."""
        value = round(sum(h.now_price * h.quantity for h in portfolio.values()))
        bought = round(sum(h.avg_price * h.quantity for h in portfolio.values()))
        totals = {
            "tot_evlu_amt": str(value),
            "pchs_amt_smtl_amt": str(bought),
            "evlu_pfls_smtl_amt": str(value - bought),
        }
        if not self._live:
            return totals
        zero = dict.fromkeys(_SUMMARY_KEYS, "0")
        return (
            zero
            | totals
            | {
                "fncg_gld_auto_rdpt_yn": "",
                "scts_evlu_amt": str(value),
                "evlu_amt_smtl_amt": str(value),
                "nass_amt": str(value),
                "bfdy_tot_asst_evlu_amt": str(value),
                "asst_icdc_erng_rt": "0.00000000",
            }
        )

    async def _gate(self, request: web.Request, tr_id: str) -> web.StreamResponse | None:
        """What the KIS gateway checks once the call has arrived: the call limit, then the
        token and keys."""
        self._run_background()
        await self._travel()
        stats = self.stats
        now = asyncio.get_running_loop().time()
        headers = request.headers
        app_key = headers.get("appkey", "")
        if self._first_call is None:
            self._first_call = now
        stats.calls += 1
        stats.calls_by_tr_id[tr_id] += 1
        stats.max_window = max(stats.max_window, self._arrivals[app_key].record(now))
        _run_due(self._after, stats.calls)
        admitted = self._admit(app_key, now)
        since = self._since_start(now)
        stats.arrivals.append((since, admitted))
        stats.arrivals_by_app_key[app_key].append(since)
        if not admitted:
            stats.rejected += 1
            await self._delay()
            return _kis_error(500, spec.RATE_LIMITED)
        refusal = self._check_credentials(app_key, headers.get("appsecret", ""), 500)
        if refusal is None:
            refusal = self._check_token(headers.get("authorization", ""), app_key)
        if refusal is None and headers.get("tr_id") != tr_id:
            refusal = _error(500, "SIM00402", "tr_id를 확인하세요 (simulated)")
        if refusal is None and headers.get("custtype") not in ("P", "B"):
            refusal = _error(500, "SIM00403", "custtype을 확인하세요 (simulated)")
        if refusal is None:
            refusal = self._check_customer(headers)
        if refusal is None:
            refusal = self._check_ledger(request, tr_id, now)
        if refusal is not None:
            await self._delay()
        return refusal

    def _check_ledger(
        self, request: web.Request, tr_id: str, now: float
    ) -> web.StreamResponse | None:
        """The account ledger behind the gateway: ``ledger_limit`` calls a sliding second per
        account, across ``ledger_tr_ids`` together; one more is EGW00215 (HTTP 500)."""
        limit = self.config.ledger_limit
        if limit is None or tr_id not in self.config.ledger_tr_ids:
            return None
        account = f"{request.query.get('CANO', '')}-{request.query.get('ACNT_PRDT_CD', '')}"
        ledger = self._ledgers[account]
        if ledger.admit(now, limit):
            self.stats.ledger_max_window = max(self.stats.ledger_max_window, ledger.peak)
            return None
        self.stats.ledger_rejected += 1
        return _kis_error(500, spec.LEDGER_LIMITED)

    def _check_customer(self, headers: Mapping[str, str]) -> web.StreamResponse | None:
        """A partner firm's call (custtype B) carries its headers and a gt_uid never seen before."""
        if headers.get("custtype") != "B":
            if any(name in headers for name in corporate.REQUIRED_HEADERS):
                self.stats.corporate_headers_from_individuals += 1
            return None
        missing = [name for name in corporate.REQUIRED_HEADERS if not headers.get(name, "").strip()]
        if missing:
            return _error(500, "SIM00410", f"법인 필수 헤더 누락: {', '.join(missing)} (simulated)")
        if not secrets.compare_digest(headers["personalseckey"], self.config.personalseckey):
            return _error(500, "SIM00411", "고객식별키를 확인하세요 (simulated)")
        if headers["seq_no"] != corporate.SEQ_NO:
            return _error(500, "SIM00412", "일련번호를 확인하세요 (simulated)")
        uid = headers["gt_uid"]
        if len(uid) > 32 or uid in self.stats.gt_uids:
            return _error(500, "SIM00413", "Global UID가 중복되었습니다 (simulated)")
        self.stats.gt_uids.add(uid)
        return None

    def _admit(self, app_key: str, now: float) -> bool:
        """Count one arrival (client or background) against the appkey's limit."""
        held = self._traffic[app_key].record(now)
        self.stats.max_window_total = max(self.stats.max_window_total, held)
        return self._admitted[app_key].admit(now, self._limit(now))

    def _limit(self, now: float) -> int:
        """The limit in force at ``now``: ``rate_limit``, or the latest due ``limit_schedule``."""
        config = self.config
        if self._first_call is None or not config.limit_schedule:
            return config.rate_limit
        elapsed = now - self._first_call
        due = [entry for entry in config.limit_schedule if entry[0] <= elapsed]
        return max(due, key=lambda entry: entry[0])[1] if due else config.rate_limit

    def _since_start(self, now: float) -> float:
        if self._origin is None:
            self._origin = now
        return now - self._origin

    def _check_credentials(
        self, app_key: str, app_secret: str, status: int
    ) -> web.StreamResponse | None:
        """tokenP (HTTP 403) refuses in ``error_code``/``error_description``, with no ``rt_cd``;
        an API call (HTTP 500) in the envelope, a wrong appsecret there as EGW00304."""
        token_endpoint = status == 403
        account = self._account_of(app_key)
        if account is None:
            code = spec.BAD_APPKEY
        elif not secrets.compare_digest(app_secret, account.app_secret):
            code = spec.BAD_APPSECRET if token_endpoint else spec.APPSECRET_REFUSED
        else:
            return None
        return _token_refusal(code) if token_endpoint else _kis_error(status, code)

    def _check_token(self, authorization: str, app_key: str) -> web.StreamResponse | None:
        scheme, _, value = authorization.partition(" ")
        token = self._tokens.get(value) if scheme.lower() == "bearer" else None
        if token is None or token.app_key != app_key or token.dead == spec.TOKEN_INVALID:
            return _kis_error(500, spec.TOKEN_INVALID)
        if token.dead == spec.TOKEN_EXPIRED or time.time() >= token.expires_at:
            return _kis_error(500, spec.TOKEN_EXPIRED)
        return None

    def _account_of(self, app_key: str) -> SimAccount | None:
        """The appkey's account (``config.app_key``'s or one of ``config.accounts``), if any."""
        config = self.config
        main = SimAccount(config.app_key, config.app_secret, config.account)
        found = None
        for account in (main, *config.accounts):
            if secrets.compare_digest(app_key, account.app_key):
                found = account
        return found

    def _portfolio(self, app_key: str) -> Mapping[str, Holding]:
        """What the appkey's account holds."""
        account = self._account_of(app_key)
        if account is None or account.portfolio is None:
            return self.portfolio
        return account.portfolio

    def _check_account(self, query: Mapping[str, str], app_key: str) -> web.StreamResponse | None:
        """The account asked about must be the one the appkey is bound to: OPSQ2000 else."""
        account = self._account_of(app_key)
        cano, _, product = (account.account if account else "").partition("-")
        if query.get("CANO") != cano or query.get("ACNT_PRDT_CD") != product:
            return _kis_error(500, spec.ACCOUNT_REFUSED)
        return None

    def _next_fault(self, pdno: str) -> Fault | None:
        for key in (pdno, None):
            queue = self._faults.get(key)
            if queue:
                return queue.pop(0)
        config = self.config
        if config.fault_rate and config.fault_kinds and self._rng.random() < config.fault_rate:
            return self._rng.choice(config.fault_kinds)
        return None

    async def _travel(self) -> None:
        """The request's way to the gateway: ``request_latency`` ± ``request_jitter``."""
        config = self.config
        await _pause(config.request_latency, config.request_jitter, self._trip_rng)

    async def _delay(self) -> None:
        """The answer's way back: ``latency`` ± ``jitter``."""
        await _pause(self.config.latency, self.config.jitter, self._rng)

    # -- another program on the same appkey -------------------------------------------------------

    def _run_background(self) -> None:
        """Start the background program if ``background_rate`` asks for one and none runs."""
        if self.config.background_rate <= 0 or self._closing.is_set():
            return
        if self._background is None or self._background.done():
            self._background = asyncio.get_running_loop().create_task(
                self._background_calls(), name="kis-simulator-background"
            )

    async def _background_calls(self) -> None:
        """Arrivals at ``background_rate`` on the configured appkey until the rate is 0."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while (rate := self.config.background_rate) > 0:
            poisson = self.config.background_poisson
            due += self._background_rng.expovariate(rate) if poisson else 1 / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            admitted = self._admit(self.config.app_key, now)
            self.stats.background_calls += 1
            if not admitted:
                self.stats.background_rejected += 1
            self.stats.background_arrivals.append((self._since_start(now), admitted))
            _run_due(self._after_background, self.stats.background_calls)

    async def _stop_background(self) -> None:
        task, self._background = self._background, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled():
            task.result()

    # -- faults -----------------------------------------------------------------------------------

    async def _faulty(
        self, request: web.Request, fault: Fault, output: dict[str, str]
    ) -> web.StreamResponse:
        self.stats.faults[fault.value] += 1
        build = _BUILDERS.get(fault)
        if build is not None:
            return build(request, output, self._hostile_context())
        if fault is Fault.RATE_LIMIT:
            return _kis_error(500, spec.RATE_LIMITED)
        if fault in REFUSALS:
            status, code = REFUSALS[fault]
            return _kis_error(status, code)
        if fault is Fault.TOKEN_EXPIRED:
            _, _, value = request.headers.get("authorization", "").partition(" ")
            self._tokens[value].dead = spec.TOKEN_EXPIRED
            return _kis_error(500, spec.TOKEN_EXPIRED)
        if fault is Fault.OUTPUT_MISSING:
            return _json(200, self._success())
        if fault is Fault.OUTPUT_NULL:
            return _json(200, self._success() | {self._output_key: None})
        if fault is Fault.OUTPUT_LIST:
            return _json(200, self._success() | {"output": [output]})
        if fault is Fault.THOUSANDS:
            return self._ok({k: _grouped(v) if k != "pdno" else v for k, v in output.items()})
        if fault is Fault.PADDED:
            return self._ok(
                {k: f" {v} " if k not in ("pdno", "prdt_name") else v for k, v in output.items()}
            )
        if fault is Fault.EUC_KR:
            text = msgspec.json.encode(self._success() | {self._output_key: output}).decode()
            return web.Response(
                status=200,
                body=text.encode("euc-kr"),
                content_type="application/json",
                charset="euc-kr",
            )
        body = msgspec.json.encode(self._success() | {self._output_key: output})
        return await self._broken(request, fault, body)

    @property
    def _output_key(self) -> str:
        """Where inquire-psbl-sell puts its result: ``output`` live, ``output1`` on the page."""
        return "output" if self._live else "output1"

    def _success(self) -> dict[str, Any]:
        """A success envelope: KIS's live code and its message blank-padded to 80 bytes in
        EUC-KR width, or the reference page's example."""
        if self._live:
            return {"rt_cd": spec.RT_OK, "msg_cd": "KIOK0420", "msg1": _padded(_LIVE_OK)}
        return {"rt_cd": spec.RT_OK, "msg_cd": "KIOK0510", "msg1": "조회가 완료되었습니다"}

    def _ok(self, output: dict[str, str]) -> web.Response:
        return _json(200, self._success() | {self._output_key: output})

    def _hostile_context(self) -> hostile.Context:
        config = self.config
        return hostile.Context(config.redirect_to, config.retry_after, config.account, self._rng)

    async def _broken(self, request: web.Request, fault: Fault, body: bytes) -> web.StreamResponse:
        """Answers that are not KIS JSON at all, or no answer."""
        if fault in (Fault.HTML_500, Fault.HTML_502, Fault.HTML_503):
            status = int(fault.value[-3:])
            page = f"<html><body><h1>{status} Bad Gateway</h1></body></html>"
            return web.Response(status=status, text=page, content_type="text/html")
        if fault is Fault.EMPTY_500:
            return web.Response(status=500)
        if fault is Fault.MALFORMED:
            return web.Response(status=200, body=b"{'rt_cd': 0,", content_type="application/json")
        if fault is Fault.HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.config.hang_for)
            return _drop(request)
        if fault is Fault.TRUNCATED:
            response = web.StreamResponse(status=200)
            response.content_type = "application/json"
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            return _drop(request, response)
        return _drop(request)

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return _json(200, self.stats.as_dict())

    async def _arrivals_page(self, request: web.Request) -> web.StreamResponse:
        """``{"client": [[t, admitted], ...], "background": [...]}``, as in :class:`Stats`."""
        stats = self.stats
        return _json(200, {"client": stats.arrivals, "background": stats.background_arrivals})


def _run_due(schedule: list[tuple[int, Callable[[], None]]], count: int) -> None:
    """Run (and drop) the actions of ``schedule`` whose call count ``count`` has reached."""
    due = [action for calls, action in schedule if calls <= count]
    if due:
        schedule[:] = [(calls, action) for calls, action in schedule if calls > count]
        for action in due:
            action()


async def _pause(mean: float, spread: float, rng: random.Random) -> None:
    """Sleep ``mean`` ± up to ``spread`` seconds (uniform), never less than zero."""
    seconds = mean + (spread and rng.uniform(-1, 1) * spread)
    if seconds > 0:
        await asyncio.sleep(seconds)


_LIVE_OK = "정상적으로 조회되었습니다"
_REVOKED = "접근토큰 폐기에 성공하였습니다"
"""revokeP's message (the client reads only the HTTP status)."""
_SUMMARY_KEYS = (
    "dnca_tot_amt",
    "nxdy_excc_amt",
    "prvs_rcdl_excc_amt",
    "cma_evlu_amt",
    "bfdy_buy_amt",
    "thdt_buy_amt",
    "nxdy_auto_rdpt_amt",
    "bfdy_sll_amt",
    "thdt_sll_amt",
    "d2_auto_rdpt_amt",
    "bfdy_tlex_amt",
    "thdt_tlex_amt",
    "tot_loan_amt",
    "scts_evlu_amt",
    "tot_evlu_amt",
    "nass_amt",
    "fncg_gld_auto_rdpt_yn",
    "pchs_amt_smtl_amt",
    "evlu_amt_smtl_amt",
    "evlu_pfls_smtl_amt",
    "tot_stln_slng_chgs",
    "bfdy_tot_asst_evlu_amt",
    "asst_icdc_amt",
    "asst_icdc_erng_rt",
)
"""inquire-balance ``output2``'s 24 keys, as KIS's example lists them."""


def _padded(text: str, width: int = 80) -> str:
    """``text`` followed by blanks up to ``width`` bytes in EUC-KR, as KIS pads ``msg1``."""
    return text + " " * max(0, width - len(text.encode("euc-kr")))


def _kis_error(status: int, msg_cd: str) -> web.Response:
    """KIS's own refusal ``msg_cd``, with the ``rt_cd`` and the message KIS sends with it."""
    rt_cd = spec.RT_CODES.get(msg_cd, spec.RT_FAILED)
    return _error(
        status, msg_cd, spec.MESSAGES.get(msg_cd, f"{msg_cd} (simulated text)"), rt_cd=rt_cd
    )


def _token_refusal(code: str) -> web.Response:
    """tokenP's refusal as KIS sends it: HTTP 403, ``error_code`` and ``error_description``."""
    return _json(403, {"error_description": spec.MESSAGES[code], "error_code": code})


async def _not_served(request: web.Request) -> web.Response:
    """Any other path or method: KIS's envelope naming the path, not aiohttp's bare text 404,
    so a bot trying an endpoint the simulator lacks is told which one (and that it is this)."""
    return _error(
        404, "SIM00405", f"{request.method} {request.path}: not served by the KIS simulator"
    )


def _error(status: int, msg_cd: str, msg1: str, *, rt_cd: str = "1") -> web.Response:
    return _json(status, {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1})


def _json(status: int, payload: Mapping[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode(payload),
        content_type="application/json",
        charset="utf-8",
    )


def _grouped(value: str) -> str:
    whole, dot, frac = value.partition(".")
    if not whole.lstrip("-").isdigit():
        return value
    return f"{int(whole):,}{dot}{frac}"


def _drop(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
    """Close the connection under the client's feet."""
    if request.transport is not None:
        request.transport.close()
    return response if response is not None else web.Response(status=500)
