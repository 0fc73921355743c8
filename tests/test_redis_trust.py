"""Redis is input, not truth: what a client reads from it is bounded and checked (issue 21).

Anyone who can write to the Redis can write any value under kis_async's keys; these tests write
such values into a real redis-server and check that the client stays within its own
configuration, says so at WARNING, and is not taken for a Redis outage.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError

from kis_async import Token, TransportError, endpoints
from kis_async.pace import MAX_MARGIN, MIN_RATE, Pace
from kis_async.pacing import Call, Priority
from kis_async.redis_backend import (
    OUTAGE,
    OUTAGE_HOLD,
    Keys,
    Outage,
    RedisPacer,
    RedisTokenStore,
    _through_outage,
)
from kis_async.simulator import Simulator
from kis_async.tokencache import MAX_BYTES

from .conftest import ClientFactory, codes
from .test_redis import RedisServer, _redis_binary
from .virtual_clock import VirtualClock

CALL = Call(endpoints.SELLABLE.tr_id, Priority.BULK)


class SkippingClock:
    """A clock whose sleeps end at once, moving it on: a test over a real socket sees what the
    code waited without waiting it (a :class:`VirtualClock` refuses real I/O)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_800_000_000.0 + self.now

    async def sleep(self, seconds: float, /) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


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


async def _corrupt_departures(connection: aioredis.Redis, keys: Keys) -> None:
    await connection.set(keys.departures, "not a sorted set")


async def _corrupt_next(connection: aioredis.Redis, keys: Keys) -> None:
    await connection.set(keys.next_slot, "garbage")


async def _next_far_ahead(connection: aioredis.Redis, keys: Keys) -> None:
    await connection.set(keys.next_slot, "1e300")


async def _departure_far_ahead(connection: aioredis.Redis, keys: Keys) -> None:
    await connection.zadd(keys.departures, {"x:1": 1e300})


async def _version_not_a_count(connection: aioredis.Redis, keys: Keys) -> None:
    await connection.hset(keys.pace(1000, 0.02), mapping={"version": "9" * 40, "pace": "{}"})


@pytest.mark.parametrize(
    "corrupt",
    [
        _corrupt_departures,
        _corrupt_next,
        _next_far_ahead,
        _departure_far_ahead,
        _version_not_a_count,
    ],
    ids=[
        "departures not a set",
        "next not a number",
        "next a far future",
        "a departure far ahead",
        "version not a count",
    ],
)
async def test_a_corrupt_schedule_is_repaired_not_taken_for_an_outage(
    connection: aioredis.Redis, caplog: pytest.LogCaptureFixture, corrupt: object
) -> None:
    """Today the script's error was retried as if Redis were down, for seconds, and the call
    then failed as "unreachable" (or every call was refused as booked too far ahead)."""
    keys = Keys("trust-schedule")
    await corrupt(connection, keys)  # type: ignore[operator]
    clock = SkippingClock()
    pacer = RedisPacer(connection, keys, 1000.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        for _ in range(5):
            await pacer.acquire(CALL)
        await corrupt(connection, keys)  # type: ignore[operator]
        await pacer.acquire(CALL)
    assert clock.monotonic() < 0.1, "only the slots themselves waited: nothing ridden out"
    assert "unreachable" not in caplog.text
    warnings = [r for r in caplog.records if "keys in Redis are corrupt" in r.message]
    assert len(warnings) == 1, "said once, at WARNING"
    assert warnings[0].levelno == logging.WARNING
    assert float(await connection.get(keys.next_slot)) < 1e20


def test_redis_refusing_a_command_is_not_an_outage_but_a_failover_is() -> None:
    clock = VirtualClock()
    tries = 0

    async def refuses() -> None:
        nonlocal tries
        tries += 1
        raise ResponseError("user_script:1: attempt to compare nil with number")

    with pytest.raises(ResponseError):
        clock.run(_through_outage("shared pacer", refuses, clock=clock))
    assert tries == 1 and clock.monotonic() == 0
    failovers = iter([ReadOnlyError("READONLY"), ReadOnlyError("READONLY")])

    async def failing_over() -> str:
        failure = next(failovers, None)
        if failure is not None:
            raise failure
        return "done"

    assert clock.run(_through_outage("shared pacer", failing_over, clock=clock)) == "done"
    assert clock.monotonic() > 0, "a failover is ridden out"


@pytest.mark.parametrize(
    "stored",
    [b"x" * (MAX_BYTES + 1), b"\xff\xfe not json", b'{"access_token": 5}', b""],
    ids=["oversized", "undecodable", "wrong shape", "empty"],
)
async def test_a_token_value_oversized_or_undecodable_is_no_token(
    connection: aioredis.Redis, caplog: pytest.LogCaptureFixture, stored: bytes
) -> None:
    keys = Keys("trust-token")
    await connection.set(keys.token, stored)
    store = RedisTokenStore(connection, keys)
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        assert await store.load() is None
    assert stored == b"" or "token stored in Redis" in caplog.text
    await store.save(Token("fresh", 4e9, 1e9))
    assert await store.load() == Token("fresh", 4e9, 1e9), "the next issuance replaces it"


async def test_a_token_key_of_another_type_is_no_token(
    connection: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    keys = Keys("trust-token-type")
    await connection.hset(keys.token, mapping={"access_token": "x"})
    clock = SkippingClock()
    store = RedisTokenStore(connection, keys, clock=clock)
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        assert await store.load() is None
    assert "not a string" in caplog.text and clock.now == 0, "not ridden out as an outage"
    await store.save(Token("fresh", 4e9, 1e9))
    assert await store.load() == Token("fresh", 4e9, 1e9)


async def test_a_200_mb_token_value_is_not_read(connection: aioredis.Redis) -> None:
    """Today the whole value was read: a 200 MB value grew the process by about 760 MB."""
    keys = Keys("trust-token-big")
    await connection.setrange(keys.token, 200 * 1024 * 1024 - 1, b"x")
    store = RedisTokenStore(connection, keys)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert await store.load() is None
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024, f"grew {grown_kib} KiB"


class FlakyRedis:
    """Stands in for a redis-py client on a :class:`VirtualClock` (which refuses real sockets):
    every script fails as a dead connection while ``down``, and books at once otherwise."""

    def __init__(self) -> None:
        self.down = True
        self.tries = 0

    def register_script(self, script: str) -> object:
        async def run(**_: object) -> list[int]:
            self.tries += 1
            if self.down:
                raise RedisConnectionError("Connection closed by server.")
            return [0, 0]

        return run


RIDE_OUT = OUTAGE.max_retries * OUTAGE.max_backoff
"""The longest one ride-out waits."""


def test_an_established_outage_fails_the_remaining_calls_fast_then_is_probed() -> None:
    """Today each of the 20 calls rode the outage out by itself, one after another (81.5 s for
    the 20 on the client's clock, 180 tries; behind a proxy that stops forwarding, each ride-out
    took about 49 s)."""
    clock = VirtualClock()
    redis = FlakyRedis()
    pacer = RedisPacer(redis, Keys("outage"), 20.0, clock=clock)  # type: ignore[arg-type]

    async def calls(n: int) -> list[BaseException | object]:
        return list(
            await asyncio.gather(*(pacer.acquire(CALL) for _ in range(n)), return_exceptions=True)
        )

    failed = clock.run(calls(20))
    assert all(isinstance(f, TransportError) and f.source == "redis" for f in failed)
    assert "unreachable" in str(failed[-1])
    assert 3 <= clock.monotonic() <= RIDE_OUT, "one ride-out, not twenty"
    assert redis.tries == OUTAGE.max_retries + 1
    established = clock.monotonic()

    clock.run(clock.sleep(OUTAGE_HOLD))
    failed = clock.run(calls(5))
    assert all(isinstance(f, TransportError) for f in failed)
    assert clock.monotonic() == established + OUTAGE_HOLD, "the probe is one try, not a ride-out"
    assert redis.tries == OUTAGE.max_retries + 2

    redis.down = False
    clock.run(clock.sleep(OUTAGE_HOLD))
    assert not any(isinstance(r, BaseException) for r in clock.run(calls(5))), "Redis is back"


def test_an_outage_one_command_rode_out_fails_another_already_riding_it_out() -> None:
    """The token store and the pacer share one connection, so they share what they know."""
    clock = VirtualClock()
    outage = Outage()

    async def down() -> None:
        raise RedisConnectionError

    async def both() -> list[BaseException | None]:
        first = _through_outage("token store", down, clock=clock, outage=outage)

        async def later() -> None:
            # The first ride-out ends within 5.5 s (its delays are random, from half to all of
            # 0.1, 0.2, 0.4, 0.8, 1, 1, 1, 1 s); one started 3 s later could not end before
            # 5.75 s on its own, so it is the first's failure that stops it, every run.
            await clock.sleep(3.0)
            await _through_outage("shared pacer", down, clock=clock, outage=outage)

        return list(await asyncio.gather(first, later(), return_exceptions=True))

    results = clock.run(both())
    assert all(isinstance(r, TransportError) for r in results)
    assert clock.monotonic() <= RIDE_OUT, "the later one stopped when the first gave up"
    assert "not tried again" in str(results[1])


async def test_a_stopped_redis_costs_one_ride_out_not_one_per_ticker(
    sim: Simulator, make_client: ClientFactory
) -> None:
    """A real redis-server, stopped after the first batch: the next batch of ten fails closed
    after one ride-out (about 3-5 s), where today each ticker rode it out in turn (40 s)."""
    server = RedisServer(_redis_binary())
    server.start()
    try:
        async with make_client(redis_url=server.url, token_issue_interval=60.0) as kis:
            assert (await kis.check_sellable(codes(3))).ok
            server.stop()
            started = time.monotonic()
            batch = await kis.check_sellable(codes(10, start=200000))
            took = time.monotonic() - started
    finally:
        server.stop()
    assert len(batch.errors) == 10
    assert all(isinstance(e, TransportError) and e.source == "redis" for e in batch.errors.values())
    assert took < 2 * OUTAGE.max_retries * OUTAGE.max_backoff, f"{took:.1f} s"


@pytest.mark.parametrize("decode", [False, True], ids=["bytes", "a client that decodes"])
async def test_values_that_are_not_text_are_corrupt_whether_or_not_the_client_decodes(
    redis_url: str, caplog: pytest.LogCaptureFixture, decode: bool
) -> None:
    """A client handed in (``redis=``) may decode responses, and a byte that is not UTF-8 then
    fails in redis-py itself; today a pace version of such bytes failed every call, through
    either client, as an unexpected UnicodeDecodeError. The scripts return only printable ASCII,
    and the token store reads an undecodable token as none."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=decode)
    try:
        await client.flushdb()
        keys = Keys("trust-bytes")
        pace_key = keys.pace(20, 0.02)
        pacer = RedisPacer(client, keys, 20.0, clock=SkippingClock())
        store = RedisTokenStore(client, keys)
        with caplog.at_level(logging.WARNING, logger="kis_async"):
            await client.hset(pace_key, mapping={"version": b"\xff", "pace": _pace()})
            booking = await pacer.acquire(CALL)
            await client.hset(pace_key, mapping={"version": b"\xfe", "pace": b"\xff not json"})
            await pacer.refused(booking)
            await client.hset(pace_key, mapping={"version": "7", "pace": b"\xff not json"})
            await pacer.acquire(CALL)
            await client.set(keys.token, b"\xff\xfe")
            assert await store.load() is None
        assert pacer.pace == Pace.start(20.0, 0.02)
        assert "keys in Redis are corrupt" in caplog.text
        assert "pace stored in Redis is corrupt" in caplog.text
        assert "token stored in Redis is corrupt" in caplog.text
        await store.save(Token("fresh", 4e9, 1e9))
        assert await store.load() == Token("fresh", 4e9, 1e9), "the connection still serves"
    finally:
        await client.aclose()
