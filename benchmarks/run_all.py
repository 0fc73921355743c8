"""Run every benchmark and print their tables (a few minutes; ``--quick`` for a shorter pass)."""

from __future__ import annotations

import os
import platform
import sys
import time

import baselines
import cost
import holdings
import limit
import memory
import multiprocess
import network
import plots
import priority
import sells


def main() -> None:
    quick = "--quick" in sys.argv
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    start = time.perf_counter()
    benches = (
        limit,
        network,
        baselines,
        holdings,
        sells,
        priority,
        multiprocess,
        cost,
        memory,
        plots,
    )
    for bench in benches:
        bench.main(quick)
    print(f"\n(all benchmarks: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
