"""The parser's promises (issue 22): global options on either side of the command, every
``--file`` read, and CSV that Excel opens and that says what each error was.

Run through the real CLI against the simulator, with tests/test_cli.py's fixtures."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from kis_async.simulator import Simulator

from . import test_cli
from .test_cli import Cli, assert_one_clean_line

cli, creds, home = test_cli.cli, test_cli.creds, test_cli.home


def env_file(tmp_path: Path, creds: dict[str, str]) -> Path:
    path = tmp_path / "creds.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in creds.items()))
    return path


@pytest.mark.parametrize("before", [True, False])
async def test_env_file_works_before_and_after_the_command(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli, before: bool
) -> None:
    flag = ["--env-file", str(env_file(tmp_path, creds))]
    args = [*flag, "check", "005930"] if before else ["check", "005930", *flag]
    code, out, err = await cli(*args, "--csv")
    assert code == 0, err
    assert [r["pdno"] for r in csv.DictReader(io.StringIO(out))] == ["005930"]


async def test_env_file_and_verbosity_mix_on_both_sides(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    path = env_file(tmp_path, creds)
    code, out, err = await cli("-q", "--env-file", str(path), "check", "005930", "-q", "--csv")
    assert code == 0, err
    assert err == "", "-q twice: only results"
    assert "005930" in out


async def test_env_file_after_the_command_wins_over_before(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    """The later one wins, as with any repeated option."""
    good = env_file(tmp_path, creds)
    bad = tmp_path / "bad.env"
    bad.write_text("KIS_ACCOUNT=\n")
    code, _, err = await cli("--env-file", str(bad), "check", "005930", "--env-file", str(good))
    assert code == 0, err


async def test_env_file_for_a_command_that_reads_none_is_refused(cli: Cli, tmp_path: Path) -> None:
    result = await cli("--env-file", str(tmp_path / "x.env"), "demo")
    assert_one_clean_line(result, "--env-file is for check")


async def test_missing_variables_say_how_to_set_them(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    result = await cli("check", "005930", env=creds | {"KIS_APP_KEY": ""})
    assert_one_clean_line(
        result,
        "missing environment variable(s): KIS_APP_KEY",
        "set them in the environment or pass --env-file FILE",
    )


async def test_every_file_is_read_in_order(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.csv"
    first.write_text("000660\n005930\n")
    second.write_text("종목코드\n035420\n", encoding="utf-8-sig")
    args = ("--file", str(first), "--file", str(second), "--csv")
    code, out, err = await cli("check", "068270", *args, env=creds)
    assert code == 0, err
    pdnos = [r["pdno"] for r in csv.DictReader(io.StringIO(out))]
    assert pdnos == ["068270", "000660", "005930", "035420"]


async def test_an_empty_file_is_named(
    sim: Simulator, creds: dict[str, str], tmp_path: Path, cli: Cli
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    result = await cli("check", "--file", str(empty), env=creds)
    assert_one_clean_line(result, f"{empty} had none")
    assert "give PDNO" not in result.err
    assert sim.stats.calls == 0


async def test_csv_excel_has_a_bom_and_the_same_rows(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    _, plain, _ = await cli("check", "005930", "--csv", env=creds)
    code, excel, err = await cli("check", "005930", "--csv-excel", env=creds)
    assert code == 0, err
    assert not plain.startswith("\ufeff")
    assert excel == "\ufeff" + plain


async def test_help_says_which_csv_is_for_excel(cli: Cli) -> None:
    code, out, _ = await cli("check", "--help")
    assert code == 0
    assert "--csv-excel" in out
    assert "Excel" in out.split("--csv-excel", 1)[1]


async def test_csv_error_rows_carry_the_class_and_msg_cd(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    code, out, _ = await cli("check", "005930", "999999", "--csv", env=creds)
    assert code == 1
    header, *_ = out.splitlines()
    assert header.endswith(",error,error_class,msg_cd"), "new columns go last"
    rows = {r["pdno"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["005930"]["error"] == rows["005930"]["error_class"] == ""
    assert rows["005930"]["msg_cd"] == ""
    bad = rows["999999"]
    assert bad["error"]
    assert bad["error_class"] == "APIError"
    assert bad["msg_cd"]
