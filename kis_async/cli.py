"""The ``kis-async`` command: a bulk sellable check from the shell, or against the simulator.

Results go to stdout (a table, ``--json`` or ``--csv``); progress, the summary and logs go to
stderr. Exit status: 0 every ticker checked, 1 some failed, 2 usage or configuration error,
130 interrupted (what was done so far is still printed). Credentials come only from the
environment or an ``--env-file``, never from flags, which leak into shell history and ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import os
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import msgspec

from . import spec
from .client import ENV_ACCOUNT, ENV_APP_KEY, ENV_APP_SECRET, ENV_BASE_URL, KISClient
from .errors import APIError, KISError
from .models import SellableQuantity
from .validate import normalize_pdnos

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_CODE_COLUMNS = ("pdno", "종목코드", "ticker", "code")


class UsageError(Exception):
    """Bad input or configuration: reported as one line, exit status 2."""


@dataclass
class Report:
    """What a run produced, in input order, even if it was interrupted."""

    asked: list[str]
    results: dict[str, SellableQuantity] = field(default_factory=dict)
    errors: dict[str, KISError] = field(default_factory=dict)
    elapsed: float = 0.0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kis-async`` and ``python -m kis_async``; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "simulator":
            return _serve(args)
        report = Report(asked=[])
        try:
            asyncio.run(_run(args, report))
        except KeyboardInterrupt:
            _render(args, report, interrupted=True)
            return EXIT_INTERRUPTED
        _render(args, report, interrupted=False)
        return EXIT_FAILED if report.errors else EXIT_OK
    except (UsageError, ValueError, TypeError) as exc:
        print(f"kis-async: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kis-async",
        description="How many shares of each holding can be sold right now (KIS 매도가능수량조회).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    output = argparse.ArgumentParser(add_help=False)
    form = output.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document on stdout")
    form.add_argument("--csv", action="store_true", help="CSV on stdout")

    check = commands.add_parser(
        "check",
        parents=[output],
        help="check tickers with the credentials in KIS_APP_KEY/KIS_APP_SECRET/KIS_ACCOUNT",
    )
    check.add_argument("pdnos", nargs="*", metavar="PDNO", help="ticker codes, e.g. 005930")
    check.add_argument(
        "--holdings", action="store_true", help="check every position of the account"
    )
    check.add_argument("--file", type=Path, help="a list (one code a line, # comments) or a CSV")
    check.add_argument(
        "--env-file", type=Path, help="KEY=VALUE lines filling unset KIS_* variables"
    )
    check.add_argument("--rate", type=float, default=spec.CALLS_PER_SECOND, help="calls/s limit")

    demo = commands.add_parser(
        "demo", parents=[output], help="the same check against the embedded simulator"
    )
    demo.add_argument("--rate", type=float, default=spec.CALLS_PER_SECOND, help="calls/s limit")
    demo.add_argument("--latency", type=float, default=0.03, help="simulated seconds per call")

    sim = commands.add_parser("simulator", help="serve the KIS simulator for your own bots")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8943)
    sim.add_argument("--rate", type=int, default=spec.CALLS_PER_SECOND, help="calls/s limit")
    sim.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    sim.add_argument("--jitter", type=float, default=0.0, help="+/- seconds on the latency")
    return parser


async def _run(args: argparse.Namespace, report: Report) -> None:
    if args.command == "demo":
        await _demo(args, report)
        return
    if args.env_file is not None:
        _load_env_file(args.env_file)
    pdnos = list(args.pdnos) + (_read_codes(args.file) if args.file is not None else [])
    if not pdnos and not args.holdings:
        raise UsageError("no tickers: give PDNO arguments, --file or --holdings")
    report.asked = normalize_pdnos(pdnos)
    client = KISClient.from_env(rate_limit=args.rate)
    async with client:
        if args.holdings:
            report.asked = normalize_pdnos([*report.asked, *await _held(client)])
        await _check(client, report)


async def _held(client: KISClient) -> list[str]:
    """The account's positions with shares in them, as the balance inquiry lists them."""
    positions = await client.holdings()
    held = [p.pdno for p in positions if p.hldg_qty > 0]
    _note(f"holdings: {len(positions)} positions, {len(positions) - len(held)} sold out skipped")
    return held


async def _demo(args: argparse.Namespace, report: Report) -> None:
    from .simulator import (
        DEMO_ACCOUNT,
        DEMO_APP_KEY,
        DEMO_APP_SECRET,
        Simulator,
        SimulatorConfig,
    )

    config = SimulatorConfig(
        rate_limit=int(args.rate), latency=args.latency, jitter=args.latency / 3
    )
    async with Simulator(config) as sim:
        _note(
            f"demo: embedded KIS simulator at {sim.url}, {config.rate_limit} calls/s, "
            f"{args.latency * 1000:.0f} ms latency; checking every position of the account"
        )
        client = KISClient(
            DEMO_APP_KEY,
            DEMO_APP_SECRET,
            DEMO_ACCOUNT,
            base_url=sim.url,
            rate_limit=args.rate,
            token_cache=None,
        )
        async with client:
            report.asked = normalize_pdnos(await _held(client))
            await _check(client, report)
        _note(
            f"simulator saw {sim.stats.calls} calls, {sim.stats.rejected} rejected, at most "
            f"{sim.stats.max_window} in any 1 s window; {sim.stats.token_issuances} token issued"
        )


async def _check(client: KISClient, report: Report) -> None:
    progress = _Progress(len(report.asked)) if sys.stderr.isatty() else None
    start = time.perf_counter()
    try:
        async for outcome in client.iter_sellable(report.asked):
            if outcome.error is not None:
                report.errors[outcome.pdno] = outcome.error
            elif outcome.result is not None:
                report.results[outcome.pdno] = outcome.result
            if progress is not None:
                progress.step()
    finally:
        report.elapsed = time.perf_counter() - start
        if progress is not None:
            progress.close()


def _render(args: argparse.Namespace, report: Report, *, interrupted: bool) -> None:
    done = [p for p in report.asked if p in report.results or p in report.errors]
    if args.json:
        sys.stdout.write(_json(report, done, interrupted) + "\n")
    elif args.csv:
        sys.stdout.write(_csv(report, done))
    else:
        sys.stdout.write(_table(report, done))
    calls = len(done)
    rate = calls / report.elapsed if report.elapsed else 0.0
    head = "interrupted: " if interrupted else ""
    _note(
        f"{head}{calls} of {len(report.asked)} tickers checked in {report.elapsed:.1f} s "
        f"({rate:.1f}/s): {len(report.results)} ok, {len(report.errors)} failed"
    )


_COLUMNS = ("ticker", "name", "held", "sold today", "sellable", "avg price", "now", "P/L %")


def _table(report: Report, done: list[str]) -> str:
    rows = [list(_COLUMNS)]
    for pdno in done:
        q = report.results.get(pdno)
        if q is not None:
            rows.append(
                [
                    q.pdno,
                    q.prdt_name,
                    f"{q.cblc_qty:,}",
                    f"{q.sll_qty:,}",
                    f"{q.ord_psbl_qty:,}",
                    _money(q.pchs_avg_pric),
                    _money(q.now_pric),
                    f"{q.evlu_pfls_rt:+.2f}",
                ]
            )
    widths = [max(_width(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    out = io.StringIO()
    for n, row in enumerate(rows):
        cells = [_pad(cell, widths[i], left=i < 2) for i, cell in enumerate(row)]
        out.write("  ".join(cells).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    if report.errors:
        out.write(f"\nfailed ({len(report.errors)}):\n")
        for pdno in done:
            error = report.errors.get(pdno)
            if error is not None:
                out.write(f"  {pdno:<12}  {type(error).__name__}: {_reason(error)}\n")
    return out.getvalue()


def _json(report: Report, done: list[str], interrupted: bool) -> str:
    document: dict[str, Any] = {
        "results": [report.results[p] for p in done if p in report.results],
        "errors": [_error_record(p, report.errors[p]) for p in done if p in report.errors],
        "summary": {
            "asked": len(report.asked),
            "checked": len(done),
            "ok": len(report.results),
            "failed": len(report.errors),
            "interrupted": interrupted,
            "elapsed_s": round(report.elapsed, 3),
        },
    }
    return msgspec.json.encode(document).decode()


_CSV_FIELDS = (
    "pdno",
    "prdt_name",
    "cblc_qty",
    "sll_qty",
    "buy_qty",
    "ord_psbl_qty",
    "pchs_avg_pric",
    "now_pric",
    "evlu_amt",
    "evlu_pfls_amt",
    "evlu_pfls_rt",
    "error",
)


def _csv(report: Report, done: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for pdno in done:
        q = report.results.get(pdno)
        if q is not None:
            values = msgspec.structs.asdict(q)
            writer.writerow([*(values[f] for f in _CSV_FIELDS[:-1]), ""])
        else:
            error = report.errors[pdno]
            writer.writerow([pdno, *[""] * (len(_CSV_FIELDS) - 2), _reason(error)])
    return out.getvalue()


def _error_record(pdno: str, error: KISError) -> dict[str, Any]:
    record: dict[str, Any] = {
        "pdno": pdno,
        "error": type(error).__name__,
        "message": _reason(error),
    }
    if isinstance(error, APIError):
        record |= {"rt_cd": error.rt_cd, "msg_cd": error.msg_cd, "status": error.status}
    return record


def _reason(error: KISError) -> str:
    return Exception.__str__(error)


def _money(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - _width(text))
    return text + fill if left else fill + text


def _read_codes(path: Path) -> list[str]:
    """A plain list (one code a line, ``#`` comments) or a CSV with a pdno/종목코드 column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines or "," not in lines[0]:
        return lines
    rows = list(csv.reader(lines))
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((header.index(name) for name in _CODE_COLUMNS if name in header), None)
    if column is None:
        raise UsageError(f"{path}: CSV has no pdno/종목코드 column (header: {', '.join(header)})")
    return [row[column] for row in rows[1:] if len(row) > column and row[column].strip()]


def _load_env_file(path: Path) -> None:
    """Fill unset ``KIS_*`` variables from ``KEY=VALUE`` lines; the environment wins."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read env file {path}: {exc.strerror}") from None
    wanted = {ENV_APP_KEY, ENV_APP_SECRET, ENV_ACCOUNT, ENV_BASE_URL}
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        key = key.strip()
        if sep and key in wanted and not os.environ.get(key):
            os.environ[key] = value.strip().strip("'\"")


def _serve(args: argparse.Namespace) -> int:
    from .simulator import (
        DEMO_ACCOUNT,
        DEMO_APP_KEY,
        DEMO_APP_SECRET,
        Simulator,
        SimulatorConfig,
    )

    async def serve() -> None:
        config = SimulatorConfig(rate_limit=args.rate, latency=args.latency, jitter=args.jitter)
        async with Simulator(config, host=args.host, port=args.port) as sim:
            _note(f"KIS simulator on {sim.url} ({config.rate_limit} calls/s); Ctrl-C stops it")
            _note(f"  export {ENV_BASE_URL}={sim.url} {ENV_ACCOUNT}={DEMO_ACCOUNT}")
            _note(f"  export {ENV_APP_KEY}={DEMO_APP_KEY} {ENV_APP_SECRET}={DEMO_APP_SECRET}")
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Progress:
    """A one-line progress bar on a terminal's stderr: done/total, rate, ETA."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.start = time.perf_counter()
        self.stream = stream

    def step(self) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        filled = int(30 * self.done / self.total) if self.total else 30
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total}  {rate:5.1f}/s  ETA {eta:4.0f} s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 70 + "\r")
        self.stream.flush()
