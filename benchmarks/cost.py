"""Cost per call on the client: process CPU ÷ calls, and the decode step alone.

The simulator runs in its own process with its limit and latency out of the way, so the CPU
counted here is the client's: pacing, token, request, retries, envelope check and decoding.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import timeit
from decimal import Decimal

from _harness import client, codes, simulator, table

from kis_async import SellableQuantity
from kis_async.models import decode_sellable, pick_sellable

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


async def client_cpu(url: str, count: int) -> tuple[float, float]:
    async with client(url, 100_000, max_concurrency=64) as kis:
        await kis.check_sellable(codes(200))  # warm: token, connections
        cpu, wall = time.process_time(), time.perf_counter()
        batch = await kis.check_sellable(codes(count))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert batch.ok
    return cpu, wall


def main(quick: bool) -> None:
    count = 2000 if quick else 10_000
    with simulator(1_000_000) as url:
        cpu, wall = asyncio.run(client_cpu(url, count))
    assert ours(BODY) == by_hand(BODY)
    loops = 20_000
    t_ours = min(timeit.repeat(lambda: ours(BODY), number=loops, repeat=5)) / loops
    t_hand = min(timeit.repeat(lambda: by_hand(BODY), number=loops, repeat=5)) / loops
    table(
        "Client cost per call",
        ["measure", "value", "ratio"],
        [
            [f"client CPU per call ({count} calls)", f"{cpu / count * 1e6:.0f} µs", "-"],
            [
                "calls/s one process sustains",
                f"{count / wall:.0f}",
                f"{count / wall / 20:.0f}× the limit",
            ],
            ["decode: msgspec, one reused decoder", f"{t_ours * 1e6:.2f} µs", "1.00"],
            [
                "decode: json.loads + typed by hand",
                f"{t_hand * 1e6:.2f} µs",
                f"{t_hand / t_ours:.2f}",
            ],
        ],
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
