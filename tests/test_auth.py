"""One token for everything: single-flight issuance, re-issue once, no token storms."""

from __future__ import annotations

import asyncio

import pytest

from kis_async import AuthError, KISClient, TransportError
from kis_async.auth import Token, TokenManager
from kis_async.simulator import Fault, Simulator

from .conftest import ClientFactory, codes, retries


async def test_one_token_under_200_concurrent_cold_calls(sim: Simulator, kis: KISClient) -> None:
    results = await asyncio.gather(*(kis.sellable_quantity(c) for c in codes(200)))
    assert len(results) == 200
    assert sim.stats.token_requests == 1
    assert sim.stats.calls == 200
    assert kis.token_issuances == 1


async def test_expired_token_is_reissued_once_mid_batch(sim: Simulator, kis: KISClient) -> None:
    sim.after_calls(100, sim.expire_tokens)
    batch = await kis.check_sellable(codes(300))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == 2
    assert sim.stats.tokens_minted == 2


async def test_revoked_token_is_reissued_once_mid_batch(sim: Simulator, kis: KISClient) -> None:
    sim.after_calls(50, sim.revoke_tokens)
    batch = await kis.check_sellable(codes(200))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == 2


async def test_reissue_waits_out_the_issuance_interval(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.token_issue_interval = 0.3
    sim.after_calls(20, sim.expire_tokens)
    async with make_client(token_issue_interval=0.3) as kis:
        batch = await kis.check_sellable(codes(60))
    assert batch.ok, batch.errors
    assert sim.stats.token_requests == 2, "a second request inside the interval was refused"


async def test_wrong_secret_fails_the_whole_batch_after_one_token_request(
    sim: Simulator, make_client: ClientFactory
) -> None:
    async with make_client(app_secret="wrong") as kis:
        batch = await kis.check_sellable(codes(150))
    assert len(batch.errors) == 150 and not batch.results
    assert all(isinstance(e, AuthError) for e in batch.errors.values())
    assert next(iter(batch.errors.values())).msg_cd == "EGW00105"
    assert sim.stats.token_requests == 1
    assert sim.stats.calls == 0


async def test_token_endpoint_fault_is_retried(sim: Simulator, kis: KISClient) -> None:
    sim.inject_token(Fault.HTML_502)
    sim.inject_token(Fault.RESET)
    assert (await kis.sellable_quantity("005930")).pdno == "005930"
    assert sim.stats.token_requests == 3
    assert sim.stats.token_issuances == 1


async def test_token_endpoint_down_is_not_turned_into_a_stream_of_requests(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.inject_token(Fault.HTML_503, times=100)
    async with make_client(retry=retries(2), token_issue_interval=60.0) as kis:
        batch = await kis.check_sellable(codes(100))
    assert len(batch.errors) == 100
    assert all(isinstance(e, TransportError) for e in batch.errors.values())
    assert sim.stats.token_requests == 3, "one issuance and its two retries, then remembered"


async def test_too_soon_answer_waits_an_interval_and_gets_the_token(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.inject_token(Fault.RATE_LIMIT)
    async with make_client(token_issue_interval=0.05) as kis:
        assert (await kis.sellable_quantity("005930")).cblc_qty > 0
    assert sim.stats.token_requests == 2
    assert sim.stats.token_issuances == 1


async def test_a_server_refusing_every_new_token_stops_after_two_reissues(
    sim: Simulator, kis: KISClient
) -> None:
    sim.inject(Fault.TOKEN_EXPIRED, pdno="005930", times=10)
    with pytest.raises(AuthError) as caught:
        await kis.sellable_quantity("005930")
    assert caught.value.msg_cd == "EGW00123"
    assert sim.stats.token_issuances == 3
    assert sim.stats.per_pdno["005930"] == 3


EXPIRED = AuthError(
    rt_cd="1", msg_cd="EGW00123", msg1="기간이 만료된 token 입니다.", status=500, tr_id="TTTC8408R"
)
"""KIS's answer to a call with an expired token, as :func:`~kis_async.verdict.classify` has it."""


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_token_is_refreshed_before_it_expires_not_after() -> None:
    clock = _Clock()
    issued: list[Token] = []

    async def issue() -> Token:
        token = Token(f"t{len(issued)}", clock.now + 86400, clock.now)
        issued.append(token)
        return token

    tokens = TokenManager(issue, store=None, issue_interval=60.0, clock=clock)
    assert await tokens.get() == "t0"
    clock.now += 86400 - 301
    assert await tokens.get() == "t0"
    clock.now += 2
    assert await tokens.get() == "t1", "refreshed inside the last five minutes"
    assert len(issued) == 2


async def test_renew_by_many_holders_of_the_same_stale_token_issues_once() -> None:
    issued: list[Token] = []

    async def issue() -> Token:
        await asyncio.sleep(0)
        token = Token(f"t{len(issued)}", 2e9, 1e9)
        issued.append(token)
        return token

    tokens = TokenManager(issue, store=None, issue_interval=0.0)
    stale = await tokens.get()
    renewed = await asyncio.gather(*(tokens.renew(stale, EXPIRED) for _ in range(50)))
    assert set(renewed) == {"t1"}
    assert len(issued) == 2


async def test_a_refused_token_issued_again_raises_kis_refusal_as_it_was() -> None:
    async def issue() -> Token:
        return Token("same", 2e9, 1e9)

    tokens = TokenManager(issue, store=None, issue_interval=0.0)
    stale = await tokens.get()
    with pytest.raises(AuthError) as refused:
        await tokens.renew(stale, EXPIRED)
    error = refused.value
    assert error is not EXPIRED
    assert (error.msg_cd, error.status, error.tr_id) == ("EGW00123", 500, "TTTC8408R")


def test_token_repr_hides_the_token() -> None:
    assert "secret-token" not in repr(Token("secret-token", 1.0, 0.0))
