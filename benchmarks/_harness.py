"""Shared by the benchmarks: a simulator in its own process, so it never steals the client's CPU."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from kis_async import KISClient
from kis_async.simulator import DEMO_ACCOUNT, DEMO_APP_KEY, DEMO_APP_SECRET

Credentials = tuple[str, str, str]
"""An appkey, its secret and the account it is bound to."""
CREDENTIALS: Credentials = (DEMO_APP_KEY, DEMO_APP_SECRET, DEMO_ACCOUNT)


def account_settings(count: int) -> list[Credentials]:
    """The settings of the ``count`` accounts ``simulator(accounts=count)`` serves: the demo's,
    then :func:`~kis_async.simulator.demo_accounts` (deterministic, as the simulator makes them).

    Imported here, not above: ``instructions.py`` runs this module against older revisions."""
    from kis_async.simulator import demo_accounts

    more = [(a.app_key, a.app_secret, a.account) for a in demo_accounts(count - 1)]
    return [CREDENTIALS, *more]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def simulator(
    rate: int, latency: float = 0.0, jitter: float = 0.0, accounts: int = 1
) -> Iterator[str]:
    """Run ``kis-async simulator`` in a subprocess; yield its URL.

    ``latency`` ± ``jitter`` applies both ways: on the request, before the gateway counts the
    call, and on the answer. It serves ``accounts`` appkeys, each bound to its own account with
    its own limit of ``rate``: their settings are :func:`account_settings`.
    """
    port = free_port()
    args = [
        *("--port", str(port), "--rate", str(rate), "--accounts", str(accounts)),
        *("--latency", str(latency), "--jitter", str(jitter)),
        *("--request-latency", str(latency), "--request-jitter", str(jitter)),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "kis_async", "simulator", *args], stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway ``redis-server`` on a free loopback port; ``None`` if it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for_port(port: int) -> None:
    for _ in range(200):
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
            return
        time.sleep(0.05)


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_simulator/stats") as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def client(
    url: str, rate: float, credentials: Credentials = CREDENTIALS, **options: Any
) -> KISClient:
    options.setdefault("token_cache", None)
    return KISClient(*credentials, base_url=url, rate_limit=rate, **options)


def codes(count: int) -> list[str]:
    return [f"{100000 + i:06d}" for i in range(count)]


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n### {title}\n")
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()
