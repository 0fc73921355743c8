"""The usual ways, side by side with kis_async, against the same simulator in one run.

- "requests + sleep": the provider's sample pattern — a token fetched at start, then a sequential
  loop of blocking ``requests.get`` calls with ``time.sleep(0.05)`` between them.
- "gather + AsyncLimiter(20, 1)": every ticker at once through a plain aiolimiter limiter.
Reported: elapsed ÷ ours, and what the server rejected for each.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp
import requests
from _harness import CREDENTIALS, client, codes, simulator, stats, table
from aiolimiter import AsyncLimiter

from kis_async import endpoints, spec

RATE, LATENCY, JITTER = 20, 0.03, 0.01


def _headers(url: str) -> dict[str, str]:
    key, secret, _ = CREDENTIALS
    grant = {"grant_type": "client_credentials", "appkey": key, "appsecret": secret}
    token = requests.post(url + spec.TOKEN_PATH, json=grant, timeout=10).json()["access_token"]
    return {
        "appkey": key,
        "appsecret": secret,
        "authorization": f"Bearer {token}",
        "tr_id": endpoints.SELLABLE.tr_id,
        "custtype": "P",
        "content-type": "application/json; charset=utf-8",
    }


def _query(pdno: str) -> dict[str, str]:
    cano, _, product = CREDENTIALS[2].partition("-")
    return {"CANO": cano, "ACNT_PRDT_CD": product, "PDNO": pdno}


def requests_loop(url: str, pdnos: list[str]) -> tuple[float, int]:
    """The provider's sample: one blocking call after another; (elapsed, failed)."""
    headers = _headers(url)
    failed = 0
    start = time.perf_counter()
    with requests.Session() as http:
        for pdno in pdnos:
            body = http.get(
                url + endpoints.SELLABLE.path, params=_query(pdno), headers=headers
            ).json()
            failed += body["rt_cd"] != "0"
            time.sleep(0.05)
    return time.perf_counter() - start, failed


async def naive_gather(url: str, pdnos: list[str]) -> tuple[float, int]:
    """Every ticker at once through ``AsyncLimiter(20, 1)``; (elapsed, failed).

    The token is fetched in a thread, so a simulator on the same event loop can answer it.
    """
    headers = await asyncio.to_thread(_headers, url)
    limiter = AsyncLimiter(RATE, 1)
    async with aiohttp.ClientSession() as http:

        async def one(pdno: str) -> bool:
            async with limiter:
                target = url + endpoints.SELLABLE.path
                async with http.get(target, params=_query(pdno), headers=headers) as resp:
                    return bool((await resp.json())["rt_cd"] != "0")

        start = time.perf_counter()
        failed = sum(await asyncio.gather(*(one(p) for p in pdnos)))
    return time.perf_counter() - start, failed


async def ours(url: str, pdnos: list[str]) -> tuple[float, int]:
    async with client(url, RATE) as kis:
        await kis.sellable_quantity("005930")
        start = time.perf_counter()
        batch = await kis.check_sellable(pdnos)
    return time.perf_counter() - start, len(batch.errors)


def main(quick: bool) -> None:
    pdnos = codes(60 if quick else 200)
    runs = [
        ("kis_async", lambda url: asyncio.run(ours(url, pdnos))),
        ("requests + sleep(0.05)", lambda url: requests_loop(url, pdnos)),
        ("gather + AsyncLimiter(20, 1)", lambda url: asyncio.run(naive_gather(url, pdnos))),
    ]
    measured = []
    for name, run in runs:
        with simulator(RATE, LATENCY, JITTER) as url:
            elapsed, failed = run(url)
            seen = stats(url)
        measured.append((name, elapsed, failed, seen))
    base = measured[0][1]
    rows: list[list[object]] = [
        [
            name,
            f"{elapsed:.2f}",
            f"{elapsed / base:.2f}",
            seen["rejected"],
            failed,
            seen["max_window"],
        ]
        for name, elapsed, failed, seen in measured
    ]
    table(
        f"{len(pdnos)} tickers at {RATE}/s, {LATENCY * 1000:.0f} ± {JITTER * 1000:.0f} ms latency",
        ["client", "elapsed s", "÷ ours", "rejected by server", "tickers failed", "max in 1 s"],
        rows,
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
