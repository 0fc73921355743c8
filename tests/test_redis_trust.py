"""Redis is input, not truth: what a client reads from it is bounded and checked (issue 21).

Anyone who can write to the Redis can write any value under kis_async's keys; these tests write
such values into a real redis-server and check that the client stays within its own
configuration, says so at WARNING, and is not taken for a Redis outage.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
import redis.asyncio as aioredis

from kis_async import endpoints
from kis_async.pace import MAX_MARGIN, MIN_RATE, Pace
from kis_async.pacing import Call, Priority
from kis_async.redis_backend import Keys, RedisPacer

from .test_redis import RedisServer, _redis_binary

CALL = Call(endpoints.SELLABLE.tr_id, Priority.BULK)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer(_redis_binary())
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
async def connection(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


def _pace(**changes: object) -> bytes:
    """A pace as a client configured for 20/s and a 20 ms margin stores it, with ``changes``."""
    pace: dict[str, object] = {"ceiling": 20.0, "base_margin": 0.02, "rate": 20.0, "margin": 0.02}
    return msgspec.json.encode({**pace, **changes})


@pytest.mark.parametrize(
    "stored",
    [
        _pace(rate=1e6),
        _pace(rate=0),
        _pace(rate=1e-6),
        _pace(rate=-5),
        _pace(margin=-1),
        _pace(margin=MAX_MARGIN * 2),
        _pace(ceiling=1e6, rate=1e6),
        _pace(base_margin=0.0),
        _pace(changed_at=5.0).replace(b"5.0", b"1e400"),
        _pace(wall=5.0).replace(b"5.0", b"-1e400"),
        _pace(wary_steps=10**6),
        b'{"rate": "fast"}',
        b"\xff not json",
    ],
    ids=[
        "rate 1e6",
        "rate 0",
        "rate 1e-6",
        "rate negative",
        "margin negative",
        "margin too wide",
        "another ceiling",
        "another base margin",
        "changed_at infinite",
        "wall infinite",
        "wary steps huge",
        "wrong type",
        "not json",
    ],
)
async def test_a_shared_pace_out_of_bounds_is_corrupt_and_the_configured_one_is_kept(
    connection: aioredis.Redis, caplog: pytest.LogCaptureFixture, stored: bytes
) -> None:
    keys = Keys("trust-pace")
    await connection.hset(keys.pace(20, 0.02), mapping={"version": "7", "pace": stored})
    pacer = RedisPacer(connection, keys, 20.0)
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        for _ in range(3):
            await pacer.acquire(CALL)
    assert pacer.pace == Pace.start(20.0, 0.02)
    assert MIN_RATE <= pacer.pace.rate <= 20.0
    warnings = [r for r in caplog.records if "pace stored in Redis is corrupt" in r.message]
    assert len(warnings) == 1, "said once"


async def test_a_believable_shared_pace_is_adopted(connection: aioredis.Redis) -> None:
    keys = Keys("trust-pace-good")
    stored = _pace(rate=12.0, wall=13.0, changed_at=5.0, margin=0.04)
    await connection.hset(keys.pace(20, 0.02), mapping={"version": "3", "pace": stored})
    pacer = RedisPacer(connection, keys, 20.0)
    await pacer.acquire(CALL)
    assert pacer.pace == Pace(20.0, 0.02, 12.0, 0.04, wall=13.0, changed_at=5.0)
