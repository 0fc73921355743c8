"""How the command line shows a run: the results on stdout, and stderr as a person reads it.

- stdout: an aligned table, ``--json``, ``--csv``, or ``--json-lines`` (one object per ticker as
  it completes, flushed at once, so a pipe sees each row when it happens).
- stderr: :class:`Status`. Notes and log lines stay; on a terminal one live line under them
  shows the stage under way (asking for a token, reading holdings pages) and then a progress bar.
- A mistake in the set-up (credentials, token, account, connection, Redis) is not shown once per
  ticker: :func:`setup_problem` turns it into one line naming what to fix.

Text that came from the server (names, messages) or from a file is shown with its control, format
and BiDi characters escaped (:func:`printable`), so an answer cannot move the cursor, retitle the
terminal, reverse a line or forge one; a log record is one line (:class:`OneLineFormatter`). JSON
escapes them as ``\\uXXXX`` (:func:`json_text`), and a CSV cell never starts a formula
(:func:`csv_cell`). Nothing here ever sees the appsecret or the token.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
import unicodedata
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

import msgspec

from . import config as cfg
from . import spec
from .batch import Batch, Outcome
from .client import ClientStats
from .endpoints import SellableQuantity
from .errors import (
    AccountError,
    APIError,
    AuthError,
    ClientClosedError,
    KISError,
    RequestTimeout,
    SameTokenError,
    TokenCacheError,
    TransportError,
)
from .inputs import ENVIRONMENT
from .sells import Sell

_COLUMNS = ("ticker", "name", "held", "sold today", "sellable", "avg price", "now", "P/L %")
_CSV_FIELDS = (*SellableQuantity.__struct_fields__, "error", "error_class", "msg_cd")


@dataclass(frozen=True, slots=True)
class Setup:
    """What a set-up mistake's message may name: where the client pointed, and where each
    variable was set (:data:`ENVIRONMENT` or an env file's path). Never a secret."""

    base_url: str
    account: str
    """Masked: ``50****56-01``."""
    redis_url: str | None = None
    """Without its password."""
    origin: Mapping[str, str] = field(default_factory=dict)

    def var(self, name: str) -> str:
        """The variable ``name`` as a message names it: see :func:`where`."""
        return where(name, self.origin)


@dataclass(slots=True)
class Run:
    """What a check produced so far: the tickers asked, in order, and the batch filling up."""

    asked: list[str]
    batch: Batch[SellableQuantity] = field(default_factory=Batch)
    setup: Setup | None = None
    elapsed: float = 0.0
    """Seconds the check of ``asked`` took (listing the holdings is not part of it)."""
    waited: float = 0.0
    """Seconds of ``elapsed`` spent waiting on KIS's one-token-a-minute rule."""
    interrupted: bool = False
    terminated: bool = False
    """Stopped by SIGTERM (``interrupted`` is set too)."""
    stats: ClientStats | None = None
    """The client's pace and refusals at the end, when a client ran."""
    expected: frozenset[str] = frozenset()
    """Tickers whose failure is part of the show (the demo's unknown tickers)."""
    failure: KISError | None = None
    """What stopped the run before any ticker was checked (listing the holdings failed)."""
    label: str | None = None
    """The account as every row shows it, when a run checks several (``--account``)."""
    problem: str | None = None
    """A set-up mistake found before any request (an ``--account`` file's): its one line."""
    sells: list[Sell] | None = None
    """The intended sells (``--sells``), in input order; ``asked`` is their tickers."""
    orders_of: dict[str, list[Sell]] = field(default_factory=dict)
    """``sells`` by ticker, each ticker's in input order: its verdicts are judged apart."""
    answered_at: dict[str, datetime] = field(default_factory=dict)
    """When each ticker's answer came, for the verdicts on ``sells``."""

    @property
    def done(self) -> list[str]:
        """The tickers that have an outcome, in the order they were asked."""
        batch = self.batch
        return [p for p in self.asked if p in batch.results or p in batch.errors]


def setup_problem(error: KISError, setup: Setup) -> str | None:
    """One line naming what to fix, when ``error`` is about the set-up rather than a ticker:
    credentials or token refused, account refused, token cache unsafe, host or Redis
    unreachable, token endpoint broken. ``None`` for an error about one ticker, a fault of
    KIS's that the user cannot fix, or a call the client's closing stopped."""
    if isinstance(error, TokenCacheError):
        return error.reason
    if isinstance(error, AccountError):
        code = error.msg_cd or error.rt_cd
        if error.msg_cd == spec.PRODUCT_MISMATCH:
            return (
                f"KIS says the product code of account {setup.account} does not match it "
                f"({code}): check the two digits after the dash in {setup.var(cfg.ENV_ACCOUNT)}"
            )
        if error.msg_cd == spec.NOT_CONSIGNMENT:
            return (
                f"KIS can list only 위탁 (consignment) accounts, and {setup.account} is not one "
                f"({code}): set {setup.var(cfg.ENV_ACCOUNT)} to the stock account"
            )
        return (
            f"KIS refused account {setup.account} ({code}): check "
            f"{setup.var(cfg.ENV_ACCOUNT)} is the account registered with this appkey"
        )
    if isinstance(error, AuthError):
        return _auth_problem(error, setup)
    if isinstance(error, TransportError):
        return _transport_problem(error, setup)
    return None


def _auth_problem(error: AuthError, setup: Setup) -> str:
    code = error.msg_cd or error.rt_cd
    said = printable(error.msg1.strip())
    if isinstance(error, SameTokenError):
        when = datetime.fromtimestamp(error.until, spec.KST).strftime("%H:%M KST")
        return (
            f"KIS refuses its access token ({code}) yet hands the same one back, revoked or not "
            f"(one token for 6 hours after an issuance): run again after about {when}"
        )
    if error.msg_cd == spec.BAD_APPKEY:
        return f"KIS refused the appkey ({code}): check {setup.var(cfg.ENV_APP_KEY)}"
    if error.msg_cd == spec.NOT_PAPER_APPKEY:
        return (
            f"this appkey is for real trading and {setup.var(cfg.ENV_BASE_URL)} is a paper "
            f"(모의투자) host ({code}): leave {cfg.ENV_BASE_URL} unset for {spec.REAL_HOST}"
        )
    if error.msg_cd in (spec.BAD_APPSECRET, spec.APPSECRET_REFUSED):
        return f"KIS refused the appkey/appsecret ({code}): check {setup.var(cfg.ENV_APP_SECRET)}"
    if error.msg_cd == spec.TOKEN_ISSUE_TOO_SOON:
        return (
            f"KIS issues one token a minute per appkey and refused another ({code}): another "
            "program on this appkey may have just had one issued; run again in a minute"
        )
    if error.msg_cd in spec.STALE_TOKEN_CODES:
        return f"KIS refused the access tokens it issued ({code} {said}): run again in a minute"
    return (
        f"KIS refused the token request ({code} {said}): check "
        f"{setup.var(cfg.ENV_APP_KEY)} and {setup.var(cfg.ENV_APP_SECRET)}"
    )


def _transport_problem(error: TransportError, setup: Setup) -> str | None:
    if isinstance(error, ClientClosedError):
        return None
    detail = printable(error.detail)
    if error.source == "redis":
        return (
            f"Redis at {setup.redis_url}: {detail}: check {setup.var(cfg.ENV_REDIS_URL)} "
            "and that redis-server is running there"
        )
    host = setup.var(cfg.ENV_BASE_URL)
    if isinstance(error, RequestTimeout):
        return f"no answer from {setup.base_url} ({detail}): check {host} and your network"
    if error.status is None:
        return f"cannot reach {setup.base_url} ({detail}): check {host} and your network"
    if error.source == "token":
        return (
            f"{setup.base_url} answered the token request without a token ({detail}): check "
            f"{host} is the KIS API host ({spec.REAL_HOST}), or KIS may be under maintenance"
        )
    return None


def where(name: str, origin: Mapping[str, str]) -> str:
    """``KIS_ACCOUNT``, or ``KIS_ACCOUNT (in .env)`` when an env file set it: what to fix."""
    source = origin.get(name, ENVIRONMENT)
    return name if source == ENVIRONMENT else f"{name} (in {source})"


def setup_failure(run: Run) -> str | None:
    """The one line that stands for the whole run when a set-up mistake stopped it: listing
    the holdings failed for one, or every ticker failed for the same one and none succeeded."""
    if run.problem is not None:
        return run.problem
    if run.setup is None or run.interrupted:
        return None
    if run.failure is not None:
        return setup_problem(run.failure, run.setup)
    if run.batch.results or not run.batch.errors:
        return None
    problems = {setup_problem(error, run.setup) for error in run.batch.errors.values()}
    problem = problems.pop()
    return problem if not problems else None


def stopped(run: Run) -> str | None:
    """The one line saying what stopped the whole run, if something did: a set-up mistake
    (:func:`setup_failure`), or a failure listing the account's holdings."""
    failure = setup_failure(run)
    if failure is None and run.failure is not None:
        failure = f"cannot list the account's holdings: {printable(str(run.failure))}"
    return failure


def table(run: Run) -> str:
    """Aligned columns (Hangul counts two cells wide), then the failures with their reasons.

    No header when there is no row under it. Tickers that failed for one set-up mistake are one
    line, not one line each; when that is every ticker, the table is empty (stderr says it)."""
    return tables([run])


def tables(runs: list[Run]) -> str:
    """:func:`table` for several accounts at once: one table, an account column in front when
    the runs have labels, then every account's failures. An account a set-up mistake stopped
    has no rows: stderr gives its one line."""
    shown = [run for run in runs if stopped(run) is None]
    labelled = any(run.label is not None for run in runs)
    rows = [
        [*([run.label or ""] if labelled else []), *_row(run.batch.results[p])]
        for run in shown
        for p in run.done
        if p in run.batch.results
    ]
    out = io.StringIO()
    if rows:
        header = [*(["account"] if labelled else []), *_COLUMNS]
        out.write(aligned([header, *rows], text_columns=2 + labelled))
    out.write(failures(shown))
    return out.getvalue().lstrip("\n")


def failures(runs: list[Run]) -> str:
    """The tickers that failed, each with its reason (after its account, if labelled); those a
    set-up mistake failed as one line per mistake."""
    per_ticker: list[str] = []
    grouped: dict[str, int] = {}
    for run in runs:
        for pdno in run.done:
            error = run.batch.errors.get(pdno)
            if error is None:
                continue
            problem = setup_problem(error, run.setup) if run.setup is not None else None
            if problem is None:
                where = f"{pdno:<12}" if run.label is None else f"{run.label}  {pdno:<12}"
                per_ticker.append(f"  {where}  {error_text(error)}\n")
            else:
                grouped[problem] = grouped.get(problem, 0) + 1
    out = io.StringIO()
    if per_ticker:
        out.write(f"\nfailed ({len(per_ticker)}):\n" + "".join(per_ticker))
    for problem, count in grouped.items():
        out.write(f"\nnot checked ({count}): {problem}\n")
    return out.getvalue()


def error_text(error: KISError) -> str:
    """An error as a failure line shows it: its class and its reason, escaped."""
    return f"{type(error).__name__}: {printable(error.reason)}"


def _row(q: SellableQuantity) -> list[str]:
    return [
        q.pdno,
        printable(q.prdt_name),
        f"{q.cblc_qty:,}",
        f"{q.sll_qty:,}",
        f"{q.ord_psbl_qty:,}",
        _money(q.pchs_avg_pric),
        _money(q.now_pric),
        f"{q.evlu_pfls_rt:+.2f}",
    ]


def aligned(rows: list[list[str]], *, text_columns: int = 2) -> str:
    """``rows`` (the first the header) as aligned columns, the first ``text_columns`` flush
    left and the rest (numbers) flush right, a rule under the header."""
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = io.StringIO()
    for n, row in enumerate(rows):
        cells = [_pad(cell, widths[i], left=i < text_columns) for i, cell in enumerate(row)]
        out.write("  ".join(cells).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    return out.getvalue()


def json_document(run: Run) -> str:
    """One JSON document: results (exact decimals as strings), errors, and a summary whose
    ``error`` is the line saying what stopped the run, if something did (see :func:`stopped`).
    """
    done = run.done
    batch = run.batch
    document: dict[str, Any] = {
        "results": [batch.results[p] for p in done if p in batch.results],
        "errors": [error_record(p, batch.errors[p]) for p in done if p in batch.errors],
        "summary": summary_record(run),
    }
    return json_text(document)


def json_accounts(runs: list[Run]) -> str:
    """:func:`json_document` for several accounts: each result and error carries its
    ``account`` (masked), and the summary adds up the accounts' and lists each one's."""
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for run in runs:
        account = {"account": run.label}
        for pdno in run.done:
            result = run.batch.results.get(pdno)
            if result is not None:
                results.append(account | msgspec.structs.asdict(result))
            else:
                errors.append(account | error_record(pdno, run.batch.errors[pdno]))
    each = [{"account": run.label} | summary_record(run) for run in runs]
    total = {key: sum(s[key] for s in each) for key in ("asked", "checked", "ok", "failed")}
    summary = total | {
        "interrupted": any(run.interrupted for run in runs),
        "elapsed_s": max((s["elapsed_s"] for s in each), default=0.0),
        "accounts": each,
    }
    return json_text({"results": results, "errors": errors, "summary": summary})


def summary_record(run: Run) -> dict[str, Any]:
    """A run's summary as the JSON documents give it."""
    return {
        "asked": len(run.asked),
        "checked": len(run.done),
        "ok": len(run.batch.results),
        "failed": len(run.batch.errors),
        "interrupted": run.interrupted,
        "elapsed_s": round(run.elapsed, 3),
        "waited_s": round(run.waited, 3),
        "error": stopped(run),
    }


def json_line(outcome: Outcome[SellableQuantity], *, account: str | None = None) -> str:
    """One ticker as one line of JSON: the result's fields, or ``pdno``, ``error`` (the
    exception's class) and ``message``; its ``account`` first, when given."""
    record: Any
    if outcome.error is not None:
        record = error_record(outcome.pdno, outcome.error)
    else:
        record = outcome.result
    if account is not None:
        fields = record if isinstance(record, dict) else msgspec.structs.asdict(record)
        record = {"account": account} | fields
    return json_text(record)


def json_text(value: Any) -> str:
    """``value`` as JSON in which every character :func:`printable` would escape is a
    ``\\uXXXX`` escape (a pair of them past U+FFFF): msgspec escapes only C0 controls, and
    leaves DEL, C1 (CSI is U+009B) and BiDi overrides raw for a terminal to act on. Such a
    character can only be inside a string, so the document stays valid and decodes to the same
    value."""
    text = msgspec.json.encode(value).decode()
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _json_escape(ord(ch)) for ch in text)


def _json_escape(code: int) -> str:
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def csv_text(run: Run, *, bom: bool = False) -> str:
    """One row per ticker under the KIS field names, then ``error`` (the reason),
    ``error_class`` and ``msg_cd`` (as the JSON has them; added last, so a script reading the
    older columns by position still works). ``bom`` starts it with U+FEFF, which Excel needs to
    read UTF-8 rather than CP949.

    Every text cell (the ticker, the name, the error: text from the server or the input) goes
    through :func:`csv_cell`, so a spreadsheet never runs it as a formula. Numbers are written
    from the parsed ``int``/``Decimal`` and left alone: ``-1200`` is a loss, and must stay a
    number a spreadsheet can sum."""
    return csv_accounts([run], bom=bom)


def csv_accounts(runs: list[Run], *, bom: bool = False) -> str:
    """:func:`csv_text` for several accounts: an ``account`` column first (masked) when the
    runs have labels."""
    labelled = any(run.label is not None for run in runs)
    out = io.StringIO()
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(["account"] if labelled else []), *_CSV_FIELDS])
    tail = len(_CSV_FIELDS) - len(SellableQuantity.__struct_fields__)
    for run in runs:
        head = [run.label or ""] if labelled else []
        for pdno in run.done:
            q = run.batch.results.get(pdno)
            if q is not None:
                values = msgspec.structs.astuple(q)
                cells = (csv_cell(v) if isinstance(v, str) else v for v in values)
                writer.writerow([*head, *cells, *[""] * tail])
            else:
                error = run.batch.errors[pdno]
                blanks = [""] * (len(_CSV_FIELDS) - tail - 1)
                writer.writerow([*head, csv_cell(pdno), *blanks, *error_cells(error)])
    return out.getvalue()


def error_cells(error: KISError) -> tuple[str, str, str]:
    """An error's CSV cells: the reason, the class, KIS's code (blank if KIS sent none)."""
    msg_cd = error.msg_cd if isinstance(error, APIError) else ""
    return csv_cell(error.reason), type(error).__name__, csv_cell(msg_cd)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What makes Excel, LibreOffice or Google Sheets read a cell as a formula (OWASP, CSV
Injection): ``=cmd|' /C calc'!A0``, ``=HYPERLINK(...)``, ``+SUM(...)``, ``@SUM(...)``, ``-2+3``."""


def csv_cell(text: str) -> str:
    """A text cell fit for a spreadsheet: its controls escaped (:func:`printable`), and a ``'``
    in front when it would start a formula, as OWASP advises; the ``'`` shows that it was
    done. Only for text: a number the CLI writes itself is never passed here."""
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return printable(text)


RATE_MIN_TICKERS = 2
"""Fewer tickers than this have no rate worth stating."""


def _rate(checked: int, busy: float, stats: ClientStats | None) -> float | None:
    """The summary's rate, or ``None`` when too few tickers make one. Never above the
    configured limit: a short batch ends before the pacer's spacing shows (``3 of 3 in
    0.1 s`` read ``23.6/s`` under 20/s), and no run can go faster than the pacer lets it."""
    if checked < RATE_MIN_TICKERS or busy <= 0:
        return None
    rate = checked / busy
    return min(rate, stats.rate_limit) if stats is not None else rate


PROGRESS_EVERY_S = 30.0
"""Off a terminal, a progress line at least this often (and at each :data:`PROGRESS_SHARE`)."""
PROGRESS_SHARE = 0.1
PROGRESS_MIN_RUN_S = 10.0
"""A run expected to take less (at the pacer's rate) gets no plan and no progress lines: on a
few tickers they would say "about 0s" and a rate from one reading."""
PROGRESS_EVERY_ENV = "KIS_ASYNC_PROGRESS_EVERY"
"""Hidden: seconds between progress lines, so a test need not run for 30 s."""
_RATE_SMOOTHING = 0.3
"""Weight of the newest reading in the rate's EWMA: the first readings jump (652 -> 1012 s)."""


def duration(seconds: float) -> str:
    """A span as a person reads it: ``45s``, ``16m51s``, ``2h05m``, never ``1011 s``."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def plan(total: int, rate: float) -> str:
    """What a run will take, said up front: ``20,000 tickers, about 16m40s at 20/s``."""
    return f"{total:,} tickers, about {duration(total / rate)} at {rate:g}/s"


class Progress:
    """When to write a progress line off a terminal, and what it says: every ``every`` seconds
    and at each ``share`` of the total, never per ticker. Pure (times are passed in), so it is
    tested table-driven. The rate is an EWMA of the readings between lines, seeded with the
    average since start, so the ETA does not jump on the first few readings."""

    def __init__(
        self,
        total: int,
        start: float,
        *,
        every: float = PROGRESS_EVERY_S,
        share: float = PROGRESS_SHARE,
        ceiling: float | None = None,
    ) -> None:
        """``ceiling``: the rate the pacer allows; a reading above it (calls that were already
        on their way) is shown as the ceiling, never as faster than the client can go."""
        self.total, self.every, self.share = total, every, share
        self.ceiling = ceiling
        self._start = self._last_t = start
        self._last_done = 0
        self._next_share = share
        self.rate: float | None = None

    def due(self, done: int, now: float) -> bool:
        """Whether a line is due with ``done`` tickers checked at ``now``."""
        if not self.total or done <= self._last_done:
            return False
        if done >= self.total:
            return False  # the summary says the end
        return now - self._last_t >= self.every or done / self.total >= self._next_share

    def line(self, done: int, now: float) -> str:
        """The line for ``done`` at ``now``; records it as the latest written."""
        span = now - self._last_t
        if span > 0:
            reading = (done - self._last_done) / span
            if self.rate is None:
                since = now - self._start
                self.rate = done / since if since > 0 else reading
            else:
                self.rate += _RATE_SMOOTHING * (reading - self.rate)
        self._last_t, self._last_done = now, done
        while self._next_share <= done / self.total:
            self._next_share += self.share
        pct = 100 * done / self.total
        text = f"progress: {done:,}/{self.total:,} ({pct:.0f}%)"
        rate = min(self.rate, self.ceiling) if self.rate and self.ceiling else self.rate
        if rate:
            left = duration((self.total - done) / rate)
            text += f", {rate:.1f}/s, about {left} left"
        return text


def summary(run: Run) -> str:
    """The one-line account of the run for stderr. The rate leaves out time spent waiting on
    KIS's token rule, which says nothing about the pace, and the summary says how long that was.
    """
    line = f"{headline(run)}{len(run.done)} of {len(run.asked)} tickers checked{timing(run)}"
    line += f": {len(run.batch.results)} ok, {len(run.batch.errors)} failed"
    on_purpose = len(run.expected & set(run.batch.errors))
    if on_purpose:
        line += f" ({on_purpose} on purpose: the demo asks about tickers no exchange lists)"
    return line + learned(run.stats)


def headline(run: Run) -> str:
    """What starts a summary: the account, when labelled, and how the run was stopped."""
    head = f"{run.label}: " if run.label is not None else ""
    if run.terminated:
        return head + "terminated: "
    return head + ("interrupted: " if run.interrupted else "")


def timing(run: Run) -> str:
    """`` in 9.4 s`` and the rate, with the time spent on KIS's token rule said apart."""
    text = f" in {run.elapsed:.1f} s"
    waited = min(run.waited, run.elapsed)
    if waited >= 0.05:
        text += f", {waited:.1f} s of it waiting for KIS's one-token-a-minute rule"
    rate = _rate(len(run.done), run.elapsed - waited, run.stats)
    if rate is not None:
        text += f" ({rate:.1f}/s{' while checking' if waited >= 0.05 else ''})"
    return text


def learned(stats: ClientStats | None) -> str:
    """What KIS's refusals taught the pace, if anything."""
    if stats is None or not stats.learned:
        return ""
    return (
        f"; KIS refused {stats.refusals} call(s) for the rate, so the pace settled at "
        f"{stats.pace:.1f} calls/s (configured {stats.rate_limit:g}/s)"
    )


class Status:
    """stderr as a person reads it: lines that stay, and on a terminal one live line below them.

    The live line shows the stage under way, then a bar (done/total, rate, ETA). Every other
    write, a line here or a row on stdout when stdout is the same terminal, clears it first and
    draws it again after, so nothing is garbled. ``quiet`` drops notes but not :meth:`line`
    (errors). :meth:`wait` notes each wait on KIS's token rule as it is announced, and
    :attr:`took` says how long the bar ran, from :meth:`start` to :meth:`stop`, and how much of
    that went on those waits (as far as they got: a Ctrl-C may cut one short).
    """

    def __init__(self, stream: TextIO, *, live: bool = False, quiet: bool = False) -> None:
        self.stream = stream
        self.live = live and not quiet
        self.quiet = quiet
        self._waits: list[tuple[float, float, str | None]] = []
        """The waits on KIS's token rule: when each was announced, for how many seconds, and
        the account (:data:`ACCOUNT`) whose client waited."""
        self._shown = 0
        self._stage = ""
        self._total: int | None = None
        self._done = 0
        self._start = 0.0
        self._progress: Progress | None = None
        self.took = (0.0, 0.0)
        """Seconds from :meth:`start` to :meth:`stop`, and how many of them were spent
        waiting on KIS's token rule; zeros if the bar never started."""

    def note(self, text: str) -> None:
        """A line that stays, unless ``-q``."""
        if not self.quiet:
            self.line(text)

    def line(self, text: str) -> None:
        """A line that stays, even under ``-q``: errors. Anything in it that a terminal would
        act on is escaped (:func:`printable`) but the line breaks of a traceback: a message
        may quote a file or the server, and a note or an error would not be the place to
        forget it."""
        self._clear()
        self.stream.write(printable(text, keep="\n") + "\n")
        self.stream.flush()
        self._draw()

    def out(self, text: str, stream: TextIO) -> None:
        """Results on ``stream`` (stdout), flushed now so a pipe sees them as they come."""
        if self._shown and stream.isatty():
            self._clear()
        stream.write(text)
        stream.flush()
        self._draw()

    def stage(self, text: str) -> None:
        """What is under way: the live line on a terminal, else a note."""
        if self.live:
            self._stage = printable(text)
            self._draw()
        else:
            self.note(text)

    def start(self, total: int, rate: float | None = None) -> None:
        """From here the live line is a bar over ``total`` tickers (and the stages of the
        check itself, such as asking for a token, until the first ticker is done). With the
        ``rate`` the pacer allows, a note says up front what the run will take; off a
        terminal, :class:`Progress` lines follow, as a file or pipe sees no bar."""
        self._total, self._done, self._start = total, 0, time.perf_counter()
        self._stage = ""
        every = _progress_every()
        # Only a run long enough for a progress line gets the plan and the lines: on a batch of
        # a few tickers they would say "about 0s" and a rate from one reading.
        long_run = bool(rate and total and total / rate >= min(every, PROGRESS_MIN_RUN_S))
        if long_run and rate:
            self.note(plan(total, rate))
        self._progress = None
        if long_run and not self.live and not self.quiet:
            self._progress = Progress(total, self._start, every=every, ceiling=rate)
        self._draw()

    def wait(self, seconds: float, account: str | None = None) -> None:
        """A wait on KIS's token rule, of ``seconds``, starts now (for ``account``'s client)."""
        self._waits.append((time.perf_counter(), seconds, account))

    def waited(self, account: str | None, start: float, end: float) -> float:
        """Seconds of ``start``..``end`` (``time.perf_counter``) ``account``'s client spent
        waiting on KIS's token rule."""
        return _spent([(t, s) for t, s, a in self._waits if a == account], start, end)

    def step(self) -> None:
        self._done += 1
        progress = self._progress
        if progress is not None:
            now = time.perf_counter()
            if progress.due(self._done, now):
                self.note(progress.line(self._done, now))
        self._draw()

    def stop(self) -> None:
        """Take the live line away (the bar, the stage) before the results are shown; the
        first call after :meth:`start` sets :attr:`took`."""
        if self._total is not None:
            start, end = self._start, time.perf_counter()
            self.took = (end - start, _spent([(t, s) for t, s, _ in self._waits], start, end))
        self._clear()
        self._total = None
        self._progress = None
        self._stage = ""

    def _draw(self) -> None:
        if not self.live:
            return
        text = _clipped(self._bar() if self._total is not None else self._stage, self._columns())
        pad = " " * max(0, self._shown - _width(text))
        self.stream.write("\r" + text + pad)
        self._shown = _width(text) + len(pad)
        self.stream.flush()

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
            self._shown = 0

    def _columns(self) -> int:
        """The terminal's width, less one so the line never wraps (80 if it will not say)."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        return (columns or 80) - 1

    def _bar(self) -> str:
        total, done = self._total or 0, self._done
        elapsed = time.perf_counter() - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"ETA {duration((total - done) / rate)}" if rate else self._stage
        filled = int(30 * done / total) if total else 30
        return f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total}  {rate:5.1f}/s  {eta}"


def _spent(waits: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of ``start``..``end`` covered by the waits announced (when, how long): only
    what was spent, a wait cut short by Ctrl-C counting up to ``end``, overlapping waits
    once, so it never exceeds the elapsed time."""
    spans = sorted((max(t, start), min(t + s, end)) for t, s in waits)
    spent, reached = 0.0, start
    for begin, finish in spans:
        begin = max(begin, reached)
        if finish > begin:
            spent += finish - begin
            reached = finish
    return min(spent, max(0.0, end - start))


def _progress_every() -> float:
    """:data:`PROGRESS_EVERY_S`, or the hidden :data:`PROGRESS_EVERY_ENV` a test sets."""
    try:
        value = float(os.environ.get(PROGRESS_EVERY_ENV, PROGRESS_EVERY_S))
    except ValueError:
        return PROGRESS_EVERY_S
    return value if value > 0 else PROGRESS_EVERY_S


ACCOUNT: ContextVar[str | None] = ContextVar("kis_async_cli_account", default=None)
"""The account (its label) whose work the current task does, when a run checks several: set by
each account's task, and inherited by the tasks it starts (its client's calls), so a log line or
a token wait from deep in the library is told apart by account without the library knowing."""


def labelled(text: str) -> str:
    """``text`` after the current task's account (:data:`ACCOUNT`), if it has one."""
    account = ACCOUNT.get()
    return text if account is None else f"{account}: {text}"


class OneLineFormatter(logging.Formatter):
    """``LEVEL logger: message``, a record always one line: a CR or LF in the message (a
    server's ``msg1`` with a newline in it), or a traceback's, shown as ``\\r``/``\\n``, so
    text from outside cannot end a record and forge the next one."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "\\r").replace("\n", "\\n")


class LogLines(logging.Handler):
    """Library log records as lines through :class:`Status`, so they never tear the bar; one
    line each (:class:`OneLineFormatter`), escaped (:func:`printable`)."""

    def __init__(self, status: Status) -> None:
        super().__init__()
        self.status = status
        self.setFormatter(OneLineFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.status.line(labelled(printable(self.format(record))))
        except Exception:
            self.handleError(record)


class ProgressLog(logging.Handler):
    """The library's progress logger (:data:`kis_async.config.PROGRESS_LOGGER`) shown as each
    record arrives: a stage (asking for a token, a page of holdings) goes to the live line on a
    terminal and is a line elsewhere; every other record (a wait, the pace changing) is a line
    that stays, so a new kind of record is never hidden. A record's ``stage`` and ``wait_s``
    (see :data:`kis_async.config.PROGRESS_LOGGER`) say which is which, and a wait is
    noted with :meth:`Status.wait`."""

    def __init__(self, status: Status) -> None:
        super().__init__()
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = labelled(printable(record.getMessage()))
            wait = float(getattr(record, "wait_s", 0.0))
            if wait:
                self.status.wait(wait, ACCOUNT.get())
            if getattr(record, "stage", None) is not None:
                self.status.stage(text)
            else:
                self.status.note(text)
        except Exception:
            self.handleError(record)


def printable(text: str, *, keep: str = "") -> str:
    """``text`` fit for a terminal or a log: every character Unicode calls a control, a format
    character or a separator other than the space shown as its escape (``\\x1b``, ``\\n``,
    ``\\x9b``, ``\\u202e``), except the characters in ``keep``.

    That is C0 and C1 controls (ESC and CSI start the sequences that move the cursor, retitle
    the terminal, clear it), DEL, the BiDi controls (U+061C, U+200E/F, U+202A-U+202E,
    U+2066-U+2069: they make a line read backwards) and the line breaks that would forge a line.
    An escape rather than a ``?``: what the server really sent stays readable."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch in keep else ascii(ch)[1:-1] for ch in text)


def error_record(pdno: str, error: KISError) -> dict[str, Any]:
    record: dict[str, Any] = {"pdno": pdno, "error": type(error).__name__, "message": error.reason}
    if isinstance(error, APIError):
        record |= {"rt_cd": error.rt_cd, "msg_cd": error.msg_cd, "status": error.status}
    return record


def _money(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


def _clipped(text: str, columns: int) -> str:
    """``text`` cut to fit ``columns`` terminal cells."""
    while text and _width(text) > columns:
        text = text[:-1]
    return text


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - _width(text))
    return text + fill if left else fill + text
