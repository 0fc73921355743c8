"""Edges a bot meets first: get() without a query, from_env() keywords over the environment,
a path the simulator does not serve, and the CLI keeping a simulator's tokens to itself."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from kis_async import KISClient, KISError, endpoints
from kis_async.cli import _parser, main
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Simulator

from .conftest import ClientFactory
from .test_cli import kis_async


async def test_get_without_a_query_sends_an_empty_one(kis: KISClient) -> None:
    # inquire-price without its two parameters: the simulator's refusal, not a TypeError here.
    with pytest.raises(KISError):
        await kis.get(endpoints.PRICE.path, tr_id=endpoints.PRICE.tr_id)


def test_from_env_keywords_win_over_the_environment_credentials_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KIS_APP_KEY", DEMO_APP_KEY)
    monkeypatch.setenv("KIS_APP_SECRET", "from-the-environment")
    monkeypatch.setenv("KIS_ACCOUNT", DEMO_ACCOUNT)
    kis = KISClient.from_env(app_secret=DEMO_APP_SECRET, account="11112222-01", token_cache=None)
    assert kis._app_secret == DEMO_APP_SECRET
    assert kis.account.cano == "11112222"


def test_from_env_needs_no_variable_for_a_credential_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIS_APP_KEY", DEMO_APP_KEY)
    with pytest.raises(ValueError, match="KIS_ACCOUNT") as refused:
        KISClient.from_env(app_secret=DEMO_APP_SECRET)
    assert "KIS_APP_SECRET" not in str(refused.value)
    kis = KISClient.from_env(app_secret=DEMO_APP_SECRET, account=DEMO_ACCOUNT, token_cache=None)
    assert kis.account.cano == DEMO_ACCOUNT.split("-")[0]


async def test_a_path_the_simulator_lacks_is_a_kis_shaped_404_naming_it(
    sim: Simulator, make_client: ClientFactory
) -> None:
    async with aiohttp.ClientSession(sim.url) as http, http.post("/uapi/nowhere") as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["rt_cd"] == "1" and body["msg_cd"] == "SIM00405"
    assert "POST /uapi/nowhere" in body["msg1"]
    async with make_client() as kis:
        with pytest.raises(KISError, match="/uapi/domestic-stock/v1/quotations/nowhere"):
            await kis.get("/uapi/domestic-stock/v1/quotations/nowhere", tr_id="FHKST01010100")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_cli_keeps_no_token_cache_for_a_loopback_host(
    sim: Simulator, tmp_path: Path, host: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "KIS_APP_KEY": DEMO_APP_KEY,
        "KIS_APP_SECRET": DEMO_APP_SECRET,
        "KIS_ACCOUNT": DEMO_ACCOUNT,
        "KIS_BASE_URL": sim.url.replace("127.0.0.1", host),
    }
    for _ in range(2):
        result = await kis_async("check", "005930", home=home, env=env)
        assert result.code == 0, result.err
    assert [p for p in home.rglob("*") if p.is_file()] == []
    assert sim.stats.token_issuances == 2, "no cache: each run asks for its own token"


def test_the_simulators_help_says_what_a_server_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulator", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: 0)" not in out and "(default: None)" not in out
    assert "summary" not in out and "results" not in out
    for knob in ("--fault-rate", "--ledger-limit", "--dialect", "--no-revoke-frees"):
        assert knob in out
    assert "inquire-price" in out and "404" in out


def test_the_simulators_fault_knobs_parse_and_refuse_nonsense(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _parser().parse_args(
        ["simulator", "--fault-rate", "0.05", "--ledger-limit", "2", "--no-revoke-frees"]
    )
    assert (args.fault_rate, args.ledger_limit, args.revoke_frees) == (0.05, 2, False)
    assert args.dialect == "live"
    with pytest.raises(SystemExit):
        _parser().parse_args(["simulator", "--fault-rate", "1.5"])
    assert "a chance, 0 to 1" in capsys.readouterr().err
