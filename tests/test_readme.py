"""Every code block in README.md runs as written, so the README cannot drift from the code.

- ```` ```python ```` blocks run as programs.
- ```` ```sh ```` blocks run in ``bash -euo pipefail`` from a directory whose ``.venv/bin`` holds
  this interpreter and its ``kis-async``, and a ``holdings.csv`` as Korean Excel saves one.
- Both see ``KIS_*`` pointing at a simulator this test starts, as if the reader had exported
  their credentials, with HOME and the token cache inside tmp_path.
- A block that starts ``kis-async simulator --port N`` gets a free port in place of ``N``
  (everywhere in the block): the reader's own simulator may be serving on ``N`` right now.
- A block right after ``<!-- not run by tests: REASON -->`` is skipped, saying why: the few that
  create a virtualenv, install packages or run the test suite itself.
- ```` ```text ```` blocks are output and are not run; a block in any other language fails
  here, so a new kind of block cannot slip through untested.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kis_async.simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    Simulator,
    SimulatorConfig,
    sample_portfolio,
)

README = Path(__file__).parent.parent / "README.md"
_FENCE = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_SIMULATOR_PORT = re.compile(r"kis-async simulator --port (\d+)")
_SKIP = re.compile(r"<!--\s*not run by tests:\s*(.*?)\s*-->")
_RUN = {"python", "sh"}
_SHOWN = {"text"}
_HELD = ("005930", "000660", "035420", "005380", "051910")
"""The simulated account: a few of the demo's positions, so whole-account examples are quick."""


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int
    skip: str | None
    """Why the README says this block is not run, if it says so."""


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marker = _SKIP.fullmatch(before[-1].strip()) if before else None
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(match[1], match[2], line, marker[1] if marker else None))
    return blocks


BLOCKS = readme_blocks()


def test_every_block_is_run_or_shown() -> None:
    assert BLOCKS, "README.md has code blocks"
    for block in BLOCKS:
        assert block.language in _RUN | _SHOWN, (
            f"README.md:{block.line}: a ```{block.language or '(no language)'} block; "
            "mark it python, sh or text"
        )
        if block.skip is not None:
            assert block.language in _RUN and block.skip, f"README.md:{block.line}"


def test_no_install_from_an_index_the_package_is_not_on() -> None:
    text = README.read_text(encoding="utf-8")
    assert not re.search(r"pip install\s+(-\S+\s+)*['\"]?kis-async\b", text)


@pytest.fixture
async def account() -> AsyncIterator[dict[str, str]]:
    """``KIS_*`` for a simulated account, as a reader with real credentials has them."""
    portfolio = {pdno: h for pdno, h in sample_portfolio().items() if pdno in _HELD}
    config = SimulatorConfig(token_issue_interval=0.0)
    async with Simulator(config, portfolio) as sim:
        yield {
            "KIS_APP_KEY": DEMO_APP_KEY,
            "KIS_APP_SECRET": DEMO_APP_SECRET,
            "KIS_ACCOUNT": DEMO_ACCOUNT,
            "KIS_BASE_URL": sim.url,
        }


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """Where a README command runs: ``.venv/bin`` with this interpreter and ``kis-async``,
    and the reader's ``holdings.csv`` (saved by Excel: CP949, a 종목코드 column)."""
    work = tmp_path / "checkout"
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, command in (("python", ""), ("kis-async", " -m kis_async")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}"{command} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    csv = "종목명,종목코드,보유수량\n삼성전자,005930,126\nSK하이닉스,000660,320\n"
    (work / "holdings.csv").write_bytes(csv.encode("cp949"))
    return work


def on_a_free_port(code: str) -> str:
    """``code`` with the port of the simulator it starts replaced by one free now."""
    found = _SIMULATOR_PORT.search(code)
    if found is None:
        return code
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return re.sub(rf"\b{found[1]}\b", str(port), code)


def test_a_blocks_simulator_port_is_replaced_everywhere_in_it() -> None:
    code = "kis-async simulator --port 8943 &\nexport KIS_BASE_URL=http://127.0.0.1:8943 X=18943\n"
    moved = on_a_free_port(code)
    port = re.search(r"--port (\d+)", moved)
    assert port is not None and port[1] != "8943"
    assert f"http://127.0.0.1:{port[1]} X=18943" in moved


@pytest.mark.parametrize(
    "block",
    [b for b in BLOCKS if b.language in _RUN],
    ids=lambda b: f"line{b.line}-{b.language}",
)
async def test_readme_block_runs_as_written(
    block: Block, account: dict[str, str], checkout: Path, tmp_path: Path
) -> None:
    if block.skip is not None:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env |= account | {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    if block.language == "python":
        program = checkout / "readme_block.py"
        program.write_text(block.code, encoding="utf-8")
        command = [sys.executable, str(program)]
    else:
        command = ["bash", "-euo", "pipefail", "-c", on_a_free_port(block.code)]
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=checkout,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    report = f"README.md:{block.line}\n--- stdout\n{out.decode()}--- stderr\n{err.decode()}"
    assert proc.returncode == 0, report
    assert b"Traceback" not in err, report
    assert out.strip(), f"{report}\nthe block printed nothing"
