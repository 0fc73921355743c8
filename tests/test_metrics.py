"""Metrics through OpenTelemetry: exactly what the simulator saw, and nothing a label must not hold.

Each test gives the client a meter provider of the SDK's own, read by its in-memory reader, and
runs against the simulator over loopback; the counts are compared with the simulator's.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from kis_async import KISClient, config
from kis_async.endpoints import BALANCE, SELLABLE
from kis_async.metrics import INSTRUMENTS, app_key_hash
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET, Fault, Simulator

from .conftest import ClientFactory, codes, retries

README = Path(__file__).parent.parent / "README.md"
Point = tuple[str, dict[str, Any], Any]
"""An instrument's name, one data point's attributes, and the point."""


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> Iterator[MeterProvider]:
    meters = MeterProvider(metric_readers=[reader])
    yield meters
    meters.shutdown()


def points(reader: InMemoryMetricReader) -> list[Point]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [
        (metric.name, dict(point.attributes or {}), point)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]


def totals(found: list[Point], name: str, **wanted: str) -> float:
    """The sum (a counter's value, a histogram's count) over the points of ``name`` whose
    attributes include ``wanted``, each keyword naming one: ``outcome`` for ``kis.outcome``,
    ``error`` for ``error.type``, ``direction`` for ``kis.pace.direction``."""
    keys = {_ATTRIBUTE[key]: value for key, value in wanted.items()}
    total = 0.0
    for metric, attributes, point in found:
        if metric == name and all(attributes.get(k) == v for k, v in keys.items()):
            total += point.count if hasattr(point, "count") else point.value
    return total


_ATTRIBUTE = {"outcome": "kis.outcome", "error": "error.type", "direction": "kis.pace.direction"}


def by_outcome(found: list[Point], name: str) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for metric, attributes, point in found:
        if metric == name:
            key = (attributes["kis.outcome"], attributes.get("error.type", ""))
            counts[key] += point.count if hasattr(point, "count") else point.value
    return counts


async def test_a_batch_with_faults_yields_exactly_the_counts_the_simulator_saw(
    sim: Simulator,
    make_client: ClientFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=config.PROGRESS_LOGGER)
    sim.config.fault_rate = 0.1
    sim.config.fault_kinds = (Fault.RATE_LIMIT, Fault.HTML_502, Fault.MALFORMED)
    sim.inject(Fault.RATE_LIMIT, pdno="100007", times=2)
    sim.after_calls(120, sim.expire_tokens)
    asked = codes(300)
    async with make_client(retry=retries(8), meter_provider=provider) as kis:
        batch = await kis.check_sellable(asked)
        stats = kis.stats
        found = points(reader)
    seen, faults = sim.stats, sim.stats.faults
    requests = by_outcome(found, "kis.client.requests")
    assert sum(requests.values()) == seen.calls, "every try KIS counted, once"
    assert requests["ok", ""] == len(batch.results) > 200
    assert requests["rate_limited", "RateLimitError"] == seen.rejected + faults["rate_limit"] > 2
    assert requests["transient", "TransportError"] == faults["html_502"] > 0
    assert requests["failed", "DecodeError"] == faults["malformed"] == len(batch.errors) > 0
    assert requests["token_refused", "AuthError"] > 0, "the expired token's refusals"
    assert len(requests) == 5
    assert totals(found, "kis.client.pacer.wait") == seen.calls, "every try waited its turn"

    calls = by_outcome(found, "kis.client.calls")
    assert calls == {("ok", ""): len(batch.results), ("failed", "DecodeError"): len(batch.errors)}
    assert by_outcome(found, "kis.client.call.duration") == calls
    retried = by_outcome(found, "kis.client.retries")
    assert retried == {
        ("rate_limited", "RateLimitError"): requests["rate_limited", "RateLimitError"],
        ("transient", "TransportError"): requests["transient", "TransportError"],
    }
    assert sum(retried.values()) == stats.retries

    assert totals(found, "kis.client.token.issuances") == seen.token_issuances == 2
    assert by_outcome(found, "kis.client.batch.tickers") == calls
    assert totals(found, "kis.client.batch.pending") == 0
    changes = [r for r in caplog.records if "pace now" in r.getMessage()]
    assert totals(found, "kis.client.pace.changes") == len(changes) > 0
    assert totals(found, "kis.client.pace.changes", direction="down") > 0
    pace = [p for name, _, p in found if name == "kis.client.pace"]
    assert [p.value for p in pace] == [stats.pace]


async def test_no_label_holds_a_ticker_an_account_a_token_or_a_secret(
    sim: Simulator,
    make_client: ClientFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
) -> None:
    sim.config.fault_rate, sim.config.fault_kinds = 0.1, (Fault.RATE_LIMIT, Fault.MALFORMED)
    held = list(sim.portfolio)[:40]
    async with make_client(meter_provider=provider) as kis:
        await kis.check_sellable(held)
        await kis.holdings()
        token = kis._tokens.fresh() if kis._tokens is not None else None
        found = points(reader)
    assert token
    cano, product = DEMO_ACCOUNT.split("-")
    never = {*held, DEMO_APP_KEY, DEMO_APP_SECRET, token, cano, product, cano + product}
    values = {str(v) for _, attributes, _ in found for v in attributes.values()}
    assert values, "there were points to scan"
    assert not {v for v in values for secret in never if secret in v or v in secret}
    assert {a["kis.app_key.hash"] for _, a, _ in found} == {app_key_hash(DEMO_APP_KEY)}
    assert {a["kis.tr_id"] for _, a, _ in found if "kis.tr_id" in a} == {
        SELLABLE.tr_id,
        BALANCE.tr_id,
    }


async def test_the_ledgers_refusals_and_pace_are_reported_apart(
    sim: Simulator,
    make_client: ClientFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
) -> None:
    sim.config.ledger_limit = 1
    async with make_client(meter_provider=provider) as kis:
        await kis.held_tickers()
        stats = kis.stats
        found = points(reader)
    limited = totals(found, "kis.client.requests", outcome="ledger_limited")
    assert limited == sim.stats.ledger_rejected == stats.ledger_refusals > 0
    paces = {a["kis.pacer"]: p.value for name, a, p in found if name == "kis.client.pace"}
    assert paces == {"appkey": stats.pace, "ledger": stats.ledger_pace}


async def test_a_batch_left_early_leaves_nothing_pending(
    sim: Simulator,
    make_client: ClientFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
) -> None:
    sim.config.latency = 0.01
    async with make_client(meter_provider=provider, max_concurrency=8) as kis:
        outcomes = kis.iter_sellable(codes(200))
        async for _ in outcomes:
            break
        await outcomes.aclose()
    found = points(reader)
    assert totals(found, "kis.client.batch.pending") == 0
    done = totals(found, "kis.client.batch.tickers")
    assert 1 <= done < 200
    cancelled = totals(found, "kis.client.calls", outcome="cancelled")
    assert cancelled > 0, "the calls in flight were cancelled, and said so"
    assert totals(found, "kis.client.calls", outcome="cancelled", error="CancelledError")


async def test_clients_one_after_another_share_the_providers_instruments(
    make_client: ClientFactory,
    provider: MeterProvider,
    reader: InMemoryMetricReader,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for _ in range(2):
        async with make_client(meter_provider=provider) as kis:
            await kis.check_sellable(codes(10))
    found = points(reader)
    assert totals(found, "kis.client.calls", outcome="ok") == 20
    assert [r for r in caplog.records if r.name.startswith("opentelemetry")] == []
    assert [name for name, _, _ in found if name == "kis.client.pace"] == [], "both closed"


def test_a_meter_provider_that_is_not_one_is_refused() -> None:
    with pytest.raises(TypeError, match=r"opentelemetry\.metrics\.MeterProvider"):
        KISClient(DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT, meter_provider=object())  # type: ignore[arg-type]


_WITHOUT = """
import asyncio, sys
if sys.argv[1] == "hidden":
    sys.modules["opentelemetry"] = None  # as if it were not installed
from kis_async import KISClient
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET
from kis_async.simulator import Simulator, SimulatorConfig

async def main() -> None:
    async with Simulator(SimulatorConfig(rate_limit=1000, token_issue_interval=0)) as sim:
        async with KISClient(
            DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT, base_url=sim.url, token_cache=None,
            rate_limit=1000, token_issue_interval=0,
        ) as kis:
            assert (await kis.check_sellable(["005930", "000660"])).ok
    if sys.argv[1] == "hidden":
        try:
            KISClient(DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT, meter_provider=object())
        except TypeError as exc:
            print(exc)

asyncio.run(main())
print(sorted(m for m, module in sys.modules.items() if "opentelemetry" in m and module))
"""


@pytest.mark.parametrize("opentelemetry", ["hidden", "installed"])
def test_without_a_meter_provider_nothing_of_opentelemetry_is_imported(
    opentelemetry: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT, opentelemetry],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    if opentelemetry == "hidden":
        assert "pip install -e '.[otel]'" in done.stdout


def test_the_readme_lists_every_instrument_as_it_is() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Metrics") :]
    section = section[: section.index("\n## ", 1)]
    rows = re.findall(r"^\| `(kis\.[\w.]+)` \| (\w+) \| `([^`]+)` \| ([^|]*) \|", section, re.M)
    listed = {
        name: (kind, unit, set(re.findall(r"`([\w.]+)`", attrs)))
        for name, kind, unit, attrs in rows
    }
    kinds = {
        "counter": "Counter",
        "histogram": "Histogram",
        "up_down_counter": "UpDownCounter",
        "observable_gauge": "Gauge",
    }
    assert listed == {i.name: (kinds[i.kind], i.unit, set(i.attributes)) for i in INSTRUMENTS}
