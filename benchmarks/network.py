"""The client against a gateway that is not kind: what KIS users report, scenario by scenario.

A client told ``rate_limit=20`` checks 300 tickers (``--quick``: 100) per scenario. The gateway
counts each call when it arrives, after a one-way trip of 50 ms plus or minus the scenario's
request jitter; answers take 30 ± 10 ms more. A scenario may also enforce less than 20 calls/s, or
run another program on the same appkey that takes part of the budget.

The simulator runs in this process: at 20 calls/s it needs a few per cent of one core, and an
in-process simulator lets clients in other processes (see ``multiprocess.py``) share it.

Columns: the gateway's effective limit (its limit less the other program's rate); wall time of the
batch, token included; the client's calls per second as the gateway saw them (first to last
arrival) ÷ that limit; tickers answered per second ÷ that limit (above 1 when the other program
is refused too); calls the gateway counted and rejected (EGW00201), and the other program's; tickers
lost (an error in the batch after the client's retries); the most client calls the gateway saw in
any one second, and with the other program's.

To measure another client (several processes over Redis, another pacer), pass a :data:`Runner`
to :func:`main` or :func:`measure`: the scenarios stay the same.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from _harness import client, codes, redis_server, table

from kis_async.endpoints import SELLABLE
from kis_async.simulator import Holding, Simulator, SimulatorConfig, Stats

TOLD = 20
"""Calls per second the client is told it may make."""
REQUEST_LATENCY = 0.05
"""One-way trip to the gateway in every scenario: wide enough that no jitter here is clipped."""
LATENCY, JITTER = 0.03, 0.01
SEED = 2026


@dataclass(frozen=True, slots=True)
class Scenario:
    """One way the gateway differs from what the client was told."""

    name: str
    gateway: int = TOLD
    """Calls per second the gateway enforces (sliding one-second window)."""
    request_jitter: float = 0.0
    """Seconds, plus or minus, on each call's way to the gateway."""
    background: float = 0.0
    """Calls per second another program makes on the same appkey, evenly spaced."""

    @property
    def limit(self) -> float:
        """Calls per second left for the client."""
        return self.gateway - self.background

    def config(self) -> SimulatorConfig:
        return SimulatorConfig(
            rate_limit=self.gateway,
            request_latency=REQUEST_LATENCY,
            request_jitter=self.request_jitter,
            latency=LATENCY,
            jitter=JITTER,
            background_rate=self.background,
            seed=SEED,
        )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("no jitter, gateway 20/s"),
    Scenario("±20 ms request jitter", request_jitter=0.02),
    Scenario("±40 ms request jitter", request_jitter=0.04),
    Scenario("gateway enforces 15/s", gateway=15),
    Scenario("gateway enforces 10/s", gateway=10),
    Scenario("another program at 5/s", background=5.0),
)


@dataclass(frozen=True, slots=True)
class Run:
    """What a runner reports: the batch's wall time and how many tickers ended in an error."""

    elapsed: float
    lost: int


Runner = Callable[[str, list[str]], Awaitable[Run]]
"""Checks the tickers against the simulator at the URL, however the client under test does it."""


async def one_client(url: str, tickers: list[str]) -> Run:
    """One :class:`~kis_async.KISClient` with default settings, told ``rate_limit=20``."""
    start = time.perf_counter()
    async with client(url, TOLD) as kis:
        batch = await kis.check_sellable(tickers)
    return Run(time.perf_counter() - start, len(batch.errors))


WORKER = Path(__file__).resolve().parents[1] / "tests" / "redis_worker.py"
PROCESSES = 4


async def processes_over_redis(redis_url: str, url: str, tickers: list[str]) -> Run:
    """:data:`PROCESSES` processes on one appkey, each told ``rate_limit=20``, sharing a Redis."""
    each = len(tickers) // PROCESSES
    start = time.perf_counter()
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            url,
            redis_url,
            tickers[n * each],
            str(each),
            str(TOLD),
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(PROCESSES)
    ]
    outputs = await asyncio.gather(*(worker.communicate() for worker in workers))
    reports = [json.loads(out) for out, _ in outputs]
    return Run(time.perf_counter() - start, sum(r["failed"] for r in reports))


async def measure(scenario: Scenario, count: int, runner: Runner = one_client) -> list[object]:
    """Run ``count`` tickers through ``runner`` under ``scenario``; one row of the table."""
    async with Simulator(scenario.config()) as sim:
        run = await runner(sim.url, codes(count))
        stats = sim.stats
    return row(scenario, count, run, stats)


def row(scenario: Scenario, count: int, run: Run, stats: Stats) -> list[object]:
    first, last = stats.arrivals[0][0], stats.arrivals[-1][0]
    sent = (stats.calls - 1) / (last - first) if last > first else 0.0
    answered = (count - run.lost) / run.elapsed
    rejected = f"{stats.rejected} ({100 * stats.rejected / stats.calls:.1f} %)"
    busiest = str(stats.max_window)
    if scenario.background:
        rejected += f"; its {stats.background_rejected} of {stats.background_calls}"
        busiest += f" ({stats.max_window_total} with it)"
    return [
        scenario.name,
        f"{scenario.limit:g}",
        f"{run.elapsed:.1f}",
        f"{sent / scenario.limit:.2f}",
        f"{answered / scenario.limit:.2f}",
        stats.calls,
        rejected,
        run.lost,
        busiest,
    ]


HEADER = [
    "scenario",
    "limit/s",
    "elapsed s",
    "calls/s ÷ limit",
    "tickers/s ÷ limit",
    "calls (server)",
    "rejected",
    "tickers lost",
    "max in 1 s",
]


POSITIONS = 180
"""Positions the account holds in the ledger-limit rows."""


async def ledger_row(name: str, ledger_limit: int | None) -> list[object]:
    """``check_holdings()`` over :data:`POSITIONS` positions, the ledger taking ``ledger_limit``
    inquire-balance calls a second per account: the listing's time, then the psbl-sell pace."""
    config = SCENARIOS[0].config()
    config.ledger_limit = ledger_limit
    async with Simulator(config) as sim:
        kept: dict[str, Holding] = {}
        for pdno, holding in sim.portfolio.items():
            if len(kept) == POSITIONS:
                break
            if holding.quantity:
                kept[pdno] = holding
        sim.portfolio = kept
        start = time.perf_counter()
        async with client(sim.url, TOLD) as kis:
            batch = await kis.check_holdings()
            ledger_pace = kis.stats.ledger_pace
        elapsed = time.perf_counter() - start
        stats = sim.stats
    checks = stats.calls_by_tr_id[SELLABLE.tr_id]
    listing = stats.calls - checks
    arrivals = [at for at, _ in stats.arrivals]
    listed_in = arrivals[listing] - arrivals[0] if checks else elapsed
    first, last = arrivals[listing], arrivals[-1]
    rate = (checks - 1) / (last - first) if last > first else 0.0
    lost = len([p for p in batch.errors if p not in config.unknown_tickers])  # those fail by design
    return [
        name,
        len(batch),
        f"{listed_in:.2f}",
        f"{listing} ({stats.ledger_rejected} EGW00215)",
        "-" if ledger_pace is None else f"{ledger_pace:.2f}",
        f"{rate:.1f}",
        f"{rate / TOLD:.2f}",
        stats.rejected,
        lost,
    ]


LEDGER_HEADER = [
    "scenario",
    "positions",
    "time to list s",
    "listing calls",
    "ledger pace /s",
    "psbl-sell calls/s after",
    "÷ appkey's 20/s",
    "EGW00201",
    "tickers lost",
]


def ledger(quick: bool) -> None:
    rows = [
        asyncio.run(ledger_row("no ledger limit", None)),
        asyncio.run(ledger_row("ledger limit 1/s per account on inquire-balance", 1)),
    ]
    title = (
        f"check_holdings() over {POSITIONS} positions (50 a page), one client told {TOLD}/s, "
        f"request {REQUEST_LATENCY * 1000:.0f} ms, answer {LATENCY * 1000:.0f} ± "
        f"{JITTER * 1000:.0f} ms"
    )
    table(title, LEDGER_HEADER, rows)


def main(quick: bool) -> None:
    count = 100 if quick else 300
    measured(count, one_client, "one client")
    ledger(quick)
    with redis_server() as redis_url:
        if redis_url is None:
            print("\n(network over Redis: skipped, redis-server not installed)")
            return
        runner = functools.partial(processes_over_redis, redis_url)
        measured(count, runner, f"{PROCESSES} processes over Redis, each")


def measured(count: int, runner: Runner, who: str) -> None:
    rows = [asyncio.run(measure(scenario, count, runner)) for scenario in SCENARIOS]
    title = (
        f"An unkind gateway: {who} told {TOLD}/s, {count} tickers, "
        f"request {REQUEST_LATENCY * 1000:.0f} ms ± jitter, answer "
        f"{LATENCY * 1000:.0f} ± {JITTER * 1000:.0f} ms"
    )
    table(title, HEADER, rows)


if __name__ == "__main__":
    main("--quick" in sys.argv)
