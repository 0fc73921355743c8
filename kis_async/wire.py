"""One HTTP exchange with the configured KIS host, and nothing more.

:class:`Wire` owns the client's one ``aiohttp.ClientSession``. :meth:`Wire.send` sends one
request to ``base_url + path`` and reads the whole answer, or returns the exception that stopped
it (``Reply.failure``): it never raises for a network fault and never decides what an answer
means (that is :mod:`kis_async.verdict`), retries (:mod:`kis_async.transport`,
:mod:`kis_async.auth`) or paces (:mod:`kis_async.throttle`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .verdict import Closed

_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


@dataclass(frozen=True, slots=True)
class Reply:
    """What one request got: status, headers and body, or the ``failure`` that stopped it."""

    status: int = 0
    headers: CIMultiDictProxy[str] = field(default_factory=lambda: _NO_HEADERS)
    body: bytes = b""
    failure: BaseException | None = None


class Wire:
    """The session to one KIS host: ``timeout`` seconds per request, ``connections`` at once."""

    def __init__(self, base_url: str, *, timeout: float, connections: int) -> None:
        self.base_url = base_url.rstrip("/")
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
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> Reply:
        """Send one request and read the whole answer; a network fault is returned, not raised."""
        if self._session.closed:
            return Reply(failure=Closed())
        try:
            async with self._session.request(
                method, self.base_url + path, headers=headers, params=params, json=json
            ) as resp:
                return Reply(resp.status, resp.headers, await resp.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Reply(failure=exc)

    async def close(self) -> None:
        await self._session.close()
