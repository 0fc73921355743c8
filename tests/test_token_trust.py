"""Clocks and stores are input: a skewed clock, an absurd answer or a broken stored token costs at
most one issuance and never an unbounded wait (issue 21).

Each test runs the token rules on a clock of its own (``tests/virtual_clock.py``), so an hour of
waiting would show as an hour on the clock rather than pass unnoticed, and a store that holds
what the test put there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import cast

import msgspec
import pytest

from kis_async import RetryPolicy, spec
from kis_async.auth import Token, TokenIssuer, TokenManager
from kis_async.simulator import DEMO_APP_KEY, Simulator
from kis_async.tokencache import TokenCache
from kis_async.wire import Reply, Wire

from .conftest import ClientFactory, codes
from .test_auth import EXPIRED
from .virtual_clock import EPOCH, VirtualClock

DAY = 86400.0
HOUR = 3600.0


class Store:
    """A token store holding what the test put there, counting what was asked of it, and
    refusing an expiry Redis would refuse (``redis_backend`` sets it in milliseconds)."""

    def __init__(self, clock: VirtualClock, token: Token | None = None) -> None:
        self.clock = clock
        self.token = token
        self.discarded = 0

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        yield

    async def load(self) -> Token | None:
        return self.token

    async def save(self, token: Token) -> None:
        ttl_ms = max(1, round((token.expires_at - self.clock.time()) * 1000))
        assert ttl_ms < 2**62, "Redis refuses this expiry"
        self.token = token

    async def discard(self, access_token: str) -> None:
        if self.token is not None and self.token.access_token == access_token:
            self.discarded += 1
            self.token = None


class SteppedClock(VirtualClock):
    """A virtual clock whose wall time can be stepped, as an operator or NTP steps a host's."""

    def __init__(self) -> None:
        super().__init__()
        self.step = 0.0

    def time(self) -> float:
        return super().time() + self.step


def manager(clock: VirtualClock, store: Store | None) -> tuple[TokenManager, list[Token]]:
    """A manager whose issuances are counted, each a day-long token dated by ``clock``."""
    issued: list[Token] = []

    async def issue() -> Token:
        issued.append(Token(f"new-{len(issued)}", clock.time() + DAY, clock.time()))
        return issued[-1]

    return TokenManager(issue, store=store, issue_interval=60.0, clock=clock), issued


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- 1. the wait before an issuance ---------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        Token("tok-fast", EPOCH + HOUR + DAY, EPOCH + HOUR),
        Token("tok-far", 1e15 + DAY, 1e15),
        Token("tok-backwards", EPOCH - 10, EPOCH + 100),
    ],
    ids=["a host an hour fast", "issued_at 1e15", "issued after its expiry"],
)
def test_a_stored_issued_at_never_makes_an_issuance_wait_past_the_interval(
    stored: Token, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: ``waiting 3660 s``, ``waiting 999998203884590 s`` (kept in memory too), 160 s."""
    clock = VirtualClock()
    store = Store(clock, stored)
    tokens, issued = manager(clock, store)

    async def main() -> None:
        first = await tokens.get()
        await tokens.renew(first, EXPIRED)

    with caplog.at_level(logging.INFO, logger="kis_async"):
        clock.run(main())
    assert clock.monotonic() == 60.0, "the renewal waits the interval after our own issuance"
    assert [t.access_token for t in issued] == ["new-0", "new-1"]
    assert store.discarded == 2, "the stored token, then the refused new-0"
    assert store.token == issued[-1]
    said = warnings(caplog)
    assert len(said) == 1 and "stored access token is not used" in said[0]
    assert stored.access_token not in " ".join(r.getMessage() for r in caplog.records)


def test_a_stored_issued_at_a_little_ahead_is_trusted() -> None:
    """Hosts sharing a store disagree by a little: within the tolerance the token is used."""
    clock = VirtualClock()
    store = Store(clock, Token("tok", EPOCH + DAY, EPOCH + 100))
    tokens, issued = manager(clock, store)
    assert clock.run(tokens.get()) == "tok"
    assert not issued and store.discarded == 0


def test_a_clock_stepped_back_waits_the_interval_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before: ``waiting 10860 s`` after the clock was stepped back three hours."""
    clock = SteppedClock()
    tokens, issued = manager(clock, None)

    async def main() -> None:
        token = await tokens.get()
        for _ in range(2):
            clock.step -= 3 * HOUR
            token = await tokens.renew(token, EXPIRED)

    with caplog.at_level(logging.WARNING, logger="kis_async"):
        clock.run(main())
    assert len(issued) == 3
    assert clock.monotonic() == 120.0, "two renewals, each one interval after the last"
    ahead = [m for m in warnings(caplog) if "stepped back" in m]
    assert len(ahead) == 1 and "10800 s ahead" in ahead[0]


# -- 2. a clock a day fast ------------------------------------------------------------------------


class Answers:
    """The token endpoint, answering ``body`` every time and counting the requests."""

    def __init__(self, body: dict[str, object]) -> None:
        self.body = msgspec.json.encode(body)
        self.requests = 0

    async def send(self, method: str, path: str, **_: object) -> Reply:
        self.requests += 1
        return Reply(200, body=self.body)


def issuer(answers: Answers, clock: VirtualClock) -> TokenIssuer:
    return TokenIssuer(
        cast(Wire, answers),
        app_key="key",
        app_secret="secret",
        retry=RetryPolicy(max_retries=0),
        issue_interval=60.0,
        clock=clock,
    )


def kst(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, spec.KST).strftime(spec.EXPIRY_FORMAT)


def test_a_clock_a_day_fast_keeps_the_token_for_expires_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """KIS's stated expiry, a day from KIS's now, is an hour past on a clock 25 h fast."""
    clock = VirtualClock(EPOCH + 25 * HOUR)
    answers = Answers(
        {"access_token": "tok", "access_token_token_expired": kst(EPOCH + DAY), "expires_in": DAY}
    )
    tokens = TokenManager(issuer(answers, clock), store=None, issue_interval=60.0, clock=clock)

    async def main() -> list[str]:
        seen = []
        for _ in range(23):
            seen.append(await tokens.get())
            await clock.sleep(HOUR)
        return seen

    with caplog.at_level(logging.WARNING, logger="kis_async"):
        assert set(clock.run(main())) == {"tok"}
    assert answers.requests == 1
    said = warnings(caplog)
    assert len(said) == 1 and "clock skew" in said[0]


class FastClock:
    """The system's clock, with wall time ``ahead`` seconds fast."""

    def __init__(self, ahead: float) -> None:
        self.ahead = ahead

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time() + self.ahead

    async def sleep(self, seconds: float, /) -> None:
        await asyncio.sleep(seconds)


async def test_a_client_on_a_clock_25_hours_fast_issues_once_and_its_calls_work(
    sim: Simulator, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        async with make_client(clock=FastClock(25 * HOUR)) as kis:
            batch = await kis.check_sellable(codes(30))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == 1 and kis.token_issuances == 1
    skew = [m for m in warnings(caplog) if "clock skew" in m]
    assert len(skew) == 1


# -- 3. an absurd lifetime ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        {"access_token": "tok", "expires_in": 1e308},
        {"access_token": "tok", "expires_in": 1e300},
        {"access_token": "tok", "access_token_token_expired": "9999-12-31 23:59:59"},
    ],
    ids=["expires_in 1e308", "expires_in 1e300", "stated year 9999"],
)
def test_a_lifetime_over_three_months_is_clamped_with_a_warning(
    answer: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    """Before: 1e308 overflowed computing the store's expiry, 1e300 was one Redis refuses."""
    clock = VirtualClock()
    answers = Answers(answer)
    store = Store(clock)
    tokens = TokenManager(issuer(answers, clock), store=store, issue_interval=60.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        assert clock.run(tokens.get()) == "tok"
    assert store.token is not None
    assert store.token.expires_at == EPOCH + spec.TOKEN_MAX_LIFETIME
    said = warnings(caplog)
    assert len(said) == 1 and "92 days" in said[0]


def test_a_lifetime_within_three_months_is_kept_as_stated() -> None:
    clock = VirtualClock()
    token = clock.run(issuer(Answers({"access_token": "tok", "expires_in": 90 * DAY}), clock)())
    assert token.expires_at == EPOCH + 90 * DAY


# -- 4. stored tokens are checked like fresh ones -------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        Token("tok\r\nX-Injected: 1", EPOCH + DAY, EPOCH),
        Token("tok with spaces", EPOCH + DAY, EPOCH),
        Token("", EPOCH + DAY, EPOCH),
        Token("x" * 5_000_000, EPOCH + DAY, EPOCH),
        Token("x" * (spec.TOKEN_MAX_LENGTH + 1), EPOCH + DAY, EPOCH),
        Token("tok-nan", math.nan, EPOCH),
        Token("tok-inf", math.inf, EPOCH),
        Token("tok-ten-years", EPOCH + 3650 * DAY, EPOCH),
        Token("tok-1e300", 1e300, EPOCH),
        Token("tok-ahead", EPOCH + DAY + HOUR, EPOCH + HOUR),
    ],
    ids=[
        "CR/LF",
        "spaces",
        "empty",
        "5 MB",
        "one over the length",
        "expires NaN",
        "expires inf",
        "ten years",
        "expires 1e300",
        "issued an hour ahead",
    ],
)
def test_a_stored_token_that_could_not_be_ours_is_discarded_and_issued_anew_once(
    stored: Token, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    store = Store(clock, stored)
    tokens, issued = manager(clock, store)

    async def main() -> list[str]:
        return [await tokens.get() for _ in range(3)]

    with caplog.at_level(logging.DEBUG, logger="kis_async"):
        assert clock.run(main()) == ["new-0"] * 3
    assert len(issued) == 1 and store.discarded == 1 and store.token == issued[0]
    said = warnings(caplog)
    assert len(said) == 1 and "stored access token is not used" in said[0]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert len(logged) < 1000
    if stored.access_token:
        assert stored.access_token not in logged and "Injected" not in logged


def test_a_sound_stored_token_is_used_without_a_word() -> None:
    clock = VirtualClock()
    store = Store(clock, Token("tok", EPOCH + DAY - 10, EPOCH - 10))
    tokens, issued = manager(clock, store)
    assert clock.run(tokens.get()) == "tok"
    assert not issued and store.discarded == 0


async def test_a_token_file_holding_a_broken_token_costs_one_issuance(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the CR/LF token was sent with every call for its day of life."""
    path = tmp_path / "token.json"
    now = time.time()
    TokenCache(path, app_key=DEMO_APP_KEY, host=sim.url).save(
        Token("tok\r\nX-Injected: 1", now + DAY, now - 10)
    )
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        async with make_client(token_cache=path) as kis:
            batch = await kis.check_sellable(codes(5))
    assert batch.ok, batch.errors
    assert sim.stats.token_issuances == 1
    assert any("stored access token is not used" in m for m in warnings(caplog))
    assert "Injected" not in caplog.text
