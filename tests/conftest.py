"""Shared fixtures: a simulator on loopback and clients pointed at it, tuned to keep tests fast."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from hypothesis import settings

from kis_async import KISClient, RetryPolicy, endpoints, spec
from kis_async.simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    Simulator,
    SimulatorConfig,
)

# A suite started in the background (`pytest &`, nohup, some CI runners) inherits SIGINT ignored,
# and so would every CLI it starts: right for the CLI, which leaves an ignored SIGINT alone as a
# shell's background job expects, but the Ctrl-C tests would then test nothing. Each pytest
# process (every xdist worker imports this) takes SIGINT back, as a foreground start has it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

FAST_RATE = 1000
"""Calls per second for tests that are not about pacing: the limit stays out of the way."""


@pytest.fixture(autouse=True)
def _no_real_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test, and every process it starts, sees a temporary home: the default token cache
    (the CLI's, ``KISClient.from_env``'s) lands there, never in the user's ``~/.cache``."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))


@pytest.fixture
def config() -> SimulatorConfig:
    """A simulator configuration a test may change before the simulator starts."""
    return SimulatorConfig(rate_limit=FAST_RATE, token_issue_interval=0.0, hang_for=5.0, seed=7)


@pytest.fixture
async def sim(config: SimulatorConfig) -> AsyncIterator[Simulator]:
    async with Simulator(config) as simulator:
        yield simulator


ClientFactory = Callable[..., KISClient]


def retries(max_retries: int = 5, *, backoff: float = 0.005) -> RetryPolicy:
    """A retry policy with short backoffs, so tests of faults stay fast."""
    return RetryPolicy(max_retries=max_retries, backoff=backoff)


@pytest.fixture
def make_client(sim: Simulator) -> ClientFactory:
    """Build a client for ``sim`` with fast retries; keyword arguments override the defaults."""

    def make(**overrides: Any) -> KISClient:
        options: dict[str, Any] = {
            "base_url": sim.url,
            "rate_limit": FAST_RATE,
            "token_cache": None,
            "retry": retries(),
            "timeout": 2.0,
            "token_issue_interval": 0.0,
        }
        options.update(overrides)
        return KISClient(
            options.pop("app_key", DEMO_APP_KEY),
            options.pop("app_secret", DEMO_APP_SECRET),
            options.pop("account", DEMO_ACCOUNT),
            **options,
        )

    return make


@pytest.fixture
async def kis(make_client: ClientFactory) -> AsyncIterator[KISClient]:
    async with make_client() as client:
        yield client


def codes(count: int, start: int = 100000) -> list[str]:
    """``count`` distinct six-digit tickers (most not held: the simulator answers blanks)."""
    return [f"{start + i:06d}" for i in range(count)]


@dataclass
class Stub:
    """A bare KIS stand-in for unit tests that need one canned answer, and to see the request."""

    token_answer: tuple[int, dict[str, Any]] = (
        200,
        {"access_token": "tok", "expires_in": 86400, "token_type": "Bearer"},
    )
    api_answer: tuple[int, dict[str, Any]] = (200, {"rt_cd": "0"})
    api_requests: list[web.Request] = field(default_factory=list)
    url: str = ""

    async def token(self, request: web.Request) -> web.Response:
        status, payload = self.token_answer
        return web.json_response(payload, status=status)

    async def api(self, request: web.Request) -> web.Response:
        self.api_requests.append(request)
        status, payload = self.api_answer
        return web.json_response(payload, status=status)


@pytest.fixture
async def stub() -> AsyncIterator[Stub]:
    """Unit tests once used aioresponses here; it does not work with aiohttp 3.14 (its #289)."""
    stub = Stub()
    app = web.Application()
    app.router.add_post(spec.TOKEN_PATH, stub.token)
    app.router.add_get(endpoints.SELLABLE.path, stub.api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    stub.url = f"http://{host}:{port}"
    yield stub
    await runner.cleanup()


@pytest.fixture
def make_stub_client(stub: Stub) -> ClientFactory:
    def make(**overrides: Any) -> KISClient:
        options: dict[str, Any] = {"base_url": stub.url, "token_cache": None, "retry": retries(0)}
        return KISClient("key", "secret", "12345678-01", **(options | overrides))

    return make
