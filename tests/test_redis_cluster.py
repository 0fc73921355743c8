"""Redis as it is deployed: a three-node Redis Cluster on loopback (and Valkey's, where it is
installed), and a redis-py client handed in with ``redis=`` rather than a ``redis_url``."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio import RedisCluster
from redis.crc import key_slot

from kis_async import ArgumentError, TransportError
from kis_async.redis_backend import Keys
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, Simulator

from .cluster_nodes import Cluster, binaries
from .conftest import ClientFactory, codes
from .redis_worker import CLUSTER
from .test_redis import RedisServer, _redis_binary, run_workers


@pytest.fixture(scope="module", params=["redis", "valkey"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    server, cli = binaries(request.param)
    nodes = Cluster(server, cli, tmp_path_factory.mktemp(f"{request.param}-cluster"))
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
async def cluster_client(cluster: Cluster) -> AsyncIterator[RedisCluster]:
    """A client of the emptied cluster, closed after the test (it is the test's, not kis's)."""
    client = RedisCluster.from_url(cluster.url)
    await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    await client.aclose()


@pytest.fixture(scope="module")
def plain_url() -> Iterator[str]:
    server = RedisServer(_redis_binary())
    server.start()
    yield server.url
    server.stop()


async def test_a_batch_through_a_cluster_stays_under_the_limit_and_issues_one_token(
    sim: Simulator, make_client: ClientFactory, cluster_client: RedisCluster
) -> None:
    rate = 50
    sim.config.rate_limit = rate
    sim.config.token_issue_interval = 60.0
    async with make_client(rate_limit=rate, redis=cluster_client, token_issue_interval=60.0) as kis:
        batch = await kis.check_sellable(codes(120))
    assert batch.ok, batch.errors
    assert sim.stats.rejected <= 0.05 * sim.stats.calls, sim.stats.rejected
    assert sim.stats.token_issuances == 1
    keys = Keys.of(DEMO_APP_KEY, kis.base_url)
    assert await cluster_client.exists(keys.token, keys.departures) == 2
    assert await cluster_client.ping(), "the cluster handed in is left open"


async def test_two_clients_on_a_cluster_share_one_token_and_one_budget(
    sim: Simulator, make_client: ClientFactory, cluster: Cluster, cluster_client: RedisCluster
) -> None:
    """Two clients, each with its own cluster client, stand for two processes."""
    rate = 50
    sim.config.rate_limit = rate
    other = RedisCluster.from_url(cluster.url)
    try:
        async with (
            make_client(rate_limit=rate, redis=cluster_client) as a,
            make_client(rate_limit=rate, redis=other) as b,
        ):
            batches = await asyncio.gather(
                a.check_sellable(codes(60)), b.check_sellable(codes(60, start=200000))
            )
    finally:
        await other.aclose()
    assert all(batch.ok for batch in batches), [batch.errors for batch in batches]
    assert sim.stats.token_requests == 1
    assert sim.stats.rejected <= 0.05 * sim.stats.calls, sim.stats.rejected


async def test_four_processes_share_one_token_and_one_budget_on_a_cluster(
    sim: Simulator, cluster: Cluster, cluster_client: RedisCluster
) -> None:
    """As tests/test_redis.py's, each process finding the cluster from one node."""
    rate = 50
    sim.config.rate_limit = rate
    sim.config.token_issue_interval = 60.0
    reports = await run_workers(sim.url, f"{CLUSTER}{cluster.url}", 4, 50, rate)
    assert [r["ok"] for r in reports] == [50] * 4, reports
    assert sim.stats.rejected <= 0.05 * sim.stats.calls, (sim.stats.rejected, reports)
    assert sim.stats.token_issuances == 1
    assert sim.stats.token_requests == 1


async def test_two_clients_on_a_cluster_share_one_ledger_pace_per_account(
    sim: Simulator, make_client: ClientFactory, cluster_client: RedisCluster
) -> None:
    sim.config.ledger_limit = 1
    sim.portfolio = dict(list(sim.portfolio.items())[:110])
    held = [pdno for pdno, holding in sim.portfolio.items() if holding.quantity]
    async with make_client(redis=cluster_client) as a, make_client(redis=cluster_client) as b:
        lists = await asyncio.gather(a.held_tickers(), b.held_tickers())
    assert all(listed == held for listed in lists)
    assert sim.stats.ledger_max_window == 1
    assert sim.stats.ledger_rejected <= 4, "each joins once; after that one schedule"


async def test_every_key_of_an_appkey_lands_in_one_slot_of_the_cluster(
    sim: Simulator, make_client: ClientFactory, cluster: Cluster, cluster_client: RedisCluster
) -> None:
    """What the client wrote, the ledger's keys included, and every key it names (the lock is
    gone once released): one slot, as the cluster itself computes it, so one node."""
    sim.config.ledger_limit = 1
    sim.portfolio = dict(list(sim.portfolio.items())[:60])
    async with make_client(redis=cluster_client, token_issue_interval=60.0) as kis:
        assert (await kis.check_sellable(codes(10))).ok
        await kis.held_tickers()
    keys = Keys.of(DEMO_APP_KEY, kis.base_url)
    written = [key.decode() async for key in cluster_client.scan_iter("kis_async:*")]
    assert any(":ledger:" in key for key in written), written
    named = [keys.departures, keys.next_slot, keys.pace(1000, 0.02), keys.token, keys.token_lock]
    ledger = keys.ledger(DEMO_ACCOUNT)
    named += [ledger.departures, ledger.next_slot, ledger.pace(1000, 0.02)]
    slots = {await cluster_client.cluster_keyslot(key) for key in [*written, *named]}
    assert slots == {key_slot(keys.token.encode())}
    holding = set()
    for port in cluster.ports:
        node = aioredis.Redis(host="127.0.0.1", port=port)
        try:
            if await node.dbsize():
                holding.add(port)
        finally:
            await node.aclose()
    assert len(holding) == 1, "every key on one node"


async def test_a_handed_in_plain_redis_is_used_and_left_open(
    sim: Simulator, make_client: ClientFactory, plain_url: str
) -> None:
    client = aioredis.Redis.from_url(plain_url)
    try:
        await client.flushdb()
        async with make_client(redis=client) as a, make_client(redis=client) as b:
            batches = await asyncio.gather(a.check_sellable(codes(15)), b.check_sellable(codes(15)))
        assert all(batch.ok for batch in batches)
        assert sim.stats.token_requests == 1, "one token, through the Redis handed in"
        assert await client.ping(), "kis closed, the client handed in still answers"
        assert await client.exists(Keys.of(DEMO_APP_KEY, a.base_url).token)
    finally:
        await client.aclose()


async def test_a_handed_in_client_that_decodes_responses_works(
    sim: Simulator, make_client: ClientFactory, plain_url: str
) -> None:
    client = aioredis.Redis.from_url(plain_url, decode_responses=True)
    try:
        await client.flushdb()
        async with make_client(redis=client) as a, make_client(redis=client) as b:
            batches = await asyncio.gather(a.check_sellable(codes(15)), b.check_sellable(codes(15)))
        assert all(batch.ok for batch in batches)
        assert sim.stats.token_requests == 1
    finally:
        await client.aclose()


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail closed", "fail open"])
async def test_a_cluster_that_cannot_be_reached_is_a_redis_outage(
    sim: Simulator, make_client: ClientFactory, caplog: pytest.LogCaptureFixture, fail_open: bool
) -> None:
    """redis-py's cluster client says so with its own exception, not a RedisError; it is an
    outage all the same: ridden out, then the calls fail closed (or go on alone)."""
    unreachable = RedisCluster(host="127.0.0.1", port=9)
    try:
        with caplog.at_level(logging.WARNING, logger="kis_async"):
            async with make_client(redis=unreachable, redis_fail_open=fail_open) as kis:
                batch = await kis.check_sellable(["005930", "000660"])
    finally:
        await unreachable.aclose()
    if fail_open:
        assert batch.ok, batch.errors
        assert "pacing this process alone" in caplog.text
    else:
        assert len(batch.errors) == 2
        errors = batch.errors.values()
        assert all(isinstance(e, TransportError) and e.source == "redis" for e in errors)
        assert sim.stats.calls == 0 and sim.stats.token_requests == 0


@pytest.fixture
async def unconnected() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(host="127.0.0.1", port=9)
    yield client
    await client.aclose()


async def test_redis_and_redis_url_together_are_refused(
    make_stub_client: ClientFactory, unconnected: aioredis.Redis
) -> None:
    with pytest.raises(ArgumentError, match="not both") as refused:
        make_stub_client(redis=unconnected, redis_url="redis://127.0.0.1:6379/0")
    assert refused.value.argument == "redis"


@pytest.mark.parametrize(
    ("given", "named"),
    [
        (redis.Redis(host="127.0.0.1", port=9), "redis.client.Redis"),
        ("redis://127.0.0.1:6379/0", "builtins.str"),
        (object(), "builtins.object"),
    ],
    ids=["a synchronous client", "a URL", "something else"],
)
def test_a_redis_of_the_wrong_type_is_refused_naming_it(
    make_stub_client: ClientFactory, given: object, named: str
) -> None:
    with pytest.raises(TypeError, match=f"redis must be a redis.asyncio.Redis .*got {named}$"):
        make_stub_client(redis=given)


def test_without_the_redis_package_a_redis_client_is_refused_without_importing_it(
    tmp_path: Path,
) -> None:
    """A whole interpreter start, redis hidden before anything is imported: the check says what
    was given rather than failing to import redis."""
    hide = tmp_path / "no-redis"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['redis'] = None\n")
    program = (
        "from kis_async import KISClient\n"
        "try:\n"
        "    KISClient('key', 'secret', '12345678-01', token_cache=None, redis=object())\n"
        "except TypeError as exc:\n"
        "    print(exc)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(hide)},
        check=True,
    )
    assert ran.stdout.strip().endswith("got builtins.object"), ran


def test_every_named_key_of_an_appkey_shares_one_hash_slot() -> None:
    """Without a server: redis-py's own slot function over every name :class:`Keys` gives."""
    keys = Keys.of("PSappkey1234", "https://openapi.koreainvestment.com:9443")
    ledger = keys.ledger("50123456-01")
    named = [keys.departures, keys.next_slot, keys.pace(20, 0.02), keys.token, keys.token_lock]
    named += [ledger.departures, ledger.next_slot, ledger.pace(20, 0.02)]
    assert len({key_slot(key.encode()) for key in named}) == 1
