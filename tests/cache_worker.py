"""One of several processes that cold-start on one token cache file, without Redis.

``python cache_worker.py URL CACHE`` opens a client on the simulator at URL with the token cache
file CACHE, prints ``ready``, waits for a line on stdin (so that every worker asks for its token
at once), checks one ticker and prints one JSON line: how many tokens it had KIS issue.
"""

from __future__ import annotations

import asyncio
import json
import sys

from kis_async import KISClient
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET


async def main(url: str, cache: str) -> None:
    client = KISClient(DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT, base_url=url, token_cache=cache)
    async with client:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await client.sellable_quantity("005930")
        print(json.dumps({"issued": client.stats.token_issuances}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
