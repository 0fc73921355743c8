"""Any KIS inquiry through the client's one token and one budget: get() and pages()."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from aiohttp import web

from kis_async import APIError, KISClient, PagingError, endpoints, spec
from kis_async.models import BalancePage
from kis_async.simulator import DEMO_ACCOUNT, Simulator

from .conftest import ClientFactory, codes

PRICE = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


class Price(msgspec.Struct):
    stck_prpr: Decimal


class PriceAnswer(msgspec.Struct):
    rt_cd: str
    output: Price


async def test_get_returns_the_body_as_a_dict_or_as_the_given_type(
    sim: Simulator, kis: KISClient
) -> None:
    body = await kis.get(endpoints.PRICE.path, tr_id=endpoints.PRICE.tr_id, params=PRICE)
    assert body["rt_cd"] == "0"
    assert body["output"]["stck_prpr"] == str(sim.portfolio["005930"].now_price)
    typed = await kis.get(
        endpoints.PRICE.path, tr_id=endpoints.PRICE.tr_id, params=PRICE, type=PriceAnswer
    )
    assert typed.output.stck_prpr == Decimal(sim.portfolio["005930"].now_price)
    assert sim.stats.token_issuances == 1


async def test_get_raises_the_same_error_classes(kis: KISClient) -> None:
    with pytest.raises(APIError, match="SIM00404"):
        await kis.get(
            endpoints.PRICE.path,
            tr_id=endpoints.PRICE.tr_id,
            params=PRICE | {"FID_INPUT_ISCD": "100000"},
        )


async def test_a_bots_other_calls_share_the_budget_with_a_batch(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.rate_limit = 20
    async with make_client(rate_limit=20) as kis:
        prices = [
            kis.get(endpoints.PRICE.path, tr_id=endpoints.PRICE.tr_id, params=PRICE)
            for _ in range(50)
        ]
        *answers, batch = await asyncio.gather(*prices, kis.check_sellable(codes(50)))
    assert batch.ok and len(answers) == 50
    assert sim.stats.calls == 100
    assert sim.stats.rejected == 0
    assert sim.stats.max_window <= 20
    assert sim.stats.token_requests == 1


async def test_pages_over_the_balance_equal_holdings(
    sim: Simulator, make_client: ClientFactory
) -> None:
    sim.config.page_size = 40
    cano, _, product = DEMO_ACCOUNT.partition("-")
    query = {"CANO": cano, "ACNT_PRDT_CD": product, **endpoints.BALANCE.query}
    query |= {"CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
    async with make_client() as kis:
        pages = [
            page
            async for page in kis.pages(
                endpoints.BALANCE.path,
                tr_id=endpoints.BALANCE.tr_id,
                params=query,
                type=BalancePage,
            )
        ]
        raw = [
            page
            async for page in kis.pages(
                endpoints.BALANCE.path, tr_id=endpoints.BALANCE.tr_id, params=query
            )
        ]
        holdings = await kis.holdings()
    assert len(pages) == len(raw) == -(-len(sim.portfolio) // 40) > 1
    assert [p for page in pages for p in page.output1] == holdings
    assert [row["pdno"] for page in raw for row in page["output1"]] == [p.pdno for p in holdings]


class Paged:
    """A server that pages with the 200-named keys, or misbehaves as told."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], str]] = []
        self.url = ""
        self.keys: list[dict[str, str]] = [
            {"ctx_area_fk200": "A", "ctx_area_nk200": "1"},
            {"ctx_area_fk200": "A", "ctx_area_nk200": "2"},
            {},
        ]

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "tok", "expires_in": 86400})

    async def page(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.query), request.headers.get("tr_cont", "")))
        n = len(self.requests) - 1
        keys = self.keys[min(n, len(self.keys) - 1)]
        body: dict[str, Any] = {"rt_cd": "0", "msg_cd": "OK", "msg1": "", "page": n, **keys}
        more = "M" if keys or n < len(self.keys) - 1 else "D"
        return web.json_response(body, headers={"tr_cont": more})


@pytest.fixture
async def paged() -> AsyncIterator[Paged]:
    server = Paged()
    app = web.Application()
    app.router.add_post(spec.TOKEN_PATH, server.token)
    app.router.add_get("/uapi/overseas-stock/v1/trading/inquire-ccnl", server.page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    yield server
    await runner.cleanup()


PAGED_PATH = "/uapi/overseas-stock/v1/trading/inquire-ccnl"


def plain_client(url: str) -> KISClient:
    return KISClient("key", "secret", "12345678-01", base_url=url, token_cache=None)


async def test_pages_follow_the_200_named_keys(paged: Paged) -> None:
    async with KISClient(
        "key", "secret", "12345678-01", base_url=paged.url, token_cache=None
    ) as kis:
        bodies = [b async for b in kis.pages(PAGED_PATH, tr_id="TTTS3035R", params={"X": "1"})]
    assert [b["page"] for b in bodies] == [0, 1, 2]
    assert paged.requests == [
        ({"X": "1"}, ""),
        ({"X": "1", "CTX_AREA_FK200": "A", "CTX_AREA_NK200": "1"}, "N"),
        ({"X": "1", "CTX_AREA_FK200": "A", "CTX_AREA_NK200": "2"}, "N"),
    ]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([{"ctx_area_fk200": "A", "ctx_area_nk200": "1"}] * 2, "repeated its continuation key"),
        ([{}, {}], "sent no continuation key"),
        ([{"ctx_area_nk200": str(n)} for n in range(10)], "still had more pages after 3"),
    ],
)
async def test_pages_that_do_not_end_are_an_error(
    paged: Paged, keys: list[dict[str, str]], message: str
) -> None:
    paged.keys = keys
    async with KISClient(
        "key", "secret", "12345678-01", base_url=paged.url, token_cache=None
    ) as kis:
        with pytest.raises(PagingError, match=message):
            async for _ in kis.pages(PAGED_PATH, tr_id="TTTS3035R", params={}, max_pages=3):
                pass
    assert len(paged.requests) <= 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"path": "@evil.example/uapi/x"}, "path must look like"),
        ({"path": "https://evil.example/uapi/x"}, "path must look like"),
        ({"path": "/uapi//x"}, "path must look like"),
        ({"path": "/uapi/../oauth2/tokenP"}, "path must look like"),
        ({"tr_id": "FHKST01010100X"}, "tr_id must be"),
        ({"tr_id": "FH KST"}, "tr_id must be"),
        ({"params": {"FID_INPUT_ISCD": 5930}}, "params must map str to str"),
        ({"tr_cont": "X"}, "tr_cont must be"),
    ],
)
async def test_a_malformed_call_is_refused_before_it_leaves(
    sim: Simulator, kis: KISClient, arguments: dict[str, Any], message: str
) -> None:
    call: dict[str, Any] = {
        "path": endpoints.PRICE.path,
        "tr_id": endpoints.PRICE.tr_id,
        "params": PRICE,
    }
    with pytest.raises((ValueError, TypeError), match=message):
        await kis.get(**(call | arguments))
    assert sim.stats.calls == 0
