"""Smaller leaks (issue 21): what a hostile peer or a misuse could draw out of the client.

Each test is one probe against a small server on a free loopback port: a malformed HTTP answer
must not copy the request URL (the account is in its query) into an error; a paging server
sending fresh keys must not grow the client by their size; an IPv6 zone id must not reach a
header; one client used from two event loops at once must refuse, not hang.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import tracemalloc
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import kis_async
from kis_async import (
    ArgumentError,
    Corporate,
    KISClient,
    KISError,
    PagingError,
    TransportError,
    endpoints,
    spec,
)
from kis_async.render import Setup, setup_problem
from kis_async.simulator import Simulator
from kis_async.verdict import Fail, Retry, classify

from .conftest import ClientFactory, codes, retries

ACCOUNT = "12345678-01"
_TOKEN_BODY = b'{"access_token": "tok", "expires_in": 86400, "token_type": "Bearer"}'
_SETUP = Setup(base_url="http://127.0.0.1", account="12****78-01")


def _answer(status_line: bytes, headers: bytes, body: bytes) -> bytes:
    return status_line + b"\r\n" + headers + b"Connection: close\r\n\r\n" + body


_GOOD_TOKEN = _answer(
    b"HTTP/1.1 200 OK",
    b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(_TOKEN_BODY),
    _TOKEN_BODY,
)
MALFORMED = {
    "content-length": _answer(b"HTTP/1.1 200 OK", b"Content-Length: abc\r\n", b'{"rt_cd":"0"}'),
    "status-line": _answer(b"HTTP/1.1 2x0 OK", b"Content-Length: 2\r\n", b"{}"),
    "status-line-echoing-the-account": _answer(
        b"HTTP/1.1 2x0 CANO=12345678&ACNT_PRDT_CD=01 1234567801",
        b"Content-Length: 2\r\n",
        b"{}",
    ),
    "not-http": _answer(b"12345678-01 http://x/?CANO=12345678", b"", b""),
}


class RawServer:
    """Answers every request with fixed bytes: ``token`` on tokenP, ``api`` elsewhere."""

    def __init__(self, *, token: bytes, api: bytes) -> None:
        self.token, self.api = token, api
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    await reader.readexactly(int(value))
            token = head.split(b" ", 2)[1].startswith(spec.TOKEN_PATH.encode())
            writer.write(self.token if token else self.api)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _raw_client(url: str) -> KISClient:
    return KISClient("key", "secret", ACCOUNT, base_url=url, token_cache=None, retry=retries(0))


async def _failure(*, token: bytes, api: bytes) -> TransportError:
    """The error of one sellable_quantity() call against a server answering these bytes."""
    async with RawServer(token=token, api=api) as server, _raw_client(server.url) as kis:
        with pytest.raises(TransportError) as caught:
            await kis.sellable_quantity("005930")
    return caught.value


def _assert_nothing_of_the_request(text: str) -> None:
    for leak in ("12345678", "1234567801", "CANO", "ACNT_PRDT_CD", "http://", "?", "\n", "\r"):
        assert leak not in text, f"{leak!r} in {text!r}"


@pytest.mark.parametrize("answer", sorted(MALFORMED))
async def test_a_malformed_answer_names_what_happened_not_the_request(answer: str) -> None:
    error = await _failure(token=_GOOD_TOKEN, api=MALFORMED[answer])
    for text in (str(error), error.detail, repr(error), *map(str, error.args)):
        _assert_nothing_of_the_request(text)
    assert "ClientResponseError: a malformed answer" in error.detail
    assert error.status == 0, "an answer came: not a host that cannot be reached"
    problem = setup_problem(error, _SETUP)
    assert problem is None or "cannot reach" not in problem


async def test_a_malformed_token_answer_is_not_called_unreachable() -> None:
    error = await _failure(token=MALFORMED["content-length"], api=_GOOD_TOKEN)
    assert error.source == "token"
    _assert_nothing_of_the_request(str(error))
    problem = setup_problem(error, _SETUP)
    assert problem is not None
    assert "cannot reach" not in problem and "without a token" in problem


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.InvalidURL("http://127.0.0.1/uapi/x?CANO=12345678&ACNT_PRDT_CD=01"),
        aiohttp.ClientPayloadError("Response payload is not completed: 1234567801\r\n"),
    ],
)
def test_no_other_aiohttp_error_names_the_url_or_the_account(exc: Exception) -> None:
    verdict = classify(0, exc)
    assert isinstance(verdict, Retry | Fail)
    _assert_nothing_of_the_request(str(verdict.error))
    assert str(verdict.error).startswith(type(exc).__name__)


class PagingServer:
    """A balance inquiry that never ends: every page says more follow, with fresh keys of
    ``size`` characters under the 200-named keys."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pages = 0

    async def token(self, request: web.Request) -> web.Response:
        return web.Response(body=_TOKEN_BODY, content_type="application/json")

    async def balance(self, request: web.Request) -> web.Response:
        self.pages += 1
        key = f"{self.pages:0{self.size}d}"
        page = {"rt_cd": "0", "output1": [], "ctx_area_fk200": key, "ctx_area_nk200": key}
        return web.json_response(page, headers={"tr_cont": "M"})


@pytest.fixture
async def paging() -> AsyncIterator[Callable[[int], Awaitable[tuple[PagingServer, str]]]]:
    runners: list[web.AppRunner] = []

    async def start(size: int) -> tuple[PagingServer, str]:
        server = PagingServer(size)
        app = web.Application()
        app.router.add_post(spec.TOKEN_PATH, server.token)
        app.router.add_get(endpoints.BALANCE.path, server.balance)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return server, f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def _balance_pages(kis: KISClient, max_pages: int) -> AsyncGenerator[dict[str, Any], None]:
    query = {"CANO": "12345678", "ACNT_PRDT_CD": "01", **dict(endpoints.BALANCE.query)}
    return kis.pages(
        endpoints.BALANCE.path, tr_id=endpoints.BALANCE.tr_id, params=query, max_pages=max_pages
    )


async def test_a_continuation_key_over_its_bound_is_refused_on_the_page_it_came(
    paging: Callable[[int], Awaitable[tuple[PagingServer, str]]],
) -> None:
    server, url = await paging(300_000)
    async with _raw_client(url) as kis:
        with pytest.raises(PagingError) as caught:
            await kis.holdings()
        with pytest.raises(PagingError):
            async for _ in _balance_pages(kis, 100):
                pass
    assert server.pages == 2, "refused on the first page each time, not followed"
    assert len(str(caught.value)) < 200, "the key is not quoted"


def _paging_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes held that the paging code allocated (client.py's loop, models.py's decoding of the
    keys); the pacer's record of recent calls, bounded by time, is not paging's."""
    package = Path(kis_async.__file__).parent
    files = [tracemalloc.Filter(True, str(package / name)) for name in ("client.py", "models.py")]
    return sum(stat.size for stat in snapshot.filter_traces(files).statistics("filename"))


async def test_paging_keeps_a_fixed_size_digest_per_page_not_the_keys(
    paging: Callable[[int], Awaitable[tuple[PagingServer, str]]],
) -> None:
    _, url = await paging(200)
    async with KISClient(
        "key", "secret", ACCOUNT, base_url=url, token_cache=None, rate_limit=10_000
    ) as kis:
        pages = _balance_pages(kis, 10_000)
        tracemalloc.start()
        try:
            sizes = []
            count = 0
            async for _ in pages:
                count += 1
                if count in (100, 400):
                    sizes.append(_paging_bytes(tracemalloc.take_snapshot()))
                if count == 400:
                    break
        finally:
            tracemalloc.stop()
            await pages.aclose()
    per_page = (sizes[1] - sizes[0]) / 300
    # Two 200-character keys a page, kept whole, are about 700 bytes; a 16-byte digest in a
    # set is about 130.
    assert per_page < 300, f"the client grew {per_page:.0f} bytes a page"


@pytest.mark.parametrize(
    "ip_addr",
    [
        "fe80::1%\r\nX-Injected: yes",
        "fe80::1%" + "a" * 200_000,
        "fe80::1%이더넷",
        "fe80::1%eth0",
        "fe80::1%25",
    ],
)
def test_an_ipv6_zone_id_is_refused_at_construction(ip_addr: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        Corporate(personalseckey="k" * 10, phone_number="01011112222", ip_addr=ip_addr)
    assert caught.value.argument == "ip_addr"
    message = str(caught.value)
    assert "zone" in message
    assert len(message) < 300 and "\r" not in message and "\n" not in message


def test_ipv6_without_a_zone_id_is_still_accepted() -> None:
    corporate = Corporate(personalseckey="k" * 10, phone_number="01011112222", ip_addr="fe80::1")
    assert corporate.ip_addr == "fe80::1"


async def test_one_client_on_two_event_loops_at_once_refuses_the_second_not_hangs(
    sim: Simulator, make_client: ClientFactory
) -> None:
    kis = make_client(rate_limit=200)
    opened = threading.Event()
    second_done = threading.Event()
    result: dict[str, Any] = {}

    async def first_loop() -> None:
        async with kis:
            first = asyncio.ensure_future(kis.check_sellable(codes(100)))
            opened.set()
            result["first"] = await first
            await asyncio.to_thread(second_done.wait, 10)

    async def second_loop() -> None:
        result["batch"] = await kis.check_sellable(codes(100, start=200000))
        try:
            await kis.sellable_quantity("005930")
        except RuntimeError as exc:
            result["single"] = exc

    def run(name: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # the assertions below name it
            result[f"{name} raised"] = exc
        finally:
            if name == "second":
                second_done.set()

    def second() -> None:
        if opened.wait(10):
            run("second", second_loop)
        else:
            second_done.set()

    threads = [
        threading.Thread(target=run, args=("first", first_loop), daemon=True),
        threading.Thread(target=second, daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join, 10)
    assert not any(thread.is_alive() for thread in threads), "a loop hung"
    assert "first raised" not in result and "second raised" not in result, result
    assert result["first"].ok, "the loop that opened the client is served"
    refused = result["batch"].errors
    assert len(refused) == 100 and not result["batch"].results
    for error in [*refused.values(), result["single"]]:
        assert isinstance(error, RuntimeError)
        assert "another event loop" in str(error)


# -- a server that echoes the request's secrets back -------------------------------------------

_ECHO_SECRET = "echoed-secret-with-the-account-1234567801-inside-it-" + "s" * 40
_ECHO_KEY = "echoed-personalseckey-" + "k" * 40
_ECHO_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9." + "t" * 60


async def _echo_server(*, refuse_token: bool) -> tuple[web.AppRunner, str]:
    """tokenP answers a token (or refuses it quoting the appsecret); every API call is refused
    with a ``msg1`` quoting the appsecret, the token and the personalseckey it carried."""

    async def token(request: web.Request) -> web.Response:
        body = await request.json()
        if refuse_token:
            said = f"유효하지 않은 AppSecret입니다: {body['appsecret']}"
            return web.json_response(
                {"error_code": "EGW00105", "error_description": said}, status=403
            )
        return web.json_response(
            {"access_token": _ECHO_TOKEN, "token_type": "Bearer", "expires_in": 86400,
             "access_token_token_expired": "2099-01-01 00:00:00"}
        )  # fmt: skip

    async def api(request: web.Request) -> web.Response:
        headers = request.headers
        said = (
            f"appsecret={headers.get('appsecret')} {headers.get('authorization')} "
            f"personalseckey={headers.get('personalseckey')}"
        )
        return web.json_response({"rt_cd": "1", "msg_cd": "SIM99999", "msg1": said}, status=500)

    app = web.Application()
    app.router.add_post(spec.TOKEN_PATH, token)
    app.router.add_get("/{path:.*}", api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.mark.parametrize("refuse_token", [False, True], ids=["API call", "token request"])
async def test_a_secret_the_server_echoes_back_reaches_no_error(
    refuse_token: bool, caplog: pytest.LogCaptureFixture
) -> None:
    runner, url = await _echo_server(refuse_token=refuse_token)
    corporate = Corporate(personalseckey=_ECHO_KEY, phone_number="01012345678", ip_addr="1.2.3.4")
    try:
        with caplog.at_level(logging.DEBUG):
            async with KISClient("key", _ECHO_SECRET, ACCOUNT, base_url=url, token_cache=None,
                                 retry=retries(0), corporate=corporate) as kis:  # fmt: skip
                with pytest.raises(KISError) as caught:
                    await kis.sellable_quantity("005930")
                batch = await kis.check_sellable(["005930"])
    finally:
        await runner.cleanup()
    errors = [caught.value, *batch.errors.values()]
    texts = [caplog.text] + [t for e in errors for t in (str(e), repr(e), *map(str, e.args))]
    texts += [getattr(e, "msg1", "") for e in errors]
    everything = "\n".join(texts)
    for secret in (_ECHO_SECRET, _ECHO_KEY, _ECHO_TOKEN):
        assert secret not in everything
        assert secret[:30] not in everything, "no part of it either"
    assert "***" in str(caught.value), "the message was kept, the secrets taken out"
