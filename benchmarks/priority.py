"""A single call during a batch: how long it waits to leave, behind the batch and ahead of it.

A 300-ticker ``check_sellable`` at 20/s (``--quick``: 100) against the simulator in its own
process; while it runs, a ``sellable_quantity`` every 500 ms, each on a ticker of its own. A
single call's *wait* is from the call to the moment its request's headers went out on the wire
(aiohttp's ``on_request_headers_sent``, hooked into the client's session), so the token, the
pacer's line and the connection pool all count in it.

Each scenario runs two ways, in alternating rounds, on one simulator:

- **before**: the single calls asked with ``priority=Priority.BULK``, so the pacer's line is the
  one FIFO it was before priority, and the connection pool back at ``max_concurrency``
  connections (``kis_async.client._POOL_PER_WORKER = 1``), as it was;
- **after**: as shipped: single calls ``Priority.INTERACTIVE`` (their default), a pool of twice
  ``max_concurrency``.

Scenarios: 30 ± 10 ms each way (the other network rows' setting); 1.2 s ± 10 ms each way, where
the batch's 40 workers are all in flight at once and fill a pool of 40 (its calls a second are
then the workers' 16.7, not the pace); and the first over Redis (``redis_url``, one process,
skipped without ``redis-server``), whose head has booked its slot in Redis while it waits and so
does not step aside.

Columns: single calls measured; their wait's p50, p99 and max (ms), and p99 over the pacing
interval (51 ms at 20/s: the target is two); single calls that queued for a connection; the most
requests under way at once (on a connection or queued for one); the batch's elapsed time each
round, and after's over before's; every call that left while the batch ran (its own and the
single calls), per second, over the pace; calls the gateway rejected.

After, a single call asked in the batch's last two seconds leaves before the batch's last calls
instead of after them, so the batch ends about four calls (0.2 s) later for the same work: the
calls per second over the pace are what say whether it got slower.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
from _harness import client, codes, redis_server, simulator, stats, table

import kis_async.client
from kis_async import KISClient, Priority
from kis_async.pace import DEFAULT_MARGIN, Pace

RATE, LATENCY, JITTER = 20, 0.03, 0.01
SLOW = 1.2
"""Seconds each way in the slow scenario: a 2.4 s round trip, longer than the batch's 40 workers
cover at 20/s (40 ÷ 2.4 s is 16.7 calls a second), so all 40 are in flight at once."""
EVERY = 0.5
"""Seconds between two single calls."""
PACE = Pace.start(RATE, DEFAULT_MARGIN)
INTERVAL = PACE.interval
SINGLES_FROM = 200000
"""Single calls ask tickers from here on, apart from the batch's."""


@dataclass
class Probe:
    """What the hooks saw of one client's requests."""

    sent: dict[str, float] = field(default_factory=dict)
    """First moment each ticker's request headers went out (``perf_counter``)."""
    departures: list[float] = field(default_factory=list)
    """Every request's, retries included."""
    queued: set[str] = field(default_factory=set)
    """Tickers whose request queued for a connection."""
    in_flight: int = 0
    most_in_flight: int = 0

    def hook(self, kis: KISClient) -> None:
        """Add this probe's trace to the client's one session (a private attribute: this is a
        benchmark's instrument, not an API)."""
        config = aiohttp.TraceConfig()
        config.on_request_start.append(self._start)
        config.on_connection_queued_start.append(self._queued)
        config.on_request_headers_sent.append(self._sent)
        config.on_request_end.append(self._end)
        config.on_request_exception.append(self._end)
        config.freeze()
        wire = kis._wire
        assert wire is not None, "the client is open"
        wire._session.trace_configs.append(config)

    async def _start(self, _: object, ctx: SimpleNamespace, params: Any) -> None:
        ctx.pdno = params.url.query.get("PDNO", "")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

    async def _queued(self, _: object, ctx: SimpleNamespace, params: Any) -> None:
        self.queued.add(ctx.pdno)

    async def _sent(self, _: object, ctx: SimpleNamespace, params: Any) -> None:
        now = time.perf_counter()
        self.sent.setdefault(ctx.pdno, now)
        self.departures.append(now)

    async def _end(self, _: object, ctx: SimpleNamespace, params: Any) -> None:
        self.in_flight -= 1


@dataclass
class Run:
    waits: list[float]
    queued: int
    most_in_flight: int
    elapsed: float
    rate: float
    """Calls a second that left while the batch ran."""
    rejected: int


@contextmanager
def pool_per_worker(connections: int) -> Iterator[None]:
    saved = kis_async.client._POOL_PER_WORKER
    kis_async.client._POOL_PER_WORKER = connections
    try:
        yield
    finally:
        kis_async.client._POOL_PER_WORKER = saved


async def one_run(url: str, tickers: int, priority: Priority, **options: Any) -> Run:
    """One batch with single calls asked as ``priority`` every :data:`EVERY` seconds."""
    rejected = stats(url)["rejected"]
    probe = Probe()
    called: dict[str, float] = {}
    async with client(url, RATE, **options) as kis:
        probe.hook(kis)
        await kis.sellable_quantity("005930")  # the token, before anything is timed

        async def single(pdno: str) -> None:
            called[pdno] = time.perf_counter()
            await kis.sellable_quantity(pdno, priority=priority)

        async def batch() -> float:
            assert (await kis.check_sellable(codes(tickers))).ok
            return time.perf_counter()

        start = time.perf_counter()
        done = asyncio.ensure_future(batch())
        singles = []
        for n in range(10**6):
            await asyncio.wait([done], timeout=start + EVERY / 2 + n * EVERY - time.perf_counter())
            if done.done():
                break
            singles.append(asyncio.create_task(single(f"{SINGLES_FROM + n:06d}")))
        await asyncio.gather(*singles)
        end = done.result()
    return Run(
        [probe.sent[pdno] - at for pdno, at in called.items()],
        len(probe.queued & called.keys()),
        probe.most_in_flight,
        end - start,
        sum(start <= t <= end for t in probe.departures) / (end - start),
        stats(url)["rejected"] - rejected,
    )


def measure(url: str, tickers: int, rounds: int, **options: Any) -> dict[str, list[Run]]:
    """``rounds`` of before and after, alternating; every client after the first reads the
    token the first saved (the simulator, as KIS, issues one a minute)."""
    runs: dict[str, list[Run]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as scratch:
        options.setdefault("token_cache", Path(scratch) / "token.json")
        for _ in range(rounds):
            with pool_per_worker(1):
                before = one_run(url, tickers, Priority.BULK, **options)
                runs["before"].append(asyncio.run(before))
            after = one_run(url, tickers, Priority.INTERACTIVE, **options)
            runs["after"].append(asyncio.run(after))
    return runs


def rows(scenario: str, runs: dict[str, list[Run]]) -> list[list[object]]:
    before = sum(run.elapsed for run in runs["before"])
    out: list[list[object]] = []
    for way, done in runs.items():
        waits = sorted(wait for run in done for wait in run.waits)
        p99 = statistics.quantiles(waits, n=100, method="inclusive")[98]
        elapsed = sum(run.elapsed for run in done)
        out.append(
            [
                scenario,
                way,
                len(waits),
                f"{statistics.median(waits) * 1000:.0f}",
                f"{p99 * 1000:.0f}",
                f"{waits[-1] * 1000:.0f}",
                f"{p99 / INTERVAL:.2f}",
                sum(run.queued for run in done),
                max(run.most_in_flight for run in done),
                " / ".join(f"{run.elapsed:.2f}" for run in done),
                f"{elapsed / before:.3f}",
                f"{statistics.mean(run.rate for run in done) / PACE.calls_per_second:.3f}",
                sum(run.rejected for run in done),
            ]
        )
    return out


HEADER = [
    "scenario",
    "",
    "single calls",
    "wait p50 ms",
    "p99 ms",
    "max ms",
    "p99 ÷ interval",
    "queued for a connection",
    "most in flight",
    "batch s (each round)",
    "batch ÷ before",
    "calls/s ÷ pace",
    "rejected",
]


def main(quick: bool) -> None:
    tickers, rounds = (100, 1) if quick else (300, 3)
    table_rows: list[list[object]] = []
    each_way = f"{LATENCY * 1000:.0f} ± {JITTER * 1000:.0f} ms each way"
    with simulator(RATE, LATENCY, JITTER) as url:
        table_rows += rows(each_way, measure(url, tickers, rounds))
    with simulator(RATE, SLOW, JITTER) as url:
        slow = f"{SLOW * 1000:.0f} ± {JITTER * 1000:.0f} ms each way"
        table_rows += rows(slow, measure(url, tickers, 1))
    with redis_server() as redis_url:
        if redis_url is not None:
            with simulator(RATE, LATENCY, JITTER) as url:
                runs = measure(url, tickers, 1, redis_url=redis_url)
                table_rows += rows(f"{each_way}, over Redis", runs)
    title = (
        f"A single call every {EVERY * 1000:.0f} ms during a {tickers}-ticker check at {RATE}/s: "
        "its wait from call to departure"
    )
    table(title, HEADER, table_rows)
    sys.stdout.flush()


if __name__ == "__main__":
    main("--quick" in sys.argv)
