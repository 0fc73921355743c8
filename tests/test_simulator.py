"""The simulator keeps KIS's rules, so tests against it mean something."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kis_async import endpoints, spec
from kis_async.simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    Simulator,
    SimulatorConfig,
    demo_accounts,
)
from kis_async.simulator.window import SlidingWindow

GRANT = {"grant_type": "client_credentials", "appkey": DEMO_APP_KEY, "appsecret": DEMO_APP_SECRET}


async def _token(http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    async with http.post(spec.TOKEN_PATH, json=GRANT) as resp:
        return resp.status, await resp.json()


async def test_one_token_a_minute_and_the_same_token_within_six_hours(sim: Simulator) -> None:
    sim.config.token_issue_interval = 60.0
    async with aiohttp.ClientSession(sim.url) as http:
        status, first = await _token(http)
        assert status == 200 and first["token_type"] == "Bearer"
        assert first["expires_in"] == 86400
        status, second = await _token(http)
        assert (status, second["error_code"]) == (403, "EGW00133")
        assert "rt_cd" not in second and second["error_description"]
        sim.config.token_issue_interval = 0.0
        status, third = await _token(http)
        assert third["access_token"] == first["access_token"]
        sim.expire_tokens()
        status, fourth = await _token(http)
        assert fourth["access_token"] != first["access_token"]
    assert (sim.stats.token_requests, sim.stats.token_issuances, sim.stats.tokens_minted) == (
        4,
        3,
        2,
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"tr_id": "TTTC0000R"}, "SIM00402"),
        ({"authorization": "Bearer nope"}, "EGW00121"),
        ({"appsecret": "nope"}, "EGW00304"),
        ({"custtype": "X"}, "SIM00403"),
    ],
)
async def test_headers_are_checked(sim: Simulator, change: dict[str, str], code: str) -> None:
    async with aiohttp.ClientSession(sim.url) as http:
        _, grant = await _token(http)
        headers = {
            "appkey": DEMO_APP_KEY,
            "appsecret": DEMO_APP_SECRET,
            "authorization": f"Bearer {grant['access_token']}",
            "tr_id": endpoints.SELLABLE.tr_id,
            "custtype": "P",
        } | change
        cano, _, product = DEMO_ACCOUNT.partition("-")
        query = {"CANO": cano, "ACNT_PRDT_CD": product, "PDNO": "005930"}
        async with http.get(endpoints.SELLABLE.path, params=query, headers=headers) as resp:
            body = await resp.json()
    assert body["rt_cd"] != "0" and body["msg_cd"] == code


def test_window_is_half_open_and_remembers_its_peak() -> None:
    window = SlidingWindow(1.0)
    assert all(window.admit(t, 3) for t in (0.0, 0.5, 0.9))
    assert not window.admit(0.99, 3)
    assert window.admit(1.0, 3), "the call at 0.0 left the window (t-1, t]"
    assert window.peak == 3
    window.record(1.05)
    assert window.peak == 4


async def test_stats_are_served_for_out_of_process_clients() -> None:
    async with (
        Simulator(SimulatorConfig(rate_limit=5)) as sim,
        aiohttp.ClientSession(sim.url) as http,
    ):
        await _token(http)
        async with http.get("/_simulator/stats") as resp:
            stats = await resp.json()
    assert stats["token_issuances"] == 1 and stats["calls"] == 0


async def test_account_files_are_replaced_whole_never_written_through(tmp_path: Path) -> None:
    """``--env-dir`` files: owner-only, and each renamed into place whole, so a file left by an
    earlier run (or a link at its name) is replaced, never emptied first or written through."""
    folder = tmp_path / "sim"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not the simulator's\n", encoding="utf-8")
    (folder / "account1.env").symlink_to(elsewhere)
    (folder / "account2.env").write_text("KIS_ACCOUNT=stale\n", encoding="utf-8")
    stale = (folder / "account2.env").stat().st_ino
    async with Simulator(SimulatorConfig(accounts=demo_accounts(1))) as sim:
        written = sim.write_env_files(folder)
    assert written == [folder / "account1.env", folder / "account2.env"]
    assert elsewhere.read_text(encoding="utf-8") == "not the simulator's\n"
    assert sorted(p.name for p in folder.iterdir()) == ["account1.env", "account2.env"]
    for path in written:
        mode = path.lstat().st_mode
        assert stat.S_ISREG(mode) and stat.S_IMODE(mode) == 0o600
        assert f"KIS_BASE_URL={sim.url}\n" in path.read_text(encoding="utf-8")
    assert (folder / "account2.env").stat().st_ino != stale, "renamed into place, not rewritten"
