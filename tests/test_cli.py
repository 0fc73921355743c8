"""The command line, run as a user runs it: a subprocess against the simulator."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Fault, Simulator

from .conftest import FAST_RATE


async def kis_async(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kis_async",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=base | (env or {}),
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def creds(sim: Simulator) -> dict[str, str]:
    return {
        "KIS_APP_KEY": DEMO_APP_KEY,
        "KIS_APP_SECRET": DEMO_APP_SECRET,
        "KIS_ACCOUNT": DEMO_ACCOUNT,
        "KIS_BASE_URL": sim.url,
    }


async def test_table_lists_results_and_failures_exit_1(
    sim: Simulator, creds: dict[str, str]
) -> None:
    code, out, err = await kis_async("check", "005930", "999999", "--rate", "1000", env=creds)
    assert code == 1
    holding = sim.portfolio["005930"]
    row = next(line for line in out.splitlines() if line.startswith("005930"))
    assert "삼성전자" in row and f"{holding.sellable:,}" in row.split()
    assert "failed (1)" in out and "999999" in out and "SIM00404" in out
    assert "2 tickers checked" in err


async def test_json_is_one_document_with_exact_decimals(
    sim: Simulator, creds: dict[str, str]
) -> None:
    code, out, _ = await kis_async(
        "check", "005930", "000660", "--json", "--rate", "1000", env=creds
    )
    assert code == 0
    document = json.loads(out)
    first = document["results"][0]
    assert first["pdno"] == "005930"
    assert first["pchs_avg_pric"] == f"{sim.portfolio['005930'].avg_price:.4f}"
    assert first["ord_psbl_qty"] == sim.portfolio["005930"].sellable
    assert document["errors"] == []
    assert document["summary"]["ok"] == 2


async def test_csv_and_file_input_in_both_forms(
    sim: Simulator, creds: dict[str, str], tmp_path: Path
) -> None:
    plain = tmp_path / "list.txt"
    plain.write_text("# my holdings\n005930\n000660  # hynix\n\n")
    table = tmp_path / "holdings.csv"
    table.write_text("종목명,종목코드\n삼성전자,005930\nNAVER,035420\n", encoding="utf-8-sig")
    for path, expected in ((plain, ["005930", "000660"]), (table, ["005930", "035420"])):
        code, out, _ = await kis_async("check", "--file", str(path), "--csv", env=creds)
        assert code == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["pdno"] for r in rows] == expected
        assert rows[0]["ord_psbl_qty"] == str(sim.portfolio["005930"].sellable)


async def test_env_file_supplies_credentials(
    sim: Simulator, creds: dict[str, str], tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in creds.items() if k != "KIS_BASE_URL"))
    only_url = {"KIS_BASE_URL": creds["KIS_BASE_URL"]}
    code, _, _ = await kis_async("check", "005930", "--env-file", str(env_file), env=only_url)
    assert code == 0


@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (
            ["check", "005930"],
            {"KIS_APP_SECRET": ""},
            "missing environment variable(s): KIS_APP_SECRET",
        ),
        (["check", "005930"], {"KIS_ACCOUNT": "1234-5678"}, "account must look like"),
        (["check", "005930", "bad!"], {}, "'bad!'"),
        (["check"], {}, "no tickers"),
        (["check", "--file", "/nonexistent/list.txt"], {}, "cannot read /nonexistent/list.txt"),
        (["check", "005930", "--rate", "fast"], {}, "invalid float value"),
    ],
)
async def test_usage_errors_exit_2_with_one_line_and_no_call(
    sim: Simulator,
    creds: dict[str, str],
    args: list[str],
    env_change: dict[str, str],
    message: str,
) -> None:
    code, out, err = await kis_async(*args, env=creds | env_change)
    assert code == 2
    assert message in err
    assert out == ""
    assert sim.stats.calls == 0


async def test_no_secret_or_token_is_printed_even_with_debug_logs(
    sim: Simulator, creds: dict[str, str]
) -> None:
    code, out, err = await kis_async("-v", "check", "005930", "999999", "--json", env=creds)
    assert code == 1
    tokens = list(sim._tokens)
    assert tokens
    for secret in (DEMO_APP_SECRET, *tokens):
        assert secret not in out and secret not in err
    assert "DEBUG" in err


async def test_demo_runs_the_whole_check_against_the_embedded_simulator() -> None:
    code, out, err = await kis_async("demo", "--json", "--rate", str(FAST_RATE), "--latency", "0")
    assert code == 1, "the demo portfolio asks about two unknown tickers"
    summary = json.loads(out)["summary"]
    assert summary["failed"] == 2
    assert summary["ok"] == summary["asked"] - 2 > 150
    assert "0 rejected" in err


async def test_ctrl_c_stops_cleanly_and_prints_what_was_done() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kis_async",
        "demo",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    started = await asyncio.wait_for(proc.stderr.readline(), 30)
    assert started.startswith(b"demo:")
    listed = await asyncio.wait_for(proc.stderr.readline(), 30)
    assert listed.startswith(b"holdings:"), "interrupt once the check itself is under way"
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 130
    summary = json.loads(out)["summary"]
    assert summary["interrupted"] is True
    assert summary["checked"] < summary["asked"]
    assert b"interrupted:" in err
    assert b"Traceback" not in err


@pytest.mark.parametrize("form", ["table", "--csv", "--json"])
async def test_server_text_cannot_drive_the_terminal_or_show_the_account(
    sim: Simulator, creds: dict[str, str], form: str
) -> None:
    sim.inject(Fault.TERMINAL_ESCAPES, pdno="005930")
    sim.inject(Fault.ACCOUNT_QUOTED, pdno="000660")
    args = ["check", "005930", "000660"] + ([form] if form != "table" else [])
    code, out, err = await kis_async(*args, env=creds)
    assert code == 1
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text
        assert DEMO_ACCOUNT.partition("-")[0] not in text
    assert "50****56" in out
