"""Several processes on one appkey share one token and one call budget through a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from kis_async import APIError, CallBudgetError, SameTokenError, Token, TransportError, endpoints
from kis_async.auth import appkey_digest
from kis_async.pacing import Call, Priority
from kis_async.redis_backend import OUTAGE, Keys, RedisPacer, RedisTokenStore, _through_outage
from kis_async.simulator import DEMO_APP_KEY, Simulator

from .conftest import ClientFactory, codes
from .virtual_clock import VirtualClock

WORKER = Path(__file__).with_name("redis_worker.py")


class RedisServer:
    """A real redis-server on a loopback port, which a test may stop and start again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen([self.binary, *args], stdout=subprocess.DEVNULL)
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            if self.proc.poll() is not None:
                pytest.fail("redis-server exited at start")
            time.sleep(0.01)
        pytest.fail("redis-server did not start listening")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def _redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "redis-server is not installed (Debian package redis-server; .ci/run installs it)"
        )
    return binary


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    server = RedisServer(_redis_binary())
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
async def flushed(redis_url: str) -> str:
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    return redis_url


async def run_workers(
    url: str, redis_url: str, processes: int, each: int, rate: int, *, retries: int = 5
) -> list[Any]:
    async def one(n: int) -> Any:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            url,
            redis_url,
            str(100000 + n * each),
            str(each),
            str(rate),
            str(retries),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return json.loads(out)

    return list(await asyncio.gather(*(one(n) for n in range(processes))))


async def test_four_processes_share_one_token_and_one_budget(sim: Simulator, flushed: str) -> None:
    """Five Python processes on two busy cores wake late now and then, so a call can arrive
    early for its window and be refused; the pace learns from it. What must hold: every ticker
    answered, one token, and a budget shared (the control below is refused wholesale)."""
    rate = 50
    sim.config.rate_limit = rate
    sim.config.token_issue_interval = 60.0
    reports = await run_workers(sim.url, flushed, 4, 50, rate)
    assert [r["ok"] for r in reports] == [50] * 4, reports
    assert sim.stats.rejected <= 0.05 * sim.stats.calls, (sim.stats.rejected, reports)
    assert sim.stats.token_issuances == 1
    assert sim.stats.token_requests == 1


async def test_four_processes_learn_a_lower_limit_together(sim: Simulator, flushed: str) -> None:
    told, enforced = 60, 30
    sim.config.rate_limit = enforced
    reports = await run_workers(sim.url, flushed, 4, 40, told)
    assert [r["ok"] for r in reports] == [40] * 4, reports
    assert sim.stats.rejected <= 0.1 * sim.stats.calls, (sim.stats.rejected, reports)
    assert all(r["pace"] <= enforced for r in reports), "each process ends at the shared pace"


async def test_without_redis_the_same_processes_go_over_the_limit(sim: Simulator) -> None:
    """The control: each process pacing itself at the full rate is rejected by the server."""
    rate = 200
    sim.config.rate_limit = rate
    reports = await run_workers(sim.url, "-", 4, 200, rate, retries=0)
    assert sim.stats.max_window > rate
    assert sim.stats.rejected > 0
    assert sum(r["failed"] for r in reports) > 0
    assert sim.stats.token_requests == 4


async def test_redis_down_fails_closed(sim: Simulator, make_client: ClientFactory) -> None:
    async with make_client(redis_url="redis://127.0.0.1:9/0", token_issue_interval=60.0) as kis:
        batch = await kis.check_sellable(["005930", "000660"])
    assert len(batch.errors) == 2
    assert all(isinstance(e, TransportError) for e in batch.errors.values())
    assert sim.stats.calls == 0 and sim.stats.token_requests == 0


async def test_a_crashed_lock_holder_does_not_wedge_the_others(flushed: str) -> None:
    client = aioredis.Redis.from_url(flushed)
    try:
        keys = Keys("test")
        store = RedisTokenStore(client, keys, lock_timeout=5.0, poll=0.01)
        await client.set(keys.token_lock, "crashed-owner", px=150)
        async with store.lock():
            assert await client.get(keys.token_lock) != b"crashed-owner"
            await store.save(Token("t1", 4e9, 1e9))
        assert await client.get(keys.token_lock) is None
        assert await store.load() == Token("t1", 4e9, 1e9)
        await store.discard("other")
        assert await store.load() is not None
        await store.discard("t1")
        assert await store.load() is None
    finally:
        await client.aclose()


async def test_a_budget_booked_past_max_wait_refuses_the_call_as_its_own_condition(
    flushed: str,
) -> None:
    """Not a KIS envelope: nothing was sent, so there is no rt_cd, msg_cd or HTTP status."""
    client = aioredis.Redis.from_url(flushed)
    try:
        pacer = RedisPacer(client, Keys("max-wait"), 1.0, max_wait=0.5)
        call = Call(endpoints.SELLABLE.tr_id, Priority.BULK)
        await pacer.acquire(call)
        with pytest.raises(CallBudgetError) as refused:
            await pacer.acquire(call)
        assert not isinstance(refused.value, APIError)
        assert "max_wait" in refused.value.reason and "HTTP" not in refused.value.reason
    finally:
        await client.aclose()


async def test_a_short_redis_outage_is_ridden_out(
    sim: Simulator, make_client: ClientFactory
) -> None:
    """Redis restarted mid-batch (down about 2 s): the calls wait and go on, bounded."""
    server = RedisServer(_redis_binary())
    server.start()
    try:
        down = asyncio.Event()

        def crash() -> None:
            server.stop()
            down.set()

        sim.config.rate_limit = 50
        sim.after_calls(40, crash)
        async with make_client(rate_limit=50, redis_url=server.url) as kis:
            task = asyncio.create_task(kis.check_sellable(codes(150)))
            await down.wait()
            await asyncio.sleep(2.0)  # the outage itself, not a synchronisation
            server.start()
            done = await task
        assert done.ok, done.errors
        assert sim.stats.calls >= 150
    finally:
        server.stop()


async def test_waiting_on_a_dead_lock_holder_is_said_at_warning(
    flushed: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = aioredis.Redis.from_url(flushed)
    try:
        keys = Keys("test")
        store = RedisTokenStore(client, keys, lock_timeout=5.0, poll=0.01, warn_every=0.05)
        await client.set(keys.token_lock, "crashed-owner", px=300)
        with caplog.at_level(logging.WARNING, logger="kis_async"):
            async with store.lock():
                pass
        assert "another process's token lock" in caplog.text
    finally:
        await client.aclose()


async def test_redis_down_with_fail_open_goes_on_alone(
    sim: Simulator, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        async with make_client(redis_url="redis://127.0.0.1:9/0", redis_fail_open=True) as kis:
            batch = await kis.check_sellable(codes(20))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == 1
    assert "pacing this process alone" in caplog.text
    assert "keeps its own token" in caplog.text


def test_every_key_of_an_appkey_shares_one_hash_tag_and_none_holds_the_appkey() -> None:
    keys = Keys.of("PSappkey1234", "https://openapi.koreainvestment.com:9443")
    tag = appkey_digest("PSappkey1234", "https://openapi.koreainvestment.com:9443")
    named = [keys.departures, keys.next_slot, keys.pace(20, 0.02), keys.token, keys.token_lock]
    assert named == [
        f"kis_async:{{{tag}}}:departures",
        f"kis_async:{{{tag}}}:next",
        f"kis_async:{{{tag}}}:pace:20:0.02",
        f"kis_async:{{{tag}}}:token",
        f"kis_async:{{{tag}}}:token:lock",
    ]
    assert all("PSappkey1234" not in key and "koreainvestment" not in key for key in named)


async def test_a_client_writes_only_its_appkeys_named_keys(
    sim: Simulator, make_client: ClientFactory, flushed: str
) -> None:
    async with make_client(redis_url=flushed, rate_limit=50, token_issue_interval=60.0) as kis:
        assert (await kis.check_sellable(codes(30))).ok
    client = aioredis.Redis.from_url(flushed)
    try:
        written = {key.decode() for key in await client.keys("*")}
    finally:
        await client.aclose()
    keys = Keys.of(DEMO_APP_KEY, kis.base_url)
    assert {keys.departures, keys.next_slot, keys.token} <= written
    assert written <= {keys.departures, keys.next_slot, keys.pace(50, 0.02), keys.token}


def test_a_redis_outage_is_ridden_out_on_the_clients_clock() -> None:
    clock = VirtualClock()
    failures = iter([RedisConnectionError(), OSError(), RedisConnectionError()])

    async def command() -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "done"

    assert clock.run(_through_outage("token store", command, clock=clock)) == "done"
    assert 0 < clock.monotonic() <= 3 * OUTAGE.max_backoff


def test_a_redis_outage_that_lasts_fails_closed_and_fail_open_does_not_wait() -> None:
    clock = VirtualClock()

    async def down() -> None:
        raise RedisConnectionError

    with pytest.raises(TransportError, match="token store unreachable"):
        clock.run(_through_outage("token store", down, clock=clock))
    waited = clock.monotonic()
    assert 3 <= waited <= OUTAGE.max_retries * OUTAGE.max_backoff, "about a restart's time"
    with pytest.raises(TransportError, match="shared pacer unreachable"):
        clock.run(_through_outage("shared pacer", down, clock=clock, patient=False))
    assert clock.monotonic() == waited


@pytest.mark.parametrize("frees", [True, False], ids=["revoking frees one", "it does not"])
async def test_a_refused_token_handed_back_costs_two_issuances_across_redis_clients(
    sim: Simulator, make_client: ClientFactory, flushed: str, frees: bool
) -> None:
    """Two clients on one Redis stand for two processes: the first to renew revokes and
    re-issues under the Redis lock; the other uses the new token, or believes the dead mark."""
    sim.config.revoke_frees = frees
    sim.after_calls(1, sim.revoke_tokens)
    async with make_client(redis_url=flushed) as a, make_client(redis_url=flushed) as b:
        batches = await asyncio.gather(a.check_sellable(codes(15)), b.check_sellable(codes(15)))
    assert sim.stats.token_issuances == 3
    assert sim.stats.token_revocations == 1
    for batch in batches:
        if frees:
            assert batch.ok, batch.errors
        else:
            assert all(isinstance(e, SameTokenError) for e in batch.errors.values())


async def test_two_clients_over_redis_share_one_ledger_pace_per_account(
    sim: Simulator, make_client: ClientFactory, flushed: str
) -> None:
    """Two clients stand for two processes listing one account: once each has drawn EGW00215
    they book the ledger's slots in one schedule (1/s together), not one each (2/s)."""
    sim.config.ledger_limit = 1
    sim.portfolio = dict(list(sim.portfolio.items())[:110])
    held = [pdno for pdno, holding in sim.portfolio.items() if holding.quantity]
    async with make_client(redis_url=flushed) as a, make_client(redis_url=flushed) as b:
        lists = await asyncio.gather(a.held_tickers(), b.held_tickers())
        ledger_tr_ids = a.stats.ledger_tr_ids, b.stats.ledger_tr_ids
    assert all(listed == held for listed in lists)
    assert ledger_tr_ids == ((endpoints.BALANCE.tr_id,),) * 2
    assert sim.stats.ledger_max_window == 1
    assert sim.stats.ledger_rejected <= 4, "each joins once; after that one schedule"
    connection = aioredis.Redis.from_url(flushed)
    try:
        keys = [key.decode() async for key in connection.scan_iter("kis_async:*:ledger:*")]
    finally:
        await connection.aclose()
    assert keys and all(key.startswith("kis_async:{") for key in keys)
    assert not [key for key in keys if "50123456" in key], "the account is hashed"
