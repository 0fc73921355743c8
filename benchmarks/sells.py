"""Before you sell: 300 intended sells checked on one account, and the same split over three.

``check_sells`` asks inquire-psbl-sell once per distinct ticker, at the appkey's limit, so its
ideal is distinct tickers ÷ 20/s. A person with three accounts (a 종합, a 연금저축, an ISA) has
three appkeys, each bound to its account with its own 20 calls/s: one :class:`~kis_async.KISClient`
per appkey, run together with ``asyncio.gather`` in one event loop, judges each account's share at
once, and the ideal is the busiest account's distinct tickers ÷ 20/s.

The orders are drawn (seeded) from the sample portfolio: most tickers have one order, some several
(judged on a running total), some ask for more than is sellable, a few tickers are sold out today
or never held. Split over three accounts, each ticker's orders go to one account (dealt in turn),
in the order given. Every simulated account holds the sample portfolio, so the split run must give
each order the verdict the one-account run gave it: that is checked, and a difference (or any
``error`` verdict) fails the benchmark after the table.

The simulator (20 calls/s per appkey, 30 ± 10 ms each way, counted on arrival) runs in its own
process, a fresh one per row, so it never steals the clients' CPU and its counts are the row's.

Columns: accounts; orders and distinct tickers (per account); calls the gateway counted; wall time
from opening the clients to the last verdict, token included; the ideal and ideal ÷ elapsed;
verdict counts; the most calls any one appkey made in any one second; calls rejected (EGW00201).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from _harness import Credentials, account_settings, client, codes, simulator, stats, table

from kis_async import Sell, SellCheck, Verdict
from kis_async.simulator import UNKNOWN_TICKERS, sample_portfolio

RATE, LATENCY, JITTER, SEED = 20, 0.03, 0.01, 2026
ACCOUNTS = 3
SOLD_OUT, NEVER_HELD = 4, 4
"""Tickers with one order each that KIS answers as not held: sold out today, or never bought."""
VERDICTS: tuple[Verdict, ...] = ("ok", "short", "not_held", "error")


def intended_sells(count: int) -> tuple[list[Sell], str]:
    """``count`` intended sells on ``count // 2`` tickers, in a seeded order, and the mix: a third
    of the held tickers have several orders, the other held tickers one."""
    rng = random.Random(SEED)
    portfolio = sample_portfolio()
    known = sorted(set(portfolio) - UNKNOWN_TICKERS)  # those answer an error by design
    sold_out = rng.sample([p for p in known if not portfolio[p].quantity], SOLD_OUT)
    never_held = [pdno for pdno in codes(100) if pdno not in portfolio][:NEVER_HELD]
    sellable = [p for p in known if portfolio[p].sellable]
    held = rng.sample(sellable, count // 2 - SOLD_OUT - NEVER_HELD)
    repeated = rng.sample(held, len(held) // 3)
    per_ticker = Counter(held + repeated)
    per_ticker.update(
        rng.choices(repeated, k=count - len(held) - len(repeated) - SOLD_OUT - NEVER_HELD)
    )
    oversold = set(rng.sample(held, len(held) // 6))
    orders: list[Sell] = []
    for pdno, times in per_ticker.items():
        most = portfolio[pdno].sellable // times
        low, high = (most + 1, 2 * most + 1) if pdno in oversold else (1, max(1, most))
        orders += [Sell(pdno, rng.randint(low, high)) for _ in range(times)]
    orders += [Sell(pdno, rng.randint(1, 100)) for pdno in sold_out + never_held]
    rng.shuffle(orders)
    asked = Counter[str]()
    for sell in orders:
        asked[sell.pdno] += sell.qty
    over = sum(asked[pdno] > portfolio[pdno].sellable for pdno in per_ticker)
    most_orders = max(per_ticker.values())
    mix = (
        f"The {len(orders)} orders: {len(held)} held tickers ({len(held) - len(repeated)} with one "
        f"order, {len(repeated)} with 2 to {most_orders}); on {over} of them the orders "
        f"together ask more than is sellable; {SOLD_OUT} tickers sold out today and {NEVER_HELD} "
        f"never held, one order each: {len(per_ticker) + SOLD_OUT + NEVER_HELD} distinct tickers."
    )
    return orders, mix


def split(orders: Sequence[Sell], count: int) -> tuple[list[list[Sell]], dict[str, int]]:
    """Each ticker's orders to one of ``count`` accounts, tickers dealt in turn as they first
    appear; every share keeps the orders' order. Also returns each ticker's account."""
    tickers = dict.fromkeys(sell.pdno for sell in orders)
    account = {pdno: n % count for n, pdno in enumerate(tickers)}
    shares: list[list[Sell]] = [[] for _ in range(count)]
    for sell in orders:
        shares[account[sell.pdno]].append(sell)
    return shares, account


async def judged(url: str, credentials: Credentials, orders: list[Sell]) -> list[SellCheck]:
    """One account's share, judged by its own client (its appkey, its limit)."""
    async with client(url, RATE, credentials) as kis:
        return await kis.check_sells(orders)


async def run(url: str, shares: list[list[Sell]]) -> tuple[float, list[list[SellCheck]]]:
    """Every share at once, one client per account; the wall time and each share's verdicts."""
    settings = account_settings(len(shares))
    start = time.perf_counter()
    checks = await asyncio.gather(
        *(judged(url, each, share) for each, share in zip(settings, shares, strict=True))
    )
    return time.perf_counter() - start, checks


def ideal(shares: list[list[Sell]]) -> float:
    """Seconds at the limit: the busiest account's distinct tickers ÷ :data:`RATE`."""
    return max(len({sell.pdno for sell in share}) for share in shares) / RATE


def row(
    shares: list[list[Sell]], elapsed: float, checks: list[list[SellCheck]], server: dict[str, Any]
) -> list[object]:
    verdicts = Counter(check.verdict for share in checks for check in share)
    return [
        len(shares),
        " / ".join(str(len(share)) for share in shares),
        " / ".join(str(len({sell.pdno for sell in share})) for share in shares),
        f"{elapsed:.2f}",
        f"{ideal(shares):.2f}",
        f"{ideal(shares) / elapsed:.3f}",
        " / ".join(str(verdicts[verdict]) for verdict in VERDICTS),
        server["calls"],
        server["max_window"],
        server["rejected"],
    ]


HEADER = [
    "accounts",
    "orders",
    "distinct tickers",
    "elapsed s",
    "ideal s",
    "ideal ÷ elapsed",
    "ok / short / not_held / error",
    "calls (server)",
    "max in 1 s per appkey",
    "rejected",
]


def judgement(check: SellCheck) -> tuple[object, ...]:
    return check.pdno, check.qty, check.verdict, check.shortfall, check.ord_psbl_qty


def main(quick: bool) -> None:
    orders, mix = intended_sells(100 if quick else 300)
    shares, account = split(orders, ACCOUNTS)
    layouts = [[orders], shares]
    rows: list[list[object]] = []
    elapsed: list[float] = []
    runs: list[list[list[SellCheck]]] = []
    for layout in layouts:
        with simulator(RATE, LATENCY, JITTER, accounts=ACCOUNTS) as url:
            took, checks = asyncio.run(run(url, layout))
            rows.append(row(layout, took, checks, stats(url)))
        elapsed.append(took)
        runs.append(checks)
    title = (
        f"Before you sell: {len(orders)} intended sells, one account vs {ACCOUNTS}, "
        f"{RATE}/s per appkey, {LATENCY * 1000:.0f} ± {JITTER * 1000:.0f} ms each way"
    )
    table(title, HEADER, rows)
    print(f"\n{mix}")
    best = ideal(layouts[0]) / ideal(layouts[1])
    print(
        f"{ACCOUNTS} accounts against one, this run: {elapsed[0] / elapsed[1]:.2f}× as fast "
        f"({elapsed[0]:.2f} s ÷ {elapsed[1]:.2f} s; the ideal's {best:.2f}×)."
    )
    [alone], split_run = runs
    answers = [iter(share) for share in split_run]
    merged = [next(answers[account[sell.pdno]]) for sell in orders]
    differ = sum(judgement(a) != judgement(b) for a, b in zip(alone, merged, strict=True))
    errors = sum(check.verdict == "error" for check in [*alone, *merged])
    if differ or errors:
        raise SystemExit(
            f"MISMATCH: {differ} of {len(orders)} orders judged differently over {ACCOUNTS} "
            f"accounts than on one, {errors} error verdicts"
        )
    print(
        f"Verdicts: over {ACCOUNTS} accounts every one of the {len(orders)} orders was judged as "
        "on one account; no errors."
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main("--quick" in sys.argv)
