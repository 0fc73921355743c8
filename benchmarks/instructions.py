"""Client instructions per call under valgrind: a steady A/B measure on a busy machine.

CPU time per call on a small shared box moves by 20-50% with the neighbours' load; the count of
instructions the client process executes barely moves (about ±0.5%), so it can rank changes
worth a microsecond. Usage::

    python benchmarks/instructions.py bare HEAD~3 HEAD .    # needs valgrind

Each variant is ``bare`` (the bare aiohttp GET loop of cost.py), ``.`` (this working tree) or a
git revision (its ``kis_async`` exported to a temporary directory); ``+metrics`` after either of
the last two (``.+metrics``) gives the client an OpenTelemetry SDK meter provider with an
in-memory reader, never collected (what reporting costs a call; needs the SDK). Each runs twice
in its own process under ``valgrind --tool=cachegrind``: warm-up only, then warm-up and
``--calls`` calls of the cost.py workload against one simulator; the difference over the calls
is per call. It counts user-space instructions only (no syscalls), and the client runs ~50×
slower under valgrind, so the event loop drains more answers per wake-up than at full speed: use
it to compare, not as µs.

The tickers are ones the account does not hold (KIS answers blanks) unless ``--held``: then the
calls go round the simulated account's positions, so every answer carries numbers to check.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import aiohttp
from _harness import CREDENTIALS, client, codes, simulator

from kis_async.simulator.portfolio import UNKNOWN_TICKERS, sample_portfolio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def tree(variant: str, scratch: Path) -> str:
    """The directory to import ``kis_async`` from for this variant."""
    if variant in ("bare", "."):
        return str(ROOT)
    git = [_tool("git"), "-C", str(ROOT)]
    sha = subprocess.check_output([*git, "rev-parse", variant], text=True).strip()
    target = scratch / sha
    if not target.exists():
        archive = subprocess.run(
            [*git, "archive", sha, "kis_async"], check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return str(target)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is needed and not on PATH")
    return path


def batches(calls: int, held: bool) -> list[list[str]]:
    """The tickers of ``calls`` calls, in non-empty batches of distinct tickers."""
    if not held:
        work = [codes(calls)]
    else:
        positions = sorted(set(sample_portfolio()) - UNKNOWN_TICKERS)
        work = [positions] * (calls // len(positions)) + [positions[: calls % len(positions)]]
    return [pdnos for pdnos in work if pdnos]


def instructions(url: str, cache: Path, variant: str, where: str, calls: int, held: bool) -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([where, str(HERE)]), PYTHONHASHSEED="0")
    kind = "bare" if variant == "bare" else "kis+metrics" if variant.endswith("+metrics") else "kis"
    command = [_tool("valgrind"), "--tool=cachegrind", "--cache-sim=no"]
    command += ["--cachegrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--worker", url, str(cache), kind, str(calls)]
    command += ["held"] if held else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode or not found:
        raise SystemExit(f"{variant}: the run failed\n{done.stderr[-3000:]}")
    return int(found[1].replace(",", ""))


async def worker(url: str, cache: Path, kind: str, calls: int, held: bool) -> None:
    """Warm up (token, connections), then ``calls`` calls, and exit."""
    work = batches(calls, held)
    if kind in ("kis", "kis+metrics"):
        options: dict[str, object] = {}
        if kind == "kis+metrics":
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader

            options["meter_provider"] = MeterProvider(metric_readers=[InMemoryMetricReader()])
        async with client(url, 100_000, max_concurrency=64, token_cache=cache, **options) as kis:
            assert (await kis.check_sellable(codes(200))).ok
            for pdnos in work:
                assert (await kis.check_sellable(pdnos)).ok
            assert kis.token_issuances == 0
        return
    import cost

    from kis_async.tokencache import TokenCache

    token = TokenCache(cache, app_key=CREDENTIALS[0], host=url).load()
    assert token is not None
    bare = cost.bare_loop(url, token.access_token)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        await bare(http, codes(200))
        assert await cost.bare_answers_ok(http, url, token.access_token)
        for pdnos in work:
            await bare(http, pdnos)


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        url, cache, kind, calls = sys.argv[2:6]
        asyncio.run(worker(url, Path(cache), kind, int(calls), sys.argv[6:] == ["held"]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="bare, . or a git revision")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--held", action="store_true", help="ask about tickers the account holds")
    args = parser.parse_args()
    import cost

    from kis_async.tokencache import TokenCache

    with simulator(1_000_000) as url, tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        cache = TokenCache(scratch / "token.json", app_key=CREDENTIALS[0], host=url)
        cache.save(asyncio.run(cost.issue_token(url)))
        first = None
        for variant in args.variants:
            where = tree(variant.removesuffix("+metrics"), scratch / "trees")
            warm = instructions(url, cache.path, variant, where, 0, args.held)
            total = instructions(url, cache.path, variant, where, args.calls, args.held)
            per_call = (total - warm) / args.calls
            first = first or per_call
            ratio = per_call / first
            print(f"{variant:>12}  {per_call / 1000:7.1f}k instructions/call  {ratio:5.3f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
