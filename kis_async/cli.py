"""The ``kis-async`` command: a bulk sellable check from the shell, or against the simulator.

This module is parsing and flow; :mod:`kis_async.inputs` reads the ticker lists and ``.env``
files a user hands it, and :mod:`kis_async.render` decides how a run is shown. Results go
to stdout (a table, ``--json``, ``--csv`` or ``--json-lines`` as each ticker completes); notes,
progress, the summary and logs go to stderr. Credentials come only from the environment or an
``--env-file``, never from flags, which leak into shell history and ``ps``.

No input a user can type ends in a traceback (``-vv`` adds one to an internal error). A mistake
in the set-up (a missing or refused credential, a refused account, an unreachable host or
Redis) is one line naming what to fix, however many tickers it stopped. Ctrl-C and SIGTERM
stop a check with what was done so far still shown (see :mod:`kis_async.runner`). Exit statuses
are :data:`EXIT_STATUSES`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import logging
import math
import os
import signal
import sys
import textwrap
import time
import traceback
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from . import __version__, inputs, orders_input, render, sells, sellview, spec
from . import config as cfg
from .batch import Outcome
from .client import DEFAULT_TOKEN_CACHE, KISClient, _DefaultTokenCache
from .endpoints import SellableQuantity
from .errors import ArgumentError, KISError
from .inputs import UsageError
from .render import Run, Setup, Status
from .runner import Runner
from .sells import Sell
from .simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    UNKNOWN_TICKERS,
    Simulator,
    SimulatorConfig,
    demo_accounts,
)
from .validate import normalize_pdnos, parse_account

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BUG, EXIT_INTERRUPTED, EXIT_PIPE, EXIT_TERMINATED = 70, 130, 141, 143
EXIT_STATUSES = {
    EXIT_OK: "every ticker checked; with --sells, every order fits (the demo: it ran as designed)",
    EXIT_FAILED: "some tickers failed, or KIS answered in a way that could not be used; with "
    "--sells, some order is short, not held or could not be checked",
    EXIT_USAGE: "usage or set-up error, in one line naming what to fix",
    EXIT_BUG: "a bug in kis-async: please report it (-vv shows the traceback)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); what was done so far is still printed",
    EXIT_PIPE: "stdout was closed early (e.g. piped into head)",
    EXIT_TERMINATED: "terminated (SIGTERM); what was done so far is still printed",
}

_ENV_HELP = {
    cfg.ENV_APP_KEY: "the appkey KIS Developers issued (required)",
    cfg.ENV_APP_SECRET: "its appsecret (required; never printed)",
    cfg.ENV_ACCOUNT: "the account number, 12345678-01 (required)",
    cfg.ENV_BASE_URL: f"the API host (default {spec.REAL_HOST}); a simulator's URL to try things",
    cfg.ENV_REDIS_URL: "redis://host:port/db: share one token and one call budget with every "
    "process on this appkey (needs the redis extra)",
    cfg.ENV_PERSONALSECKEY: "a partner firm's (제휴사, custtype B) 고객식별키 for its member "
    "(never printed); ordinary corporations need none of these four",
    cfg.ENV_PHONE_NUMBER: "partner firm: the member's mobile number, digits only",
    cfg.ENV_IP_ADDR: "partner firm: the member's public IP address",
    cfg.ENV_MAC_ADDRESS: "partner firm, optional: a 12-hex-digit MAC address",
}
_KEYWORD_VARIABLES = dict(zip(("app_key", "app_secret", "account"), cfg.REQUIRED, strict=True)) | {
    keyword: name for name, keyword in cfg.OPTIONAL.items()
}
"""Which variable fills which :class:`KISClient` argument, to name it when a value is refused."""
_HELP_WIDTH = 79
MAX_SIMULATED_ACCOUNTS = 100

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kis-async`` and ``python -m kis_async``; returns the exit status."""
    args = _parser().parse_args(argv)
    verbosity = args.verbose + args.sub_verbose - args.quiet - args.sub_quiet
    status = Status(sys.stderr, live=verbosity >= 0 and sys.stderr.isatty(), quiet=verbosity < 0)
    _configure_logging(verbosity, status)
    try:
        return _dispatch(args, status)
    except UsageError as exc:
        status.line(f"kis-async: error: {render.printable(str(exc))}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        status.line("kis-async: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except Exception as exc:
        status.line(
            f"kis-async: internal error: {type(exc).__name__}: {render.printable(str(exc))}"
        )
        if verbosity >= 2:
            status.line(traceback.format_exc().rstrip())
        else:
            status.line("kis-async: run again with -vv for the traceback, and please report it")
        return EXIT_BUG


def _dispatch(args: argparse.Namespace, status: Status) -> int:
    if args.command != "check" and args.env_file is not None:
        raise UsageError(f"--env-file is for check; {args.command} reads no credentials")
    if args.command == "simulator":
        return _serve(args, status)
    if args.command == "demo":
        run = Run(asked=[])
        return _execute(args, status, [run], functools.partial(_demo, args, run, status))
    return _check_command(args, status)


# -- parsing ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kis-async",
        description="How many shares of each holding can be sold right now (KIS 매도가능수량조회).",
        epilog=_environment_help() + "\n\n" + _exit_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity_flags(parser, suffix="")
    _env_file_flag(parser, default=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    _verbosity_flags(common, suffix="sub_")
    credentials = argparse.ArgumentParser(add_help=False)
    _env_file_flag(credentials, default=argparse.SUPPRESS)
    output = argparse.ArgumentParser(add_help=False)
    form = output.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document on stdout")
    form.add_argument("--csv", action="store_true", help="CSV on stdout, UTF-8 without a BOM")
    form.add_argument(
        "--csv-excel",
        action="store_true",
        help="the same CSV with a UTF-8 BOM: use this one to open it in Excel, which reads "
        "a CSV without a BOM as CP949 and garbles the Korean names",
    )
    form.add_argument(
        "--json-lines",
        action="store_true",
        help="one JSON object per ticker on stdout as each completes (errors too)",
    )

    check = commands.add_parser(
        "check",
        parents=[common, credentials, output],
        help="check tickers with your KIS credentials",
        description=_paragraph(
            "Check how many shares of each ticker can be sold now, with the "
            "credentials in the environment (or --env-file)."
        ),
        epilog=_environment_help() + "\n\n" + _exit_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("pdnos", nargs="*", metavar="PDNO", help="ticker codes, e.g. 005930")
    check.add_argument(
        "--holdings", action="store_true", help="check every position of the account"
    )
    check.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="PATH",
        help="tickers from a file ('-' for stdin): one code a line (# comments), or a CSV "
        "(UTF-8 or Excel's CP949) with a pdno/종목코드 column; give it again for more files, "
        "read in order",
    )
    check.add_argument(
        "--sells",
        metavar="PATH",
        help="intended sell orders ('-' for stdin): a CSV with a ticker column (pdno/종목코드) "
        "and a quantity column (qty/수량/주문수량), and an account column (account/계좌번호) "
        "when several --account files are given; or 'code quantity' lines. Each order is "
        "judged ok, short, not held or error; exit status 0 only when every order fits",
    )
    check.add_argument(
        "--account",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="one account's .env file (its own KIS_APP_KEY, KIS_APP_SECRET, KIS_ACCOUNT); give "
        "it again for each account: they are checked at once, each on its own appkey and budget",
    )
    check.add_argument(
        "--rate",
        type=_rate,
        default=float(spec.CALLS_PER_SECOND),
        help="calls per second at most, per account (default: %(default)g, KIS's limit for "
        "real accounts)",
    )

    demo = commands.add_parser(
        "demo",
        parents=[common, output],
        help="the same check against the embedded simulator; no credentials needed",
        description=_paragraph(
            "List a sample account's ~190 positions and check each against the "
            "embedded KIS simulator, at the real call limit. Two of the tickers are unknown on "
            "purpose, to show how failures look; they do not make the demo fail."
        ),
        epilog=_exit_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--rate",
        type=_rate,
        default=float(spec.CALLS_PER_SECOND),
        help="calls per second, for the client and the simulated gateway (default: %(default)g)",
    )
    demo.add_argument(
        "--latency",
        type=_seconds,
        default=0.03,
        help="simulated seconds per answer (default: %(default)g)",
    )

    _simulator_parser(commands)
    return parser


def _verbosity_flags(parser: argparse.ArgumentParser, *, suffix: str) -> None:
    """``-v``/``-q`` before the command and again after it: both counts are added up."""
    parser.add_argument(
        "-v",
        "--verbose",
        dest=f"{suffix}verbose",
        action="count",
        default=0,
        help="more on stderr: -v library INFO logs, -vv DEBUG logs (and a bug's traceback)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        dest=f"{suffix}quiet",
        action="count",
        default=0,
        help="only the results (and errors): no notes, progress or summary",
    )


def _env_file_flag(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """``--env-file`` before the command and after it. The copy after it defaults to
    ``SUPPRESS``: a subparser's default would otherwise overwrite the value given before."""
    parser.add_argument(
        "--env-file",
        type=Path,
        default=default,
        metavar="PATH",
        help="a .env file (KEY=VALUE, # comments, quotes, export) for the KIS_* variables of "
        "check; a variable set in the environment wins over the file",
    )


def _simulator_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Its own -v/-q (a server prints no results or summary) and defaults written into the
    help where they say something: argparse's default formatter also shows ``0`` and
    ``None``."""
    sim = commands.add_parser(
        "simulator",
        help="serve the KIS simulator for your own bots",
        description=_paragraph(
            "Serve the embedded KIS simulator on HTTP until Ctrl-C or SIGTERM; point "
            "KIS_BASE_URL at it and use the demo credentials it prints. It serves tokenP, "
            "revokeP, inquire-psbl-sell, inquire-balance, inquire-price and "
            "/_simulator/stats and /_simulator/arrivals; any other path is a 404 in KIS's "
            "envelope, naming the path."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument(
        "-v", "--verbose", dest="sub_verbose", action="count", default=0,
        help="more on stderr: -v the server's INFO logs, -vv DEBUG logs",
    )  # fmt: skip
    sim.add_argument(
        "-q", "--quiet", dest="sub_quiet", action="count", default=0,
        help="leave out the start-up lines (its URL and the settings to export)",
    )  # fmt: skip
    sim.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    sim.add_argument(
        "--port",
        type=_port,
        default=8943,
        help="port to listen on, 0 for any (default: %(default)s)",
    )
    sim.add_argument(
        "--rate",
        type=_calls,
        default=spec.CALLS_PER_SECOND,
        help="calls/s the gateway admits (default: %(default)s, KIS's limit for real accounts)",
    )
    sim.add_argument("--latency", type=_seconds, default=0.0, help="seconds per answer")
    sim.add_argument("--jitter", type=_seconds, default=0.0, help="+/- seconds on the latency")
    sim.add_argument(
        "--request-latency",
        type=_seconds,
        default=0.0,
        help="seconds each call takes to reach the gateway, before it is counted",
    )
    sim.add_argument(
        "--request-jitter",
        type=_seconds,
        default=0.0,
        help="+/- seconds on the request latency",
    )
    sim.add_argument(
        "--background-rate",
        type=_seconds,
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
        type=_seconds,
        default=None,
        help="count the limit in fixed seconds starting this offset after the first call "
        "(default: a sliding second)",
    )
    sim.add_argument(
        "--fault-rate",
        type=_chance,
        default=0.0,
        help="chance (0 to 1) that a call gets one of KIS's known faults: an HTML 5xx, a "
        "dropped connection, EGW00201, a hang...",
    )
    sim.add_argument(
        "--ledger-limit",
        type=_calls,
        default=None,
        help="calls a second each account may make to inquire-balance (default: no limit)",
    )
    sim.add_argument(
        "--dialect",
        choices=("live", "reference"),
        default="live",
        help="answer as KIS's users recorded it (live) or as its reference page documents "
        "it (default: %(default)s)",
    )
    sim.add_argument(
        "--revoke-frees",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="revokeP lets the next tokenP mint a new token; --no-revoke-frees: the revoked "
        "token keeps coming back for six hours (default: frees)",
    )
    sim.add_argument(
        "--accounts",
        type=_account_count,
        default=1,
        help="how many appkeys to serve, each bound to its own account with its own limit "
        "(default: %(default)s); the settings of each are printed",
    )
    sim.add_argument(
        "--env-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="once listening, write DIR/account1.env, account2.env... (one per account, its "
        "settings and this URL): the files kis-async check --account reads",
    )
    sim.add_argument("--seed", type=int, default=None, help="seed for jitter and faults")


def _account_count(text: str) -> int:
    return _whole(text, 1, MAX_SIMULATED_ACCOUNTS, "accounts")


def _chance(text: str) -> float:
    """A probability: 0 to 1."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a chance, 0 to 1")
    return value


def _environment_help() -> str:
    rows = {name: _ENV_HELP[name] for name in cfg.ALL}
    return "environment (a variable set here wins over --env-file):\n" + _table(rows)


def _exit_help() -> str:
    return "exit status:\n" + _table({str(code): text for code, text in EXIT_STATUSES.items()})


def _table(rows: dict[str, str]) -> str:
    """Name/text rows for an epilog, wrapped under the text column (argparse leaves epilogs
    alone with the raw formatter, which the layout needs)."""
    indent = " " * (max(map(len, rows)) + 4)
    return "\n".join(
        textwrap.fill(
            text,
            _HELP_WIDTH,
            initial_indent=f"  {name:<{len(indent) - 2}}",
            subsequent_indent=indent,
        )
        for name, text in rows.items()
    )


def _paragraph(text: str) -> str:
    return textwrap.fill(text, _HELP_WIDTH)


def _rate(text: str) -> float:
    """A ``--rate``: calls per second, finite, above zero, at most what a client accepts."""
    value = _number(text)
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"{text!r}: calls per second, above 0 and at most 1e6")
    return value


def _calls(text: str) -> int:
    """The simulator's limit: whole calls per second, at least one."""
    return _whole(text, 1, 1_000_000, "calls per second")


def _whole(text: str, low: int, high: int, what: str) -> int:
    """A whole number from ``low`` to ``high``, or an error saying it is ``what``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number ({what})") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: {what}, from {low} to {high}")
    return value


def _seconds(text: str) -> float:
    """A duration or rate that may be zero: finite and not negative."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must not be negative")
    return value


def _port(text: str) -> int:
    return _whole(text, 0, 65535, "a port number")


def _number(text: str) -> float:
    """A finite float: ``inf`` and ``nan`` parse as floats, and then break every use of them."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a finite number")
    return value


# -- what to check, and with what ------------------------------------------------------------------


@dataclass(slots=True)
class _Account:
    """One account a ``check`` runs on: its run, and its client unless a set-up mistake left it
    without one (``run.problem`` then says what it was)."""

    run: Run
    client: KISClient | None
    number: str
    """``12345678-01``: what a ``--sells`` row's account is matched against."""


def _check_command(args: argparse.Namespace, status: Status) -> int:
    """Everything a user can get wrong is checked here, before any request: the variables,
    the tickers or the orders, the client's arguments, for every account."""
    if args.sells is not None and (args.pdnos or args.file or args.holdings):
        raise UsageError(
            "--sells takes its tickers from the orders: leave out PDNO, --file and --holdings"
        )
    values, origin = inputs.environment(args.env_file, status.note)
    accounts = _accounts(args, values, origin, status)
    if args.sells is not None:
        _give_orders(args.sells, accounts, status)
    else:
        pdnos = _tickers(args, status)
        for account in accounts:
            account.run.asked = list(pdnos)
    flow = functools.partial(_checked, accounts, status, args)
    return _execute(args, status, [a.run for a in accounts], flow)


def _accounts(
    args: argparse.Namespace, values: dict[str, str], origin: dict[str, str], status: Status
) -> list[_Account]:
    """The account of the environment, or one per ``--account`` file. An account file's
    set-up mistake is that account's one line (the others still run); a file that names no
    account, or two files naming one account or one appkey (each run would spend the appkey's
    whole limit), stop everything here. Accounts that mask alike get their file's name too."""
    if not args.account:
        settings = _settings(values)
        client = _client(settings, args.rate, origin)
        setup = _setup(client, settings, origin)
        return [_Account(Run(asked=[], setup=setup), client, str(client.account))]
    accounts: list[_Account] = []
    keys: dict[str, Path] = {}
    numbers: dict[str, Path] = {}
    for path in args.account:
        own, where = inputs.account(path, values, origin, status.note)
        try:
            account = parse_account(own.get(cfg.ENV_ACCOUNT, ""))
        except ValueError:
            raise UsageError(
                f"{path}: {cfg.ENV_ACCOUNT} must be set to the account, 12345678-01"
            ) from None
        if str(account) in numbers:
            raise UsageError(
                f"{numbers[str(account)]} and {path} name one account, {account.masked()}"
            )
        numbers[str(account)] = path
        key = own.get(cfg.ENV_APP_KEY, "").strip()
        if key and key in keys:
            raise UsageError(
                f"{keys[key]} and {path} give one appkey: KIS binds an appkey to one account, "
                "and two runs on it would each spend its whole limit"
            )
        keys[key] = path
        base_url = own.get(cfg.ENV_BASE_URL, spec.REAL_HOST)
        setup = Setup(base_url, account.masked(), origin=where)
        run = Run(asked=[], setup=setup, label=account.masked())
        made: KISClient | None = None
        try:
            settings = _settings(own, path)
            made = _client(settings, args.rate, where)
            run.setup = _setup(made, settings, where)
        except UsageError as exc:
            run.problem = f"{path}: {exc}"
        accounts.append(_Account(run, made, str(account)))
    labels = [a.run.label for a in accounts]
    for path, each in zip(args.account, accounts, strict=True):
        if labels.count(each.run.label) > 1:  # masked alike: 50****56-01 twice
            each.run.label = f"{each.run.label} ({path.name})"
    return accounts


def _setup(client: KISClient, settings: cfg.Settings, origin: dict[str, str]) -> Setup:
    return Setup(
        base_url=client.base_url,
        account=client.account.masked(),
        redis_url=_shown_url(settings.options.get("redis_url")),
        origin=origin,
    )


def _give_orders(source: str, accounts: list[_Account], status: Status) -> None:
    """Each account its orders from ``--sells``, in file order; a row for an account no
    ``--account`` names, or without one when several do, is refused before any request."""
    rows = orders_input.read_sells(source, status.note)
    name = inputs.STDIN if source == "-" else source
    if not rows:
        raise UsageError(f"no orders: {name} had none")
    named = any(row.account is not None for row in rows)
    if not named and len(accounts) > 1:
        raise UsageError(
            f"{name} has no account column: with {len(accounts)} --account files, each order "
            "must name its account (a column named account or 계좌번호)"
        )
    by_number = {account.number: account for account in accounts}
    strays: list[str] = []
    given: dict[str, list[Sell]] = {account.number: [] for account in accounts}
    for row in rows:
        if row.account is None:
            account = accounts[0]
        elif (found := by_number.get(row.account)) is not None:
            account = found
        else:
            strays.append(f"line {row.line} ({parse_account(row.account).masked()})")
            continue
        given[account.number].append(Sell(row.pdno, row.qty))
    if strays:
        listed = ", ".join(strays[:10]) + (
            f" and {len(strays) - 10} more" if len(strays) > 10 else ""
        )
        where = "any --account file" if accounts[0].run.label else cfg.ENV_ACCOUNT
        raise UsageError(f"{name}: {len(strays)} order(s) for an account not in {where}: {listed}")
    for account in accounts:
        run = account.run
        run.sells = given[account.number]
        for sell in run.sells:
            run.orders_of.setdefault(sell.pdno, []).append(sell)
        run.asked = list(run.orders_of)


def _settings(values: dict[str, str], account_file: Path | None = None) -> cfg.Settings:
    """The settings ``values`` make, or the :class:`UsageError` saying where to set what is
    missing: the environment or ``--env-file``, or the ``--account`` file."""
    try:
        settings = cfg.from_environ(values)
    except cfg.MissingVariablesError as exc:
        if account_file is not None:
            raise UsageError(f"it does not set {', '.join(exc.names)}") from None
        raise UsageError(
            f"{exc}: set them in the environment or pass --env-file FILE "
            "(see kis-async check --help)"
        ) from None
    except ValueError as exc:
        raise UsageError(f"{exc} (see kis-async check --help)") from None
    return settings


def _client(settings: cfg.Settings, rate: float, origin: dict[str, str]) -> KISClient:
    """The client, or a :class:`UsageError` naming the variable whose value was refused."""
    try:
        return KISClient(
            settings.app_key,
            settings.app_secret,
            settings.account,
            rate_limit=rate,
            token_cache=_token_cache(settings),
            **settings.options,
        )
    except ArgumentError as exc:
        name = _KEYWORD_VARIABLES.get(exc.argument)
        if name is None:
            raise UsageError(str(exc)) from None
        raise UsageError(f"{render.where(name, origin)}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None


def _token_cache(settings: cfg.Settings) -> _DefaultTokenCache | None:
    """No token cache against a loopback host: a simulator's tokens do not belong in the real
    cache (nor its lock files, nor a wait because ``localhost`` and ``127.0.0.1`` read as two
    hosts there)."""
    base_url = settings.options.get("base_url")
    return None if base_url is not None and cfg.is_loopback(base_url) else DEFAULT_TOKEN_CACHE


def _shown_url(url: str | None) -> str | None:
    """A Redis URL fit to print: no password."""
    if url is None:
        return None
    with contextlib.suppress(ValueError):
        parsed = URL(url)
        if parsed.password:
            return str(parsed.with_password("***"))
    return url


def _tickers(args: argparse.Namespace, status: Status) -> list[str]:
    """The arguments' tickers, then each ``--file``'s in the order given. Files that gave
    none are named when nothing else did: the usual "give PDNO arguments" would suggest the
    file was never read."""
    codes = inputs.with_zeros(list(args.pdnos), "the arguments", status.note)
    empty = []
    for source in args.file:
        read = inputs.read_codes(source, status.note)
        if not read:
            empty.append(inputs.STDIN if source == "-" else source)
        codes += read
    if not codes and not args.holdings:
        if empty:
            raise UsageError(f"no tickers: {', '.join(empty)} had none")
        raise UsageError("no tickers: give PDNO arguments, --file or --holdings")
    try:
        return normalize_pdnos(codes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# -- running ---------------------------------------------------------------------------------------


def _execute(
    args: argparse.Namespace,
    status: Status,
    runs: list[Run],
    flow: Callable[[], Coroutine[Any, Any, None]],
) -> int:
    """Run ``flow()``, then show what it did, however it ended; return the exit status.

    From here to the end of the process, Ctrl-C and SIGTERM belong to a :class:`Runner` (the
    why, and how the end stays bounded, are told in :mod:`kis_async.runner`). The first one
    marks the runs interrupted (terminated, for SIGTERM) and stops the check's clock at once, so
    ``elapsed`` is how long the check ran even if its clean-up has to be left behind. The
    flow's coroutine is made only once the handlers are in place, so a Ctrl-C during start-up
    (a ``KeyboardInterrupt``, which :func:`main` turns into status 130) leaves none unawaited.
    A signal that comes after the flow, while the results are printed, leaves them whole and
    still makes the status 130 (or 143).
    """

    def stopped(signum: int) -> None:
        for run in runs:
            run.interrupted = True
            run.terminated = signum == signal.SIGTERM
        status.stop()

    with Runner(stopped) as runner:
        try:
            runner.run(flow())
        finally:
            status.stop()
            if len(runs) == 1:
                runs[0].elapsed, runs[0].waited = status.took
        _show(args, runs, status)
    code = _exit_status(runs, runner.received, sells=getattr(args, "sells", None) is not None)
    if not runner.settled:
        runner.exit_now(code)
    return code


def _exit_status(runs: list[Run], received: int | None, *, sells: bool) -> int:
    """The status for ``runs``; a signal received (by the end of the output) decides it."""
    if received is not None:
        return EXIT_TERMINATED if received == signal.SIGTERM else EXIT_INTERRUPTED
    if any(render.setup_failure(run) is not None for run in runs):
        return EXIT_USAGE
    if sells:
        return EXIT_OK if sellview.all_fit(runs) else EXIT_FAILED
    failed = any(set(run.batch.errors) - run.expected or run.failure for run in runs)
    return EXIT_FAILED if failed else EXIT_OK


async def _checked(accounts: list[_Account], status: Status, args: argparse.Namespace) -> None:
    """``check``, on every account at once (each its own client: its own token and budget):
    the tickers asked or the orders' tickers, plus every position held with ``--holdings``. A
    failure listing an account's holdings is kept in its ``run.failure`` to be shown."""
    live = [(a.client, a.run) for a in accounts if a.client is not None]
    async with contextlib.AsyncExitStack() as stack:
        for client, _ in live:
            await stack.enter_async_context(client)
        if args.holdings:
            await _together(_add_holdings(client, run, status) for client, run in live)
        ready = [(client, run) for client, run in live if run.failure is None]
        status.start(sum(len(run.asked) for _, run in ready), args.rate * max(1, len(ready)))
        timed = len(accounts) > 1
        try:
            await _together(_check(client, run, status, args, timed=timed) for client, run in ready)
        finally:
            status.stop()


async def _together(flows: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run ``flows`` at once; the first to raise stops the others, and its exception is raised
    as it is (a ``BrokenPipeError`` must reach :func:`main` as one, not in an
    ``ExceptionGroup`` as ``asyncio.TaskGroup`` would wrap it)."""
    tasks = [asyncio.ensure_future(flow) for flow in flows]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _add_holdings(client: KISClient, run: Run, status: Status) -> None:
    render.ACCOUNT.set(run.label)
    try:
        held = await _held(client, status)
    except KISError as exc:
        log.debug("listing the holdings failed", exc_info=True)
        run.failure = exc
        return
    run.asked = normalize_pdnos([*run.asked, *held])


async def _demo(args: argparse.Namespace, run: Run, status: Status) -> None:
    config = SimulatorConfig(
        rate_limit=math.ceil(args.rate), latency=args.latency, jitter=args.latency / 3
    )
    async with Simulator(config) as sim:
        status.note(
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
        run.setup = Setup(base_url=sim.url, account=parse_account(DEMO_ACCOUNT).masked())
        async with client:
            run.asked = normalize_pdnos(await _held(client, status))
            run.expected = UNKNOWN_TICKERS & set(run.asked)
            status.start(len(run.asked), args.rate)
            try:
                await _check(client, run, status, args)
            finally:
                status.stop()
        status.note(
            f"simulator saw {sim.stats.calls} calls, {sim.stats.rejected} rejected, at most "
            f"{sim.stats.max_window} in any 1 s window; {sim.stats.token_issuances} token issued"
        )


async def _held(client: KISClient, status: Status) -> list[str]:
    held = await client.held_tickers()
    status.note(render.labelled(f"holdings: {len(held)} positions held; checking them"))
    return held


async def _check(
    client: KISClient, run: Run, status: Status, args: argparse.Namespace, *, timed: bool = False
) -> None:
    """Check ``run.asked``, filing each outcome as it completes (and printing it, for
    ``--json-lines``), one step of the bar each. The bar's clock (:attr:`Status.took`) times a
    run of one account, with the time spent waiting on KIS's token rule kept apart from the
    pace; with ``timed``, the run keeps its own time (several accounts share the bar).

    A set-up mistake before any ticker succeeded stops the check there: the rest would fail
    the same way, and some of them slowly (an unreachable Redis is ridden out for seconds per
    call, one call at a time)."""
    if timed:
        render.ACCOUNT.set(run.label)
    started = time.perf_counter()
    outcomes = client.iter_sellable(run.asked)
    try:
        async for outcome in outcomes:
            run.batch.add(outcome)
            if run.sells is not None and outcome.error is None:
                run.answered_at[outcome.pdno] = sells.answered_now(client.clock)
            if args.json_lines:
                status.out(_json_lines(run, outcome), sys.stdout)
            status.step()
            if _hopeless(run, outcome.error):
                break
    finally:
        if timed:
            ended = time.perf_counter()
            run.elapsed = ended - started
            run.waited = status.waited(run.label, started, ended)
        run.stats = client.stats
        await outcomes.aclose()


def _json_lines(run: Run, outcome: Outcome[SellableQuantity]) -> str:
    """What ``--json-lines`` prints once ``outcome`` is in: the ticker's line, or one line for
    each of its orders (``--sells``)."""
    if run.sells is not None:
        return sellview.json_lines(run, outcome.pdno)
    return render.json_line(outcome, account=run.label) + "\n"


def _hopeless(run: Run, error: KISError | None) -> bool:
    """Nothing has worked, and ``error`` says the set-up is wrong."""
    if error is None or run.batch.results or run.setup is None:
        return False
    return render.setup_problem(error, run.setup) is not None


def _show(args: argparse.Namespace, runs: list[Run], status: Status) -> None:
    """The results on stdout, then on stderr each account's set-up line, or its summary."""
    selling = getattr(args, "sells", None) is not None
    several = len(runs) > 1 or runs[0].label is not None
    if args.json:
        text = (
            sellview.json_document(runs)
            if selling
            else render.json_accounts(runs)
            if several
            else render.json_document(runs[0])
        )
        status.out(text + "\n", sys.stdout)
    elif args.csv or args.csv_excel:
        if args.csv_excel:
            _utf8_stdout()
        bom = bool(args.csv_excel)
        text = sellview.csv_text(runs, bom=bom) if selling else render.csv_accounts(runs, bom=bom)
        status.out(text, sys.stdout)
    elif not args.json_lines:
        status.out(sellview.table(runs) if selling else render.tables(runs), sys.stdout)
    for run in runs:
        stopped = render.stopped(run)
        if stopped is not None:
            where = f"{run.label}: " if run.label is not None and run.problem is None else ""
            status.line(f"kis-async: error: {where}{stopped}")
        else:
            status.note(sellview.summary(run) if selling else render.summary(run))


# -- the simulator server --------------------------------------------------------------------------


def _serve(args: argparse.Namespace, status: Status) -> int:
    """Serve until Ctrl-C or SIGTERM, then close cleanly; both are a normal way to stop."""

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
            fault_rate=args.fault_rate,
            ledger_limit=args.ledger_limit,
            dialect=args.dialect,
            revoke_frees=args.revoke_frees,
            accounts=demo_accounts(args.accounts - 1),
            seed=args.seed,
        )
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with Simulator(config, host=args.host, port=args.port) as sim:
            status.note(
                f"KIS simulator on {sim.url} ({config.rate_limit} calls/s); Ctrl-C stops it"
            )
            status.note(f"  export {cfg.ENV_BASE_URL}={sim.url} {cfg.ENV_ACCOUNT}={DEMO_ACCOUNT}")
            status.note(
                f"  export {cfg.ENV_APP_KEY}={DEMO_APP_KEY} {cfg.ENV_APP_SECRET}={DEMO_APP_SECRET}"
            )
            for number, extra in enumerate(config.accounts, 2):
                status.note(
                    f"  account {number}: {cfg.ENV_APP_KEY}={extra.app_key} "
                    f"{cfg.ENV_APP_SECRET}={extra.app_secret} {cfg.ENV_ACCOUNT}={extra.account}"
                )
            if args.env_dir is not None:
                try:
                    written = sim.write_env_files(args.env_dir)
                except OSError as exc:
                    raise UsageError(f"cannot write {args.env_dir}: {exc.strerror}") from None
                status.note(f"  account settings in {', '.join(map(str, written))}")
            await stop.wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK


# -- the terminal ----------------------------------------------------------------------------------


def _configure_logging(verbosity: int, status: Status) -> None:
    """Library logs at the level ``-v``/``-q`` ask for; the progress logger always, as it
    starts, through ``status`` (which hides it under ``-q`` and keeps the bar intact).

    Every record is one line, its controls escaped: a log quotes the server (``msg1``, an
    exception's message), and a newline there would otherwise write a record of its own."""
    levels = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}
    level = logging.DEBUG if verbosity >= 2 else levels.get(verbosity, logging.ERROR)
    root = logging.getLogger()
    lines = render.LogLines(status)
    lines.setFormatter(render.OneLineFormatter())
    root.handlers[:] = [lines]
    root.setLevel(level)
    progress = logging.getLogger(cfg.PROGRESS_LOGGER)
    progress.handlers[:] = [render.ProgressLog(status)]
    progress.setLevel(logging.INFO)
    progress.propagate = False


def _utf8_stdout() -> None:
    """stdout as UTF-8 whatever the locale says: the BOM promises Excel UTF-8."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.reconfigure(encoding="utf-8")


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit-time flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
