"""A whole-account check: list a 300-position account page by page, then check every position.

Ideal = (pages + positions) ÷ limit + one latency; reported as ideal ÷ elapsed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal

from _harness import CREDENTIALS, table

from kis_async import KISClient
from kis_async.simulator import Holding, Simulator, SimulatorConfig

RATE, LATENCY, JITTER, PAGE = 20, 0.03, 0.01, 50


async def run(count: int) -> None:
    positions = {
        f"{700000 + i:06d}": Holding(f"종목{i}", 10 + i, Decimal(1000), Decimal(1100))
        for i in range(count)
    }
    config = SimulatorConfig(rate_limit=RATE, latency=LATENCY, jitter=JITTER, page_size=PAGE)
    async with Simulator(config, positions) as sim:
        kis = KISClient(*CREDENTIALS, base_url=sim.url, rate_limit=RATE, token_cache=None)
        async with kis:
            start = time.perf_counter()
            batch = await kis.check_holdings()
            elapsed = time.perf_counter() - start
        pages = -(-count // PAGE)
        ideal = (pages + count) / RATE + LATENCY
        table(
            f"Whole-account check: {count} positions, {PAGE} a page, {RATE}/s, "
            f"{LATENCY * 1000:.0f} ± {JITTER * 1000:.0f} ms",
            ["calls", "elapsed s", "ideal s", "ideal ÷ elapsed", "ok", "max in 1 s", "rejected"],
            [
                [
                    sim.stats.calls,
                    f"{elapsed:.2f}",
                    f"{ideal:.2f}",
                    f"{ideal / elapsed:.3f}",
                    len(batch.results),
                    sim.stats.max_window,
                    sim.stats.rejected,
                ]
            ],
        )


def main(quick: bool) -> None:
    asyncio.run(run(100 if quick else 300))


if __name__ == "__main__":
    main("--quick" in sys.argv)
