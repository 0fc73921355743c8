"""Cost per call on the client: process CPU ÷ calls, and the decode step alone.

The simulator runs in its own process with its limit and latency out of the way, so the CPU
counted here is the client's: pacing, token, request, retries, envelope check and decoding.

The floor it is compared with is a bare aiohttp GET loop sending the same requests to the same
simulator process: the same 64 workers pulling from one iterator, one session with a
``TCPConnector(limit=64)``, the same headers and query, each body read with ``resp.read()`` and
nothing else. The two are measured in alternating rounds and each keeps its best round, so a
neighbour's burst on a small machine does not decide the ratio.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
from _harness import CREDENTIALS, client, codes, simulator, table

from kis_async import SellableQuantity, endpoints, spec
from kis_async.auth import Token
from kis_async.models import decode_sellable, pick_sellable
from kis_async.tokencache import TokenCache

CONCURRENCY = 64
ROUNDS = 3

BODY = json.dumps(
    {
        "rt_cd": "0",
        "msg_cd": "KIOK0510",
        "msg1": "조회가 완료되었습니다",
        "output1": {
            "pdno": "005930",
            "prdt_name": "삼성전자",
            "buy_qty": "0",
            "sll_qty": "0",
            "cblc_qty": "120",
            "nsvg_qty": "0",
            "ord_psbl_qty": "120",
            "pchs_avg_pric": "71250.0000",
            "pchs_amt": "8550000",
            "now_pric": "72100",
            "evlu_amt": "8652000",
            "evlu_pfls_amt": "102000",
            "evlu_pfls_rt": "1.19",
        },
    },
    ensure_ascii=False,
).encode()


def by_hand(body: bytes) -> SellableQuantity:
    out = json.loads(body)["output1"]
    return SellableQuantity(
        pdno=out["pdno"],
        prdt_name=out["prdt_name"],
        buy_qty=int(out["buy_qty"] or 0),
        sll_qty=int(out["sll_qty"] or 0),
        cblc_qty=int(out["cblc_qty"] or 0),
        nsvg_qty=int(out["nsvg_qty"] or 0),
        ord_psbl_qty=int(out["ord_psbl_qty"] or 0),
        pchs_avg_pric=Decimal(out["pchs_avg_pric"] or 0),
        pchs_amt=Decimal(out["pchs_amt"] or 0),
        now_pric=Decimal(out["now_pric"] or 0),
        evlu_amt=Decimal(out["evlu_amt"] or 0),
        evlu_pfls_amt=Decimal(out["evlu_pfls_amt"] or 0),
        evlu_pfls_rt=Decimal(out["evlu_pfls_rt"] or 0),
    )


def ours(body: bytes) -> SellableQuantity:
    return pick_sellable(decode_sellable(body, "005930"), "005930")


async def issue_token(url: str) -> Token:
    """One POST for the token both sides use (the simulator issues one a minute per appkey)."""
    key, secret, _ = CREDENTIALS
    grant = {"grant_type": "client_credentials", "appkey": key, "appsecret": secret}
    async with aiohttp.ClientSession() as http, http.post(url + spec.TOKEN_PATH, json=grant) as r:
        answer = await r.json()
    now = time.time()
    return Token(answer["access_token"], now + float(answer["expires_in"]), now)


def bare_request(
    url: str, token: str
) -> tuple[str, dict[str, str], Callable[[str], dict[str, str]]]:
    """What kis_async sends for one ticker: the URL, the headers, the query."""
    key, secret, account = CREDENTIALS
    cano, _, product = account.partition("-")
    headers = {
        "content-type": "application/json; charset=utf-8",
        "custtype": "P",
        "appkey": key,
        "appsecret": secret,
        "authorization": f"Bearer {token}",
        "tr_id": endpoints.SELLABLE.tr_id,
    }
    return (
        url + endpoints.SELLABLE.path,
        headers,
        lambda pdno: {"CANO": cano, "ACNT_PRDT_CD": product, "PDNO": pdno},
    )


def bare_loop(
    url: str, token: str
) -> Callable[[aiohttp.ClientSession, list[str]], Awaitable[None]]:
    """The floor: the same GETs as kis_async, each body read and nothing else."""
    target, headers, _ = bare_request(url, token)
    cano, _, product = CREDENTIALS[2].partition("-")

    async def run(http: aiohttp.ClientSession, pdnos: list[str]) -> None:
        pending = iter(pdnos)

        async def work() -> None:
            for pdno in pending:
                query = {"CANO": cano, "ACNT_PRDT_CD": product, "PDNO": pdno}
                async with http.get(target, params=query, headers=headers) as resp:
                    await resp.read()

        await asyncio.gather(*(work() for _ in range(min(CONCURRENCY, len(pdnos)))))

    return run


async def bare_answers_ok(http: aiohttp.ClientSession, url: str, token: str) -> bool:
    """Outside the timing: the bare loop's request is one the simulator answers with rt_cd 0."""
    target, headers, query = bare_request(url, token)
    async with http.get(target, params=query("005930"), headers=headers) as resp:
        return resp.status == 200 and (await resp.json())["rt_cd"] == "0"


async def measure(url: str, count: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(CPU, wall) of ``count`` calls per round, kis_async and the bare loop taking turns."""
    token = await issue_token(url)
    tickers = codes(count)
    samples: dict[str, list[tuple[float, float]]] = {"kis_async": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        cache = TokenCache(Path(tmp) / "token.json", app_key=CREDENTIALS[0], host=url)
        cache.save(token)
        bare = bare_loop(url, token.access_token)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with (
            client(url, 100_000, max_concurrency=CONCURRENCY, token_cache=cache.path) as kis,
            aiohttp.ClientSession(connector=connector) as http,
        ):
            warm = codes(200)  # token, connections
            assert (await kis.check_sellable(warm)).ok
            await bare(http, warm)
            assert await bare_answers_ok(http, url, token.access_token)
            assert kis.token_issuances == 0

            async def kis_round() -> None:
                batch = await kis.check_sellable(tickers)
                assert batch.ok

            async def bare_round() -> None:
                await bare(http, tickers)

            for _ in range(rounds):
                for name, run in (("kis_async", kis_round), ("bare", bare_round)):
                    gc.collect()
                    cpu, wall = time.process_time(), time.perf_counter()
                    await run()
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                    samples[name].append((cpu, wall))
    return samples


def main(quick: bool, rounds: int | None = None) -> None:
    count = 2000 if quick else 10_000
    rounds = rounds or (2 if quick else ROUNDS)
    with simulator(1_000_000) as url:
        samples = asyncio.run(measure(url, count, rounds))
    per_call = {name: [cpu / count * 1e6 for cpu, _ in runs] for name, runs in samples.items()}
    ours_cpu, bare_cpu = min(per_call["kis_async"]), min(per_call["bare"])
    wall = min(wall for _, wall in samples["kis_async"])
    ratio = f"{ours_cpu / bare_cpu:.2f}"

    def rounds_of(name: str) -> str:
        return " ".join(f"{value:.0f}" for value in per_call[name])

    assert ours(BODY) == by_hand(BODY)
    loops = 20_000
    t_ours = min(timeit.repeat(lambda: ours(BODY), number=loops, repeat=5)) / loops
    t_hand = min(timeit.repeat(lambda: by_hand(BODY), number=loops, repeat=5)) / loops
    table(
        f"Client cost per call (best of {rounds} alternating rounds)",
        ["measure", "value", "ratio", "every round"],
        [
            [
                f"kis_async: client CPU per call ({count} calls)",
                f"{ours_cpu:.0f} µs",
                ratio,
                rounds_of("kis_async"),
            ],
            [
                f"bare aiohttp GET loop: CPU per call ({count} calls)",
                f"{bare_cpu:.0f} µs",
                "1.00",
                rounds_of("bare"),
            ],
            [
                "kis_async calls/s one process sustains",
                f"{count / wall:.0f}",
                f"{count / wall / 20:.0f}× the limit",
                "",
            ],
            ["decode: msgspec, one reused decoder", f"{t_ours * 1e6:.2f} µs", "1.00", ""],
            [
                "decode: json.loads + typed by hand",
                f"{t_hand * 1e6:.2f} µs",
                f"{t_hand / t_ours:.2f}",
                "",
            ],
        ],
    )


if __name__ == "__main__":
    main(
        "--quick" in sys.argv,
        int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else None,
    )
