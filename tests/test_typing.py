"""A bot's own code type-checks against kis_async under ``mypy --strict``, as installed.

One mypy run, on a bot written the way the README writes one, from a folder outside the checkout:
it shows that the install lets mypy find kis_async's types (an editable install must not hide
them behind an import hook mypy cannot follow), and that an outcome narrows once its error is
tested, so ``outcome.result`` needs no ``assert`` or ``cast``; and that a sell check's numbers
cannot be added up before its ``verdict`` rules out an error (the ``type: ignore`` there is
needed, or ``--strict`` reports it unused).
"""

from __future__ import annotations

from pathlib import Path

import mypy.api
import pytest

BOT = """\
import asyncio
from typing import assert_type

from kis_async import (
    ArgumentError, CallBudgetError, ClientClosedError, Failed, KISClient, KISError, Sell,
    SellableQuantity, SellShort, Succeeded, TransportError,
)


async def sellable(tickers: list[str]) -> int:
    try:
        kis = KISClient.from_env(rate_limit=15)
    except ArgumentError as refused:
        raise SystemExit(f"fix {refused.argument}") from None
    total = 0
    async with kis:
        async for outcome in kis.iter_sellable(tickers):
            if outcome.error:
                print(outcome.pdno, outcome.error.reason)
                continue
            total += outcome.result.ord_psbl_qty
        async for outcome in kis.iter_sellable(tickers):
            if outcome.error is not None:
                continue
            assert_type(outcome.result, SellableQuantity)
        async for outcome in kis.iter_sellable(tickers):
            print(outcome.pdno, outcome.result or outcome.error)
            match outcome:
                case Succeeded(result=answer):
                    total += answer.ord_psbl_qty
                case Failed(error=CallBudgetError()):
                    await asyncio.sleep(1)
                case Failed(error=TransportError(source="redis") | ClientClosedError()):
                    break
    return total


async def short_by(kis: KISClient) -> int:
    short = 0
    for check in await kis.check_sells([Sell("005930", 10), ("000660", 5)]):
        check.ord_psbl_qty + 1  # type: ignore[operator]
        if check.verdict == "error":
            assert_type(check.error, KISError)
            continue
        assert_type(check.ord_psbl_qty, int)
        short += check.shortfall
        match check:
            case SellShort(shortfall=missing):
                print(check, missing)
    return short
"""


CONFIG = """\
[mypy]
strict = True
cache_dir = /dev/null

[mypy-aiohttp.*,multidict.*,redis.*,yarl.*]
follow_imports = skip
"""
"""``--strict``, without following the libraries under kis_async: they are half the run's
time, and nothing a bot sees of kis_async is typed in their terms."""


def test_a_bot_narrows_outcomes_under_mypy_strict_from_outside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text(BOT, encoding="utf-8")
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    out, err, status = mypy.api.run(["--config-file", str(config), str(bot)])
    assert status == 0, out + err
