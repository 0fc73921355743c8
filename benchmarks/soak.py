"""Soak: 5,000 tickers through the simulator with every fault knob on at a low rate.

Every fault the simulator knows, the hostile ones included (a redirect to another host, a gzip
bomb, a 50 MB body, JSON nested 1000 deep, numbers KIS never sends, ambiguous rows, Retry-After,
terminal escapes, the account quoted in a message), at 2 % of calls, with the token revoked at a
quarter of the way and expired (the token endpoint failing once) at half-way. Request and answer
both cross a jittered network.

Prints what became of every ticker (ok, errored by reason, lost, duplicated, wrong), what the
server saw (calls, rejections, token issuances), and what leaked: requests that reached the host
the redirects pointed at, and any secret (appsecret, token, the full account number) in an error
message, a repr or the DEBUG log. Lost, duplicated, wrong and leaked must all be 0.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time
from collections import Counter

from _harness import CREDENTIALS, table
from aiohttp import web

from kis_async import KISClient, RetryPolicy
from kis_async.simulator import (
    HOSTILE,
    ORDINARY,
    UNKNOWN_TICKERS,
    Fault,
    Simulator,
    SimulatorConfig,
)

KINDS = tuple(f for f in ORDINARY if f is not Fault.TOKEN_EXPIRED) * 3 + tuple(HOSTILE)
"""Ordinary faults three times as likely as each hostile one."""


async def catcher() -> tuple[web.AppRunner, str, list[str]]:
    """Another host, counting what reaches it."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"rt_cd": "0"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}", seen


async def soak(count: int, rate: int) -> None:
    other, other_url, reached = await catcher()
    config = SimulatorConfig(
        rate_limit=rate,
        request_latency=0.01,
        request_jitter=0.005,
        latency=0.01,
        jitter=0.008,
        token_issue_interval=0.5,
        fault_rate=0.02,
        fault_kinds=KINDS,
        hang_for=5.0,
        redirect_to=other_url,
        retry_after=1.0,
        seed=2026,
    )
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("kis_async").addHandler(handler)
    logging.getLogger("kis_async").setLevel(logging.DEBUG)
    async with Simulator(config) as sim:
        held = [p for p in sim.portfolio if p not in UNKNOWN_TICKERS]
        asked = held + [f"{700000 + i:06d}" for i in range(count - len(held))]
        asked[100:102] = ["999999", "999990"]
        sim.after_calls(count // 4, sim.revoke_tokens)
        sim.after_calls(count // 2, lambda: (sim.expire_tokens(), sim.inject_token(Fault.HTML_502)))
        seen: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        shown: list[str] = []
        wrong = 0
        start = time.perf_counter()
        async with KISClient(
            *CREDENTIALS,
            base_url=sim.url,
            rate_limit=rate,
            token_cache=None,
            timeout=0.5,
            retry=RetryPolicy(max_retries=6, backoff=0.05, max_retry_after=1.0),
            token_issue_interval=0.5,
        ) as kis:
            async for outcome in kis.iter_sellable(asked):
                seen[outcome.pdno] += 1
                if outcome.error is not None:
                    error = outcome.error
                    reasons[f"{type(error).__name__} {getattr(error, 'msg_cd', '')}"] += 1
                    shown += [str(error), repr(error)]
                elif outcome.result is not None:
                    holding = sim.portfolio.get(outcome.pdno)
                    expected = holding.sellable if holding else 0
                    wrong += outcome.result.ord_psbl_qty != expected
            shown.append(repr(kis))
        elapsed = time.perf_counter() - start
        stats = sim.stats
        secrets = [CREDENTIALS[1], CREDENTIALS[2].partition("-")[0], *sim._tokens]
    logging.getLogger("kis_async").removeHandler(handler)
    await other.cleanup()
    texts = [*shown, log.getvalue()]
    leaked = sum(secret in text for secret in secrets for text in texts)
    hostile = sum(stats.faults[fault.value] for fault in HOSTILE)
    rows: list[list[object]] = [
        ["tickers asked", len(asked)],
        ["tickers ok", sum(seen.values()) - sum(reasons.values())],
        *[[f"  errored: {reason.strip()}", n] for reason, n in reasons.most_common()],
        ["tickers lost", len(set(asked) - set(seen))],
        ["tickers duplicated", sum(n - 1 for n in seen.values() if n > 1)],
        ["results with wrong numbers", wrong],
        ["faults injected (of them hostile)", f"{sum(stats.faults.values())} ({hostile})"],
        ["requests that reached the redirect's host", len(reached)],
        ["secrets in messages, reprs or DEBUG log", leaked],
        ["calls (server)", stats.calls],
        ["calls rejected (server)", stats.rejected],
        ["max calls in 1 s (server)", f"{stats.max_window} (limit {rate})"],
        ["token requests / issuances", f"{stats.token_requests} / {stats.token_issuances}"],
        ["elapsed", f"{elapsed:.1f} s ({len(asked) / elapsed:.0f}/s)"],
    ]
    table(
        f"Soak: {len(asked)} tickers at {rate}/s, 2% faults of every kind, hostile ones included",
        ["", "count"],
        rows,
    )


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    asyncio.run(soak(1000 if quick else 5000, 500))
