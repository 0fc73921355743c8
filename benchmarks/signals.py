"""Ctrl-C at random moments: two SIGINTs to ``kis-async check``, many times, on a busy machine.

Each run starts ``python -m kis_async check --file <tickers>`` (``--json`` and the table, in
turn) in its own process group against a simulator this script serves on a free port, with HOME
and XDG_CACHE_HOME in a temporary folder. Some runs find a token in the cache issued just under a
minute ago, so they first wait out KIS's one-token-a-minute rule, with the cache's file lock
held. After start-up (the first line the check itself writes on stderr) it sends SIGINT to the
process group, as a terminal does, at a seeded random moment spread over the rest of the run's
life (some in the token step, most mid-check, some around the output), and a second one 0 to
500 ms after the first. A child process spins on one core throughout.

A run is clean when it ends within ``--timeout`` seconds (else the group is killed: a hang) with
status 130, or by SIGINT itself (-2); when stdout is one whole JSON document, or the table, whose
counts match the summary; and when stderr holds no ``Traceback``, ``Task was destroyed``,
``GeneratorExit``, ``Exception ignored`` or ``Unclosed``. A run that ended before its first
signal was due (or had called ``exit``, see :func:`exiting`) is held to status 0 and complete
results, and does not count: another is drawn.

    python benchmarks/signals.py [--runs 50] [--seed 1] [--tickers 300] [--rate 150] [-v]

Not part of the test suite (it takes minutes, and keeps a core busy). Prints one line per run
that was not clean (``-v``: per run), then ``signals: 50 of 50 runs clean (0 hangs, 0 wrong
status, 0 bad output), seed 1, 141.2 s; ...`` with where the first signals landed, and exits 1
if any run was not clean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kis_async import Token, TokenCache, spec
from kis_async.simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    Simulator,
    SimulatorConfig,
)

NOISE = ("Traceback", "Task was destroyed", "GeneratorExit", "Exception ignored", "Unclosed")
"""What stderr must never say, however the run was stopped."""
STARTED = ("asking KIS for an access token", "waiting ")
"""The check's first words on stderr: start-up (imports, reading the file) is over."""
SUMMARY = re.compile(r"^(?:interrupted: )?(\d+) of (\d+) tickers checked in ([\d.]+) s")
PHASES = {"token": "in the token step", "check": "mid-check", "after": "after the check", "": "?"}
"""Where a run's first signal landed, as its results tell."""
END = 0.3
"""Seconds before the end of a run's life that the last of the first signals fall in: the last
results, the output, the clean-up."""
PF_EXITING = 0x4
"""Linux's task flag for a process on its way out (``include/linux/sched.h``)."""
TOKEN_WAIT = 1.5
"""Seconds at most that a run with a cached token waits for KIS's one-a-minute rule."""


@dataclass
class Outcome:
    """What one run did, and what was wrong with it (``problem`` is empty when it was clean)."""

    kind: str = ""
    """``hang``, ``status`` or ``output`` when it was not clean."""
    problem: str = ""
    phase: str = ""
    """Where the first signal landed: ``token``, ``check``, ``after`` (the check was over) or
    ``late`` (the process had ended before it was due)."""
    startup: float = 0.0
    """Seconds from the start of the process to the check's first line on stderr."""
    life: float = 0.0
    """Seconds from the check's first line on stderr to the end of the process."""
    sent: list[float] = field(default_factory=list)
    """Seconds after the check's first line at which each SIGINT went out."""


@dataclass
class Stream:
    """A pipe read to its end in a thread, each line stamped with when it arrived."""

    lines: list[tuple[float, bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def read(self, pipe: IO[bytes]) -> None:
        for line in iter(pipe.readline, b""):
            with self.arrived:
                self.lines.append((time.monotonic(), line))
                self.arrived.notify_all()
        with self.arrived:
            self.lines.append((time.monotonic(), b""))
            self.arrived.notify_all()

    def wait_for(self, needles: tuple[str, ...], timeout: float) -> float | None:
        """When a line holding one of ``needles`` arrived; ``None`` if the pipe ended first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.arrived:
            while True:
                for stamp, line in self.lines[seen:]:
                    if not line:
                        return None
                    if any(n.encode() in line for n in needles):
                        return stamp
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)

    @property
    def text(self) -> str:
        return b"".join(line for _, line in self.lines).decode(errors="replace")


@contextlib.contextmanager
def served(rate: int) -> Iterator[str]:
    """The simulator in a thread of its own, on a free port; issues tokens back to back (each
    run has its own cache, so each asks for one)."""
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    url: list[str] = []

    async def serve() -> None:
        config = SimulatorConfig(rate_limit=rate, token_issue_interval=0.0, latency=0.01)
        async with Simulator(config) as sim:
            url.append(sim.url)
            stop.append(asyncio.Event())
            ready.set()
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)


@contextlib.contextmanager
def busy_core() -> Iterator[None]:
    """A child process spinning on one core, stopped on the way out."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run_once(
    url: str,
    tickers: Path,
    home: Path,
    *,
    json_form: bool,
    args: argparse.Namespace,
    token_wait: float,
    moments: tuple[float, float] | None,
    startup: float = 0.0,
) -> Outcome:
    """One run, signalled at ``moments`` after the check's first line, if given; see the
    module notes for what counts as clean. With ``token_wait``, the cache holds a token that
    leaves that long to wait once ``startup`` (the usual start-up time) is over."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIS_")}
    env |= {
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "KIS_APP_KEY": DEMO_APP_KEY,
        "KIS_APP_SECRET": DEMO_APP_SECRET,
        "KIS_ACCOUNT": DEMO_ACCOUNT,
        "KIS_BASE_URL": url,
    }
    if token_wait:
        seed_cache(home, url, startup + token_wait)
    command = [sys.executable, "-m", "kis_async", "check", "--file", str(tickers)]
    command += ["--rate", str(args.rate)] + (["--json"] if json_form else [])
    began = time.monotonic()
    proc = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    out, err = Stream(), Stream()
    assert proc.stdout is not None
    assert proc.stderr is not None
    readers = [
        threading.Thread(target=s.read, args=(p,))
        for s, p in ((out, proc.stdout), (err, proc.stderr))
    ]
    for reader in readers:
        reader.start()
    outcome = Outcome()
    started = err.wait_for(STARTED, args.timeout)
    if started is None:
        outcome = Outcome("output", "ended or stalled before the check started")
    else:
        outcome.phase = deliver(proc, started, moments, outcome.sent) if moments else "late"
    try:
        code = proc.wait(max(0.0, began + args.timeout - time.monotonic()))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    for reader in readers:
        reader.join()
    if started is not None:
        outcome.startup, outcome.life = started - began, time.monotonic() - started
    if outcome.problem:
        return outcome
    return judge(outcome, code, out.text, err.text, json_form, args.tickers)


def deliver(
    proc: subprocess.Popen[bytes], started: float, moments: tuple[float, ...], sent: list[float]
) -> str:
    """SIGINT to the group at each moment after ``started``, noting in ``sent`` when each went;
    ``late`` if the process ended before the first was due."""
    for n, moment in enumerate(moments):
        delay = started + moment - time.monotonic()
        if delay > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(delay)
        if proc.poll() is not None or exiting(proc.pid):
            return "late" if n == 0 else ""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
            sent.append(time.monotonic() - started)
    return ""


def exiting(pid: int) -> bool:
    """Whether the process has called ``exit``: from then on the kernel drops signals as it
    tears the process down (for a millisecond or more), so one sent then is sent too late, not
    missed by the CLI. Linux shows it as ``PF_EXITING`` in ``/proc/PID/stat``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return Path("/proc/self/stat").exists()  # gone; or no /proc to tell
    fields = stat.rpartition(")")[2].split()  # state ppid pgrp session tty tpgid flags ...
    return fields[0] in "ZX" or bool(int(fields[6]) & PF_EXITING)


def judge(
    outcome: Outcome, code: int | None, out: str, err: str, json_form: bool, asked: int
) -> Outcome:
    if code is None:
        return Outcome("hang", "killed after the timeout", outcome.phase)
    late = outcome.phase == "late"
    if code not in ((0,) if late else (130, -signal.SIGINT)):
        when = ", ".join(f"{t:.3f}" for t in outcome.sent)
        last = err.rstrip().rpartition("\n")[2]
        problem = f"exit status {code}, SIGINT at {when} s, ended at {outcome.life:.3f} s: {last}"
        return Outcome("status", problem, outcome.phase)
    noise = [word for word in NOISE if word in err]
    if noise:
        return Outcome("output", f"stderr says {noise}", outcome.phase)
    summary = next((m for line in err.splitlines() if (m := SUMMARY.match(line))), None)
    if summary is None:
        return Outcome("output", "no summary on stderr", outcome.phase)
    checked, total = int(summary[1]), int(summary[2])
    if total != asked or (late and checked != asked):
        return Outcome("output", f"summary says {checked} of {total}", outcome.phase)
    problem = json_problem(out, checked, asked) if json_form else table_problem(out, checked)
    if problem:
        return Outcome("output", problem, outcome.phase)
    if not late:
        outcome.phase = "token" if checked == 0 else "check" if checked < asked else "after"
    return outcome


def json_problem(out: str, checked: int, asked: int) -> str:
    try:
        document = json.loads(out)
        summary, results, errors = document["summary"], document["results"], document["errors"]
    except (ValueError, KeyError, TypeError) as exc:
        return f"stdout is not the JSON document ({type(exc).__name__}: {out[-80:]!r})"
    if summary["checked"] != checked or len(results) + len(errors) != checked:
        return f"document has {len(results)}+{len(errors)} for {checked} checked"
    if summary["asked"] != asked:
        return f"document asks {summary['asked']}"
    if checked and not summary["elapsed_s"] > 0:
        return f"elapsed_s {summary['elapsed_s']} after {checked} checked"
    return ""


def table_problem(out: str, checked: int) -> str:
    rows = out.splitlines()
    expected = checked + 2 if checked else 0
    if len(rows) != expected or (checked and not rows[0].startswith("ticker")):
        return f"table of {len(rows)} lines for {checked} checked"
    return ""


def seed_cache(home: Path, url: str, wait: float) -> None:
    """A cached token, expired, issued a minute less ``wait`` seconds ago: the run waits out
    the rest of KIS's minute, ``wait`` seconds after this."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(home / ".cache")
    try:
        now = time.time()
        issued = now - spec.TOKEN_ISSUE_INTERVAL + wait
        TokenCache.default(DEMO_APP_KEY, url).save(Token("stale", now - 1, issued))
    finally:
        if previous is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = previous


def draw(rng: random.Random, token_wait: float, life: float) -> tuple[float, float]:
    """The two moments, in seconds after the check's first line. The first: in the token wait
    for a third of the runs that have one; else in the last ``END`` seconds of the run (the last
    results, the output, the clean-up) three times in ten; else anywhere in the check. The
    second: 0 to 500 ms after the first."""
    kind = rng.random()
    if token_wait and kind < 1 / 3:
        first = rng.uniform(0.0, token_wait)
    elif kind < 0.7:
        first = token_wait + rng.uniform(0.0, life)
    else:
        first = token_wait + life - rng.uniform(0.0, END)
    return first, first + rng.uniform(0.0, 0.5)


def calibrate(url: str, tickers: Path, root: Path, args: argparse.Namespace) -> tuple[float, float]:
    """Seconds from the check's first line to the end of an uninterrupted run without a token
    wait (the shorter of both forms), so the first signal can be spread over the whole of it;
    and the start-up before it (the longer)."""
    lives, startups = [], []
    for json_form in (True, False):
        home = Path(tempfile.mkdtemp(dir=root))
        outcome = run_once(
            url, tickers, home, json_form=json_form, args=args, token_wait=0.0, moments=None
        )
        if outcome.problem or outcome.phase != "late":
            raise SystemExit(f"signals: calibration run failed: {outcome}")
        lives.append(outcome.life)
        startups.append(outcome.startup)
    return min(lives), max(startups)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tickers", type=int, default=300)
    parser.add_argument("--rate", type=float, default=150.0, help="the CLI's --rate")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a hang")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line for every run")
    args = parser.parse_args()
    # Started in the background (nohup, `&` in a script), SIGINT arrives ignored and every CLI
    # started here would inherit that; these runs are about Ctrl-C, so take it back.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = random.Random(args.seed)
    began = time.monotonic()
    failures: list[tuple[int, Outcome]] = []
    phases: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp, served(rate=1000) as url, busy_core():
        root = Path(tmp)
        tickers = root / "tickers.txt"
        tickers.write_text("".join(f"{100000 + i:06d}\n" for i in range(args.tickers)))
        life, startup = calibrate(url, tickers, root, args)
        n = late = 0
        while n < args.runs:
            home = root / f"run{n + late}"
            home.mkdir()
            json_form = n % 2 == 0
            token_wait = rng.uniform(0.2, TOKEN_WAIT) if rng.random() < 0.5 else 0.0
            moments = draw(rng, token_wait, life)
            outcome = run_once(
                url,
                tickers,
                home,
                json_form=json_form,
                args=args,
                token_wait=token_wait,
                moments=moments,
                startup=startup,
            )
            form = "--json" if json_form else "table"
            if outcome.phase == "late" and not outcome.problem:
                late += 1  # ended before its first signal was due: not a run that tells
                if late > args.runs:
                    raise SystemExit("signals: most runs end before their first signal is due")
                continue
            phases[outcome.phase] = phases.get(outcome.phase, 0) + 1
            if outcome.problem:
                failures.append((n, outcome))
                print(f"run {n} ({form}): {outcome.kind}: {outcome.problem}", flush=True)
            elif args.verbose:
                print(
                    f"run {n} ({form}): clean, token wait {token_wait:.2f} s, signals at "
                    f"{moments[0]:.2f} and {moments[1]:.2f} s of {life:.2f}: {outcome.phase}",
                    flush=True,
                )
            n += 1
    counts = {kind: sum(o.kind == kind for _, o in failures) for kind in ("hang", "status")}
    bad = len(failures) - sum(counts.values())
    where = ", ".join(f"{PHASES[p]} {phases[p]}" for p in PHASES if p in phases)
    print(
        f"signals: {args.runs - len(failures)} of {args.runs} runs clean ({counts['hang']} "
        f"hangs, {counts['status']} wrong status, {bad} bad output), seed {args.seed}, "
        f"{time.monotonic() - began:.1f} s; first signal {where} ({late} more runs ended "
        f"before theirs); Python {sys.version.split()[0]}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
