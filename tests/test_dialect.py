"""The simulator speaks as the live service does, and the client copes with what it says.

The shapes below are written out by hand from what KIS's users recorded (../shared/kis-api/
README.md, "What the live service really sends"), never derived from the client's models.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kis_async import (
    AccountError,
    AuthError,
    KISClient,
    ListingChanged,
    PagingError,
    endpoints,
    spec,
)
from kis_async.simulator import DEMO_ACCOUNT, Fault, Holding, Simulator, SimulatorConfig

from .conftest import ClientFactory

BALANCE_ROW_KEYS = [
    "pdno",
    "prdt_name",
    "trad_dvsn_name",
    "bfdy_buy_qty",
    "bfdy_sll_qty",
    "thdt_buyqty",
    "thdt_sll_qty",
    "hldg_qty",
    "ord_psbl_qty",
    "pchs_avg_pric",
    "pchs_amt",
    "prpr",
    "evlu_amt",
    "evlu_pfls_amt",
    "evlu_pfls_rt",
    "evlu_erng_rt",
    "loan_dt",
    "loan_amt",
    "stln_slng_chgs",
    "expd_dt",
    "fltt_rt",
    "bfdy_cprs_icdc",
    "item_mgna_rt_name",
    "grta_rt_name",
    "sbst_pric",
    "stck_loan_unpr",
]
SUMMARY_KEYS = [
    "dnca_tot_amt",
    "nxdy_excc_amt",
    "prvs_rcdl_excc_amt",
    "cma_evlu_amt",
    "bfdy_buy_amt",
    "thdt_buy_amt",
    "nxdy_auto_rdpt_amt",
    "bfdy_sll_amt",
    "thdt_sll_amt",
    "d2_auto_rdpt_amt",
    "bfdy_tlex_amt",
    "thdt_tlex_amt",
    "tot_loan_amt",
    "scts_evlu_amt",
    "tot_evlu_amt",
    "nass_amt",
    "fncg_gld_auto_rdpt_yn",
    "pchs_amt_smtl_amt",
    "evlu_amt_smtl_amt",
    "evlu_pfls_smtl_amt",
    "tot_stln_slng_chgs",
    "bfdy_tot_asst_evlu_amt",
    "asst_icdc_amt",
    "asst_icdc_erng_rt",
]
SEARCH_KEY = "50123456^01^N^N^01^01^N^"
"""``ctx_area_fk100`` for the demo account, as KIS writes it (before its blank padding)."""


def holding(quantity: int, *, loan: int = 0, pending: int = 0) -> Holding:
    return Holding(
        "삼성전자",
        quantity,
        Decimal("54388.4874"),
        Decimal(75800),
        pending_sell=pending,
        loan=loan,
        loan_date="20260915" if loan else "",
    )


def numbered(count: int) -> dict[str, Holding]:
    return {f"{100000 + i:06d}": holding(10 + i) for i in range(count)}


class Raw:
    """Requests to the simulator with a token, as any HTTP client would send them."""

    def __init__(self, sim: Simulator, http: aiohttp.ClientSession, token: str) -> None:
        self.sim, self.http, self.token = sim, http, token

    async def get(
        self, endpoint: endpoints.Endpoint[Any], query: dict[str, str], tr_cont: str = ""
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        headers = {
            "authorization": f"Bearer {self.token}",
            "appkey": self.sim.config.app_key,
            "appsecret": self.sim.config.app_secret,
            "tr_id": endpoint.tr_id,
            "custtype": "P",
        }
        if tr_cont:
            headers["tr_cont"] = tr_cont
        async with self.http.get(endpoint.path, params=query, headers=headers) as resp:
            return resp.status, dict(resp.headers), await resp.json(content_type=None)


@pytest.fixture
async def raw(sim: Simulator) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession(sim.url) as http:
        body = {
            "grant_type": "client_credentials",
            "appkey": sim.config.app_key,
            "appsecret": sim.config.app_secret,
        }
        async with http.post(spec.TOKEN_PATH, json=body) as resp:
            token = (await resp.json())["access_token"]
        yield Raw(sim, http, token)


ACCOUNT = {"CANO": "50123456", "ACNT_PRDT_CD": "01"}
FIRST_PAGE = ACCOUNT | dict(endpoints.BALANCE.query) | {"CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}


# -- inquire-psbl-sell ----------------------------------------------------------------------------


async def test_sellable_answers_under_output_with_kis_live_code_and_padded_message(
    sim: Simulator, raw: Raw
) -> None:
    sim.portfolio = {"005930": holding(1744)}
    status, _, body = await raw.get(endpoints.SELLABLE, ACCOUNT | {"PDNO": "005930"})
    assert status == 200
    assert "output1" not in body and isinstance(body["output"], dict)
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "KIOK0420")
    assert body["msg1"].rstrip(" ") == "정상적으로 조회되었습니다"
    assert len(body["msg1"].encode("euc-kr")) == 80
    assert body["output"]["ord_psbl_qty"] == "1744"
    assert body["output"]["pchs_avg_pric"] == "54388.4874"


async def test_the_reference_dialect_is_a_knob(sim: Simulator, raw: Raw) -> None:
    sim.config.dialect = "reference"
    status, _, body = await raw.get(endpoints.SELLABLE, ACCOUNT | {"PDNO": "005930"})
    assert status == 200 and "output" not in body and isinstance(body["output1"], dict)
    assert (body["msg_cd"], body["msg1"]) == ("KIOK0510", "조회가 완료되었습니다")


@pytest.mark.parametrize("dialect", ["live", "reference"])
async def test_the_client_reads_both_dialects_alike(
    config: SimulatorConfig, make_client: ClientFactory, dialect: Any
) -> None:
    config.dialect = dialect
    async with (
        Simulator(config, {"005930": holding(1744, pending=2)}) as sim,
        make_client(base_url=sim.url) as kis,
    ):
        quantity = await kis.sellable_quantity("005930")
    assert (quantity.cblc_qty, quantity.ord_psbl_qty) == (1744, 1742)


# -- inquire-balance ------------------------------------------------------------------------------


async def test_balance_rows_carry_kis_26_keys_and_output2_its_24(sim: Simulator, raw: Raw) -> None:
    sim.portfolio = {"005930": holding(120)}
    _, headers, body = await raw.get(endpoints.BALANCE, FIRST_PAGE)
    assert [list(row) for row in body["output1"]] == [BALANCE_ROW_KEYS]
    assert sorted(body["output2"][0]) == sorted(SUMMARY_KEYS)
    assert headers["tr_cont"] == "D"


async def test_a_ticker_held_partly_on_a_loan_is_one_row_per_loan(sim: Simulator, raw: Raw) -> None:
    sim.portfolio = {"005930": holding(120, loan=40, pending=90)}
    _, _, body = await raw.get(endpoints.BALANCE, FIRST_PAGE)
    rows = [
        (r["pdno"], r["trad_dvsn_name"], r["hldg_qty"], r["ord_psbl_qty"], r["loan_dt"])
        for r in body["output1"]
    ]
    assert rows == [
        ("005930", "현금", "80", "0", ""),
        ("005930", "자기융자", "40", "30", "20260915"),
    ]


async def test_fk100_is_the_padded_search_key_on_every_page_and_nk100_blank_on_the_last(
    sim: Simulator, raw: Raw
) -> None:
    sim.portfolio, sim.config.page_size = numbered(5), 3
    _, first_headers, first = await raw.get(endpoints.BALANCE, FIRST_PAGE)
    assert first_headers["tr_cont"] == "F"
    assert first["ctx_area_fk100"] == SEARCH_KEY + " " * (100 - len(SEARCH_KEY))
    assert len(first["ctx_area_nk100"]) == 100 and first["ctx_area_nk100"].strip()
    echoed = {"CTX_AREA_FK100": first["ctx_area_fk100"], "CTX_AREA_NK100": first["ctx_area_nk100"]}
    _, last_headers, last = await raw.get(endpoints.BALANCE, FIRST_PAGE | echoed, tr_cont="N")
    assert last_headers["tr_cont"] == "D"
    assert last["ctx_area_fk100"] == first["ctx_area_fk100"]
    assert last["ctx_area_nk100"] == " " * 100
    assert [r["pdno"] for r in first["output1"] + last["output1"]] == list(sim.portfolio)


@pytest.mark.parametrize("exact", [True, False])
async def test_stripped_keys_are_refused_unless_the_knob_allows_them(
    sim: Simulator, raw: Raw, exact: bool
) -> None:
    sim.portfolio, sim.config.page_size = numbered(5), 3
    sim.config.exact_continuation = exact
    _, _, first = await raw.get(endpoints.BALANCE, FIRST_PAGE)
    stripped = {
        "CTX_AREA_FK100": first["ctx_area_fk100"].strip(),
        "CTX_AREA_NK100": first["ctx_area_nk100"].strip(),
    }
    status, _, body = await raw.get(endpoints.BALANCE, FIRST_PAGE | stripped, tr_cont="N")
    assert (status == 200) is not exact
    assert (body["msg_cd"] == "SIM00407") is exact


async def test_a_full_last_page_says_more_and_the_next_request_gets_sydb0050(
    sim: Simulator, raw: Raw
) -> None:
    sim.portfolio, sim.config.page_size = numbered(50), 50
    _, headers, page = await raw.get(endpoints.BALANCE, FIRST_PAGE)
    assert headers["tr_cont"] == "M" and page["ctx_area_nk100"] == " " * 100
    echoed = {"CTX_AREA_FK100": page["ctx_area_fk100"], "CTX_AREA_NK100": page["ctx_area_nk100"]}
    status, _, refusal = await raw.get(endpoints.BALANCE, FIRST_PAGE | echoed, tr_cont="N")
    assert (status, refusal["rt_cd"], refusal["msg_cd"]) == (500, "7", "SYDB0050")
    assert refusal["msg1"] == "조회이후에 자료가 변경되었습니다.(다시 조회하세요)"


async def test_holdings_of_exactly_50_end_on_the_blank_key_in_one_request(
    config: SimulatorConfig, make_client: ClientFactory
) -> None:
    config.page_size = 50
    async with Simulator(config, numbered(50)) as sim, make_client(base_url=sim.url) as kis:
        positions = await kis.holdings()
    assert [p.pdno for p in positions] == list(numbered(50))
    assert sim.stats.calls == 1


async def test_holdings_list_a_loan_twice_and_held_tickers_once(
    config: SimulatorConfig, make_client: ClientFactory
) -> None:
    positions = {"005930": holding(120, loan=40), "000660": holding(10)}
    async with Simulator(config, positions) as sim, make_client(base_url=sim.url) as kis:
        rows = await kis.holdings()
        held = await kis.held_tickers()
        batch = await kis.check_holdings()
    assert [(p.pdno, p.trad_dvsn_name, p.hldg_qty, p.loan_dt) for p in rows] == [
        ("005930", "현금", 80, ""),
        ("005930", "자기융자", 40, "20260915"),
        ("000660", "현금", 10, ""),
    ]
    assert held == ["005930", "000660"]
    assert batch.results["005930"].cblc_qty == 120
    assert sim.stats.per_pdno == {"005930": 1, "000660": 1}


async def test_a_change_mid_listing_restarts_holdings_once_and_says_so(
    config: SimulatorConfig, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    config.page_size = 3
    async with Simulator(config, numbered(7)) as sim:
        sim.after_calls(2, lambda: sim.inject_balance(Fault.DATA_CHANGED))
        async with make_client(base_url=sim.url) as kis:
            caplog.set_level(logging.WARNING, logger="kis_async")
            positions = await kis.holdings()
    assert [p.pdno for p in positions] == list(numbered(7))
    assert sim.stats.calls == 2 + 3
    assert any("SYDB0050" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_a_second_change_mid_listing_is_an_error(
    config: SimulatorConfig, make_client: ClientFactory
) -> None:
    config.page_size = 3
    async with Simulator(config, numbered(7)) as sim:
        sim.after_calls(2, lambda: sim.inject_balance(Fault.DATA_CHANGED))
        sim.after_calls(4, lambda: sim.inject_balance(Fault.DATA_CHANGED))
        async with make_client(base_url=sim.url) as kis:
            with pytest.raises(ListingChanged, match="SYDB0050"):
                await kis.holdings()


async def test_pages_raise_at_once_when_the_data_changed(
    config: SimulatorConfig, make_client: ClientFactory
) -> None:
    config.page_size = 3
    async with Simulator(config, numbered(7)) as sim:
        sim.after_calls(2, lambda: sim.inject_balance(Fault.DATA_CHANGED))
        async with make_client(base_url=sim.url) as kis:
            pages = kis.pages(
                endpoints.BALANCE.path, tr_id=endpoints.BALANCE.tr_id, params=FIRST_PAGE
            )
            first = await anext(pages)
            with pytest.raises(ListingChanged):
                await anext(pages)
    assert first["output1"]
    assert sim.stats.calls == 2


# -- continuation keys a client must not echo -----------------------------------------------------


@pytest.fixture
async def keyed() -> AsyncIterator[tuple[str, list[dict[str, str]], list[Any]]]:
    """A server whose first page sends the keys a test puts in ``keys[0]``."""
    keys: list[dict[str, str]] = [{}]
    seen: list[Any] = []

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "tok", "expires_in": 86400})

    async def page(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        body = {"rt_cd": "0", "msg_cd": "KIOK0420", "msg1": "", "output1": [], **keys[0]}
        return web.json_response(body, headers={"tr_cont": "F"})

    app = web.Application()
    app.router.add_post(spec.TOKEN_PATH, token)
    app.router.add_get(endpoints.BALANCE.path, page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", keys, seen
    await runner.cleanup()


@pytest.mark.parametrize(
    "fk100",
    [
        "12345678^01^" + "x" * 100,
        "12345678^01^\x1b[2J",
        "12345678^01^계좌",
        "12345678^01^\n",
    ],
    ids=["too long", "escape", "hangul", "newline"],
)
async def test_a_key_that_cannot_be_echoed_is_a_paging_error_that_does_not_quote_it(
    keyed: tuple[str, list[dict[str, str]], list[Any]], fk100: str
) -> None:
    url, keys, seen = keyed
    keys[0] = {"ctx_area_fk100": fk100, "ctx_area_nk100": "NEXT".ljust(100)}
    async with KISClient("key", "secret", "12345678-01", base_url=url, token_cache=None) as kis:
        with pytest.raises(PagingError, match="ctx_area_fk100 is not a key to echo") as caught:
            await kis.holdings()
    assert "12345678" not in str(caught.value)
    assert len(seen) == 1


async def test_keys_are_echoed_exactly_padding_included(
    keyed: tuple[str, list[dict[str, str]], list[Any]],
) -> None:
    url, keys, seen = keyed
    sent = {"ctx_area_fk100": SEARCH_KEY.ljust(100), "ctx_area_nk100": " NEXT ".ljust(100)}
    keys[0] = sent
    async with KISClient("key", "secret", DEMO_ACCOUNT, base_url=url, token_cache=None) as kis:
        with pytest.raises(PagingError, match="repeated its continuation key"):
            await kis.holdings(max_pages=5)
    assert seen[1]["CTX_AREA_FK100"] == sent["ctx_area_fk100"]
    assert seen[1]["CTX_AREA_NK100"] == sent["ctx_area_nk100"]


# -- set-up refusals: one call, remembered ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        (Fault.APPSECRET_REFUSED, AuthError, "EGW00304"),
        (Fault.PAPER_APPKEY, AuthError, "EGW02007"),
        (Fault.PRODUCT_MISMATCH, AccountError, "APBK1271"),
        (Fault.NOT_CONSIGNMENT, AccountError, "APAC0489"),
    ],
)
async def test_a_setup_refusal_is_asked_once_and_remembered_for_every_ticker(
    config: SimulatorConfig,
    make_client: ClientFactory,
    fault: Fault,
    kind: type[Exception],
    code: str,
) -> None:
    config.rate_limit = 1000
    async with Simulator(config, numbered(30)) as sim:
        sim.inject(fault, times=1)
        async with make_client(base_url=sim.url, max_concurrency=1) as kis:
            batch = await kis.check_sellable(list(numbered(30)))
    assert not batch.results and len(batch.errors) == 30
    assert all(isinstance(e, kind) and e.msg_cd == code for e in batch.errors.values())
    assert sim.stats.calls == 1


async def test_a_stated_expiry_already_past_is_warned_once_and_the_token_used(
    config: SimulatorConfig, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Seen live on 2026-08-19: the expiry stated 20 minutes before the request. The token is
    kept for ``expires_in`` and the API judges it; no re-issue loop."""
    config.stated_expiry_ago = 1200.0
    caplog.set_level(logging.WARNING, logger="kis_async")
    async with Simulator(config, numbered(30)) as sim, make_client(base_url=sim.url) as kis:
        batch = await kis.check_sellable(list(numbered(30)))
    assert batch.ok and len(batch.results) == 30
    assert sim.stats.token_issuances == 1
    warned = [r for r in caplog.records if "already past" in r.getMessage()]
    assert len(warned) == 1
