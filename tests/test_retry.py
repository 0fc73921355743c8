"""One helper counts and waits every retry: the policy's delay, on the client's clock."""

from __future__ import annotations

import logging

import pytest

from kis_async.retry import Backoff, RetryPolicy

from .virtual_clock import VirtualClock

HIGH = RetryPolicy(max_retries=3, backoff=0.2, max_retry_after=30.0, uniform=lambda a, b: b)


def test_retries_are_counted_up_to_the_policys_bound() -> None:
    clock = VirtualClock()

    async def main() -> list[bool]:
        tries = Backoff(HIGH, clock, "test")
        left = [tries.left]
        while tries.left:
            await tries.wait("fault")
            left.append(tries.left)
        return left

    assert clock.run(main()) == [True, True, True, False]


def test_each_wait_is_the_policys_delay_on_the_clock() -> None:
    clock = VirtualClock()
    woke: list[float] = []

    async def main() -> None:
        tries = Backoff(HIGH, clock, "test")
        while tries.left:
            await tries.wait("fault")
            woke.append(clock.monotonic())

    clock.run(main())
    assert woke == pytest.approx([0.2, 0.6, 1.4])


def test_a_servers_retry_after_is_waited_as_the_policy_bounds_it() -> None:
    clock = VirtualClock()

    async def main() -> list[float]:
        tries = Backoff(HIGH, clock, "test")
        woke = []
        for after in (2.0, 120.0, None):
            await tries.wait("503", after)
            woke.append(clock.monotonic())
        return woke

    assert clock.run(main()) == pytest.approx([2.0, 32.0, 32.8])


def test_no_retries_means_none_is_left() -> None:
    assert not Backoff(RetryPolicy(max_retries=0), VirtualClock(), "test").left


def test_a_wait_says_what_is_retried_why_and_for_how_long(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    with caplog.at_level(logging.DEBUG, logger="kis_async.retry"):
        clock.run(Backoff(HIGH, clock, "API call").wait("[EGW00201] too fast"))
        clock.run(Backoff(HIGH, clock, "Redis", level=logging.INFO).wait("down"))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "API call retry 1 in 0.20 s after: [EGW00201] too fast"),
        (logging.INFO, "Redis retry 1 in 0.20 s after: down"),
    ]
