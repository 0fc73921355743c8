"""Peak memory of a big batch: flat in the batch size apart from the results themselves.

Each measurement runs in a fresh process (peak RSS only grows) against a simulator process; the
processes share one token through a token cache file, as restarted bots do (KIS would refuse a
second issuance within the minute, and the client would wait it out).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile

from _harness import client, codes, simulator, table


def _peak_kib() -> int:
    """This process's own peak RSS. ``ru_maxrss`` starts a child at its parent's peak on Linux
    (run from run_all.py, after matplotlib, that hid every growth), so read the memory map's
    high-water mark where there is one."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _child(url: str, mode: str, count: int, cache: str) -> None:
    async with client(url, 1_000_000, max_concurrency=64, token_cache=cache) as kis:
        await kis.check_sellable(codes(200))
        before = _peak_kib()
        if mode == "check_sellable":
            batch = await kis.check_sellable(codes(count))
            assert len(batch) == count
        else:
            seen = 0
            async for _ in kis.iter_sellable(codes(count)):
                seen += 1
            assert seen == count
        print(_peak_kib() - before)


def main(quick: bool) -> None:
    sizes = [2_000, 10_000] if quick else [2_000, 10_000, 40_000]
    rows: list[list[object]] = []
    with simulator(1_000_000) as url, tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "token.json")
        for mode in ("check_sellable", "iter_sellable"):
            for size in sizes:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", url, mode, str(size), cache],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                growth = int(out.stdout.strip())
                rows.append([mode, size, f"{growth / 1024:.1f}", f"{growth * 1024 / size:.0f}"])
    table("Peak RSS growth", ["method", "tickers", "MiB", "bytes per ticker"], rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        asyncio.run(_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
    else:
        main("--quick" in sys.argv)
