"""Corporate customers (custtype B): the required headers on every call, a fresh gt_uid each time,
and the personalseckey kept as secret as the appsecret."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kis_async import Corporate, KISClient, endpoints, spec
from kis_async.config import from_environ
from kis_async.simulator import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_PERSONALSECKEY,
    Fault,
    Simulator,
)

from .conftest import ClientFactory, Stub, codes

CORPORATE = {
    "personalseckey": DEMO_PERSONALSECKEY,
    "phone_number": "010-1111-2222",
    "ip_addr": "203.0.113.7",
}


def corporate(**changes: Any) -> Corporate:
    return Corporate(**(CORPORATE | changes))


async def test_a_corporate_batch_is_accepted_with_a_fresh_gt_uid_on_every_call(
    sim: Simulator,
    make_client: ClientFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim.inject(Fault.RATE_LIMIT, times=3)
    sim.inject(Fault.HTML_502, times=3)
    cache = tmp_path / "token.json"
    with caplog.at_level(logging.DEBUG):
        async with make_client(corporate=corporate(), token_cache=cache) as kis:
            assert kis.custtype == "B"
            batch = await kis.check_sellable(codes(60))
            shown = [repr(kis), repr(corporate()), caplog.text, cache.read_text()]
    assert batch.ok, batch.errors
    assert sim.stats.calls == 66, "the six faulted tries were retried"
    assert len(sim.stats.gt_uids) == sim.stats.calls, "a retry is a new transaction"
    assert all(len(uid) <= 32 for uid in sim.stats.gt_uids)
    assert not any(DEMO_PERSONALSECKEY in text for text in shown)


async def test_an_individual_client_sends_no_corporate_header(
    sim: Simulator, kis: KISClient, stub: Stub, make_stub_client: ClientFactory
) -> None:
    assert (await kis.check_sellable(codes(20))).ok
    assert sim.stats.corporate_headers_from_individuals == 0
    async with make_stub_client() as plain:
        await plain.check_sellable(codes(2))
    for request in stub.api_requests:
        assert request.headers["custtype"] == "P"
        for name in ("personalseckey", "seq_no", "phone_number", "ip_addr", "gt_uid"):
            assert name not in request.headers


async def test_the_stub_sees_every_corporate_header(
    stub: Stub, make_stub_client: ClientFactory
) -> None:
    stub.api_answer = (500, {"rt_cd": "1", "msg_cd": "X", "msg1": "no"})
    async with make_stub_client(corporate=corporate(mac_address="aa:bb:cc:dd:ee:0f")) as kis:
        await kis.check_sellable(["005930"])
    (request,) = stub.api_requests
    headers = request.headers
    assert headers["custtype"] == "B" and headers["seq_no"] == "001"
    assert headers["personalseckey"] == DEMO_PERSONALSECKEY
    assert (headers["phone_number"], headers["ip_addr"]) == ("01011112222", "203.0.113.7")
    assert headers["mac_address"] == "AABBCCDDEE0F"
    assert len(headers["gt_uid"]) == 32


async def test_the_simulator_refuses_a_corporate_call_without_its_headers_or_with_a_repeat(
    sim: Simulator,
) -> None:
    async with aiohttp.ClientSession(sim.url) as http:
        grant = {"grant_type": "client_credentials", "appkey": DEMO_APP_KEY}
        async with http.post(spec.TOKEN_PATH, json=grant | {"appsecret": DEMO_APP_SECRET}) as r:
            token = (await r.json())["access_token"]
        cano, _, product = DEMO_ACCOUNT.partition("-")
        query = {"CANO": cano, "ACNT_PRDT_CD": product, "PDNO": "005930"}
        base = {
            "appkey": DEMO_APP_KEY,
            "appsecret": DEMO_APP_SECRET,
            "authorization": f"Bearer {token}",
            "tr_id": endpoints.SELLABLE.tr_id,
            "custtype": "B",
            "personalseckey": DEMO_PERSONALSECKEY,
            "seq_no": "001",
            "phone_number": "01011112222",
            "ip_addr": "203.0.113.7",
        }
        answers = []
        for headers in (base, base | {"gt_uid": "a" * 32}, base | {"gt_uid": "a" * 32}):
            async with http.get(endpoints.SELLABLE.path, params=query, headers=headers) as resp:
                answers.append((await resp.json())["msg_cd"])
    assert answers == ["SIM00410", "KIOK0420", "SIM00413"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"custtype": "B"}, "needs corporate="),
        ({"custtype": "P", "corporate": "corp"}, "cannot send corporate"),
        ({"corporate": "not a Corporate"}, "must be a kis_async.Corporate"),
    ],
)
def test_a_corporate_client_is_checked_at_construction(
    options: dict[str, Any], message: str
) -> None:
    if options.get("corporate") == "corp":
        options["corporate"] = corporate()
    with pytest.raises((ValueError, TypeError), match=message):
        KISClient("key", "secret", "12345678-01", token_cache=None, **options)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"personalseckey": ""}, "personalseckey must be a non-empty"),
        ({"personalseckey": "k" * 181}, "at most 180"),
        ({"personalseckey": "key\r\nX: 1"}, "printable ASCII"),
        ({"phone_number": "010-1111-22a2"}, "phone_number must be 9-12 digits"),
        ({"phone_number": "0101111222233"}, "phone_number must be 9-12 digits"),
        ({"ip_addr": "203.0.113.999"}, "ip_addr must be an IPv4 or IPv6"),
        ({"ip_addr": 3405803783}, "ip_addr must be an IPv4 or IPv6"),
        ({"mac_address": "aa:bb:cc:dd:ee"}, "mac_address must be 12 hex digits"),
    ],
)
def test_corporate_fields_are_checked_and_the_key_never_shown(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message) as caught:
        corporate(**change)
    assert DEMO_PERSONALSECKEY not in str(caught.value)
    if change.get("personalseckey"):
        assert change["personalseckey"] not in str(caught.value)


def test_the_environment_makes_a_corporate_client() -> None:
    env = {
        "KIS_APP_KEY": "key",
        "KIS_APP_SECRET": "secret",
        "KIS_ACCOUNT": "12345678-01",
        "KIS_PERSONALSECKEY": DEMO_PERSONALSECKEY,
        "KIS_PHONE_NUMBER": "01011112222",
        "KIS_IP_ADDR": "203.0.113.7",
    }
    settings = from_environ(env)
    assert isinstance(settings.options["corporate"], Corporate)
    with pytest.raises(ValueError, match="KIS_PHONE_NUMBER, KIS_IP_ADDR"):
        from_environ({k: v for k, v in env.items() if k not in ("KIS_PHONE_NUMBER", "KIS_IP_ADDR")})
    assert (
        "corporate"
        not in from_environ(
            {k: v for k, v in env.items() if not k.startswith(("KIS_P", "KIS_I"))}
        ).options
    )
