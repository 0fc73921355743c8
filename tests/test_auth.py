"""One token for everything: single-flight issuance, re-issue once, no token storms."""

from __future__ import annotations

import asyncio
from typing import cast

import msgspec
import pytest

from kis_async import AuthError, KISClient, RetryPolicy, SameTokenError, TransportError
from kis_async.auth import Token, TokenIssuer, TokenManager
from kis_async.simulator import Fault, Simulator
from kis_async.wire import Reply, Wire

from .conftest import ClientFactory, codes, retries
from .virtual_clock import VirtualClock


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


@pytest.mark.parametrize("handed_back", [True, False], ids=["as KIS does", "a new one"])
async def test_revoked_token_is_reissued_once_mid_batch(
    sim: Simulator, kis: KISClient, handed_back: bool
) -> None:
    """KIS hands the refused token back (the default, as reported): revoked, then one more
    issuance. A KIS that mints a new one at once costs one issuance and no revocation."""
    sim.config.refused_token_reissued = handed_back
    sim.after_calls(50, sim.revoke_tokens)
    batch = await kis.check_sellable(codes(200))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == (3 if handed_back else 2)
    assert sim.stats.token_revocations == (1 if handed_back else 0)
    assert sim.stats.tokens_minted == 2


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


def test_token_is_refreshed_before_it_expires_not_after() -> None:
    clock = VirtualClock()
    issued: list[Token] = []

    async def issue() -> Token:
        token = Token(f"t{len(issued)}", clock.time() + 86400, clock.time())
        issued.append(token)
        return token

    async def main() -> list[str]:
        tokens = TokenManager(issue, store=None, issue_interval=60.0, clock=clock)
        seen = [await tokens.get()]
        await clock.sleep(86400 - 301)
        seen.append(await tokens.get())
        await clock.sleep(2)
        seen.append(await tokens.get())
        return seen

    assert clock.run(main()) == ["t0", "t0", "t1"], "refreshed inside the last five minutes"
    assert len(issued) == 2


def test_a_reissue_waits_out_the_issuance_interval_on_the_clock() -> None:
    clock = VirtualClock()
    issued_at: list[float] = []

    async def issue() -> Token:
        issued_at.append(clock.monotonic())
        return Token(f"t{len(issued_at)}", clock.time() + 86400, clock.time())

    async def main() -> None:
        tokens = TokenManager(issue, store=None, issue_interval=60.0, clock=clock)
        stale = await tokens.get()
        await clock.sleep(10)
        await tokens.renew(stale, EXPIRED)

    clock.run(main())
    assert issued_at == [0.0, 60.0]


class Answers:
    """A stand-in for the wire: canned replies in order, and when each request was sent."""

    def __init__(self, clock: VirtualClock, *replies: tuple[int, dict[str, object]]) -> None:
        self._clock = clock
        self._replies = [Reply(status, body=msgspec.json.encode(body)) for status, body in replies]
        self.sent_at: list[float] = []

    async def send(self, method: str, path: str, **_: object) -> Reply:
        self.sent_at.append(self._clock.monotonic())
        return self._replies.pop(0)


TOKEN = (200, {"access_token": "tok", "expires_in": 86400, "token_type": "Bearer"})
TOO_SOON = (403, {"rt_cd": "1", "msg_cd": "EGW00133", "msg1": "1분당 1회"})
DOWN = (503, {"not": "a KIS envelope"})


def issuer(answers: Answers, clock: VirtualClock, retry: RetryPolicy) -> TokenIssuer:
    return TokenIssuer(
        cast(Wire, answers),
        app_key="key",
        app_secret="secret",
        retry=retry,
        issue_interval=60.0,
        clock=clock,
    )


def test_one_a_minute_is_waited_out_once_and_is_not_a_retry() -> None:
    clock = VirtualClock()
    answers = Answers(clock, TOO_SOON, TOKEN)
    token = clock.run(issuer(answers, clock, RetryPolicy(max_retries=0))())
    assert token.access_token == "tok" and token.issued_at == clock.time()
    assert answers.sent_at == [0.0, 60.0]


def test_one_a_minute_twice_is_an_auth_error_after_one_wait() -> None:
    clock = VirtualClock()
    answers = Answers(clock, TOO_SOON, TOO_SOON)
    with pytest.raises(AuthError) as caught:
        clock.run(issuer(answers, clock, RetryPolicy(max_retries=0))())
    assert caught.value.msg_cd == "EGW00133"
    assert answers.sent_at == [0.0, 60.0]


def test_token_endpoint_faults_back_off_on_the_clock() -> None:
    clock = VirtualClock()
    answers = Answers(clock, DOWN, DOWN, TOKEN)
    policy = RetryPolicy(max_retries=2, backoff=1.0, uniform=lambda low, high: high)
    assert clock.run(issuer(answers, clock, policy)()).access_token == "tok"
    assert answers.sent_at == [0.0, 1.0, 3.0]


async def test_a_token_expiry_is_survived_with_no_retries_at_all(
    sim: Simulator, make_client: ClientFactory
) -> None:
    """A renewal is not a retry: ``max_retries=0`` still re-issues a token that expired."""
    sim.after_calls(30, sim.expire_tokens)
    async with make_client(retry=retries(0)) as kis:
        batch = await kis.check_sellable(codes(80))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == 2


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


async def test_a_refused_token_issued_again_is_revoked_once_then_the_6_hour_error() -> None:
    revoked: list[str] = []

    async def issue() -> Token:
        return Token("tok-3f9a", 2e9, 1e9)

    async def revoke(token: str) -> None:
        revoked.append(token)

    tokens = TokenManager(issue, store=None, revoke=revoke, issue_interval=0.0)
    stale = await tokens.get()
    with pytest.raises(SameTokenError) as refused:
        await tokens.renew(stale, EXPIRED)
    error = refused.value
    assert (error.msg_cd, error.status, error.tr_id) == ("EGW00123", 500, "TTTC8408R")
    assert "6 hours" in str(error) and "tok-3f9a" not in str(error)
    assert revoked == ["tok-3f9a"] and tokens.issued == 3
    with pytest.raises(SameTokenError):
        await tokens.renew(stale, EXPIRED)
    with pytest.raises(SameTokenError):
        await tokens.get()
    assert revoked == ["tok-3f9a"] and tokens.issued == 3, "remembered: nothing asked again"


def test_token_repr_hides_the_token() -> None:
    assert "secret-token" not in repr(Token("secret-token", 1.0, 0.0))
