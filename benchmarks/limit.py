"""How close to the KIS limit, and never over it.

Per batch size and latency: achieved calls/s ÷ limit, and the ideal time (tickers ÷ limit + one
latency for the last answer) ÷ elapsed, with the server's own count of the busiest 1-second
window and of rejected calls.
"""

from __future__ import annotations

import asyncio
import sys
import time

from _harness import client, codes, simulator, stats, table

CASES = [
    (20, 100),
    (20, 500),
    (200, 2000),
]
LATENCIES = [(0.0, 0.0), (0.03, 0.01), (0.15, 0.05)]


async def one(url: str, rate: int, count: int) -> tuple[float, int]:
    async with client(url, rate) as kis:
        await kis.sellable_quantity("005930")  # token first: measure the batch, not the login
        start = time.perf_counter()
        batch = await kis.check_sellable(codes(count))
        elapsed = time.perf_counter() - start
    return elapsed, len(batch.errors)


def main(quick: bool) -> None:
    rows: list[list[object]] = []
    cases = [(20, 100), (200, 500)] if quick else CASES
    for rate, count in cases:
        for latency, jitter in LATENCIES:
            with simulator(rate, latency, jitter) as url:
                elapsed, errors = asyncio.run(one(url, rate, count))
                seen = stats(url)
            achieved = count / elapsed
            ideal = count / rate + latency
            rows.append(
                [
                    count,
                    rate,
                    f"{latency * 1000:.0f} ± {jitter * 1000:.0f}",
                    f"{elapsed:.2f}",
                    f"{achieved:.2f}",
                    f"{achieved / rate:.3f}",
                    f"{ideal / elapsed:.3f}",
                    seen["max_window"],
                    seen["rejected"],
                    errors,
                ]
            )
    table(
        "Limit utilisation (server-side counts)",
        [
            "tickers",
            "limit/s",
            "latency ms",
            "elapsed s",
            "calls/s",
            "÷ limit",
            "ideal ÷ elapsed",
            "max in 1 s",
            "rejected",
            "errors",
        ],
        rows,
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
