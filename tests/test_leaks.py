"""Smaller leaks (issue 21): what a hostile peer or a misuse could draw out of the client.

Each test is one probe against a small server on a free loopback port: a malformed HTTP answer
must not copy the request URL (the account is in its query) into an error; a paging server
sending fresh keys must not grow the client by their size; an IPv6 zone id must not reach a
header; one client used from two event loops at once must refuse, not hang.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from kis_async import (
    KISClient,
    TransportError,
    spec,
)
from kis_async.render import Setup, setup_problem
from kis_async.verdict import Fail, Retry, classify

from .conftest import retries

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
