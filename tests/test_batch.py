"""Bulk checks: every ticker accounted for, in order, with its own error; clean cancellation."""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path

import pytest

import kis_async
from kis_async import (
    APIError,
    DecodeError,
    Failed,
    KISClient,
    Outcome,
    SellableQuantity,
    Succeeded,
    TransportError,
)
from kis_async.simulator import Fault, Simulator

from .conftest import ClientFactory, codes, retries


async def test_every_ticker_lands_once_in_input_order(sim: Simulator, kis: KISClient) -> None:
    held = list(sim.portfolio)[:50]
    asked = ["999999", *held, " 005930", "999990", "123456", held[3]]
    sim.inject(Fault.MALFORMED, pdno=held[7])
    batch = await kis.check_sellable(asked)
    expected = list(dict.fromkeys(p.strip() for p in asked))
    assert len(batch) == len(expected)
    assert list(batch.results) == [p for p in expected if p in batch.results]
    assert set(batch.errors) == {"999999", "999990", held[7]}
    assert isinstance(batch.errors["999999"], APIError)
    assert isinstance(batch.errors[held[7]], DecodeError)
    assert list(batch.errors) == ["999999", held[7], "999990"]
    for pdno, result in batch.results.items():
        holding = sim.portfolio.get(pdno)
        assert result.ord_psbl_qty == (holding.sellable if holding else 0)
    assert sim.stats.per_pdno[held[3]] == 1, "duplicates are asked once"


async def test_bad_input_is_refused_with_zero_requests(sim: Simulator, kis: KISClient) -> None:
    with pytest.raises(ValueError, match="2 malformed"):
        await kis.check_sellable(["005930", "삼성", "000660", "x" * 13])
    with pytest.raises(ValueError, match="ticker"):
        kis.iter_sellable(["005930", ""])
    with pytest.raises(ValueError, match="ticker"):
        await kis.sellable_quantity("00 5930")
    assert sim.stats.calls == 0
    assert sim.stats.token_requests == 0


async def test_iter_sellable_yields_each_outcome_once(sim: Simulator, kis: KISClient) -> None:
    seen: list[Outcome[SellableQuantity]] = []
    async for outcome in kis.iter_sellable([*codes(120), "999999"]):
        seen.append(outcome)
    assert len(seen) == 121
    assert len({o.pdno for o in seen}) == 121
    failed = [o for o in seen if not o.ok]
    assert [o.pdno for o in failed] == ["999999"]
    assert failed[0].result is None and isinstance(failed[0].error, APIError)
    assert all(isinstance(o, Failed if o.error else Succeeded) for o in seen)


def _stray_tasks() -> set[asyncio.Task[object]]:
    """Unfinished tasks running kis_async client code (the simulator's handlers excluded)."""
    package = Path(kis_async.__file__).parent
    stray = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        where = Path(code.co_filename) if code else package / "simulator"
        if package in where.parents and package / "simulator" not in where.parents:
            stray.add(task)
    return stray - {asyncio.current_task()}


async def test_cancelling_a_batch_cancels_its_requests_and_leaks_nothing(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.latency = 0.05
    before = _stray_tasks()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        async with make_client(rate_limit=200) as kis:
            reached = asyncio.Event()
            sim.after_calls(30, reached.set)
            task = asyncio.create_task(kis.check_sellable(codes(400)))
            await reached.wait()
            assert _stray_tasks() - before, "the workers are visible while they run"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _stray_tasks() - before == set()
            calls_at_cancel = sim.stats.calls
        gc.collect()
    assert calls_at_cancel < 400


async def test_leaving_iteration_early_cancels_the_rest(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.latency = 0.02
    before = _stray_tasks()
    async with make_client(rate_limit=500) as kis:
        stream = kis.iter_sellable(codes(300))
        async for _ in stream:
            break
        await stream.aclose()
        assert _stray_tasks() - before == set()
        assert sim.stats.calls < 300


async def test_closing_the_client_mid_batch_ends_every_ticker(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.latency = 0.05
    kis = make_client(rate_limit=200, retry=retries(0))
    await kis.__aenter__()
    reached = asyncio.Event()
    sim.after_calls(10, reached.set)
    task = asyncio.create_task(kis.check_sellable(codes(100)))
    await reached.wait()
    await kis.aclose()
    batch = await task
    assert len(batch) == 100
    assert batch.errors, "calls after close fail as errors, not hang or vanish"


async def test_client_used_without_async_with_says_how() -> None:
    kis = KISClient("k", "s", "12345678-01", token_cache=None)
    with pytest.raises(RuntimeError, match="async with"):
        await kis.sellable_quantity("005930")


async def test_a_closed_client_fails_each_ticker_even_before_it_has_a_token(
    sim: Simulator, make_client: ClientFactory
) -> None:
    kis = make_client()
    await kis.__aenter__()
    await kis.aclose()
    batch = await kis.check_sellable(["005930", "000660"])
    assert all(isinstance(e, TransportError) for e in batch.errors.values())
    assert len(batch.errors) == 2
    assert sim.stats.token_requests == 0
