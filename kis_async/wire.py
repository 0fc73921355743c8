"""One HTTP exchange with the configured KIS host, and nothing more.

:class:`Wire` owns the client's one ``aiohttp.ClientSession``. :meth:`Wire.send` sends one
request to ``base_url + path`` and reads the whole answer, or returns the exception that stopped
it (``Reply.failure``, among them :class:`Closed` and :class:`TooLarge`, the two this module
decides itself): it never raises for a fault of the network or of the peer, and never
decides what an answer means (that is :mod:`kis_async.verdict`), retries
(:mod:`kis_async.transport`, :mod:`kis_async.auth`) or paces (:mod:`kis_async.throttle`).

What it refuses to do, whatever the peer says:

- follow a redirect: a 3xx is returned as it is, so the appkey, the appsecret and the token are
  never sent anywhere but ``base_url`` (a proxy, a captive portal or a poisoned DNS entry may
  answer 302 to a host of its choosing);
- hold more than ``max_body`` bytes of an answer, counted *after* decompression (a 1 MB gzip
  body can inflate to gigabytes): reading stops there and the answer is :class:`TooLarge`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

MAX_BODY = 1 << 20
"""Bytes of one answer, decompressed. The largest real KIS answer this client asks for, a
50-position inquire-balance page, is about 50 KB; a sellable answer is under 1 KB."""
_CHUNK = 1 << 16
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class Closed(Exception):
    """The failure of a request attempted on a wire already closed: nothing was sent."""


class TooLarge(Exception):
    """The failure of an answer that grew past ``limit`` bytes, decompressed, while being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class Reply(msgspec.Struct, frozen=True):
    """What one request got: status, headers and body, or the ``failure`` that stopped it.

    A msgspec Struct rather than a frozen dataclass: one is built per request, and a frozen
    dataclass's ``__init__`` costs ten times as much."""

    status: int = 0
    headers: CIMultiDictProxy[str] = _NO_HEADERS
    body: bytes = b""
    failure: BaseException | None = None


class Wire:
    """The session to one KIS host: ``timeout`` seconds per request, ``connections`` at once."""

    def __init__(
        self, base_url: str, *, timeout: float, connections: int, max_body: int = MAX_BODY
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_body = max_body
        self._urls: dict[str, URL] = {}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    @property
    def closed(self) -> bool:
        return self._session.closed

    async def send(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | str | None = None,
        json: Any = None,
    ) -> Reply:
        """Send one request and read the whole answer; any fault is returned, not raised.

        ``params`` may be a query string already encoded (only unreserved characters), which
        spares quoting every key and value on every call.
        """
        if self._session.closed:
            return Reply(failure=Closed())
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self.base_url + path)
        if isinstance(params, str):
            url, params = url.with_query(params), None
        try:
            async with self._session.request(
                method, url, headers=headers, params=params, json=json, allow_redirects=False
            ) as resp:
                body = await self._read(resp)
                if body is None:
                    return Reply(resp.status, resp.headers, failure=TooLarge(self.max_body))
                return Reply(resp.status, resp.headers, body)
        except Exception as exc:  # a fault of the network or the peer, judged by verdict
            return Reply(failure=exc)

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes | None:
        """The body, or ``None`` once it passes ``max_body`` bytes as decompressed."""
        limit = self.max_body
        length = resp.content_length
        if length is not None and "Content-Encoding" not in resp.headers:
            return await resp.read() if length <= limit else None
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def close(self) -> None:
        await self._session.close()
