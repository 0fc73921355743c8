"""No appsecret or token in logs, reprs or error messages, whatever happens."""

from __future__ import annotations

import logging

import pytest

from kis_async import KISError
from kis_async.simulator import DEMO_APP_SECRET, Fault, Simulator

from .conftest import ClientFactory, codes, retries


async def test_secrets_never_reach_logs_reprs_or_errors(
    sim: Simulator, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    for fault in (Fault.HTML_502, Fault.RESET, Fault.RATE_LIMIT, Fault.TOKEN_EXPIRED):
        sim.inject(fault)
    sim.inject(Fault.MALFORMED, times=2)
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        async with make_client(retry=retries(1)) as kis:
            batch = await kis.check_sellable([*codes(30), "999999"])
            texts += [repr(kis), str(kis), repr(kis.retry)]
        async with make_client(app_secret="wrong-secret-value") as bad:
            failed = await bad.check_sellable(codes(3))
    errors: list[KISError] = [*batch.errors.values(), *failed.errors.values()]
    assert len(batch.errors) >= 2 and failed.errors
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts.append(caplog.text)
    issued = [t for t in sim._tokens]
    assert issued
    everything = "\n".join(texts)
    for secret in (DEMO_APP_SECRET, "wrong-secret-value", *issued):
        assert secret not in everything
    assert "retry" in caplog.text, "the log was captured at all"
