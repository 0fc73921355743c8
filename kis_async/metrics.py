"""What the client reports, and to whom: every instrument in one place, fed through OpenTelemetry.

A client reports metrics only when given a meter provider (``KISClient(meter_provider=...)``;
the ``otel`` extra installs the API). Without one the client holds no :class:`Metrics`, the
transport tests ``None`` once per step of a call, and nothing of ``opentelemetry`` is imported.

:data:`INSTRUMENTS` lists what is reported (name, kind, unit, attributes, meaning), following
OpenTelemetry's naming conventions: names under ``kis.client.``, units in UCUM (``s``,
``{call}``), ``error.type`` the class name of the error an operation ended with. No attribute
ever holds a ticker, an account, a token or a secret: the appkey appears only as
:func:`app_key_hash`, the first 8 hex digits of its SHA-256, which tells one client's series
from another's and reveals nothing. Every value an attribute takes is from a small set: the
tr_ids called, the outcome kinds below, this package's error classes.

A try's outcome (``kis.outcome``) is what :func:`~kis_async.verdict.classify` made of it:
``ok``; ``rate_limited`` (``EGW00201``); ``ledger_limited`` (``EGW00215``); ``token_refused``
(``EGW00123``/``EGW00121``: renewed); ``transient`` (any other fault worth a retry: a proxy's
5xx page, a timeout, a dropped connection); ``failed`` (asking again gives the same answer). A
call's outcome is its last try's, or ``failed`` when it ended before a try did (the token could
not be issued, Redis was down), or ``cancelled``.

Instruments are made once per meter provider and shared by every client using it (a meter
provider refuses a second instrument of the same name); the pace gauge's callback reports each
open client. The counts are kept here and read by asynchronous instruments at each collection,
which export the same sums a synchronous counter would at a fraction of the cost (an SDK
counter's ``add`` is about 10 µs); the two histograms are the SDK's, recorded as calls go. A
reader may collect from its own thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Final, Literal

from .verdict import Ok, Renew, Retry, Verdict

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Histogram, MeterProvider, Observation

    from .clock import Clock
    from .errors import KISError
    from .ledger import Ledger
    from .pace import Pace
    from .pacing import Pacer

TR_ID: Final = "kis.tr_id"
OUTCOME: Final = "kis.outcome"
ERROR_TYPE: Final = "error.type"
APP_KEY_HASH: Final = "kis.app_key.hash"
PACER: Final = "kis.pacer"
DIRECTION: Final = "kis.pace.direction"

OK: Final = "ok"
RATE_LIMITED: Final = "rate_limited"
LEDGER_LIMITED: Final = "ledger_limited"
TOKEN_REFUSED: Final = "token_refused"
TRANSIENT: Final = "transient"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"

Kind = Literal["counter", "histogram", "up_down_counter", "observable_gauge"]

SECONDS_BUCKETS: Final = (
    *(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0),
)
"""Histogram bucket bounds for seconds: OpenTelemetry's HTTP duration buckets, and a minute."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """One instrument: what it is called and measures, and the attributes its points carry
    (every point carries :data:`APP_KEY_HASH` as well)."""

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...] = ()


CALLS = Instrument(
    "kis.client.calls",
    "counter",
    "{call}",
    "API calls ended, by their outcome (the last try's); retries and renewals are one call",
    (TR_ID, OUTCOME, ERROR_TYPE),
)
CALL_DURATION = Instrument(
    "kis.client.call.duration",
    "histogram",
    "s",
    "Time from a call's start to its answer or error: pacer waits, retries and renewals in it",
    (TR_ID, OUTCOME, ERROR_TYPE),
)
REQUESTS = Instrument(
    "kis.client.requests",
    "counter",
    "{request}",
    "Tries sent to KIS (every one KIS counts against the limit), by what each got",
    (TR_ID, OUTCOME, ERROR_TYPE),
)
PACER_WAIT = Instrument(
    "kis.client.pacer.wait",
    "histogram",
    "s",
    "Time one try waited for its turn: the ledger's pace, if its tr_id keeps it, then the appkey's",
    (TR_ID,),
)
RETRIES = Instrument(
    "kis.client.retries",
    "counter",
    "{retry}",
    "Tries repeated after a transient fault or a refusal of the call rate, by the try's outcome",
    (TR_ID, OUTCOME, ERROR_TYPE),
)
PACE = Instrument(
    "kis.client.pace",
    "observable_gauge",
    "{call}/s",
    "Calls per second the pacer lets out now: the appkey's, and the account ledger's once set",
    (PACER,),
)
PACE_CHANGES = Instrument(
    "kis.client.pace.changes",
    "counter",
    "{change}",
    "Changes of the pace in force, as this process saw them (with Redis, others' included)",
    (PACER, DIRECTION),
)
TOKEN_ISSUANCES = Instrument(
    "kis.client.token.issuances",
    "counter",
    "{token}",
    "Tokens this process had KIS issue (each one texts the account holder)",
)
BATCH_PENDING = Instrument(
    "kis.client.batch.pending",
    "up_down_counter",
    "{ticker}",
    "Tickers of bulk checks under way, not yet answered or failed",
)
BATCH_TICKERS = Instrument(
    "kis.client.batch.tickers",
    "counter",
    "{ticker}",
    "Tickers of bulk checks done, answered (ok) or failed, by the error's class",
    (OUTCOME, ERROR_TYPE),
)
INSTRUMENTS: Final = (
    CALLS,
    CALL_DURATION,
    REQUESTS,
    PACER_WAIT,
    RETRIES,
    PACE,
    PACE_CHANGES,
    TOKEN_ISSUANCES,
    BATCH_PENDING,
    BATCH_TICKERS,
)
"""Everything a client reports; the README's *Metrics* table lists the same."""


def app_key_hash(app_key: str) -> str:
    """The appkey as metrics name it: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(app_key.encode()).hexdigest()[:8]


def outcome_of(verdict: Verdict) -> str:
    """A try's ``kis.outcome``, from its verdict."""
    if isinstance(verdict, Ok):
        return OK
    if isinstance(verdict, Retry):
        if verdict.throttled:
            return RATE_LIMITED
        return LEDGER_LIMITED if verdict.ledger else TRANSIENT
    return TOKEN_REFUSED if isinstance(verdict, Renew) else FAILED


def checked_meter_provider(provider: object) -> MeterProvider | None:
    """``provider`` if it is an OpenTelemetry ``MeterProvider`` (or ``None``); else a
    ``TypeError`` saying what is wanted. OpenTelemetry is imported only for a provider given."""
    if provider is None:
        return None
    wanted = (
        "meter_provider must be an opentelemetry.metrics.MeterProvider (pip install "
        "opentelemetry-api; from a checkout: pip install -e '.[otel]'), got "
        f"{type(provider).__name__}"
    )
    try:
        from opentelemetry.metrics import MeterProvider
    except ImportError:
        raise TypeError(wanted) from None
    if not isinstance(provider, MeterProvider):
        raise TypeError(wanted)
    return provider


class _Tally:
    """A counter's counts, one per attribute set, kept here for an asynchronous instrument to
    read at each collection.

    Adding one is a dict update under a lock; an SDK counter's ``add`` costs about 10 µs, which
    at five a call would double a call's CPU. The counts live as long as the meter provider,
    so a sum never goes back when a client closes. Keys are ``key, value, key, value...``.
    """

    def __init__(self, observation: type[Observation]) -> None:
        self._observation = observation
        self._counts: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def add(self, key: tuple[str, ...], amount: int = 1) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount

    def observe(self, options: CallbackOptions) -> Iterator[Observation]:
        with self._lock:
            counts = list(self._counts.items())
        for key, count in counts:
            yield self._observation(count, dict(zip(key[::2], key[1::2], strict=True)))


class _Instruments:
    """The instruments of one meter provider, and the open clients its pace gauge reports.

    Counters and the up-down counter are asynchronous instruments reading a :class:`_Tally`;
    they export as the same sums a synchronous one would. Histograms are the SDK's own.
    """

    def __init__(self, provider: MeterProvider) -> None:
        from opentelemetry.metrics import Observation

        self._observation = Observation
        try:
            package = version("kis-async")
        except PackageNotFoundError:  # a source tree never installed
            package = "0+unknown"
        meter = provider.get_meter("kis_async", package)
        self.tallies: dict[str, _Tally] = {}
        self.histograms: dict[str, Histogram] = {}
        for spec in INSTRUMENTS:
            name, unit, description = spec.name, spec.unit, spec.description
            if spec.kind == "histogram":
                self.histograms[name] = meter.create_histogram(
                    name, unit, description, explicit_bucket_boundaries_advisory=SECONDS_BUCKETS
                )
            elif spec.kind == "observable_gauge":
                meter.create_observable_gauge(name, [self._paces], unit, description)
            else:
                tally = self.tallies[name] = _Tally(Observation)
                make = (
                    meter.create_observable_counter
                    if spec.kind == "counter"
                    else meter.create_observable_up_down_counter
                )
                make(name, [tally.observe], unit, description)
        self._open: weakref.WeakSet[Metrics] = weakref.WeakSet()
        self._lock = threading.Lock()

    def opened(self, client: Metrics) -> None:
        with self._lock:
            self._open.add(client)

    def closed(self, client: Metrics) -> None:
        with self._lock:
            self._open.discard(client)

    def _paces(self, options: CallbackOptions) -> Iterator[Observation]:
        """The pace gauge's reading: each open client's paces (called from the reader's
        thread; a pace is an immutable value, read in one step)."""
        with self._lock:
            clients = list(self._open)
        for client in clients:
            for value, attributes in client.paces():
                yield self._observation(value, attributes)


_BY_PROVIDER: weakref.WeakKeyDictionary[object, _Instruments] = weakref.WeakKeyDictionary()
_BY_PROVIDER_LOCK = threading.Lock()


def _instruments(provider: MeterProvider) -> _Instruments:
    with _BY_PROVIDER_LOCK:
        made = _BY_PROVIDER.get(provider)
        if made is None:
            made = _BY_PROVIDER[provider] = _Instruments(provider)
        return made


class Metrics:
    """One open client's reports, to the instruments of its meter provider.

    The transport calls :meth:`waited`, :meth:`tried`, :meth:`retried` and :meth:`called` as a
    call goes; the token manager :meth:`token_issued`; a batch :meth:`pending` and :meth:`done`
    (see :class:`~kis_async.batch.Progress`). Pace changes are noticed where they can happen,
    once a try's wait for the pacers ends and once its answer was reported to them, by comparing
    each pacer's pace with the last seen: the pacers report nothing themselves. A one-process
    pacer changes its pace only then and with nothing awaited in between, so every change is
    seen; a shared pacer may change twice while this process awaits Redis, seen as one.
    """

    def __init__(
        self,
        provider: MeterProvider,
        *,
        app_key: str,
        pacer: Pacer[Any],
        ledger: Ledger | None,
        clock: Clock,
    ) -> None:
        instruments = _instruments(provider)
        self._instruments = instruments
        tallies, histograms = instruments.tallies, instruments.histograms
        self._calls = tallies[CALLS.name]
        self._requests = tallies[REQUESTS.name]
        self._retries = tallies[RETRIES.name]
        self._pace_changes = tallies[PACE_CHANGES.name]
        self._token_issuances = tallies[TOKEN_ISSUANCES.name]
        self._batch_pending = tallies[BATCH_PENDING.name]
        self._batch_tickers = tallies[BATCH_TICKERS.name]
        self._call_duration = histograms[CALL_DURATION.name]
        self._pacer_wait = histograms[PACER_WAIT.name]
        self._base: tuple[str, ...] = (APP_KEY_HASH, app_key_hash(app_key))
        self.now = clock.monotonic
        """The clock calls are timed on."""
        self._pacer = pacer
        self._ledger = ledger
        self._seen: Pace = pacer.pace
        self._seen_ledger: Pace | None = None
        self._attributes: dict[tuple[str, ...], Mapping[str, str]] = {}
        self._paced = self._with(PACER, "appkey"), self._with(PACER, "ledger")
        """The pace gauge's attributes, made here: the gauge is read from the reader's thread."""
        instruments.opened(self)

    def close(self) -> None:
        """The client closed: its paces are no longer reported."""
        self._instruments.closed(self)

    def paces(self) -> Iterable[tuple[float, Mapping[str, str]]]:
        """The pace gauge's values for this client, each with its attributes."""
        yield self._pacer.pace.calls_per_second, self._paced[0]
        ledger = self._ledger.pacer if self._ledger is not None else None
        if ledger is not None:
            yield ledger.pace.calls_per_second, self._paced[1]

    def waited(self, tr_id: str, since: float) -> None:
        """One try waited for the pacers from ``since`` (:attr:`now`) until now."""
        self._pacer_wait.record(self.now() - since, self._with(TR_ID, tr_id))
        self._notice_paces()

    def tried(self, tr_id: str, verdict: Verdict) -> None:
        """One try was sent and judged (and a refusal reported to the pacers)."""
        self._requests.add(self._base + self._outcome(tr_id, verdict))
        self._notice_paces()

    def retried(self, tr_id: str, verdict: Verdict) -> None:
        """The try judged ``verdict`` is being repeated."""
        self._retries.add(self._base + self._outcome(tr_id, verdict))

    def called(
        self,
        tr_id: str,
        started: float,
        verdict: Verdict | None = None,
        error: BaseException | None = None,
    ) -> None:
        """A call that started at ``started`` ended: answered (``verdict`` Ok), or raising
        ``error``, which is the last try's verdict's if it came from one."""
        if error is None:
            pairs: tuple[str, ...] = (TR_ID, tr_id, OUTCOME, OK)
        else:
            from_try = verdict is not None and getattr(verdict, "error", None) is error
            outcome = CANCELLED if isinstance(error, asyncio.CancelledError) else FAILED
            if from_try and verdict is not None:
                outcome = outcome_of(verdict)
            pairs = (TR_ID, tr_id, OUTCOME, outcome, ERROR_TYPE, type(error).__name__)
        self._calls.add(self._base + pairs)
        self._call_duration.record(self.now() - started, self._with(*pairs))

    def token_issued(self) -> None:
        self._token_issuances.add(self._base)

    def pending(self, tickers: int) -> None:
        """``tickers`` joined a batch (or, negative, left it undone: cancelled)."""
        self._batch_pending.add(self._base, tickers)

    def done(self, error: KISError | None) -> None:
        """One ticker of a batch ended: answered, or failed with ``error``."""
        self._batch_pending.add(self._base, -1)
        if error is None:
            self._batch_tickers.add((*self._base, OUTCOME, OK))
        else:
            self._batch_tickers.add(
                (*self._base, OUTCOME, FAILED, ERROR_TYPE, type(error).__name__)
            )

    def _notice_paces(self) -> None:
        """Count a change of either pacer's pace since the last look (a ledger's pacer coming
        into being is not one)."""
        pace = self._pacer.pace
        if pace != self._seen:
            self._changed("appkey", self._seen, pace)
            self._seen = pace
        ledger = self._ledger.pacer if self._ledger is not None else None
        if ledger is not None and ledger.pace != self._seen_ledger:
            if self._seen_ledger is not None:
                self._changed("ledger", self._seen_ledger, ledger.pace)
            self._seen_ledger = ledger.pace

    def _changed(self, pacer: str, before: Pace, after: Pace) -> None:
        direction = "down" if after.calls_per_second < before.calls_per_second else "up"
        self._pace_changes.add((*self._base, PACER, pacer, DIRECTION, direction))

    def _outcome(self, tr_id: str, verdict: Verdict) -> tuple[str, ...]:
        outcome = outcome_of(verdict)
        if outcome == OK:
            return (TR_ID, tr_id, OUTCOME, OK)
        error = getattr(verdict, "error", None)
        return (TR_ID, tr_id, OUTCOME, outcome, ERROR_TYPE, type(error).__name__)

    def _with(self, *pairs: str) -> Mapping[str, str]:
        """The attributes ``key, value, key, value...`` and the appkey's hash, made once."""
        attributes = self._attributes.get(pairs)
        if attributes is None:
            if len(self._attributes) > 1024:
                self._attributes.clear()
            keys = self._base + pairs
            attributes = dict(zip(keys[::2], keys[1::2], strict=True))
            self._attributes[pairs] = attributes
        return attributes
