"""Pictures of what the gateway sees: the client's calls in the trailing second, over time.

KIS counts a call when it arrives and refuses the one that makes more than its limit in any one
second, so the curve drawn is, at each arrival ``t``, the client's calls that arrived in
``(t - 1, t]``; a red cross is a call the gateway refused (``EGW00201``). The simulator runs in
this process with the network of :mod:`network` (request 50 ms ± 20 ms, answer 30 ± 10 ms):

- ``docs/limit-clients.png``: a 20/s gateway, 200 tickers (``--quick``: 60), kis_async against
  the two usual ways of :mod:`baselines`, one panel each;
- ``docs/learning-15.png``: the gateway enforces 15/s while kis_async is told 20/s, 300 tickers
  (``--quick``: 100), with the pace the client learned drawn over it;
- ``docs/learning-background.png``: a 20/s gateway where another program on the appkey makes
  5 calls/s, 300 tickers (``--quick``: 100), with that program's calls and the pace learned.

The table says what each picture shows. Drawn with matplotlib's Agg canvas: no screen needed.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import baselines
import network
from _harness import client, codes, table
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from network import TOLD, Scenario

from kis_async.simulator import Simulator, Stats

DOCS = Path(__file__).resolve().parent.parent / "docs"
OUT = DOCS
"""Where the pictures go: ``docs/`` for a full run, a temporary folder for a ``--quick`` one (so a
quick pass never replaces the pictures the README shows)."""
REQUEST_JITTER = 0.02
"""Seconds, plus or minus, on network.py's 50 ms way in (answers take 30 ± 10 ms more)."""
PACE_EVERY = 0.05
"""Seconds between two samples of the client's pace."""

Client = Callable[[str, list[str]], Awaitable[object]]
"""Checks the tickers against the simulator at the URL, as the client under test does."""
Samples = list[tuple[float, float]]
"""``(seconds since the simulator started, calls per second)``."""


def per_second(times: list[float]) -> list[int]:
    """For each of ``times`` (ascending), how many of them fall in ``(t - 1, t]``."""
    counts, first = [], 0
    for n, t in enumerate(times):
        while times[first] <= t - 1:
            first += 1
        counts.append(n - first + 1)
    return counts


async def gateway_view(scenario: Scenario, count: int, run: Client) -> tuple[Stats, float]:
    """Run ``count`` tickers through ``run`` under ``scenario``; what the gateway saw, and the
    loop time its arrival times count from."""
    sim = Simulator(scenario.config())
    origin = asyncio.get_running_loop().time()  # start() reads the same clock, nothing between
    async with sim:
        await run(sim.url, codes(count))
    return sim.stats, origin


def requests_in_thread(url: str, tickers: list[str]) -> Awaitable[object]:
    return asyncio.to_thread(baselines.requests_loop, url, tickers)


CLIENTS: dict[str, Client] = {
    "kis_async": network.one_client,
    "gather + AsyncLimiter(20, 1)": baselines.naive_gather,
    "requests + sleep(0.05)": requests_in_thread,
}


async def learning(scenario: Scenario, count: int) -> tuple[Stats, Samples]:
    """kis_async told 20/s under ``scenario``, its pace (``kis.stats``) sampled every
    :data:`PACE_EVERY` s."""
    samples: list[tuple[float, float]] = []

    async def run(url: str, tickers: list[str]) -> None:
        loop = asyncio.get_running_loop()
        async with client(url, TOLD) as kis:

            async def sample() -> None:
                while True:
                    samples.append((loop.time(), kis.stats.pace))
                    await asyncio.sleep(PACE_EVERY)

            sampler = asyncio.create_task(sample())
            try:
                await kis.check_sellable(tickers)
            finally:
                sampler.cancel()

    stats, origin = await gateway_view(scenario, count, run)
    return stats, [(t - origin, pace) for t, pace in samples]


def draw_calls(
    ax: Axes,
    arrivals: list[tuple[float, bool]],
    color: str,
    label: str,
    cross: str | None = "red",
    refused_label: str = "refused",
) -> None:
    """Calls in the trailing second at each arrival, and a ``cross`` for each one refused."""
    times = [t for t, _ in arrivals]
    counts = per_second(times)
    ax.step(times, counts, where="post", color=color, lw=1.4, label=label)
    refused = [(t, c) for (t, admitted), c in zip(arrivals, counts, strict=True) if not admitted]
    if refused and cross:
        xs, ys = zip(*refused, strict=True)
        ax.plot(xs, ys, "x", color=cross, ms=7, mew=1.6, label=f"{refused_label}: {len(refused)}")


def draw_limits(ax: Axes, scenario: Scenario) -> None:
    """The gateway's limit dashed; what kis_async was left, or was told, dotted."""
    lines: list[tuple[float, str, str]] = [
        (scenario.gateway, "--", f"gateway limit {scenario.gateway}/s")
    ]
    if scenario.background:
        lines.append((scenario.limit, ":", f"left for kis_async: {scenario.limit:g}/s"))
    elif scenario.gateway != TOLD:
        lines.append((TOLD, ":", f"kis_async told rate_limit={TOLD}"))
    for calls, style, label in lines:
        ax.axhline(calls, color="black", ls=style, lw=1.2, label=label)


def finish(fig: Figure, ax: Axes, name: str) -> Path:
    ax.set_xlabel("seconds since the simulator started")
    ax.set_xlim(left=0)
    path = OUT / name
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def summary(picture: str, who: str, stats: Stats, pace: Samples | None = None) -> list[object]:
    refused = str(stats.rejected)
    if stats.background_calls:
        refused += f"; its {stats.background_rejected} of {stats.background_calls}"
    learned = f"{pace[-1][1]:.1f}" if pace else "-"
    return [picture, who, stats.calls, refused, stats.max_window, learned]


def limit_clients(count: int) -> tuple[Path, list[list[object]]]:
    scenario = Scenario("gateway 20/s", request_jitter=REQUEST_JITTER)
    fig = Figure(figsize=(12, 9), layout="constrained")
    panels = fig.subplots(len(CLIENTS), sharex=True, sharey=True)
    rows, busiest = [], 0
    for ax, (who, run) in zip(panels, CLIENTS.items(), strict=True):
        stats = asyncio.run(gateway_view(scenario, count, run))[0]
        draw_calls(ax, stats.arrivals, "tab:blue", "calls the gateway saw in the last second")
        draw_limits(ax, scenario)
        ax.set_title(
            f"{who}: {stats.calls} calls, {stats.rejected} refused, "
            f"at most {stats.max_window} in one second",
            loc="left",
        )
        ax.set_ylabel("calls in the last second")
        ax.legend(loc="upper right")
        rows.append(summary("limit-clients", who, stats))
        busiest = max(busiest, stats.max_window)
    panels[0].set_ylim(0, busiest + 3)
    fig.suptitle(
        f"{count} tickers, gateway limit {scenario.gateway}/s: calls per sliding second at the "
        "gateway (request 50 ± 20 ms, answer 30 ± 10 ms)"
    )
    return finish(fig, panels[-1], "limit-clients.png"), rows


def learning_picture(
    scenario: Scenario, count: int, name: str, title: str
) -> tuple[Path, list[list[object]]]:
    stats, pace = asyncio.run(learning(scenario, count))
    fig = Figure(figsize=(12, 7), layout="constrained")
    ax = fig.subplots()
    if stats.background_arrivals:
        everyone = sorted(stats.arrivals + stats.background_arrivals)
        draw_calls(ax, everyone, "tab:purple", "both programs' calls in the last second", None)
        draw_calls(
            ax,
            stats.background_arrivals,
            "tab:gray",
            "the other program's calls in the last second",
            "dimgray",
            "the other program's calls refused",
        )
        title += f"; {stats.background_rejected} of its {stats.background_calls} refused"
    draw_calls(
        ax,
        stats.arrivals,
        "tab:blue",
        "kis_async's calls in the last second",
        refused_label="kis_async's calls refused",
    )
    xs, ys = zip(*pace, strict=True)
    ax.step(xs, ys, where="post", color="tab:orange", lw=2, label="kis_async's pace (calls/s)")
    draw_limits(ax, scenario)
    ax.set_ylabel("calls in the last second; pace in calls per second")
    ax.set_ylim(0, 1.5 * max(TOLD, stats.max_window_total))
    ax.legend(loc="upper right", ncols=2)
    ax.set_title(
        f"{title}\nkis_async: {stats.calls} calls, {stats.rejected} refused, "
        f"at most {stats.max_window} in one second"
    )
    return finish(fig, ax, name), [summary(name.removesuffix(".png"), "kis_async", stats, pace)]


def main(quick: bool) -> None:
    global OUT
    if quick:
        OUT = Path(tempfile.mkdtemp(prefix="kis_async-plots-"))
    few, many = (60, 100) if quick else (200, 300)
    pictures = [
        limit_clients(few),
        learning_picture(
            Scenario("gateway 15/s", gateway=15, request_jitter=REQUEST_JITTER),
            many,
            "learning-15.png",
            f"{many} tickers, gateway enforces 15/s, kis_async told {TOLD}/s",
        ),
        learning_picture(
            Scenario("another program at 5/s", background=5.0, request_jitter=REQUEST_JITTER),
            many,
            "learning-background.png",
            f"{many} tickers, gateway 20/s, another program on the appkey at 5/s",
        ),
    ]
    table(
        "What the pictures show: calls the gateway saw per client",
        ["picture", "client", "calls", "refused", "max in 1 s", "pace at end /s"],
        [row for _, rows in pictures for row in rows],
    )
    for path, _ in pictures:
        print(path)


if __name__ == "__main__":
    main("--quick" in sys.argv)
