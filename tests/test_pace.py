"""The pace rule alone: what a refusal and a clean stretch do to the pace, without a clock."""

from __future__ import annotations

import math

import pytest

from kis_async.pace import (
    MAX_MARGIN,
    MIN_RATE,
    PROBE_EVERY,
    WALL_PROBE_EVERY,
    Pace,
    after_clean,
    after_refusal,
)

START = Pace.start(20.0, 0.02)


def test_the_configured_pace_spaces_calls_to_keep_any_window_under_the_limit() -> None:
    assert START.window_calls == 20
    assert START.interval == pytest.approx(1.02 / 20)
    assert START.calls_per_second == pytest.approx(20 / 1.02)
    assert not START.learned


@pytest.mark.parametrize(
    ("accepted", "rate", "margin", "wall"),
    [
        (19, 20.0, 0.04, None),  # the pace was full: a call arrived early -> jitter, widen
        (18, 20.0, 0.04, None),  # within a tenth of the window: still jitter
        (15, 15.0, 0.02, 16.0),  # the gateway held 15: the limit (or what is left) is 15
        (10, 10.0, 0.02, 11.0),
        (3, 10.0, 0.02, 4.0),  # one observation halves at most
        (0, 10.0, 0.02, 1.0),
    ],
)
def test_a_refusal_widens_the_margin_or_cuts_the_rate_to_what_was_accepted(
    accepted: int, rate: float, margin: float, wall: float | None
) -> None:
    after = after_refusal(START, sent_at=100.0, accepted=accepted, now=100.1)
    assert (after.rate, after.margin, after.wall) == (rate, pytest.approx(margin), wall)
    assert after.changed_at == 100.1
    assert after.learned


def test_refusals_from_the_same_episode_change_nothing_more() -> None:
    cut = after_refusal(START, sent_at=100.0, accepted=15, now=100.1)
    in_flight = after_refusal(cut, sent_at=100.05, accepted=12, now=100.15)
    same_window = after_refusal(cut, sent_at=100.1 + cut.window - 0.01, accepted=5, now=101.2)
    assert in_flight is cut and same_window is cut
    later = after_refusal(cut, sent_at=100.1 + cut.window + 0.01, accepted=12, now=101.2)
    assert later.rate == 12


def test_the_margin_doubles_up_to_its_bound() -> None:
    pace, margins = START, []
    for n in range(8):
        now = 100.0 + 2 * n
        pace = after_refusal(pace, sent_at=now, accepted=19, now=now)
        margins.append(pace.margin)
    assert margins[:4] == pytest.approx([0.04, 0.08, 0.16, 0.32])
    assert margins[-1] == MAX_MARGIN


def test_the_rate_never_falls_below_its_floor() -> None:
    pace = START
    for n in range(20):
        now = 100.0 + 3 * n
        pace = after_refusal(pace, sent_at=now, accepted=0, now=now)
    assert pace.rate == MIN_RATE


def test_probing_is_quick_below_the_wall_and_wary_at_it() -> None:
    pace = Pace(20.0, 0.02, rate=8.0, margin=0.02, wall=16.0, changed_at=0.0)
    assert after_clean(pace, now=PROBE_EVERY - 0.1) is pace
    steps = []
    now = 0.0
    while pace.rate < 15:
        now += PROBE_EVERY
        pace = after_clean(pace, now=now)
        steps.append(pace.rate)
    assert steps == [10.0, 12.0, 15.0], "a quarter at a time, stopping short of the wall"
    assert after_clean(pace, now=now + WALL_PROBE_EVERY - 1) is pace
    at_wall = after_clean(pace, now=now + WALL_PROBE_EVERY)
    assert at_wall.rate == 16.0


def test_clean_steps_past_the_wall_come_faster_until_the_ceiling() -> None:
    pace = Pace(20.0, 0.02, rate=10.0, margin=0.02, wall=11.0, changed_at=0.0)
    now, waits = 0.0, []
    while pace.rate < 20:
        before = pace
        wait = 0.0
        while (pace := after_clean(before, now=now + wait)) is before:
            wait += 0.5
        waits.append(wait)
        now += wait
    assert waits[0] == WALL_PROBE_EVERY
    assert waits == sorted(waits, reverse=True)
    assert waits[-1] == PROBE_EVERY
    assert pace.rate == 20.0 and after_clean(pace, now=now + 1000) is pace


def test_a_widened_margin_narrows_back_to_the_configured_one() -> None:
    pace = Pace(20.0, 0.02, rate=20.0, margin=0.16, changed_at=0.0)
    assert after_clean(pace, now=WALL_PROBE_EVERY - 1) is pace
    now, margins = 0.0, []
    while pace.margin > 0.02:
        now += WALL_PROBE_EVERY
        pace = after_clean(pace, now=now)
        margins.append(pace.margin)
    assert margins == pytest.approx([0.08, 0.04, 0.02])


@pytest.mark.parametrize("ceiling", [0.5, 1.0, 7.5, 1000.0])
def test_the_pace_stays_between_the_floor_and_the_ceiling(ceiling: float) -> None:
    pace = Pace.start(ceiling, 0.02)
    for n in range(40):
        now = 10.0 * n
        pace = after_refusal(pace, sent_at=now, accepted=n % 7, now=now)
        pace = after_clean(pace, now=now + 5)
        assert MIN_RATE <= pace.rate <= ceiling
        assert pace.window_calls >= 1
        assert math.isfinite(pace.interval)
