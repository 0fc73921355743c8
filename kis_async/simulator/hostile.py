"""Answers that are wrong on purpose or by accident: a proxy, a captive portal, a poisoned DNS
entry or a gateway bug. The simulator serves them for the faults listed in :data:`HOSTILE`, so a
client is judged against them over a real socket.

Each answer is built by one small function from the request and the right ``output1`` object.
"""

from __future__ import annotations

import functools
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec
from aiohttp import web

BOMB_BYTES = 1 << 30
"""What the gzip bomb inflates to: 1 GiB of zeros, from about 1 MB on the wire."""
HUGE_BYTES = 50 * (1 << 20)
"""A plain body far larger than any KIS answer: 50 MB."""
NESTING = 1000
"""Depth of the nested JSON: about 2 KB that no KIS answer resembles."""
ODD_NUMBERS = (
    "１２０",  # fullwidth digits: int() and Decimal() accept them
    "1_000",  # so do Python's underscores
    "1e3",
    "0x10",
    "99999999999999999999999",  # longer than the documented field
    "-5",
    "Infinity",
)
"""Quantities KIS never sends, though a lax number parser reads them."""
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31m"
"""Retitle the terminal, clear the screen, turn text red."""

Builder = Callable[[web.Request, dict[str, str], "Context"], web.StreamResponse]


class Context(NamedTuple):
    """What a builder may need beyond the request: from the simulator's config and state."""

    redirect_to: str
    retry_after: float
    account: str
    rng: random.Random


def redirect(status: int) -> Builder:
    """To another host, keeping the path and query: a client that follows sends its keys there
    (and with 307, the body again: on tokenP, the appsecret)."""

    def build(request: web.Request, output: dict[str, str], ctx: Context) -> web.StreamResponse:
        location = ctx.redirect_to.rstrip("/") + request.path_qs
        return web.Response(status=status, headers={"Location": location})

    return build


def gzip_bomb(request: web.Request, output: dict[str, str], ctx: Context) -> web.StreamResponse:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    return web.Response(status=200, body=_bomb(), headers=headers)


def huge_body(request: web.Request, output: dict[str, str], ctx: Context) -> web.StreamResponse:
    return web.Response(status=200, body=_huge(), content_type="application/json")


def deep_nesting(request: web.Request, output: dict[str, str], ctx: Context) -> web.StreamResponse:
    nested = "[" * NESTING + "]" * NESTING
    text = f'{{"rt_cd":"0","msg_cd":"KIOK0510","msg1":"ok","output1":{nested}}}'
    return web.Response(status=200, text=text, content_type="application/json")


def odd_number(request: web.Request, output: dict[str, str], ctx: Context) -> web.StreamResponse:
    return _answer(output | {"ord_psbl_qty": ctx.rng.choice(ODD_NUMBERS)})


def ambiguous(request: web.Request, output: dict[str, str], ctx: Context) -> web.StreamResponse:
    """Two rows for the one ticker asked, with different quantities."""
    other = output | {"ord_psbl_qty": str(int(output["ord_psbl_qty"] or 0) + 7)}
    return _json(200, _success() | {"output1": [output, other]})


def retry_after(request: web.Request, output: dict[str, str], ctx: Context) -> web.StreamResponse:
    seconds = max(0, round(ctx.retry_after))
    page = "<html><body><h1>503 Service Unavailable</h1></body></html>"
    return web.Response(
        status=503, text=page, content_type="text/html", headers={"Retry-After": str(seconds)}
    )


def terminal_escapes(
    request: web.Request, output: dict[str, str], ctx: Context
) -> web.StreamResponse:
    """The right numbers, with a name that would take over a terminal printed raw."""
    return _answer(output | {"prdt_name": output["prdt_name"] + ESCAPES})


def account_quoted(
    request: web.Request, output: dict[str, str], ctx: Context
) -> web.StreamResponse:
    """An error whose message quotes the whole account number, and escapes."""
    message = f"{ctx.account} 계좌{ESCAPES} 조회 불가 (simulated)"
    return _json(500, {"rt_cd": "1", "msg_cd": "SIM00409", "msg1": message})


@functools.cache
def _bomb() -> bytes:
    """A gzip member of 1 GiB of zeros, built from one flushed deflate chunk repeated, so it
    costs milliseconds, not the seconds compressing a gigabyte takes. Its trailer's CRC is not
    the real one: a reader that stops early, as it must, never gets there."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = deflate.compress(bytes(1 << 20)) + deflate.flush(zlib.Z_FULL_FLUSH)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = struct.pack("<II", 0, BOMB_BYTES & 0xFFFFFFFF)
    return header + chunk * (BOMB_BYTES >> 20) + deflate.flush() + trailer


@functools.cache
def _huge() -> bytes:
    return b'{"rt_cd":"0","msg1":"' + b"x" * HUGE_BYTES + b'"}'


def _success() -> dict[str, Any]:
    return {"rt_cd": "0", "msg_cd": "KIOK0510", "msg1": "조회가 완료되었습니다"}


def _answer(output: dict[str, str]) -> web.Response:
    return _json(200, _success() | {"output1": output})


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=msgspec.json.encode(payload),
        content_type="application/json",
        charset="utf-8",
    )
