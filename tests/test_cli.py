"""The command line, run as a user runs it: a subprocess against the simulator.

Every run gets HOME and XDG_CACHE_HOME inside the test's tmp_path (the token cache goes there)
and an environment without the caller's KIS_* variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import os
import pty
import signal
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pytest

from kis_async import Token, TokenCache, __version__, spec
from kis_async import config as cfg
from kis_async.cli import main
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Fault, Simulator

from . import forked_cli
from .conftest import FAST_RATE, codes


class Result(NamedTuple):
    code: int
    out: str
    err: str


class Cli(Protocol):
    def __call__(
        self, *args: str, env: dict[str, str] | None = ..., stdin: bytes | None = ...
    ) -> Awaitable[Result]: ...


def isolated_env(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without KIS_*, with HOME and the cache in ``home``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    base |= {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    return base | (env or {})


async def start(
    home: Path, *args: str, env: dict[str, str] | None = None, stderr: int = -1
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kis_async",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=isolated_env(home, env),
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


async def kis_async(
    *args: str, home: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Result:
    """Run ``kis-async ARGS`` to the end, in a process of its own forked from one that has
    kis_async imported (tests/forked_cli.py says why); its streams are files beside ``home``.
    tests/test_holdings.py calls this too."""
    runs = sorted(home.parent.glob("run-*"))
    folder = home.parent / f"run-{len(runs):03d}"
    ran = await forked_cli.run(args, env=isolated_env(home, env), folder=folder, stdin=stdin or b"")
    return Result(*ran)


async def python_m_kis_async(
    *args: str, home: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Result:
    """Run ``python -m kis_async ARGS`` to the end: a whole interpreter start, as a user's."""
    proc = await start(home, *args, env=env)
    out, err = await asyncio.wait_for(proc.communicate(stdin or b""), 60)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@pytest.fixture
def cli(home: Path) -> Cli:
    """:func:`kis_async` with HOME in this test's tmp_path."""
    return functools.partial(kis_async, home=home)


@pytest.fixture
def creds(sim: Simulator) -> dict[str, str]:
    return {
        "KIS_APP_KEY": DEMO_APP_KEY,
        "KIS_APP_SECRET": DEMO_APP_SECRET,
        "KIS_ACCOUNT": DEMO_ACCOUNT,
        "KIS_BASE_URL": sim.url,
    }


REAL_CACHE = (
    "from kis_async import cli\ncli._token_cache = lambda settings: cli.DEFAULT_TOKEN_CACHE\n"
)
"""A ``sitecustomize`` body that has the CLI keep the simulator's token in the per-user cache,
as it does a real host's (against a loopback host it keeps none): for the tests of what the CLI
does with a cache an earlier run left."""


def real_cache(tmp_path: Path, env: dict[str, str], body: str = "") -> dict[str, str]:
    """``env`` with ``PYTHONPATH`` at a ``sitecustomize`` of :data:`REAL_CACHE` (and ``body``):
    only a whole interpreter start (``python -m``) reads it."""
    patch = tmp_path / "real-cache"
    patch.mkdir()
    (patch / "sitecustomize.py").write_text(REAL_CACHE + body)
    return env | {"PYTHONPATH": str(patch)}


def assert_one_clean_line(result: Result, *needles: str) -> None:
    """Exit 2, no traceback, stdout empty, and one error line on stderr saying all of it."""
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert result.out == ""
    errors = [line for line in result.err.splitlines() if line.startswith("kis-async: error:")]
    assert len(errors) == 1, result.err
    for needle in needles:
        assert needle in errors[0]


# -- the happy path --------------------------------------------------------------------------------


async def test_table_lists_results_and_failures_exit_1(
    sim: Simulator, creds: dict[str, str], home: Path
) -> None:
    """Run as a user runs it, ``python -m kis_async``: the one happy-path run that pays for a
    whole interpreter start (the others are forked, tests/forked_cli.py)."""
    args = ("check", "005930", "999999", "--rate", "1000")
    code, out, err = await python_m_kis_async(*args, env=creds, home=home)
    assert code == 1
    holding = sim.portfolio["005930"]
    row = next(line for line in out.splitlines() if line.startswith("005930"))
    assert "삼성전자" in row and f"{holding.sellable:,}" in row.split()
    assert "failed (1)" in out and "999999" in out and "SIM00404" in out
    assert "2 tickers checked" in err


async def test_json_is_one_document_with_exact_decimals(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    code, out, _ = await cli("check", "005930", "000660", "--json", "--rate", "1000", env=creds)
    assert code == 0
    document = json.loads(out)
    first = document["results"][0]
    assert first["pdno"] == "005930"
    assert first["pchs_avg_pric"] == f"{sim.portfolio['005930'].avg_price:.4f}"
    assert first["ord_psbl_qty"] == sim.portfolio["005930"].sellable
    assert document["errors"] == []
    assert document["summary"]["ok"] == 2
    assert document["summary"]["error"] is None


async def test_csv_and_file_input_in_both_forms(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    plain = tmp_path / "list.txt"
    plain.write_text("# my holdings\n005930\n000660  # hynix, SK\n\n")
    table = tmp_path / "holdings.csv"
    table.write_text("종목명,종목코드\n삼성전자,005930\nNAVER,035420\n", encoding="utf-8-sig")
    for path, expected in ((plain, ["005930", "000660"]), (table, ["005930", "035420"])):
        code, out, _ = await cli("check", "--file", str(path), "--csv", env=creds)
        assert code == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["pdno"] for r in rows] == expected
        assert rows[0]["ord_psbl_qty"] == str(sim.portfolio["005930"].sellable)


async def test_demo_runs_as_designed_and_exits_0(cli: Cli) -> None:
    code, out, err = await cli("demo", "--json", "--rate", str(FAST_RATE), "--latency", "0")
    assert code == 0, "the demo's two unknown tickers are part of the show"
    summary = json.loads(out)["summary"]
    assert summary["failed"] == 2
    assert summary["ok"] == summary["asked"] - 2 > 150
    assert "0 rejected" in err
    assert "2 on purpose" in err


# -- a set-up mistake is one line naming what to fix, exit 2 ---------------------------------------


@pytest.mark.parametrize("what", [["--holdings"], ["005930", "000660", "035420", "005380"]])
async def test_wrong_secret_is_one_line_naming_the_variable(
    sim: Simulator, creds: dict[str, str], cli: Cli, what: list[str]
) -> None:
    wrong = "not-the-appsecret-0123456789"
    result = await cli("check", *what, env=creds | {"KIS_APP_SECRET": wrong})
    assert_one_clean_line(result, "EGW00105", "check KIS_APP_SECRET")
    assert wrong not in result.err and DEMO_APP_SECRET not in result.err
    assert sim.stats.token_requests == 1
    assert sim.stats.calls == 0


@pytest.mark.parametrize("what", [["--holdings"], [f"{n:06d}" for n in range(100, 140)]])
async def test_wrong_account_is_one_line_with_the_account_masked(
    sim: Simulator, creds: dict[str, str], cli: Cli, what: list[str]
) -> None:
    result = await cli("check", *what, env=creds | {"KIS_ACCOUNT": "12345678-01"})
    assert_one_clean_line(result, "12****78-01", "OPSQ2000", "check KIS_ACCOUNT")
    assert "12345678" not in result.err


async def test_a_token_marked_dead_is_one_line_naming_the_6_hour_rule(
    sim: Simulator,
    creds: dict[str, str],
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mark an earlier run left in the cache (KIS handed back the token it refused, even
    after revoking it): believed, so no token is asked for, and said in one line. The run that
    leaves it waits out KIS's minute twice, so it is tests/test_same_token.py's, in-process."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    now = time.time()
    dead = Token("dead-token", now + 3600, now - 10, dead=spec.TOKEN_INVALID)
    TokenCache.default(DEMO_APP_KEY, sim.url).save(dead)
    tickers = [f"{n:06d}" for n in range(100, 130)]
    env = real_cache(tmp_path, creds)
    result = await python_m_kis_async("check", *tickers, home=home, env=env)
    assert_one_clean_line(result, "EGW00121", "6 hours", "run again after about")
    assert "dead-token" not in result.err
    assert sim.stats.token_requests == 0 and sim.stats.calls == 0


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        (Fault.APPSECRET_REFUSED, ("EGW00304", "check KIS_APP_SECRET")),
        (Fault.PAPER_APPKEY, ("EGW02007", "paper", "KIS_BASE_URL")),
        (Fault.PRODUCT_MISMATCH, ("APBK1271", "product code", "KIS_ACCOUNT")),
        (Fault.NOT_CONSIGNMENT, ("APAC0489", "위탁", "KIS_ACCOUNT")),
    ],
)
async def test_each_setup_refusal_kis_sends_is_one_line_saying_what_to_fix(
    sim: Simulator, creds: dict[str, str], cli: Cli, fault: Fault, said: tuple[str, ...]
) -> None:
    sim.inject(fault, times=1)
    result = await cli("check", *(f"{n:06d}" for n in range(100, 120)), env=creds)
    assert_one_clean_line(result, *said)
    assert sim.stats.calls == 1


async def test_nothing_listening_is_one_line_naming_the_host(
    creds: dict[str, str], cli: Cli
) -> None:
    result = await cli("check", "--holdings", env=creds | {"KIS_BASE_URL": "http://127.0.0.1:9"})
    assert_one_clean_line(result, "cannot reach http://127.0.0.1:9", "check KIS_BASE_URL")


async def test_the_json_document_carries_the_set_up_line(creds: dict[str, str], cli: Cli) -> None:
    code, out, err = await cli(
        "check", "005930", "000660", "--json", env=creds | {"KIS_APP_SECRET": "wrong"}
    )
    assert code == 2
    document = json.loads(out)
    assert "check KIS_APP_SECRET" in document["summary"]["error"]
    assert {e["error"] for e in document["errors"]} == {"AuthError"}
    assert err.count("kis-async: error:") == 1


async def test_unreachable_redis_is_one_line_without_its_password(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    url = "redis://:hunter2secret@127.0.0.1:1/0"
    tickers = [f"{n:06d}" for n in range(100, 130)]
    started = time.monotonic()
    result = await cli("check", *tickers, env=creds | {"KIS_REDIS_URL": url})
    assert time.monotonic() - started < 20, "stopped at the first failure, not one per ticker"
    assert_one_clean_line(result, "Redis at redis://:***@127.0.0.1:1/0", "check KIS_REDIS_URL")
    assert "hunter2secret" not in result.err
    assert sim.stats.calls == 0


async def test_redis_url_without_the_redis_package_says_how_to_install_it(
    sim: Simulator, creds: dict[str, str], home: Path, tmp_path: Path
) -> None:
    """A whole interpreter start: sitecustomize hides redis before anything is imported."""
    hide = tmp_path / "no-redis"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['redis'] = None\n")
    env = creds | {"KIS_REDIS_URL": "redis://127.0.0.1:6379/0", "PYTHONPATH": str(hide)}
    result = await python_m_kis_async("check", "005930", env=env, home=home)
    assert_one_clean_line(result, "KIS_REDIS_URL", "redis package is not installed", "[redis]")
    assert sim.stats.calls == 0


@pytest.mark.parametrize(
    ("args", "env_change", "message"),
    [
        (
            ["check", "005930"],
            {"KIS_APP_SECRET": ""},
            "missing environment variable(s): KIS_APP_SECRET",
        ),
        (["check", "005930"], {"KIS_ACCOUNT": "1234-5678"}, "KIS_ACCOUNT: account must look like"),
        (["check", "005930"], {"KIS_BASE_URL": "ftp://x"}, "KIS_BASE_URL: base_url must be"),
        (
            ["check", "005930"],
            {"KIS_REDIS_URL": "localhost:6379"},
            "KIS_REDIS_URL: redis_url must be a redis://",
        ),
        (["check", "005930", "bad!"], {}, "'bad!'"),
        (["check"], {}, "no tickers"),
        (["check", "--file", "/nonexistent/list.txt"], {}, "cannot read /nonexistent/list.txt"),
        (["check", "005930", "--env-file", "/nonexistent/.env"], {}, "cannot read env file"),
        (["check", "005930", "--rate", "fast"], {}, "--rate: 'fast': not a number"),
        (["check", "005930", "--rate", "inf"], {}, "--rate: 'inf': a finite number"),
        (["check", "005930", "--rate", "nan"], {}, "--rate: 'nan': a finite number"),
        (["check", "005930", "--rate", "0"], {}, "--rate: '0': calls per second, above 0"),
        (["demo", "--rate", "inf"], {}, "--rate: 'inf': a finite number"),
        (["demo", "--rate", "-1"], {}, "--rate: '-1'"),
        (["demo", "--latency", "-0.1"], {}, "--latency: '-0.1': must not be negative"),
        (["simulator", "--port", "70000"], {}, "--port: '70000'"),
        (["simulator", "--rate", "0.5"], {}, "--rate: '0.5': a whole number"),
    ],
)
async def test_usage_errors_exit_2_with_one_line_and_no_call(
    sim: Simulator,
    creds: dict[str, str],
    cli: Cli,
    args: list[str],
    env_change: dict[str, str],
    message: str,
) -> None:
    code, out, err = await cli(*args, env=creds | env_change)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""
    assert sim.stats.calls == 0


async def test_a_bug_is_one_line_and_vv_adds_the_traceback(home: Path) -> None:
    program = (
        "import sys\nfrom kis_async import cli\n"
        "def broken(args, status):\n    raise RuntimeError('boom')\n"
        "cli._dispatch = broken\nsys.exit(cli.main(sys.argv[1:]))\n"
    )
    for flags, traceback in (([], False), (["-vv"], True)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            program,
            *flags,
            "demo",
            stderr=asyncio.subprocess.PIPE,
            env=isolated_env(home),
        )
        _, err = await proc.communicate()
        assert proc.returncode == 70
        assert b"internal error: RuntimeError: boom" in err
        assert (b"Traceback" in err) is traceback


# -- what the run shows while it runs --------------------------------------------------------------


async def read_timed(stream: asyncio.StreamReader | None) -> list[tuple[float, str]]:
    assert stream is not None
    lines = []
    while line := await stream.readline():
        lines.append((time.monotonic(), line.decode()))
    return lines


async def run_timed(
    home: Path, *args: str, env: dict[str, str]
) -> tuple[int, list[tuple[float, str]], list[tuple[float, str]], float]:
    """Run the CLI and note when each line of stdout and stderr arrived, and when it ended."""
    proc = await start(home, *args, env=env)
    assert proc.stdin is not None
    proc.stdin.close()
    out, err = await asyncio.wait_for(
        asyncio.gather(read_timed(proc.stdout), read_timed(proc.stderr)), 60
    )
    code = await proc.wait()
    return code, out, err, time.monotonic()


async def test_the_token_wait_is_said_as_it_starts_and_left_out_of_the_rate(
    sim: Simulator,
    creds: dict[str, str],
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cache says a token was issued 53 s ago and has expired since: KIS's one-a-minute
    # rule leaves about 7 s, less this process's start-up (seconds on a loaded machine), to
    # wait before the next issuance. The CLI says how long; the asking comes that much later.
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    now = time.time()
    TokenCache.default(DEMO_APP_KEY, sim.url).save(Token("stale", now - 1, now - 53))
    code, out, err, _ = await run_timed(
        home, "check", "005930", "000660", "--json-lines", env=real_cache(tmp_path, creds)
    )
    assert code == 0
    said = {line.strip().split(":")[0]: t for t, line in err}
    waiting, line = next((t, line) for t, line in err if "s: KIS issues one token a minute" in line)
    stated = float(line.split("waiting ")[1].split(" s")[0])
    assert stated >= 1, line
    gap = said["asking KIS for an access token"] - waiting
    assert gap > max(0.5, stated - 1.0), "said as the wait starts, not after it"
    assert waiting < out[0][0], "and before the first result"
    summary = err[-1][1]
    assert "s of it waiting for KIS's one-token-a-minute rule" in summary
    rate = float(summary.split("(")[1].split("/s")[0])
    assert rate > 2 / 1.0, "the rate leaves the wait out"
    assert sim.stats.token_issuances == 1


async def test_json_lines_are_flushed_as_each_ticker_completes(
    sim: Simulator, creds: dict[str, str], home: Path
) -> None:
    tickers = ["005930", "999999", "000660", "035420", "005380"]
    code, out, _, ended = await run_timed(
        home, "check", *tickers, "--json-lines", "--rate", "4", env=creds
    )
    assert code == 1
    records = [json.loads(line) for _, line in out]
    assert sorted(r["pdno"] for r in records) == sorted(tickers)
    error = next(r for r in records if r["pdno"] == "999999")
    assert error["error"] == "APIError" and error["msg_cd"] == "SIM00404" and error["message"]
    assert ended - out[0][0] > 0.5, "the first line came out long before the end"


async def test_holdings_pages_and_the_token_are_shown_as_they_happen(
    creds: dict[str, str], cli: Cli
) -> None:
    code, _, err = await cli("check", "--holdings", "--rate", "1000", env=creds)
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == "asking KIS for an access token"
    assert "holdings: page 1 read, 50 positions so far" in lines
    assert (
        "holdings: page 4 read, 197 positions so far" in lines
    )  # 7 tickers are held twice: on a loan too


async def test_a_terminal_sees_stages_and_a_bar_in_one_live_line(
    creds: dict[str, str], home: Path
) -> None:
    controller, terminal = pty.openpty()
    proc = await start(home, "check", "--holdings", "--rate", "1000", env=creds, stderr=terminal)
    os.close(terminal)
    screen = await asyncio.get_running_loop().run_in_executor(None, read_all, controller)
    code = await proc.wait()
    assert code == 1
    text = screen.replace("\r\n", "\n")
    assert "\rasking KIS for an access token" in text
    assert "\rholdings: page 2 read" in text
    assert "\r[" in text and "/s  ETA" in text
    visible = [line.split("\r")[-1] for line in text.split("\n")]
    assert not any(line.startswith(("holdings: page", "asking KIS")) for line in visible)
    assert any(line.startswith("holdings: 185 positions held") for line in visible)
    assert "185 tickers checked" in visible[-2]


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


# -- input -----------------------------------------------------------------------------------------


async def test_env_file_supplies_credentials(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in creds.items() if k != "KIS_BASE_URL"))
    only_url = {"KIS_BASE_URL": creds["KIS_BASE_URL"]}
    code, _, _ = await cli("check", "005930", "--env-file", str(env_file), env=only_url)
    assert code == 0


async def test_env_file_is_parsed_as_dotenv(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# my KIS keys\n"
        f"export KIS_APP_KEY={DEMO_APP_KEY}   # from KIS Developers\n"
        f'KIS_APP_SECRET="{DEMO_APP_SECRET}"  # keep this file private\n'
        f"KIS_ACCOUNT='{DEMO_ACCOUNT}'\n"
        f"KIS_BASE_URL={sim.url} # the simulator\n"
    )
    code, _, err = await cli("check", "005930", "--env-file", str(env_file))
    assert code == 0, err


async def test_env_file_names_itself_and_the_environment_wins(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    env_file = tmp_path / "kis.env"
    env_file.write_text(f"KIS_ACCOUNT={DEMO_ACCOUNT}\nKIS_APP_SECRET=wrong\nKIS_REDIS_URL=x\n")
    no_secret = {k: v for k, v in creds.items() if k != "KIS_APP_SECRET"}
    result = await cli("check", "005930", "--env-file", str(env_file), env=no_secret)
    assert_one_clean_line(result, f"KIS_REDIS_URL (in {env_file}): redis_url must be a redis://")

    env_file.write_text(f"KIS_ACCOUNT={DEMO_ACCOUNT}\nKIS_APP_SECRET=wrong\n")
    result = await cli("check", "005930", "--env-file", str(env_file), env=no_secret)
    assert_one_clean_line(result, f"check KIS_APP_SECRET (in {env_file})")

    wrong_account = creds | {"KIS_ACCOUNT": "12345678-01"}
    result = await cli("check", "005930", "--env-file", str(env_file), env=wrong_account)
    assert_one_clean_line(result, "12****78-01", "check KIS_ACCOUNT is")
    assert f"KIS_ACCOUNT: the environment's value wins over {env_file}'s" in result.err


async def test_tickers_from_stdin(creds: dict[str, str], cli: Cli) -> None:
    code, out, _ = await cli(
        "check", "--file", "-", "--csv", env=creds, stdin=b"005930\n# a comment\n000660\n"
    )
    assert code == 0
    assert [r["pdno"] for r in csv.DictReader(io.StringIO(out))] == ["005930", "000660"]


@pytest.mark.parametrize(
    ("content", "encoding", "column"),
    [
        (
            "종목명,종목코드,수량\n삼성전자,5930,10\nNAVER,035420,3\n",
            "cp949",
            "column 2 ('종목코드')",
        ),
        ("Name;PDNO\n삼성전자;005930\nNAVER;035420\n", "utf-8-sig", "column 2 ('PDNO')"),
        ("name\tcode\n삼성전자\t005930\nNAVER\t035420\n", "utf-8", "column 2 ('code')"),
        (
            "이름,ISIN\n삼성전자,005930\nNAVER,035420\n",
            "cp949",
            "no pdno/종목코드 header; tickers ",
        ),
        ("삼성전자,005930,10\nNAVER,035420,3\n", "utf-8", "from column 2, whose cells look"),
    ],
)
async def test_a_spreadsheet_export_is_read_and_the_column_named(
    creds: dict[str, str],
    cli: Cli,
    tmp_path: Path,
    content: str,
    encoding: str,
    column: str,
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content.encode(encoding))
    code, out, err = await cli("check", "--file", str(path), "--csv", env=creds)
    assert code == 0, err
    assert [r["pdno"] for r in csv.DictReader(io.StringIO(out))] == ["005930", "035420"]
    assert column in err


async def test_a_csv_without_a_ticker_column_says_what_it_looked_for(
    sim: Simulator, creds: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "names.csv"
    path.write_text("이름,수량\n삼성전자,10\nNAVER,3\n")
    result = await cli("check", "--file", str(path), env=creds)
    assert_one_clean_line(result, "no column of tickers", "pdno or 종목코드", "이름, 수량")


# -- conventions -----------------------------------------------------------------------------------


async def test_version(cli: Cli) -> None:
    code, out, _ = await cli("--version")
    assert code == 0
    assert out.strip() == f"kis-async {__version__}"


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"]])
def test_help_lists_the_variables_and_exit_statuses(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for name in cfg.ALL:
        assert name in out
    for status in ("0 ", "1 ", "2 ", "130 ", "143 "):
        assert f"\n  {status}" in out
    assert "wins over --env-file" in out


@pytest.mark.parametrize("command", ["check", "demo", "simulator"])
def test_every_command_says_what_it_does_and_its_defaults(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]
    assert len(description) > 40, "a description, not just the usage line"
    assert "default: 20" in out


async def test_verbosity_flags_work_before_and_after_the_command(
    creds: dict[str, str], cli: Cli
) -> None:
    _, _, plain = await cli("check", "--holdings", "--rate", "1000", env=creds)
    assert "INFO" not in plain and "DEBUG" not in plain
    for args in (["-v", "check"], ["check", "-v"]):
        _, _, err = await cli(*args, "--holdings", "--rate", "1000", env=creds)
        assert "INFO kis_async.client: holdings: 197 rows, 185 tickers held" in err
        assert "DEBUG" not in err
    for args in (["check", "-vv"], ["-v", "check", "-v"]):
        _, _, err = await cli(*args, "005930", env=creds)
        assert "DEBUG" in err


async def test_quiet_prints_only_the_results(creds: dict[str, str], cli: Cli) -> None:
    code, out, err = await cli("check", "--holdings", "-q", "--rate", "1000", env=creds)
    assert code == 1
    assert out.startswith("ticker")
    assert err == ""


async def test_no_table_header_when_every_ticker_failed(creds: dict[str, str], cli: Cli) -> None:
    code, out, _ = await cli("check", "999999", "999990", env=creds)
    assert code == 1
    assert out.startswith("failed (2):")
    assert "ticker" not in out


async def test_no_secret_or_token_is_printed_even_with_debug_logs(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    code, out, err = await cli("-vv", "check", "005930", "999999", "--json", env=creds)
    assert code == 1
    tokens = list(sim._tokens)
    assert tokens
    for secret in (DEMO_APP_SECRET, *tokens):
        assert secret not in out and secret not in err
    assert "DEBUG" in err


# -- Ctrl-C and SIGTERM ----------------------------------------------------------------------------

NOISE = ("Traceback", "Task was destroyed", "GeneratorExit", "Exception ignored", "Unclosed")
"""What stderr never says, however a run was stopped."""
STUCK = {
    "a task that ignores cancellation": (
        "async def load(self):\n"
        "    sys.stderr.write('test: stuck\\n')\n"
        "    while True:\n"
        "        with contextlib.suppress(asyncio.CancelledError):\n"
        "            await asyncio.sleep(600)\n"
        "tokencache.FileTokenStore.load = load\n"
    ),
    "a thread that never returns": (
        "def load(self):\n"
        "    sys.stderr.write('test: stuck\\n')\n"
        "    time.sleep(600)\n"
        "tokencache.TokenCache.load = load\n"
    ),
}
"""``sitecustomize`` bodies that make the token cache's load never end, and say so on stderr."""


async def stopped(
    home: Path,
    args: list[str],
    *signals: signal.Signals,
    line: bytes = b"",
    event: asyncio.Event | None = None,
    env: dict[str, str] | None = None,
    gap: float = 0.0,
) -> Result:
    """Run ``python -m kis_async ARGS``, send ``signals`` ``gap`` seconds apart once stderr has
    said ``line`` and ``event`` (set by the simulator) is set, and collect what it printed."""
    proc = await start(home, *args, env=env)
    assert proc.stderr is not None and proc.stdin is not None
    proc.stdin.close()
    seen = b""
    while line not in seen:
        said = await asyncio.wait_for(proc.stderr.readline(), 30)
        assert said, f"it ended before saying {line!r}: {seen!r}"
        seen += said
    if event is not None:
        await asyncio.wait_for(event.wait(), 30)
    for n, sig in enumerate(signals):
        if n:
            await asyncio.sleep(gap)
        with contextlib.suppress(ProcessLookupError):  # it may have ended after the first
            proc.send_signal(sig)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), (seen + err).decode())


def assert_stopped_cleanly(result: Result, code: int = 130) -> dict[str, Any]:
    """The status (or death by the signal itself, once the results are out, which a shell shows
    as the same status), nothing alarming on stderr, and the whole ``--json`` document, whose
    summary this returns (checked as counted, waiting no longer than the check)."""
    assert result.code in (code, 128 - code), result.err
    assert not [word for word in NOISE if word in result.err], result.err
    document = json.loads(result.out)
    summary: dict[str, Any] = document["summary"]
    assert summary["checked"] == len(document["results"]) + len(document["errors"])
    assert summary["interrupted"] is True
    assert 0 <= summary["waited_s"] <= summary["elapsed_s"]
    return summary


@pytest.fixture
def tickers(tmp_path: Path) -> Path:
    """100 tickers in a file, a check of 5 s at 20 calls/s."""
    path = tmp_path / "tickers.txt"
    path.write_text("".join(f"{code}\n" for code in codes(100)))
    return path


@pytest.mark.parametrize(
    ("sig", "code", "head"),
    [(signal.SIGINT, 130, "interrupted:"), (signal.SIGTERM, 143, "terminated:")],
    ids=["SIGINT", "SIGTERM"],
)
async def test_ctrl_c_and_sigterm_stop_cleanly_and_print_what_was_done(
    sim: Simulator,
    creds: dict[str, str],
    home: Path,
    tickers: Path,
    sig: signal.Signals,
    code: int,
    head: str,
) -> None:
    tenth_call = asyncio.Event()
    sim.after_calls(10, tenth_call.set)
    args = ["check", "--file", str(tickers), "--json", "--rate", "20"]
    result = await stopped(home, args, sig, event=tenth_call, env=creds)
    summary = assert_stopped_cleanly(result, code)
    assert 0 < summary["checked"] < summary["asked"] == 100
    assert summary["elapsed_s"] > 0
    assert f"{head} {summary['checked']} of 100 tickers checked" in result.err


@pytest.mark.parametrize("gap", [0.0, 0.1], ids=["back to back", "100 ms apart"])
async def test_two_ctrl_c_in_quick_succession_exit_130_with_the_document(
    sim: Simulator, creds: dict[str, str], home: Path, tickers: Path, gap: float
) -> None:
    tenth_call = asyncio.Event()
    sim.after_calls(10, tenth_call.set)
    args = ["check", "--file", str(tickers), "--json", "--rate", "20"]
    twice = (signal.SIGINT, signal.SIGINT)
    result = await stopped(home, args, *twice, event=tenth_call, env=creds, gap=gap)
    summary = assert_stopped_cleanly(result)
    assert 0 < summary["checked"] < 100


@pytest.mark.parametrize("times", [1, 2], ids=["once", "twice"])
@pytest.mark.parametrize("step", ["the token request hangs", "waiting out KIS's minute"])
async def test_ctrl_c_during_the_token_step_prints_the_document(
    sim: Simulator,
    creds: dict[str, str],
    home: Path,
    tickers: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    times: int,
) -> None:
    env = creds
    if step == "the token request hangs":
        sim.inject_token(Fault.HANG)
        line = b"asking KIS for an access token"
    else:  # the cache says a token was issued 50 s ago: about 10 s to wait before the next
        monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
        now = time.time()
        TokenCache.default(DEMO_APP_KEY, sim.url).save(Token("stale", now - 1, now - 50))
        line = b"s: KIS issues one token a minute"
        env = real_cache(tmp_path, creds)
    args = ["check", "--file", str(tickers), "--json"]
    result = await stopped(home, args, *[signal.SIGINT] * times, line=line, env=env)
    summary = assert_stopped_cleanly(result)
    assert summary["checked"] == 0
    assert "interrupted: 0 of 100 tickers checked" in result.err
    assert sim.stats.token_issuances == 0


@pytest.mark.parametrize("stuck", list(STUCK))
async def test_what_ignores_the_ctrl_c_does_not_hold_the_exit(
    sim: Simulator, creds: dict[str, str], home: Path, tmp_path: Path, stuck: str
) -> None:
    imports = "import asyncio, contextlib, sys, time\nfrom kis_async import tokencache\n"
    env = real_cache(tmp_path, creds, imports + STUCK[stuck])
    started = time.monotonic()
    result = await stopped(
        home, ["check", "005930", "--json"], signal.SIGINT, line=b"test: stuck", env=env
    )
    assert time.monotonic() - started < 20, "ended within the bounded clean-up, not after 600 s"
    summary = assert_stopped_cleanly(result)
    assert summary["checked"] == 0


async def test_a_fractional_demo_rate_runs(home: Path) -> None:
    args = ["demo", "--json", "--rate", "0.5"]
    result = await stopped(home, args, signal.SIGTERM, line=b"holdings: page 1 read")
    assert result.code == 143
    assert "Traceback" not in result.err
    assert "0.5 calls/s" not in result.err or "1 calls/s" in result.err
    assert json.loads(result.out)["summary"]["checked"] == 0


async def test_stdout_closed_early_is_not_a_traceback(
    creds: dict[str, str], home: Path, tmp_path: Path
) -> None:
    script = (
        f"{sys.executable} -m kis_async check --holdings --json-lines --rate 200 2>err.txt"
        ' | head -n 1; echo "${PIPESTATUS[0]}" > code.txt'
    )
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        cwd=tmp_path,
        env=isolated_env(home, creds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert json.loads(out)["pdno"]
    assert (tmp_path / "code.txt").read_text().strip() == "141"
    assert "Traceback" not in (tmp_path / "err.txt").read_text()


@pytest.mark.parametrize("form", ["table", "--csv", "--json"])
async def test_server_text_cannot_drive_the_terminal_or_show_the_account(
    sim: Simulator, creds: dict[str, str], cli: Cli, form: str
) -> None:
    sim.inject(Fault.TERMINAL_ESCAPES, pdno="005930")
    sim.inject(Fault.ACCOUNT_QUOTED, pdno="000660")
    args = ["check", "005930", "000660"] + ([form] if form != "table" else [])
    code, out, err = await cli(*args, env=creds)
    assert code == 1
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text
        assert DEMO_ACCOUNT.partition("-")[0] not in text
    assert "50****56" in out
