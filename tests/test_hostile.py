"""A hostile network and a misbehaving gateway: never leak, never blow up, never lose the batch.

Each test is one probe an attacker (or a broken proxy) would make, against the simulator or a
small aiohttp server over loopback.
"""

from __future__ import annotations

import asyncio
import gc
import resource
import threading
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from kis_async import (
    APIError,
    AuthError,
    ClientClosedError,
    DecodeError,
    KISClient,
    RequestTimeout,
    RetryPolicy,
    TransportError,
    batch,
)
from kis_async.clock import SystemClock
from kis_async.simulator import DEMO_APP_SECRET, Fault, Simulator

from .conftest import ClientFactory, Stub, codes, retries


class SkippingClock(SystemClock):
    """The system's clock, except that a wait of a second or more is noted and not waited."""

    def __init__(self) -> None:
        self.skipped: list[float] = []

    async def sleep(self, seconds: float, /) -> None:
        if seconds >= 1:
            self.skipped.append(seconds)
            seconds = 0
        await asyncio.sleep(seconds)


class Catcher:
    """Another host: records whatever reaches it."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path, dict(request.headers), body))
        return web.json_response({"rt_cd": "0", "output1": {"pdno": "005930"}})


@pytest.fixture
async def catcher() -> AsyncIterator[Catcher]:
    catcher = Catcher()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", catcher.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    catcher.url = f"http://{host}:{port}"
    yield catcher
    await runner.cleanup()


async def test_a_redirect_is_never_followed(
    sim: Simulator, kis: KISClient, catcher: Catcher
) -> None:
    sim.config.redirect_to = catcher.url
    sim.inject(Fault.REDIRECT, pdno="005930")
    sim.inject(Fault.REDIRECT_307, pdno="000660")
    batch = await kis.check_sellable(["005930", "000660", "035420"])
    assert catcher.requests == [], "nothing was sent to the other host"
    assert list(batch.results) == ["035420"]
    for pdno, status in (("005930", 302), ("000660", 307)):
        error = batch.errors[pdno]
        assert isinstance(error, TransportError) and error.status == status
        assert f"HTTP {status} redirect refused" in str(error)
    assert sim.stats.per_pdno["005930"] == 1, "a redirect is not retried"


async def test_a_token_endpoint_redirect_does_not_resend_the_appsecret(
    sim: Simulator, make_client: ClientFactory, catcher: Catcher
) -> None:
    sim.config.redirect_to = catcher.url
    sim.inject_token(Fault.REDIRECT_307)
    async with make_client(token_issue_interval=60.0) as kis:
        batch = await kis.check_sellable(codes(5))
    assert catcher.requests == []
    assert len(batch.errors) == 5
    for error in batch.errors.values():
        assert isinstance(error, TransportError)
        assert (error.source, error.status) == ("token", 307)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_a_gzip_bomb_and_a_huge_body_fail_their_tickers_with_bounded_memory(
    sim: Simulator, kis: KISClient
) -> None:
    # Every try gets its fault: on a loaded machine a 50 MB body can outrun the timeout first,
    # and a retry that found no fault would answer the ticker.
    sim.inject(Fault.GZIP_BOMB, pdno="005930", times=10)
    sim.inject(Fault.HUGE_BODY, pdno="000660", times=10)
    before = _peak_rss_mib()
    batch = await kis.check_sellable(["005930", "000660", *codes(4)])
    grown = _peak_rss_mib() - before
    assert grown < 300, f"peak RSS grew {grown:.0f} MiB: the bomb (1 GiB) was inflated"
    assert len(batch.results) == 4
    for pdno in ("005930", "000660"):
        error = batch.errors[pdno]
        assert isinstance(error, TransportError)
        assert "larger than 1048576 bytes" in str(error)


async def test_json_nested_1000_deep_is_a_decode_error_for_that_ticker_only(
    sim: Simulator, kis: KISClient
) -> None:
    sim.inject(Fault.DEEP_NESTING, pdno="005930")
    batch = await kis.check_sellable(["005930", *codes(5)])
    assert isinstance(batch.errors["005930"], DecodeError)
    assert len(batch.results) == 5


async def test_a_token_with_a_line_break_is_refused_not_sent(
    stub: Stub, make_stub_client: ClientFactory
) -> None:
    stub.token_answer = (200, {"access_token": "tok\r\nX-Evil: 1", "expires_in": 86400})
    async with make_stub_client() as kis:
        batch = await kis.check_sellable(codes(3))
    assert len(batch.errors) == 3
    assert all(isinstance(e, DecodeError) for e in batch.errors.values())
    assert "cannot be a header value" in str(batch.errors[codes(1)[0]])
    assert stub.api_requests == []


async def test_any_other_exception_is_contained_as_that_tickers_error() -> None:
    async def fetch(pdno: str) -> str:
        if pdno == "000002":
            raise OverflowError("math range error")
        if pdno == "000003":
            raise ValueError("bad")
        return pdno

    done = await batch.collect(["000001", "000002", "000003", "000004"], fetch, 2)
    assert list(done.results) == ["000001", "000004"]
    assert set(done.errors) == {"000002", "000003"}
    assert "unexpected OverflowError" in str(done.errors["000002"])


async def test_a_client_used_from_another_event_loop_fails_its_tickers_not_the_caller(
    kis: KISClient,
) -> None:
    await kis.sellable_quantity("005930")
    result: dict[str, Any] = {}

    def elsewhere() -> None:
        try:
            result["batch"] = asyncio.run(kis.check_sellable(codes(3)))
        except BaseException as exc:  # the assertion below names it
            result["raised"] = exc

    thread = threading.Thread(target=elsewhere)
    thread.start()
    await asyncio.to_thread(thread.join)
    assert "raised" not in result, result.get("raised")
    assert len(result["batch"].errors) == 3


async def test_too_soon_twice_is_a_wait_not_a_dead_client(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.inject_token(Fault.RATE_LIMIT, times=2)
    async with make_client(token_issue_interval=0.05) as kis:
        first = await kis.check_sellable(codes(3))
        assert all(
            isinstance(e, AuthError) and e.msg_cd == "EGW00133" for e in first.errors.values()
        )
        remembered = sim.stats.token_requests
        while (await kis.check_sellable(codes(1))).errors:
            assert sim.stats.token_requests == remembered, "no request while the wait runs"
            await asyncio.sleep(0.01)
        second = await kis.check_sellable(codes(3))
    assert second.ok
    assert sim.stats.token_issuances == 1


def _reachable(root: object) -> Iterator[object]:
    """Everything reachable from ``root`` through instances and containers (not through
    classes, modules or functions, which reach everything)."""
    seen: set[int] = set()
    stack = [root]
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        yield obj
        stack.extend(gc.get_referents(obj))


async def test_no_error_in_a_batch_keeps_a_secret_or_the_request_alive(
    sim: Simulator, make_client: ClientFactory
) -> None:
    for fault in (Fault.RESET, Fault.HTML_502, Fault.MALFORMED, Fault.HANG, Fault.TRUNCATED):
        sim.inject(fault)
    async with make_client(retry=retries(0), timeout=0.2) as kis:
        failed = await kis.check_sellable([*codes(20), "999999"])
    async with make_client(app_secret="wrong-secret-value") as bad:
        refused = await bad.check_sellable(codes(3))
    errors = [*failed.errors.values(), *refused.errors.values()]
    assert {type(e) for e in errors} >= {TransportError, DecodeError, APIError, AuthError}
    secrets = {DEMO_APP_SECRET, "wrong-secret-value", *sim._tokens}
    for done in (failed, refused):
        for error in done.errors.values():
            assert error.__traceback__ is None
            assert error.__context__ is None and error.__cause__ is None
        for obj in _reachable(done):
            if isinstance(obj, str | bytes):
                text = obj if isinstance(obj, str) else obj.decode("latin-1")
                assert not any(secret in text for secret in secrets), type(obj)


async def test_errors_copy_and_pickle_with_their_fields() -> None:
    import copy
    import pickle

    error = APIError(rt_cd="1", msg_cd="X1", msg1="no", status=500, tr_id="T", pdno="005930")
    for clone in (copy.copy(error), pickle.loads(pickle.dumps(error))):  # noqa: S301
        assert type(clone) is APIError
        assert (clone.msg_cd, clone.status, clone.pdno, str(clone)) == (
            "X1",
            500,
            "005930",
            str(error),
        )


async def test_retry_after_is_honoured_and_bounded(
    sim: Simulator, make_client: ClientFactory
) -> None:
    clock = SkippingClock()
    policy = RetryPolicy(backoff=0.001, max_retry_after=30.0, uniform=lambda a, b: b)
    async with make_client(retry=policy, clock=clock) as kis:
        sim.config.retry_after = 2
        sim.inject(Fault.RETRY_AFTER, pdno="005930")
        await kis.sellable_quantity("005930")
        sim.config.retry_after = 120
        sim.inject(Fault.RETRY_AFTER, pdno="000660")
        await kis.sellable_quantity("000660")
    assert clock.skipped == [2.0, 30.0]


async def test_a_token_endpoint_that_never_answers_says_so_per_ticker(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.inject_token(Fault.HANG)
    async with make_client(retry=retries(0), timeout=0.2, token_issue_interval=60.0) as kis:
        done = await kis.check_sellable(codes(4))
    errors = list(done.errors.values())
    assert len(errors) == 4
    assert all(isinstance(e, RequestTimeout) and e.source == "token" for e in errors)
    assert len({id(e) for e in errors}) == 4, "each ticker has its own error"
    assert [e.pdno for e in errors] == codes(4)


async def test_closing_mid_batch_fails_the_queue_at_once_and_every_later_call(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.rate_limit = 20
    kis = make_client(rate_limit=20, retry=retries(0))
    await kis.__aenter__()
    reached = asyncio.Event()
    sim.after_calls(5, reached.set)
    task = asyncio.create_task(kis.check_sellable(codes(500)))
    await reached.wait()
    await kis.aclose()
    done = await asyncio.wait_for(task, 5)
    assert len(done) == 500
    assert sim.stats.calls < 20, "the queue did not trickle out at the pacer's rate"
    calls = sim.stats.calls
    after = await asyncio.wait_for(kis.check_sellable(codes(200, start=300000)), 5)
    assert len(after.errors) == 200 and sim.stats.calls == calls
    assert all(isinstance(e, ClientClosedError) for e in after.errors.values())
