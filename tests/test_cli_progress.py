"""Progress off a terminal (issue 22): the plan up front, a line every so often, the summary's
rate and wait honest. The formatter and the decider are pure and tested table-driven; one CLI
run with stderr to a file shows the lines a log would get."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from kis_async import render
from kis_async.batch import Failed
from kis_async.client import ClientStats
from kis_async.errors import APIError
from kis_async.render import Progress, Run, Status
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Simulator

from .conftest import codes
from .test_cli import kis_async


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (45, "45s"),
        (59.6, "1m00s"),
        (60, "1m00s"),
        (1011, "16m51s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (7500, "2h05m"),
        (-3, "0s"),
    ],
)
def test_duration_reads_as_a_person_says_it(seconds: float, shown: str) -> None:
    assert render.duration(seconds) == shown


def test_the_plan_says_how_long_up_front() -> None:
    assert render.plan(20_000, 20.0) == "20,000 tickers, about 16m40s at 20/s"
    assert render.plan(3, 2.5) == "3 tickers, about 1s at 2.5/s"


# (done, now): whether a line is due, for 1,000 tickers from t=0, every 30 s or 10 %.
DUE = [
    (1, 0.1, False),  # not per ticker
    (50, 29.9, False),  # neither 30 s nor 10 %
    (50, 30.0, True),  # 30 s
    (100, 5.0, True),  # 10 %
    (1000, 31.0, False),  # the end: the summary says it
    (0, 31.0, False),  # nothing done yet: nothing to say
]


@pytest.mark.parametrize(("done", "now", "due"), DUE)
def test_a_line_is_due_by_time_or_by_share(done: int, now: float, due: bool) -> None:
    assert Progress(1000, 0.0, every=30.0, share=0.1).due(done, now) is due


def test_after_a_line_the_next_waits_for_the_interval_or_the_next_share() -> None:
    progress = Progress(1000, 0.0, every=30.0, share=0.1)
    assert progress.due(100, 5.0)
    progress.line(100, 5.0)
    assert not progress.due(101, 5.1), "not per ticker after a share's line"
    assert not progress.due(199, 34.9)
    assert progress.due(200, 10.0), "the next share"
    assert progress.due(150, 35.0), "the interval since the last line"


def test_a_jump_past_several_shares_writes_one_line() -> None:
    progress = Progress(100, 0.0, every=1e9, share=0.1)
    progress.line(35, 1.0)
    assert not progress.due(39, 2.0)
    assert progress.due(40, 2.0)


def test_the_line_has_done_total_rate_and_a_human_eta() -> None:
    progress = Progress(20_000, 0.0, every=30.0)
    line = progress.line(600, 30.0)
    assert line == "progress: 600/20,000 (3%), 20.0/s, about 16m10s left"


def test_the_eta_is_smoothed_not_jumping_with_the_first_readings() -> None:
    """Readings of 30/s, then 10/s, then 20/s: the raw ETA would swing by half; the EWMA's
    moves far less."""
    progress = Progress(20_000, 0.0, every=30.0)
    etas = []
    done = 0
    for rate in (30, 10, 20, 20):
        done += rate * 30
        line = progress.line(done, done and 30.0 * len(etas) + 30.0)
        assert progress.rate is not None
        etas.append((20_000 - done) / progress.rate)
        assert re.search(r"about \d+m\d\ds left", line), line
    raw_second = (20_000 - 1200) / 10
    assert abs(etas[1] - etas[0]) < abs(raw_second - etas[0]) / 2


def test_status_off_a_terminal_writes_the_plan_and_progress_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Driven through :class:`Status` with its clock stepped by hand: no sleeping."""
    clock = iter(float(t) for t in range(10_000))
    monkeypatch.setattr(render.time, "perf_counter", lambda: next(clock))
    monkeypatch.setenv(render.PROGRESS_EVERY_ENV, "1000")
    stream = io.StringIO()
    status = Status(stream)
    status.start(400, 20.0)
    for _ in range(400):
        status.step()
    status.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "400 tickers, about 20s at 20/s"
    progress = [line for line in lines if line.startswith("progress: ")]
    assert len(progress) == 9, lines  # 10 % .. 90 %, none per ticker, none at the end
    assert progress[0].startswith("progress: 40/400 (10%), ")


def test_a_short_run_gets_no_plan_and_no_progress_lines() -> None:
    stream = io.StringIO()
    status = Status(stream)
    status.start(2, 20.0)
    for _ in range(2):
        status.step()
    status.stop()
    assert "about" not in stream.getvalue() and "progress:" not in stream.getvalue()


def test_quiet_and_the_terminal_get_no_progress_lines() -> None:
    quiet = io.StringIO()
    status = Status(quiet, quiet=True)
    status.start(10, 20.0)
    for _ in range(10):
        status.step()
    status.stop()
    assert quiet.getvalue() == ""


def test_waited_counts_only_the_wait_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 60 s wait announced, then Ctrl-C 2.7 s in: 2.7 s waited, not 60; two waits announced
    over the same span count once."""
    times = iter([100.0, 100.0, 100.0, 102.7])
    monkeypatch.setattr(render.time, "perf_counter", lambda: next(times))
    status = Status(io.StringIO())
    status.start(5)
    status.wait(60.0)
    status.wait(60.0)
    status.stop()
    elapsed, waited = status.took
    assert elapsed == pytest.approx(2.7)
    assert waited == pytest.approx(2.7)
    assert waited <= elapsed


def _stats(rate_limit: float) -> ClientStats:
    return ClientStats(
        rate_limit=rate_limit,
        pace=rate_limit,
        margin=0.0,
        learned=False,
        refusals=0,
        retries=0,
        token_issuances=0,
    )


def _run(count: int, elapsed: float, waited: float = 0.0) -> Run:
    run = Run(asked=codes(count), elapsed=elapsed, waited=waited, stats=_stats(20.0))
    for pdno in run.asked:
        error = APIError(rt_cd="1", msg_cd="X", msg1="no", status=500, pdno=pdno)
        run.batch.add(Failed(pdno, error))
    return run


@pytest.mark.parametrize(
    ("count", "elapsed", "rate"),
    [
        (3, 0.127, "20.0/s"),  # was 23.6/s under a 20/s limit
        (1, 0.05, None),  # one ticker has no rate
        (200, 10.0, "20.0/s"),
        (100, 10.0, "10.0/s"),
    ],
)
def test_the_summary_rate_never_exceeds_the_limit(
    count: int, elapsed: float, rate: str | None
) -> None:
    line = render.summary(_run(count, elapsed))
    found = re.search(r"\(([\d.]+/s)", line)
    assert (found.group(1) if found else None) == rate, line


def test_the_summary_never_says_more_waiting_than_elapsed() -> None:
    line = render.summary(_run(3, 2.7, waited=60.0))
    assert "2.7 s of it waiting" in line, line


async def test_a_check_with_stderr_to_a_file_writes_progress_lines(
    sim: Simulator, tmp_path: Path
) -> None:
    """40 tickers at 10/s: about 4 s, with a line every 0.5 s or 10 % (forked_cli gives the
    CLI files for its streams, so it is not a terminal)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "KIS_APP_KEY": DEMO_APP_KEY,
        "KIS_APP_SECRET": DEMO_APP_SECRET,
        "KIS_ACCOUNT": DEMO_ACCOUNT,
        "KIS_BASE_URL": sim.url,
        render.PROGRESS_EVERY_ENV: "0.5",
    }
    code, _out, err = await kis_async("check", *codes(40), "--rate", "10", home=home, env=env)
    assert code in (0, 1), err
    lines = err.splitlines()
    assert "40 tickers, about 4s at 10/s" in lines, err
    progress = [line for line in lines if line.startswith("progress: ")]
    assert progress, err
    assert re.fullmatch(r"progress: \d+/40 \(\d+%\), [\d.]+/s, about \d+s left", progress[0])
    assert "\r" not in err, "no bar off a terminal"
    assert "tickers checked" in lines[-1]
