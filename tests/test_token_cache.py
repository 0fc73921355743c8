"""The token outlives the process: owner-only file, atomic, keyed by host and appkey."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from kis_async import TokenCache, TokenCacheError
from kis_async.simulator import DEMO_APP_KEY, DEMO_APP_SECRET, Simulator

from .conftest import ClientFactory


async def test_restarted_client_reuses_the_cached_token(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    cache = tmp_path / "token.json"
    for _ in range(3):
        async with make_client(token_cache=cache) as kis:
            await kis.sellable_quantity("005930")
    assert sim.stats.token_issuances == 1
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    saved = json.loads(cache.read_text())
    assert DEMO_APP_SECRET not in cache.read_text()
    assert DEMO_APP_KEY not in cache.read_text()
    assert saved["host"] == sim.url
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".token-")], "no temp left"


async def test_corrupt_cache_is_ignored_with_a_warning(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "token.json"
    cache.write_text('{"access_token": "half')
    cache.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        async with make_client(token_cache=cache) as kis:
            await kis.sellable_quantity("005930")
    assert "corrupt" in caplog.text
    assert sim.stats.token_issuances == 1
    assert json.loads(cache.read_text())["access_token"].startswith("eyJ")


async def test_cache_readable_by_others_is_refused(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    cache = tmp_path / "token.json"
    async with make_client(token_cache=cache) as kis:
        await kis.sellable_quantity("005930")
    cache.chmod(0o644)
    async with make_client(token_cache=cache) as kis:
        with pytest.raises(TokenCacheError, match="readable by others"):
            await kis.sellable_quantity("005930")
    assert sim.stats.token_issuances == 1


async def test_token_refused_by_kis_is_dropped_from_the_cache(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    cache = tmp_path / "token.json"
    async with make_client(token_cache=cache) as kis:
        await kis.sellable_quantity("005930")
    first = json.loads(cache.read_text())["access_token"]
    sim.revoke_tokens()
    async with make_client(token_cache=cache) as kis:
        await kis.sellable_quantity("005930")
    assert json.loads(cache.read_text())["access_token"] != first
    assert sim.stats.token_issuances == 2


def test_default_location_is_per_user_and_keyed_by_host_and_appkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = TokenCache.default("key-a", "https://h1").path
    assert a.parent == tmp_path / "kis_async"
    assert "key-a" not in a.name
    assert (
        len(
            {
                a,
                TokenCache.default("key-b", "https://h1").path,
                TokenCache.default("key-a", "https://h2").path,
            }
        )
        == 3
    )


def test_cache_directory_is_owner_only(tmp_path: Path) -> None:
    from kis_async import Token

    cache = TokenCache(tmp_path / "sub" / "token.json", "https://h")
    cache.save(Token("t", 2e9, 1e9))
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o700
    assert cache.load() == Token("t", 2e9, 1e9)
    other = TokenCache(cache.path, "https://elsewhere")
    assert other.load() is None, "a token for another host is not used"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_cache_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    from kis_async import Token

    cache = TokenCache(tmp_path / "token.json", "https://h")
    cache.save(Token("t", 2e9, 1e9))
    os.chown(cache.path, 12345, 12345)
    with pytest.raises(TokenCacheError, match="another user"):
        cache.load()
