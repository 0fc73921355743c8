"""``kis-async`` run in a process of its own, forked from one where kis_async is already imported.

A fresh ``python -m kis_async`` spends about 0.7 s of CPU starting the interpreter and importing
aiohttp before it reads its first argument; the suite runs the CLI about a hundred times, and on 2
cores that start-up was a third of the suite's CPU. multiprocessing's *forkserver* imports
:mod:`kis_async.cli` once, in a single-threaded server, and forks each run from it: every run is
still a separate process with its own module state, environment, working directory, standard
streams and exit status, entered the way ``kis_async/__main__.py`` enters it (``sys.exit(main())``).

What it is not, a real interpreter start, is left to the tests that need one, which keep
``test_cli.start``: Ctrl-C and SIGTERM, a terminal, a pipe closed early, ``python -m``.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["kis_async.cli"])

# Python's own start-up decides these for a stream that is not a terminal: one encoding (the
# locale's, as the server's interpreter found it in this same environment), stderr line-buffered
# and never failing on a character it cannot encode.
_ENCODING = sys.__stdout__.encoding if sys.__stdout__ is not None else "utf-8"


_LONGEST = 60  # seconds a run may take before the test fails and the run is killed


class Ran(NamedTuple):
    code: int
    out: str
    err: str


def _child(argv: list[str], env: dict[str, str], cwd: str, folder: str) -> None:
    """The run itself, in the forked process: the streams, the environment, then the CLI."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    streams = Path(folder)
    for fd, name, flags in (
        (0, "stdin", os.O_RDONLY),
        (1, "stdout", os.O_WRONLY),
        (2, "stderr", os.O_WRONLY),
    ):
        opened = os.open(streams / name, flags)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=_ENCODING)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding=_ENCODING)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        encoding=_ENCODING,
        errors="backslashreplace",
        line_buffering=True,
    )
    from kis_async.cli import main

    sys.exit(main(argv))


async def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    folder: Path,
    stdin: bytes = b"",
) -> Ran:
    """Run ``kis-async ARGS`` to the end with exactly ``env``; its streams are files in ``folder``
    (created, and left for the test's tmp_path to remove). The event loop keeps serving while the
    run goes on: the simulator the run talks to is on it."""
    folder.mkdir(parents=True)
    (folder / "stdin").write_bytes(stdin)
    (folder / "stdout").write_bytes(b"")
    (folder / "stderr").write_bytes(b"")
    process = _CONTEXT.Process(
        target=_child, args=(list(args), dict(env), os.getcwd(), str(folder))
    )
    await asyncio.to_thread(process.start)  # the first start waits for the server's imports
    loop = asyncio.get_running_loop()
    ended = loop.create_future()
    loop.add_reader(process.sentinel, lambda: ended.done() or ended.set_result(None))
    try:
        await asyncio.wait_for(ended, _LONGEST)
    except TimeoutError:
        process.kill()
        raise
    finally:
        loop.remove_reader(process.sentinel)
        process.join()
    code = process.exitcode
    process.close()
    assert code is not None
    read = (
        (folder / "stdout").read_text(encoding=_ENCODING),
        (folder / "stderr").read_text(encoding=_ENCODING, errors="backslashreplace"),
    )
    return Ran(code, *read)
