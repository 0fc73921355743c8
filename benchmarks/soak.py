"""Soak: 5,000 tickers through the simulator with every fault knob on at a low rate.

Prints what became of every ticker (ok, errored by reason, lost, duplicated, wrong) and what the
server saw (calls, rejections, token issuances). Lost, duplicated and wrong must all be 0.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

from _harness import CREDENTIALS, table

from kis_async import KISClient, RetryPolicy
from kis_async.simulator import UNKNOWN_TICKERS, Fault, Simulator, SimulatorConfig


async def soak(count: int, rate: int) -> None:
    config = SimulatorConfig(
        rate_limit=rate,
        latency=0.01,
        jitter=0.008,
        token_issue_interval=0.5,
        fault_rate=0.02,
        fault_kinds=tuple(f for f in Fault if f is not Fault.TOKEN_EXPIRED),
        hang_for=5.0,
        seed=2026,
    )
    async with Simulator(config) as sim:
        held = [p for p in sim.portfolio if p not in UNKNOWN_TICKERS]
        asked = held + [f"{700000 + i:06d}" for i in range(count - len(held))]
        asked[100:102] = ["999999", "999990"]
        sim.after_calls(count // 4, sim.revoke_tokens)
        sim.after_calls(count // 2, lambda: (sim.expire_tokens(), sim.inject_token(Fault.HTML_502)))
        seen: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        wrong = 0
        start = time.perf_counter()
        async with KISClient(
            *CREDENTIALS,
            base_url=sim.url,
            rate_limit=rate,
            token_cache=None,
            timeout=0.5,
            retry=RetryPolicy(max_retries=6, backoff=0.05),
            token_issue_interval=0.5,
        ) as kis:
            async for outcome in kis.iter_sellable(asked):
                seen[outcome.pdno] += 1
                if outcome.error is not None:
                    reasons[
                        f"{type(outcome.error).__name__} {getattr(outcome.error, 'msg_cd', '')}"
                    ] += 1
                elif outcome.result is not None:
                    holding = sim.portfolio.get(outcome.pdno)
                    expected = holding.sellable if holding else 0
                    wrong += outcome.result.ord_psbl_qty != expected
        elapsed = time.perf_counter() - start
        stats = sim.stats
    rows: list[list[object]] = [
        ["tickers asked", len(asked)],
        ["tickers ok", sum(seen.values()) - sum(reasons.values())],
        *[[f"  errored: {reason.strip()}", n] for reason, n in reasons.most_common()],
        ["tickers lost", len(set(asked) - set(seen))],
        ["tickers duplicated", sum(n - 1 for n in seen.values() if n > 1)],
        ["results with wrong numbers", wrong],
        ["faults injected", sum(stats.faults.values())],
        ["calls (server)", stats.calls],
        ["calls rejected (server)", stats.rejected],
        ["max calls in 1 s (server)", f"{stats.max_window} (limit {rate})"],
        ["token requests / issuances", f"{stats.token_requests} / {stats.token_issuances}"],
        ["elapsed", f"{elapsed:.1f} s ({len(asked) / elapsed:.0f}/s)"],
    ]
    table(f"Soak: {len(asked)} tickers at {rate}/s, 2% faults of every kind", ["", "count"], rows)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    asyncio.run(soak(1000 if quick else 5000, 500))
