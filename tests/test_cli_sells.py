"""``kis-async check --sells`` and ``--account``, run as a user runs them, against the simulator.

Order files are written as users have them: Korean Excel's CP949 CSV with the zeros it strips, a
plain list piped in. The accounts are three simulated appkeys, each bound to its own account.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kis_async import cli as kis_cli
from kis_async import orders_input
from kis_async.orders_input import OrderRow
from kis_async.render import Run, Status
from kis_async.simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    Fault,
    Holding,
    SimAccount,
    Simulator,
    SimulatorConfig,
    demo_accounts,
)

from .test_cli import Cli, assert_one_clean_line, kis_async, stopped

EXTRA = demo_accounts(2)
PORTFOLIO = {
    "005930": Holding("삼성전자", 100, Decimal("71500"), Decimal("72300"), pending_sell=20),
    "000660": Holding("SK하이닉스", 10, Decimal("180000"), Decimal("190000"), pending_sell=10),
    "035420": Holding("NAVER", 50, Decimal("200000"), Decimal("210000"), sold_today=5),
}
"""Sellable: 005930 80 of 100; 000660 0 of 10 (all in pending sells); 035420 50 of 50."""
ORDERS_CP949 = (
    "종목코드,종목명,주문수량\r\n"
    "5930,삼성전자,50\r\n"
    "660,SK하이닉스,1\r\n"
    "5930,삼성전자,40\r\n"
    "35420,NAVER,50\r\n"
    "5380,현대차,3\r\n"
).encode("cp949")
"""Korean Excel's "CSV (쉼표로 분리)": CP949, CRLF, the tickers' zeros stripped."""
VERDICTS = [
    ("005930", 50, "ok", 0),
    ("000660", 1, "short", 1),
    ("005930", 40, "short", 10),
    ("035420", 50, "ok", 0),
    ("005380", 3, "not_held", 3),
]


@pytest.fixture
def config() -> SimulatorConfig:
    return SimulatorConfig(
        rate_limit=200, token_issue_interval=0.0, hang_for=1.0, seed=7, accounts=EXTRA
    )


@pytest.fixture
async def sim(config: SimulatorConfig) -> Any:
    async with Simulator(config, PORTFOLIO) as simulator:
        yield simulator


@pytest.fixture
def creds(sim: Simulator) -> dict[str, str]:
    return {
        "KIS_APP_KEY": DEMO_APP_KEY,
        "KIS_APP_SECRET": DEMO_APP_SECRET,
        "KIS_ACCOUNT": DEMO_ACCOUNT,
        "KIS_BASE_URL": sim.url,
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli(home: Path) -> Cli:
    return functools.partial(kis_async, home=home)


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    path = tmp_path / "orders.csv"
    path.write_bytes(ORDERS_CP949)
    return path


def env_file(path: Path, app_key: str, app_secret: str, account: str) -> Path:
    path.write_text(
        f"KIS_APP_KEY={app_key}\nKIS_APP_SECRET={app_secret}\nKIS_ACCOUNT={account}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def accounts(tmp_path: Path) -> list[Path]:
    """Three account files: the demo's and the two extra appkeys'."""
    return [
        env_file(tmp_path / "general.env", DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT),
        *(
            env_file(tmp_path / f"account{n}.env", a.app_key, a.app_secret, a.account)
            for n, a in enumerate(EXTRA, 2)
        ),
    ]


def flags(paths: list[Path]) -> list[str]:
    return [arg for path in paths for arg in ("--account", str(path))]


def masked(account: str) -> str:
    digits = account.replace("-", "")
    return f"{digits[:2]}****{digits[6:8]}-{digits[8:]}"


# -- one account ---------------------------------------------------------------------------------


async def test_a_short_order_is_flagged_and_the_status_is_1(
    sim: Simulator, creds: dict[str, str], cli: Cli, orders: Path
) -> None:
    result = await cli("check", "--sells", str(orders), env=creds)
    assert result.code == 1, result.err
    rows = result.out.splitlines()
    assert rows[0].split() == [
        "ticker",
        "name",
        "verdict",
        "sell",
        "short",
        "sellable",
        "held",
        "sold",
        "today",
    ]
    assert rows[2].split() == ["005930", "삼성전자", "ok", "50", "80", "100", "0"]
    assert rows[3].split() == ["000660", "SK하이닉스", "short", "1", "1", "0", "10", "0"]
    assert rows[4].split() == ["005930", "삼성전자", "short", "40", "10", "80", "100", "0"]
    assert rows[5].split()[:3] == ["035420", "NAVER", "ok"]
    assert rows[6].split() == ["005380", "not", "held", "3", "3", "0", "0", "0"]
    assert "tickers from '종목코드', quantities from '주문수량'" in result.err
    assert "lost their leading zeros" in result.err
    assert "5 of 5 orders judged, 4 of 4 tickers checked" in result.err
    assert "2 fit, 2 short, 1 not held, 0 failed" in result.err
    assert {p: n for p, n in sim.stats.per_pdno.items() if n} == dict.fromkeys(
        ["005930", "000660", "035420", "005380"], 1
    )


async def test_every_order_fitting_is_status_0(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    result = await cli("check", "--sells", "-", env=creds, stdin=b"005930 80\n035420\t50\n")
    assert result.code == 0, result.err
    assert "2 fit, 0 short, 0 not held, 0 failed" in result.err


async def test_json_gives_each_order_its_verdict_and_kis_numbers(
    sim: Simulator, creds: dict[str, str], cli: Cli, orders: Path
) -> None:
    result = await cli("check", "--sells", str(orders), "--json", env=creds)
    assert result.code == 1, result.err
    document = json.loads(result.out)
    got = [(o["pdno"], o["qty"], o["verdict"], o["shortfall"]) for o in document["orders"]]
    assert got == VERDICTS
    first = document["orders"][0]
    assert (first["ord_psbl_qty"], first["cblc_qty"], first["sll_qty"]) == (80, 100, 0)
    assert first["account"] == masked(DEMO_ACCOUNT)
    assert first["answered_at"].endswith("+09:00")
    assert document["orders"][2]["asked_before"] == 50
    summary = document["summary"]
    assert (summary["orders"], summary["ok"], summary["short"], summary["not_held"]) == (5, 2, 2, 1)
    assert summary["failed"] == 0 and summary["error"] is None


async def test_csv_and_json_lines_have_one_row_per_order(
    sim: Simulator, creds: dict[str, str], cli: Cli, orders: Path
) -> None:
    result = await cli("check", "--sells", str(orders), "--csv", env=creds)
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [(r["pdno"], int(r["qty"]), r["verdict"], int(r["shortfall"])) for r in rows] == (
        VERDICTS
    )
    assert rows[0]["account"] == masked(DEMO_ACCOUNT)
    lines = await cli("check", "--sells", str(orders), "--json-lines", env=creds)
    records = [json.loads(line) for line in lines.out.splitlines()]
    assert sorted((r["pdno"], r["qty"], r["verdict"], r["shortfall"]) for r in records) == sorted(
        VERDICTS
    )
    excel = await cli("check", "--sells", str(orders), "--csv-excel", env=creds)
    assert excel.out.startswith("\ufeffaccount,pdno,")


async def test_a_failed_check_is_an_error_row_never_a_quantity(
    sim: Simulator, creds: dict[str, str], cli: Cli, orders: Path
) -> None:
    sim.inject(Fault.HTML_502, pdno="005930", times=100)
    result = await cli("check", "--sells", str(orders), "--json", env=creds)
    assert result.code == 1, result.err
    document = json.loads(result.out)
    for order in document["orders"]:
        if order["pdno"] == "005930":
            assert order["verdict"] == "error"
            assert order["ord_psbl_qty"] is None and order["shortfall"] is None
            assert order["error"] == "TransportError"
    assert document["summary"]["failed"] == 2
    table = await cli("check", "--sells", str(orders), env=creds)
    assert "failed (1):" in table.out and "TransportError" in table.out


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (
            "종목코드,종목명,보유수량,매도가능수량\n005930,삼성전자,100,80\n".encode("cp949"),
            ["no order quantity column", "보유수량", "not an order quantity"],
        ),
        (b"pdno,qty\n005930,0\n005930,1.5\n00593!,3\n", ["3 bad order(s)", "line 2", "line 4"]),
        (b"# nothing\n", ["no orders"]),
    ],
    ids=["a holdings export", "bad rows, all named", "no orders"],
)
async def test_an_unusable_order_file_is_one_line_and_no_call(
    sim: Simulator, creds: dict[str, str], cli: Cli, tmp_path: Path, body: bytes, needles: list[str]
) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(body)
    result = await cli("check", "--sells", str(path), env=creds)
    assert_one_clean_line(result, *needles)
    assert sim.stats.calls == 0 and sim.stats.token_requests == 0


@pytest.mark.parametrize("extra", [["005930"], ["--holdings"], ["--file", "x.txt"]])
async def test_sells_takes_no_other_tickers(
    creds: dict[str, str], cli: Cli, orders: Path, extra: list[str]
) -> None:
    result = await cli("check", "--sells", str(orders), *extra, env=creds)
    assert_one_clean_line(result, "--sells takes its tickers from the orders")


async def test_an_order_for_another_account_is_refused_before_any_call(
    sim: Simulator, creds: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(f"계좌번호,pdno,qty\n{DEMO_ACCOUNT},005930,1\n9999999901,005930,1\n")
    result = await cli("check", "--sells", str(path), env=creds)
    assert_one_clean_line(result, "line 3", "99****99-01", "KIS_ACCOUNT")
    assert "9999999901" not in result.err
    assert sim.stats.calls == 0


# -- every account at once -------------------------------------------------------------------------


def account_orders(tmp_path: Path) -> Path:
    """The same orders on each of the three accounts, the account written both ways."""
    rows = ["account,종목코드,주문수량"]
    for n, account in enumerate([DEMO_ACCOUNT, *(a.account for a in EXTRA)]):
        written = account if n % 2 else account.replace("-", "")
        rows += [f"{written},{pdno},{qty}" for pdno, qty, _, _ in VERDICTS]
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


async def test_three_accounts_run_at_once_each_on_its_own_appkey(
    sim: Simulator, cli: Cli, tmp_path: Path, accounts: list[Path]
) -> None:
    sim.config.rate_limit = 20  # 4 tickers an account: about 0.15 s of pacing each
    sim.config.latency = 0.02
    orders = account_orders(tmp_path)
    env = {"KIS_BASE_URL": sim.url, "KIS_APP_KEY": "from-the-environment-never-used"}
    result = await cli("check", "--sells", str(orders), *flags(accounts), "--json", env=env)
    assert result.code == 1, result.err
    document = json.loads(result.out)
    labels = [masked(a) for a in (DEMO_ACCOUNT, *(e.account for e in EXTRA))]
    assert [o["account"] for o in document["orders"]] == [x for x in labels for _ in VERDICTS]
    for n in range(3):
        mine = document["orders"][n * 5 : n * 5 + 5]
        assert [(o["pdno"], o["qty"], o["verdict"], o["shortfall"]) for o in mine] == VERDICTS
    assert [s["account"] for s in document["summary"]["accounts"]] == labels
    assert document["summary"]["orders"] == 15 and document["summary"]["short"] == 6
    # Each appkey had its own token and its own calls, and the three ran at the same time.
    arrivals = sim.stats.arrivals_by_app_key
    keys = [DEMO_APP_KEY, *(a.app_key for a in EXTRA)]
    assert sorted(arrivals) == sorted(keys)
    assert all(len(arrivals[key]) == 4 for key in keys)
    assert max(min(arrivals[key]) for key in keys) < min(max(arrivals[key]) for key in keys)
    assert sim.stats.token_issuances == 3
    for label in labels:
        assert f"{label}: 5 of 5 orders judged" in result.err


async def test_the_table_names_each_rows_account(
    sim: Simulator, cli: Cli, tmp_path: Path, accounts: list[Path]
) -> None:
    orders = account_orders(tmp_path)
    result = await cli(
        "check", "--sells", str(orders), *flags(accounts), env={"KIS_BASE_URL": sim.url}
    )
    rows = [line.split()[0] for line in result.out.splitlines()[2:] if line.strip()]
    assert rows == [masked(DEMO_ACCOUNT)] * 5 + [masked(a.account) for a in EXTRA for _ in range(5)]
    assert result.out.splitlines()[0].split()[:3] == ["account", "ticker", "name"]


async def test_an_accounts_set_up_mistake_is_its_line_and_the_others_still_run(
    sim: Simulator, cli: Cli, tmp_path: Path, accounts: list[Path]
) -> None:
    wrong = env_file(accounts[1], EXTRA[0].app_key, "not-its-secret", EXTRA[0].account)
    missing = tmp_path / "missing.env"
    missing.write_text(f"KIS_APP_KEY={EXTRA[1].app_key}\nKIS_ACCOUNT={EXTRA[1].account}\n")
    orders = account_orders(tmp_path)
    paths = [accounts[0], wrong, missing]
    result = await cli(
        "check", "--sells", str(orders), *flags(paths), env={"KIS_BASE_URL": sim.url}
    )
    assert result.code == 2, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("kis-async: error:")]
    assert len(errors) == 2, result.err
    assert f"{masked(EXTRA[0].account)}: KIS refused the appkey/appsecret" in errors[0]
    assert f"KIS_APP_SECRET (in {wrong})" in errors[0]
    assert errors[1] == f"kis-async: error: {missing}: it does not set KIS_APP_SECRET"
    assert f"{masked(DEMO_ACCOUNT)}: 5 of 5 orders judged" in result.err
    assert "Traceback" not in result.err
    assert sim.stats.arrivals_by_app_key.keys() <= {DEMO_APP_KEY, EXTRA[0].app_key}


@pytest.mark.parametrize(
    ("case", "needles"),
    [
        ("no account column", ["has no account column", "3 --account files"]),
        ("an order for none of them", ["line 2", "not in any --account file"]),
        ("one account twice", ["name one account"]),
        ("one appkey twice", ["give one appkey"]),
        ("no KIS_ACCOUNT", ["KIS_ACCOUNT must be set"]),
    ],
)
async def test_what_cannot_be_told_apart_stops_the_run_before_any_call(
    sim: Simulator, cli: Cli, tmp_path: Path, accounts: list[Path], case: str, needles: list[str]
) -> None:
    orders = account_orders(tmp_path)
    paths = list(accounts)
    if case == "no account column":
        orders.write_text("pdno,qty\n005930,1\n")
    elif case == "an order for none of them":
        orders.write_text("account,pdno,qty\n1111111101,005930,1\n")
    elif case == "one account twice":
        paths[2] = env_file(paths[2], EXTRA[1].app_key, EXTRA[1].app_secret, DEMO_ACCOUNT)
    elif case == "one appkey twice":
        paths[2] = env_file(paths[2], DEMO_APP_KEY, DEMO_APP_SECRET, EXTRA[1].account)
    else:
        paths[2].write_text(f"KIS_APP_KEY={EXTRA[1].app_key}\n")
    result = await cli(
        "check", "--sells", str(orders), *flags(paths), env={"KIS_BASE_URL": sim.url}
    )
    assert_one_clean_line(result, *needles)
    assert sim.stats.calls == 0 and sim.stats.token_requests == 0


async def test_accounts_that_mask_alike_are_told_apart_by_their_file(
    config: SimulatorConfig, cli: Cli, tmp_path: Path
) -> None:
    twins = (
        SimAccount("PSsimulatedAPPKEYtwinA000000000001", "secret-a", "50111156-01"),
        SimAccount("PSsimulatedAPPKEYtwinB000000000002", "secret-b", "50999956-01"),
    )
    config.accounts = twins
    async with Simulator(config, PORTFOLIO) as twin_sim:
        paths = [env_file(tmp_path / f"{a.app_secret}.env", a.app_key, a.app_secret, a.account)
                 for a in twins]  # fmt: skip
        result = await cli(
            "check", "005930", *flags(paths), "--csv", env={"KIS_BASE_URL": twin_sim.url}
        )
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [r["account"] for r in rows] == [
        "50****56-01 (secret-a.env)",
        "50****56-01 (secret-b.env)",
    ]


async def test_tickers_on_several_accounts_carry_the_account_in_every_format(
    sim: Simulator, cli: Cli, accounts: list[Path]
) -> None:
    env = {"KIS_BASE_URL": sim.url}
    result = await cli("check", "005930", "999999", *flags(accounts[:2]), "--json", env=env)
    assert result.code == 1, result.err
    document = json.loads(result.out)
    assert [(r["account"], r["pdno"]) for r in document["results"]] == [
        (masked(DEMO_ACCOUNT), "005930"),
        (masked(EXTRA[0].account), "005930"),
    ]
    assert [e["account"] for e in document["errors"]] == [
        masked(DEMO_ACCOUNT),
        masked(EXTRA[0].account),
    ]
    assert document["summary"]["asked"] == 4 and len(document["summary"]["accounts"]) == 2
    lines = await cli("check", "005930", *flags(accounts[:2]), "--json-lines", env=env)
    assert sorted(json.loads(line)["account"] for line in lines.out.splitlines()) == sorted(
        [masked(DEMO_ACCOUNT), masked(EXTRA[0].account)]
    )


async def test_ctrl_c_on_several_accounts_prints_what_was_judged(
    sim: Simulator, home: Path, tmp_path: Path, accounts: list[Path]
) -> None:
    sim.config.rate_limit = 5
    rows = ["account,pdno,qty"] + [
        f"{account},{100000 + i:06d},1"
        for account in (DEMO_ACCOUNT, *(a.account for a in EXTRA))
        for i in range(30)
    ]
    orders = tmp_path / "orders.csv"
    orders.write_text("\n".join(rows) + "\n")
    tenth_call = asyncio.Event()
    sim.after_calls(10, tenth_call.set)
    args = ["check", "--sells", str(orders), *flags(accounts), "--json", "--rate", "5"]
    result = await stopped(
        home, args, signal.SIGINT, event=tenth_call, env={"KIS_BASE_URL": sim.url}
    )
    assert result.code in (130, -2), result.err
    assert "Traceback" not in result.err
    document = json.loads(result.out)
    summary = document["summary"]
    assert summary["interrupted"] is True
    assert 0 < summary["checked"] == len(document["orders"]) < 90
    assert all(o["verdict"] == "not_held" for o in document["orders"])
    assert "interrupted: " in result.err


def test_a_long_order_file_is_given_out_in_linear_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As many orders as a file may hold (orders_input.MAX_ORDERS) all go to their account, in
    order. Each account's list grows in place: copied whole for every row, as it once was, this
    took minutes (benchmarks measure speed; this test would only run long)."""
    rows = [OrderRow("005930", 1, None, line) for line in range(2, orders_input.MAX_ORDERS + 2)]
    monkeypatch.setattr(orders_input, "read_sells", lambda source, note: rows)
    account = kis_cli._Account(Run(asked=[]), None, DEMO_ACCOUNT)
    kis_cli._give_orders("orders.csv", [account], Status(io.StringIO()))
    assert account.run.sells is not None and len(account.run.sells) == len(rows)
    assert account.run.asked == ["005930"]


async def test_an_account_files_host_wins_over_the_environments_and_says_so(
    sim: Simulator, cli: Cli, tmp_path: Path
) -> None:
    path = env_file(tmp_path / "paper.env", DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT)
    path.write_text(path.read_text() + f"KIS_BASE_URL={sim.url}\n")
    env = {"KIS_BASE_URL": "http://127.0.0.1:9"}
    result = await cli("check", "005930", "--account", str(path), env=env)
    assert result.code == 0, result.err
    assert f"KIS_BASE_URL: {path}'s value wins over the environment's for that account" in (
        result.err
    )
    assert result.out.splitlines()[0].split()[:2] == ["account", "ticker"]
