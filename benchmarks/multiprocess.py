"""Four processes on one appkey: shared Redis pacing and token vs each pacing itself.

Needs ``redis-server`` on PATH (Debian package redis-server). Each process, with default settings,
checks 200 tickers against one simulator at 20 calls/s (30 ± 10 ms each way); the simulator
counts what arrived from all of them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from _harness import redis_server, table

from kis_async.simulator import Simulator, SimulatorConfig

WORKER = Path(__file__).resolve().parents[1] / "tests" / "redis_worker.py"
RATE, PROCESSES = 20, 4


async def run(redis_url: str, each: int, issue_interval: float) -> list[object]:
    config = SimulatorConfig(
        rate_limit=RATE,
        request_latency=0.03,
        request_jitter=0.01,
        latency=0.03,
        jitter=0.01,
        token_issue_interval=issue_interval,
    )
    async with Simulator(config) as sim:
        start = time.perf_counter()
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                sim.url,
                redis_url,
                str(100000 + n * each),
                str(each),
                str(RATE),
                stdout=asyncio.subprocess.DEVNULL,
            )
            for n in range(PROCESSES)
        ]
        await asyncio.gather(*(p.wait() for p in procs))
        elapsed = time.perf_counter() - start
        calls = PROCESSES * each
        return [
            "Redis (shared)" if redis_url != "-" else "in-process, each",
            f"{elapsed:.1f}",
            f"{calls / elapsed / RATE:.3f}",
            sim.stats.max_window,
            sim.stats.rejected,
            sim.stats.token_requests,
        ]


def main(quick: bool) -> None:
    each = 50 if quick else 200
    with redis_server() as redis_url:
        if redis_url is None:
            print("\n(multiprocess: skipped, redis-server not installed)")
            return
        rows = [asyncio.run(run(redis_url, each, 60.0)), asyncio.run(run("-", each, 0.0))]
    table(
        f"{PROCESSES} processes × {each} tickers, one appkey, limit {RATE}/s, 30 ± 10 ms each way",
        ["pacing", "elapsed s", "calls/s ÷ limit", "max in 1 s", "rejected", "token requests"],
        rows,
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
