"""The ``kis-async`` command: a bulk sellable check from the shell, or against the simulator.

This module is parsing and flow; :mod:`kis_async.render` draws the results. Results go to stdout
(a table, ``--json`` or ``--csv``); progress, the summary and logs go to stderr. Exit status:
0 every ticker checked, 1 some failed, 2 usage or configuration error, 130 interrupted (what was
done so far is still printed). Credentials come only from the environment or an ``--env-file``,
never from flags, which leak into shell history and ``ps``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import config as cfg
from . import render, spec
from .batch import Batch
from .client import KISClient
from .render import Run
from .simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Simulator, SimulatorConfig
from .validate import normalize_pdnos

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_CODE_COLUMNS = ("pdno", "종목코드", "ticker", "code")


class UsageError(Exception):
    """Bad input or configuration: reported as one line, exit status 2."""


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
        run = Run(asked=[], batch=Batch())
        try:
            asyncio.run(_run(args, run))
        except KeyboardInterrupt:
            run.interrupted = True
            _render(args, run)
            return EXIT_INTERRUPTED
        _render(args, run)
        return EXIT_FAILED if run.batch.errors else EXIT_OK
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
    sim.add_argument(
        "--rate", type=int, default=spec.CALLS_PER_SECOND, help="calls/s the gateway enforces"
    )
    sim.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    sim.add_argument("--jitter", type=float, default=0.0, help="+/- seconds on the latency")
    sim.add_argument(
        "--request-latency",
        type=float,
        default=0.0,
        help="seconds each call takes to reach the gateway, before it is counted",
    )
    sim.add_argument(
        "--request-jitter", type=float, default=0.0, help="+/- seconds on the request latency"
    )
    sim.add_argument(
        "--background-rate",
        type=float,
        default=0.0,
        help="calls/s another program makes on the same appkey",
    )
    sim.add_argument(
        "--background-poisson",
        action="store_true",
        help="the other program's calls arrive at random (Poisson), not evenly",
    )
    sim.add_argument(
        "--fixed-window-offset",
        type=float,
        default=None,
        help="count the limit in fixed seconds starting this offset after the first call",
    )
    sim.add_argument("--seed", type=int, default=None, help="seed for jitter and faults")
    return parser


async def _run(args: argparse.Namespace, run: Run) -> None:
    if args.command == "demo":
        await _demo(args, run)
        return
    if args.env_file is not None:
        _load_env_file(args.env_file)
    pdnos = list(args.pdnos) + (_read_codes(args.file) if args.file is not None else [])
    if not pdnos and not args.holdings:
        raise UsageError("no tickers: give PDNO arguments, --file or --holdings")
    run.asked = normalize_pdnos(pdnos)
    async with KISClient.from_env(rate_limit=args.rate) as client:
        if args.holdings:
            run.asked = normalize_pdnos([*run.asked, *await _held(client)])
        await _check(client, run)


async def _held(client: KISClient) -> list[str]:
    held = await client.held_tickers()
    _note(f"holdings: {len(held)} positions held")
    return held


async def _demo(args: argparse.Namespace, run: Run) -> None:
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
            run.asked = normalize_pdnos(await _held(client))
            await _check(client, run)
        _note(
            f"simulator saw {sim.stats.calls} calls, {sim.stats.rejected} rejected, at most "
            f"{sim.stats.max_window} in any 1 s window; {sim.stats.token_issuances} token issued"
        )


async def _check(client: KISClient, run: Run) -> None:
    progress = render.Progress(len(run.asked)) if sys.stderr.isatty() else None
    start = time.perf_counter()
    outcomes = client.iter_sellable(run.asked)
    try:
        async for outcome in outcomes:
            run.batch.add(outcome)
            if progress is not None:
                progress.step()
    finally:
        await outcomes.aclose()
        run.elapsed = time.perf_counter() - start
        run.stats = client.stats
        if progress is not None:
            progress.close()


def _render(args: argparse.Namespace, run: Run) -> None:
    if args.json:
        sys.stdout.write(render.json_document(run) + "\n")
    elif args.csv:
        sys.stdout.write(render.csv_text(run))
    else:
        sys.stdout.write(render.table(run))
    _note(render.summary(run))


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
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        key = key.strip()
        if sep and key in cfg.ALL and not os.environ.get(key):
            os.environ[key] = value.strip().strip("'\"")


def _serve(args: argparse.Namespace) -> int:
    async def serve() -> None:
        config = SimulatorConfig(
            rate_limit=args.rate,
            latency=args.latency,
            jitter=args.jitter,
            request_latency=args.request_latency,
            request_jitter=args.request_jitter,
            background_rate=args.background_rate,
            background_poisson=args.background_poisson,
            fixed_window_offset=args.fixed_window_offset,
            seed=args.seed,
        )
        async with Simulator(config, host=args.host, port=args.port) as sim:
            _note(f"KIS simulator on {sim.url} ({config.rate_limit} calls/s); Ctrl-C stops it")
            _note(f"  export {cfg.ENV_BASE_URL}={sim.url} {cfg.ENV_ACCOUNT}={DEMO_ACCOUNT}")
            _note(
                f"  export {cfg.ENV_APP_KEY}={DEMO_APP_KEY} {cfg.ENV_APP_SECRET}={DEMO_APP_SECRET}"
            )
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
