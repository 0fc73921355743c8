"""The fault matrix: under each fault, every ticker of a batch ends right, once.

"Right" means: in ``results`` with exactly the numbers the simulator holds, or in ``errors`` with
the error class that names what happened. Never lost, never duplicated, never wrong.
"""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path

import pytest

from kis_async import (
    APIError,
    Batch,
    DecodeError,
    KISError,
    RateLimitError,
    SellableQuantity,
    Token,
    TokenCache,
    TransportError,
)
from kis_async.simulator import DEMO_APP_KEY, ORDINARY, UNKNOWN_TICKERS, Fault, Simulator

from .conftest import ClientFactory, retries

PERMANENT = {
    Fault.MALFORMED: DecodeError,
    Fault.OUTPUT_MISSING: DecodeError,
    Fault.OUTPUT_NULL: DecodeError,
}
SCHEDULED_ONLY = {Fault.HANG, Fault.TOKEN_EXPIRED}
"""HANG is slow and has its own test; a token expiring on 10% of calls is not a fault KIS has
(a token dies once a day), and is exercised by the scheduled expiry and revocation tests."""
TRANSIENT = [f for f in ORDINARY if f not in PERMANENT and f not in SCHEDULED_ONLY]


def check_batch(
    sim: Simulator, asked: list[str], batch: Batch[SellableQuantity], allowed: tuple[type, ...]
) -> None:
    assert list(batch.results) + list(batch.errors) != [], "something came back"
    assert set(batch.results).isdisjoint(batch.errors), "no ticker is in both"
    assert set(batch.results) | set(batch.errors) == set(asked), "no ticker is lost"
    for pdno, q in batch.results.items():
        holding = sim.portfolio.get(pdno)
        assert q.pdno == pdno
        if holding is None:
            assert (q.cblc_qty, q.ord_psbl_qty) == (0, 0)
        else:
            assert (q.cblc_qty, q.ord_psbl_qty, q.sll_qty) == (
                holding.quantity,
                holding.sellable,
                holding.sold_today,
            )
            assert q.pchs_avg_pric == holding.avg_price
            assert q.now_pric == Decimal(holding.now_price)
    for pdno, error in batch.errors.items():
        assert isinstance(error, allowed), (pdno, error)
        assert error.pdno in (pdno, None)


def portfolio_batch(sim: Simulator, count: int = 300) -> list[str]:
    held = [p for p in sim.portfolio if p not in UNKNOWN_TICKERS]
    return held + [f"{200000 + i:06d}" for i in range(count - len(held))]


@pytest.mark.parametrize("fault", TRANSIENT)
async def test_transient_fault_at_random_loses_nothing(
    sim: Simulator, make_client: ClientFactory, fault: Fault
) -> None:
    sim.config.fault_rate, sim.config.fault_kinds = 0.1, (fault,)
    asked = portfolio_batch(sim)
    async with make_client(retry=retries(6)) as kis:
        batch = await kis.check_sellable(asked)
    check_batch(sim, asked, batch, ())
    assert batch.ok
    assert sim.stats.faults[fault.value] > 10


@pytest.mark.parametrize(("fault", "kind"), list(PERMANENT.items()))
async def test_permanent_fault_lands_on_its_tickers_only(
    sim: Simulator, make_client: ClientFactory, fault: Fault, kind: type[KISError]
) -> None:
    sim.config.fault_rate, sim.config.fault_kinds = 0.05, (fault,)
    asked = portfolio_batch(sim)
    async with make_client() as kis:
        batch = await kis.check_sellable(asked)
    check_batch(sim, asked, batch, (kind,))
    assert len(batch.errors) == sim.stats.faults[fault.value] > 3


async def test_hanging_calls_time_out_and_the_batch_finishes(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.fault_rate, sim.config.fault_kinds = 0.03, (Fault.HANG,)
    asked = portfolio_batch(sim, 200)
    async with make_client(timeout=0.15, retry=retries(4)) as kis:
        batch = await kis.check_sellable(asked)
    check_batch(sim, asked, batch, ())
    assert sim.stats.faults["hang"] > 0


async def test_server_tightening_its_limit_mid_batch(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.rate_limit = 200

    def tighten() -> None:
        # Well under what the client reaches even on a loaded machine, so the storm happens.
        sim.config.rate_limit = 80

    sim.after_calls(100, tighten)
    asked = portfolio_batch(sim, 400)
    async with make_client(rate_limit=200, retry=retries(8, backoff=0.05)) as kis:
        batch = await kis.check_sellable(asked)
    check_batch(sim, asked, batch, (RateLimitError,))
    assert sim.stats.rejected > 0, "the storm happened"
    assert len(batch.results) > 0.9 * len(asked)


async def test_server_counting_in_fixed_seconds_offset_from_ours(
    config: object, make_client: ClientFactory
) -> None:
    from kis_async.simulator import SimulatorConfig

    assert isinstance(config, SimulatorConfig)
    config.rate_limit, config.fixed_window_offset = 100, 0.37
    async with Simulator(config) as offset_sim:
        asked = portfolio_batch(offset_sim, 250)
        async with make_client(base_url=offset_sim.url, rate_limit=100) as kis:
            batch = await kis.check_sellable(asked)
        check_batch(offset_sim, asked, batch, ())
        assert offset_sim.stats.rejected == 0


@pytest.mark.parametrize("token_fault", [Fault.HTML_500, Fault.EMPTY_500, Fault.RATE_LIMIT])
async def test_token_endpoint_faulty_while_a_reissue_is_needed(
    sim: Simulator, make_client: ClientFactory, token_fault: Fault
) -> None:
    def expire_and_break() -> None:
        sim.expire_tokens()
        sim.inject_token(token_fault)

    sim.after_calls(80, expire_and_break)
    asked = portfolio_batch(sim)
    async with make_client(token_issue_interval=0.05) as kis:
        batch = await kis.check_sellable(asked)
    check_batch(sim, asked, batch, ())
    assert sim.stats.token_issuances == 2


async def test_unknown_tickers_and_every_fault_at_once(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.fault_rate = 0.05
    sim.config.fault_kinds = tuple(f for f in ORDINARY if f not in SCHEDULED_ONLY)
    sim.after_calls(150, sim.revoke_tokens)
    sim.after_calls(300, sim.expire_tokens)
    asked = [*portfolio_batch(sim, 400), "999999", "999990"]
    async with make_client(retry=retries(8)) as kis:
        batch = await kis.check_sellable(asked)
    check_batch(sim, asked, batch, (DecodeError, APIError))
    assert {"999999", "999990"} <= set(batch.errors)
    decode_faults = sum(sim.stats.faults[f.value] for f in PERMANENT)
    assert len(batch.errors) == decode_faults + 2


async def test_closing_mid_batch_leaves_no_task_and_no_half_written_cache(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    cache = tmp_path / "token.json"
    sim.config.latency = 0.05
    kis = make_client(rate_limit=300, retry=retries(0), token_cache=cache)
    await kis.__aenter__()
    reached = asyncio.Event()
    sim.after_calls(20, reached.set)
    task = asyncio.create_task(kis.check_sellable(portfolio_batch(sim)))
    await reached.wait()
    await kis.aclose()
    batch = await task
    assert len(batch) == 300
    pending = [t for t in asyncio.all_tasks() if "stream" in repr(t.get_coro())]
    assert pending == []
    assert TokenCache(cache, app_key=DEMO_APP_KEY, host=kis.base_url).load() is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token.json", "token.json.lock"]


def test_failed_cache_write_keeps_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = TokenCache(tmp_path / "token.json", app_key="key", host="https://h")
    cache.save(Token("old", 2e9, 1e9))

    def crash(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    cache.save(Token("new", 2e9, 1e9))
    assert cache.load() == Token("old", 2e9, 1e9)
    assert [p.name for p in tmp_path.iterdir()] == ["token.json"]


async def test_connection_refused_for_a_whole_batch_ends_every_ticker(
    make_client: ClientFactory,
) -> None:
    asked = [f"{100000 + i:06d}" for i in range(200)]
    async with make_client(base_url="http://127.0.0.1:9", retry=retries(1)) as kis:
        batch = await kis.check_sellable(asked)
    assert list(batch.errors) == asked
    assert all(isinstance(e, TransportError) for e in batch.errors.values())
