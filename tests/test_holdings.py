"""Whole-account checks: the balance inquiry's pages followed to the end, and only there."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kis_async import PagingError
from kis_async.simulator import Holding, Simulator, SimulatorConfig

from .conftest import ClientFactory
from .test_cli import kis_async


def portfolio(count: int, sold_out: tuple[int, ...] = ()) -> dict[str, Holding]:
    return {
        f"{100000 + i:06d}": Holding(
            f"종목{i}",
            0 if i in sold_out else 10 + i,
            Decimal("1000.5000"),
            Decimal(1200),
            sold_today=5 if i in sold_out else 0,
        )
        for i in range(count)
    }


async def _holdings(
    config: SimulatorConfig, make_client: ClientFactory, positions: dict[str, Holding]
) -> tuple[list[str], Simulator]:
    async with Simulator(config, positions) as sim:
        async with make_client(base_url=sim.url) as kis:
            found = await kis.holdings()
        assert all(p.hldg_qty == positions[p.pdno].quantity for p in found)
        return [p.pdno for p in found], sim


@pytest.mark.parametrize(("count", "page_size", "pages"), [(7, 3, 3), (6, 3, 2), (0, 3, 1)])
async def test_every_page_is_followed_to_the_last(
    config: SimulatorConfig,
    make_client: ClientFactory,
    count: int,
    page_size: int,
    pages: int,
) -> None:
    config.page_size = page_size
    positions = portfolio(count)
    found, sim = await _holdings(config, make_client, positions)
    assert found == list(positions)
    assert sim.stats.calls == pages


async def test_token_expiring_between_pages(
    config: SimulatorConfig, make_client: ClientFactory
) -> None:
    config.page_size = 2
    positions = portfolio(9)
    async with Simulator(config, positions) as sim:
        sim.after_calls(3, sim.expire_tokens)
        async with make_client(base_url=sim.url) as kis:
            found = await kis.holdings()
        assert [p.pdno for p in found] == list(positions)
        assert sim.stats.token_issuances == 2


async def test_a_looping_continuation_key_is_an_error_not_an_endless_loop(
    config: SimulatorConfig, make_client: ClientFactory
) -> None:
    config.page_size, config.loop_paging = 2, True
    async with Simulator(config, portfolio(9)) as sim:
        async with make_client(base_url=sim.url) as kis:
            with pytest.raises(PagingError, match="repeated its continuation key"):
                await kis.holdings()
        assert sim.stats.calls == 2, "the second page repeats the key it was asked with"


async def test_paging_is_bounded(config: SimulatorConfig, make_client: ClientFactory) -> None:
    config.page_size = 1
    async with Simulator(config, portfolio(10)) as sim:
        async with make_client(base_url=sim.url) as kis:
            with pytest.raises(PagingError, match="after 4"):
                await kis.holdings(max_pages=4)
        assert sim.stats.calls == 4


async def test_check_holdings_checks_every_position_held_and_skips_sold_out(
    config: SimulatorConfig, make_client: ClientFactory
) -> None:
    config.page_size = 4
    positions = portfolio(11, sold_out=(2, 7))
    async with Simulator(config, positions) as sim:
        async with make_client(base_url=sim.url) as kis:
            batch = await kis.check_holdings()
        held = [p for p, h in positions.items() if h.quantity]
        assert list(batch.results) == held and batch.ok
        assert batch.results[held[0]].ord_psbl_qty == positions[held[0]].sellable
        assert sim.stats.calls == 3 + len(held)


async def test_empty_account_checks_nothing(sim: Simulator, make_client: ClientFactory) -> None:
    sim.portfolio.clear()
    async with make_client() as kis:
        batch = await kis.check_holdings()
    assert len(batch) == 0
    assert sim.stats.calls == 1


async def test_cli_check_holdings(sim: Simulator, tmp_path: Path) -> None:
    from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET

    env = {
        "KIS_APP_KEY": DEMO_APP_KEY,
        "KIS_APP_SECRET": DEMO_APP_SECRET,
        "KIS_ACCOUNT": DEMO_ACCOUNT,
        "KIS_BASE_URL": sim.url,
    }
    code, out, err = await kis_async(
        "check", "--holdings", "--csv", "--rate", "1000", env=env, home=tmp_path
    )
    assert code == 1, "the sample account holds two delisted tickers"
    held = [p for p, h in sim.portfolio.items() if h.quantity]
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == held
    assert f"holdings: {len(held)} positions held" in err
