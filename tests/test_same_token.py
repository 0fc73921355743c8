"""KIS hands back the token it refuses: at most two issuances per refused token, then an error.

KIS re-issues one token for 6 hours after an issuance, and its users report that this holds for
a token its API now refuses (EGW00121). Each issuance texts the account holder, so a client must
not ask once per refused call. Against the simulator over loopback, whose default is that
reported behaviour (``refused_token_reissued``), with revocation freeing a new token
(``revoke_frees``) or, the harsher knob, not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest

from kis_async import AuthError, KISClient, SameTokenError, spec
from kis_async.auth import Token, TokenManager
from kis_async.endpoints import SELLABLE
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Simulator

from .conftest import ClientFactory, codes


def refuse_the_token_at_the_first_call(sim: Simulator) -> None:
    """Every token dies as the first API call arrives: all 30 calls of the batch see it."""
    sim.after_calls(1, sim.revoke_tokens)


async def test_a_refused_token_handed_back_is_revoked_and_replaced_once(
    sim: Simulator, kis: KISClient, caplog: pytest.LogCaptureFixture
) -> None:
    refuse_the_token_at_the_first_call(sim)
    with caplog.at_level(logging.INFO):
        batch = await kis.check_sellable(codes(30))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == 3, "the first, the dead one handed back, a new one"
    assert sim.stats.token_revocations == 1
    assert sim.stats.tokens_minted == 2
    assert kis.token_issuances == 3
    said = [r.getMessage() for r in caplog.records]
    assert any("handed back the very token" in m and "revoking" in m for m in said)


async def test_the_second_issuance_waits_out_the_minute_and_says_so(
    sim: Simulator, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sim.config.token_issue_interval = 0.4
    refuse_the_token_at_the_first_call(sim)
    async with make_client(token_issue_interval=0.4) as kis:
        with caplog.at_level(logging.INFO):
            batch = await kis.check_sellable(codes(10))
    assert batch.ok, batch.errors
    assert sim.stats.token_requests == 3, "no request inside the interval, so none refused"
    waits = [r for r in caplog.records if "KIS issues one token a minute" in r.getMessage()]
    assert len(waits) >= 1


@pytest.mark.parametrize("tickers", [1, 30])
async def test_the_same_token_even_after_revoking_is_an_error_naming_the_6_hour_rule(
    sim: Simulator, kis: KISClient, tickers: int
) -> None:
    sim.config.revoke_frees = False
    refuse_the_token_at_the_first_call(sim)
    batch = await kis.check_sellable(codes(tickers))
    assert not batch.results and len(batch.errors) == tickers
    for error in batch.errors.values():
        assert isinstance(error, SameTokenError) and isinstance(error, AuthError)
        assert error.msg_cd == spec.TOKEN_INVALID and error.status == 500
        assert "6 hours" in str(error) and "HTTP 500" in str(error)
    assert sim.stats.token_issuances == 3
    assert sim.stats.token_revocations == 1
    asked = sim.stats.token_requests, sim.stats.calls
    again = await kis.check_sellable(codes(5))
    assert all(isinstance(e, SameTokenError) for e in again.errors.values())
    assert (sim.stats.token_requests, sim.stats.calls) == asked, "remembered: nothing sent"


async def test_clients_sharing_a_token_cache_pay_for_one_refused_token_once(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    """Two clients on one cache file stand for two processes (its OS lock excludes each
    open file): the first to renew revokes and re-issues; the other uses what it stored."""
    cache = tmp_path / "token.json"
    async with make_client(token_cache=cache) as warm:
        await warm.sellable_quantity("005930")
    refuse_the_token_at_the_first_call(sim)
    async with make_client(token_cache=cache) as a, make_client(token_cache=cache) as b:
        batches = await asyncio.gather(a.check_sellable(codes(20)), b.check_sellable(codes(20)))
    assert all(batch.ok for batch in batches), [batch.errors for batch in batches]
    assert sim.stats.token_issuances == 3
    assert sim.stats.token_revocations == 1


async def test_a_token_marked_dead_in_the_cache_stops_every_client_sharing_it(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    sim.config.revoke_frees = False
    cache = tmp_path / "token.json"
    refuse_the_token_at_the_first_call(sim)
    async with make_client(token_cache=cache) as first:
        batch = await first.check_sellable(codes(3))
    assert all(isinstance(e, SameTokenError) for e in batch.errors.values())
    asked = sim.stats.token_requests
    async with make_client(token_cache=cache) as later:
        with pytest.raises(SameTokenError) as caught:
            await later.sellable_quantity("005930")
    assert sim.stats.token_requests == asked, "the mark in the cache is believed"
    assert caught.value.status == 0 and "another process" in str(caught.value)
    assert caught.value.msg_cd == spec.TOKEN_INVALID


# -- the simulator's token rules, table-driven ----------------------------------------------------


async def post(sim: Simulator, path: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as session, session.post(sim.url + path, json=body) as r:
        return r.status, msgspec.json.decode(await r.read())


def grant() -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "appkey": DEMO_APP_KEY,
        "appsecret": DEMO_APP_SECRET,
    }


async def issue(sim: Simulator) -> str:
    status, answer = await post(sim, spec.TOKEN_PATH, grant())
    assert status == 200, answer
    return str(answer["access_token"])


@pytest.mark.parametrize(
    ("knobs", "revoke", "same"),
    [
        ({}, False, True),
        ({"refused_token_reissued": False}, False, False),
        ({}, True, False),
        ({"revoke_frees": False}, True, True),
    ],
    ids=["refused: handed back", "refused: a new one", "revoked: a new one", "revoked: the same"],
)
async def test_what_a_re_issue_hands_back_after_a_refusal(
    sim: Simulator, knobs: dict[str, bool], revoke: bool, same: bool
) -> None:
    for name, value in knobs.items():
        setattr(sim.config, name, value)
    first = await issue(sim)
    sim.revoke_tokens()
    if revoke:
        body = {"appkey": DEMO_APP_KEY, "appsecret": DEMO_APP_SECRET, "token": first}
        status, answer = await post(sim, spec.REVOKE_PATH, body)
        assert (status, answer["code"]) == (200, 200)
    assert (await issue(sim) == first) is same


@pytest.mark.parametrize(
    ("change", "code"),
    [({"appsecret": "wrong"}, "EGW00105"), ({"token": "never-issued"}, spec.TOKEN_INVALID)],
)
async def test_revoke_refuses_a_wrong_secret_or_an_unknown_token(
    sim: Simulator, change: dict[str, str], code: str
) -> None:
    token = await issue(sim)
    body = {"appkey": DEMO_APP_KEY, "appsecret": DEMO_APP_SECRET, "token": token} | change
    status, answer = await post(sim, spec.REVOKE_PATH, body)
    assert (status, answer["error_code"]) == (403, code)
    assert await issue(sim) == token, "nothing was revoked"


async def test_one_token_per_appkey_kills_the_earlier_token_when_a_new_one_is_minted(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.one_token_per_appkey = True
    sim.config.same_token_window = 0.0
    first = await issue(sim)
    assert await sellable_with(sim, first) == (200, "0")
    second = await issue(sim)
    assert first != second
    assert await sellable_with(sim, first) == (500, spec.TOKEN_INVALID)
    assert await sellable_with(sim, second) == (200, "0")
    async with make_client() as kis:
        assert (await kis.sellable_quantity("005930")).pdno == "005930"
    assert await sellable_with(sim, second) == (500, spec.TOKEN_INVALID)


async def sellable_with(sim: Simulator, token: str) -> tuple[int, str]:
    """One psbl-sell call carrying ``token``: its status and ``msg_cd`` ("0" for success)."""
    headers = {
        "authorization": f"Bearer {token}",
        "appkey": DEMO_APP_KEY,
        "appsecret": DEMO_APP_SECRET,
        "tr_id": SELLABLE.tr_id,
        "custtype": "P",
    }
    account, product = DEMO_ACCOUNT.split("-")
    query = dict(SELLABLE.query) | {"CANO": account, "ACNT_PRDT_CD": product, "PDNO": "005930"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.url + SELLABLE.path, headers=headers, params=query) as r,
    ):
        answer = msgspec.json.decode(await r.read())
    return r.status, "0" if answer["rt_cd"] == "0" else answer["msg_cd"]


class MemoryStore:
    """A token store holding what the test put there: the store is input too."""

    def __init__(self, token: Token | None) -> None:
        self.token = token

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        yield

    async def load(self) -> Token | None:
        return self.token

    async def save(self, token: Token) -> None:
        self.token = token

    async def discard(self, access_token: str) -> None:
        if self.token is not None and self.token.access_token == access_token:
            self.token = None


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("mark", "believed"),
    [
        (Token("t", NOW + 3600, NOW - 10, dead="EGW00121"), True),
        (Token("t", NOW - 1, NOW - 7 * 3600, dead="EGW00121"), False),
        (Token("t", NOW + 10 * 365 * 86400, NOW, dead="EGW00121"), False),
        (Token("t", 1e300, NOW, dead="EGW00121"), False),
        (Token("t", NOW + 3600, NOW, dead="\x1b[31mEGW\x07"), False),
        (Token("t", NOW + 3600, NOW, dead="x" * 500), False),
    ],
    ids=["ours", "over", "ten years", "1e300", "escapes", "too long"],
)
async def test_a_dead_mark_in_the_store_is_believed_only_if_it_could_be_ours(
    mark: Token, believed: bool
) -> None:
    issued: list[Token] = []

    async def issue() -> Token:
        issued.append(Token(f"new-{len(issued)}", NOW + 86400, NOW))
        return issued[-1]

    store = MemoryStore(mark)
    tokens = TokenManager(issue, store=store, issue_interval=0.0, clock=FixedClock(NOW))
    if believed:
        with pytest.raises(SameTokenError) as caught:
            await tokens.get()
        assert "\x1b" not in str(caught.value) and not issued
    else:
        assert await tokens.get() == "new-0"
        assert store.token == issued[0], "the mark replaced by the new token"


class FixedClock:
    """Wall time stands at ``now``; nothing here sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float, /) -> None:
        raise AssertionError("nothing here waits")
