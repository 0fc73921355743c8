"""One of several processes sharing an appkey.

``python redis_worker.py URL REDIS_URL FIRST COUNT RATE [RETRIES]`` checks COUNT tickers from
FIRST and prints one JSON line: how many succeeded and failed, and what the client saw (refusals,
retries, the pace it ended at). ``REDIS_URL`` "-" means no Redis; ``cluster:redis://HOST:PORT``
hands the client a ``RedisCluster`` found from that node (``redis=``), closed here after it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from kis_async import KISClient, RetryPolicy
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET

CLUSTER = "cluster:"


async def main(url: str, redis_url: str, first: int, count: int, rate: float, retries: int) -> None:
    cluster = None
    if redis_url.startswith(CLUSTER):
        from redis.asyncio import RedisCluster

        cluster = RedisCluster.from_url(redis_url.removeprefix(CLUSTER))
    client = KISClient(
        DEMO_APP_KEY,
        DEMO_APP_SECRET,
        DEMO_ACCOUNT,
        base_url=url,
        rate_limit=rate,
        token_cache=None,
        redis_url=None if redis_url == "-" or cluster is not None else redis_url,
        redis=cluster,
        retry=RetryPolicy(max_retries=retries),
    )
    try:
        async with client:
            batch = await client.check_sellable([f"{first + i:06d}" for i in range(count)])
            stats = client.stats
    finally:
        if cluster is not None:
            await cluster.aclose()
    report = {
        "ok": len(batch.results),
        "failed": len(batch.errors),
        "errors": sorted({type(e).__name__ for e in batch.errors.values()}),
        "refusals": stats.refusals,
        "retries": stats.retries,
        "pace": stats.pace,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    url, redis_url, first, count, rate = sys.argv[1:6]
    retries = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    asyncio.run(main(url, redis_url, int(first), int(count), float(rate), retries))
