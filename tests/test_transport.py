"""Transient faults are retried with bounds; permanent ones are not."""

from __future__ import annotations

import pytest

from kis_async import (
    AccountError,
    APIError,
    AuthError,
    DecodeError,
    KISClient,
    RateLimitError,
    RequestTimeout,
    TransportError,
)
from kis_async.simulator import Fault, Simulator

from .conftest import ClientFactory, Stub, codes, retries

RETRIED = [
    Fault.RATE_LIMIT,
    Fault.HTML_500,
    Fault.HTML_502,
    Fault.HTML_503,
    Fault.EMPTY_500,
    Fault.TRUNCATED,
    Fault.RESET,
]


@pytest.mark.parametrize("fault", RETRIED)
async def test_transient_fault_is_retried_and_hidden(
    sim: Simulator, kis: KISClient, fault: Fault
) -> None:
    sim.inject(fault, pdno="005930", times=2)
    q = await kis.sellable_quantity("005930")
    assert q.cblc_qty == sim.portfolio["005930"].quantity
    assert sim.stats.per_pdno["005930"] == 3


async def test_hanging_server_trips_the_timeout_and_the_retry_succeeds(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.inject(Fault.HANG, pdno="005930")
    async with make_client(timeout=0.2) as kis:
        assert (await kis.sellable_quantity("005930")).pdno == "005930"
    assert sim.stats.per_pdno["005930"] == 2


async def test_timeouts_on_every_try_surface_as_request_timeout(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.inject(Fault.HANG, pdno="005930", times=3)
    async with make_client(timeout=0.1, retry=retries(2)) as kis:
        with pytest.raises(RequestTimeout, match="005930"):
            await kis.sellable_quantity("005930")


async def test_retries_are_bounded(sim: Simulator, make_client: ClientFactory) -> None:
    sim.inject(Fault.RATE_LIMIT, pdno="005930", times=10)
    async with make_client(retry=retries(3)) as kis:
        with pytest.raises(RateLimitError) as caught:
            await kis.sellable_quantity("005930")
    assert caught.value.msg_cd == "EGW00201"
    assert caught.value.status == 500
    assert sim.stats.per_pdno["005930"] == 4


async def test_kis_error_envelope_is_not_retried(sim: Simulator, kis: KISClient) -> None:
    with pytest.raises(APIError) as caught:
        await kis.sellable_quantity("999999")
    error = caught.value
    assert (error.rt_cd, error.msg_cd, error.status, error.pdno) == ("1", "SIM00404", 500, "999999")
    assert error.tr_id == "TTTC8408R"
    assert sim.stats.per_pdno["999999"] == 1


@pytest.mark.parametrize("fault", [Fault.MALFORMED, Fault.OUTPUT_MISSING, Fault.OUTPUT_NULL])
async def test_malformed_success_is_a_decode_error_not_retried(
    sim: Simulator, kis: KISClient, fault: Fault
) -> None:
    sim.inject(fault, pdno="005930")
    with pytest.raises(DecodeError, match="005930"):
        await kis.sellable_quantity("005930")
    assert sim.stats.per_pdno["005930"] == 1


@pytest.mark.parametrize("fault", [Fault.THOUSANDS, Fault.PADDED, Fault.OUTPUT_LIST, Fault.EUC_KR])
async def test_irregular_but_readable_answers_give_the_right_numbers(
    sim: Simulator, kis: KISClient, fault: Fault
) -> None:
    expected = await kis.sellable_quantity("005930")
    sim.inject(fault, pdno="005930")
    assert await kis.sellable_quantity("005930") == expected


async def test_connection_refused_is_a_transport_error(make_client: ClientFactory) -> None:
    async with make_client(base_url="http://127.0.0.1:9", retry=retries(1)) as kis:
        with pytest.raises(TransportError, match="Connect"):
            await kis.sellable_quantity("005930")


async def test_wrong_account_is_an_api_error(sim: Simulator, make_client: ClientFactory) -> None:
    async with make_client(account="12345678-01") as kis:
        with pytest.raises(AccountError, match="OPSQ2000"):
            await kis.sellable_quantity("005930")


async def test_request_carries_the_documented_headers_and_query(
    stub: Stub, make_stub_client: ClientFactory
) -> None:
    stub.api_answer = (500, {"rt_cd": "1", "msg_cd": "X", "msg1": "no"})
    async with make_stub_client() as kis:
        with pytest.raises(APIError):
            await kis.sellable_quantity("005930")
    (request,) = stub.api_requests
    assert request.headers["authorization"] == "Bearer tok"
    assert request.headers["tr_id"] == "TTTC8408R"
    assert (request.headers["appkey"], request.headers["appsecret"]) == ("key", "secret")
    assert request.headers["custtype"] == "P"
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert dict(request.query) == {"CANO": "12345678", "ACNT_PRDT_CD": "01", "PDNO": "005930"}


async def test_token_refusal_in_error_code_form_is_an_auth_error(
    stub: Stub, make_stub_client: ClientFactory
) -> None:
    stub.token_answer = (
        403,
        {"error_code": "EGW00103", "error_description": "유효하지 않은 AppKey입니다."},
    )
    async with make_stub_client() as kis:
        with pytest.raises(AuthError) as caught:
            await kis.sellable_quantity("005930")
    assert caught.value.msg_cd == "EGW00103"
    assert caught.value.status == 403
    assert not stub.api_requests


async def test_once_the_account_is_refused_the_rest_fail_without_asking(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.rate_limit = 50
    async with make_client(rate_limit=50, account="12345678-01") as kis:
        batch = await kis.check_sellable(codes(100))
        again = await kis.check_sellable(codes(10))
    assert len(batch.errors) == 100 and len(again.errors) == 10
    assert all(
        isinstance(e, AccountError) for e in [*batch.errors.values(), *again.errors.values()]
    )
    assert [e.pdno for e in batch.errors.values()] == codes(100)
    assert sim.stats.calls <= 5, "one refusal (and what was already in flight), not 110"
