"""Tickers as people write them (issue 22): zeros a spreadsheet dropped come back wherever the
CLI reads a code, and a plain list may name each company after its code."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from kis_async import inputs
from kis_async.simulator import Simulator

from . import test_cli
from .test_cli import Cli, assert_one_clean_line

cli, creds, home = test_cli.cli, test_cli.creds, test_cli.home


def read(tmp_path: Path, text: str, encoding: str = "utf-8") -> tuple[list[str], list[str]]:
    """The codes in a file holding ``text``, and the notes said reading it."""
    path = tmp_path / "tickers"
    path.write_bytes(text.encode(encoding))
    notes: list[str] = []
    return inputs.read_codes(str(path), notes.append), notes


@pytest.mark.parametrize(
    ("given", "expected", "restored"),
    [
        (["005930", "000660"], ["005930", "000660"], 0),
        (["5930", "660", "035420"], ["005930", "000660", "035420"], 2),
        (["1"], ["000001"], 1),
        (["0080G0", "Q500001", "80G0"], ["0080G0", "Q500001", "80G0"], 0),  # letters: not padded
        (["1234567"], ["1234567"], 0),  # long enough already: the library judges it
        (["٥٩٣٠"], ["٥٩٣٠"], 0),  # Arabic-Indic digits are isdigit() but no ticker
        ([], [], 0),
    ],
)
def test_with_zeros_pads_short_all_digit_codes_and_notes_it_once(
    given: list[str], expected: list[str], restored: int
) -> None:
    notes: list[str] = []
    assert inputs.with_zeros(given, "the arguments", notes.append) == expected
    if restored:
        assert notes == [
            f"the arguments: {restored} code(s) had lost their leading zeros; restored "
            f"({given[0]} → {expected[0]})"
        ]
    else:
        assert notes == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("005930\n000660\n", ["005930", "000660"]),
        ("5930\n660\n", ["005930", "000660"]),
        ("005930 삼성전자\n000660  SK하이닉스 # memory\n", ["005930", "000660"]),
        ("5930 삼성전자\n", ["005930"]),
        ("005930\t삼성전자\n000660\tSK하이닉스\n", ["005930", "000660"]),  # a CSV, as before
        ("0080G0 신규 상장\n", ["0080G0"]),
        ("종목코드 종목명\n005930 삼성전자\n", ["005930"]),  # a lone header line, with a name
        ("pdno\n005930\n", ["005930"]),
        ("SK 000660\n", ["SK 000660"]),  # first field no code: passed whole, to be refused
        ("삼성전자 005930\n", ["삼성전자 005930"]),
    ],
)
def test_plain_list_lines_may_name_the_company_after_the_code(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    assert read(tmp_path, text)[0] == expected


def test_a_csv_column_is_padded_and_noted_as_before(tmp_path: Path) -> None:
    codes, notes = read(tmp_path, "종목명,종목코드\n삼성전자,5930\nNAVER,035420\n", "cp949")
    assert codes == ["005930", "035420"]
    assert notes[-1].endswith("1 code(s) had lost their leading zeros; restored (5930 → 005930)")


# -- the command line, against the simulator ------------------------------------------------------


async def test_a_plain_list_with_short_codes_and_names_is_checked(
    sim: Simulator, creds: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    path.write_text("5930 삼성전자\n000660 SK하이닉스\n")
    code, out, err = await cli("check", "--file", str(path), "--csv", env=creds)
    assert code == 0, err
    assert [r["pdno"] for r in csv.DictReader(io.StringIO(out))] == ["005930", "000660"]
    assert "1 code(s) had lost their leading zeros; restored (5930 → 005930)" in err


async def test_stdin_short_codes_are_padded(creds: dict[str, str], cli: Cli) -> None:
    code, out, err = await cli("check", "--file", "-", "--csv", env=creds, stdin=b"660\n")
    assert code == 0, err
    assert [r["pdno"] for r in csv.DictReader(io.StringIO(out))] == ["000660"]


async def test_a_line_whose_first_field_is_no_code_is_refused(
    sim: Simulator, creds: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "list.txt"
    path.write_text("005930 삼성전자\nSK 000660\n")
    result = await cli("check", "--file", str(path), env=creds)
    assert_one_clean_line(result, "1 malformed ticker(s)", "'SK 000660'")


async def test_a_short_code_argument_is_padded(creds: dict[str, str], cli: Cli) -> None:
    code, out, err = await cli("check", "5930", "--csv", env=creds)
    assert code == 0, err
    assert [r["pdno"] for r in csv.DictReader(io.StringIO(out))] == ["005930"]
    assert "the arguments: 1 code(s) had lost their leading zeros; restored (5930 → 005930)" in err
