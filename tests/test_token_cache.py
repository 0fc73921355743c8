"""The token outlives the process: owner-only file, atomic, an entry per appkey and host.

The file and its folder are also made safe against other local users and a hostile or broken
filesystem, the file work stays off the event loop, and processes sharing the file issue once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from kis_async import Token, TokenCache, TokenCacheError, tokencache
from kis_async.auth import appkey_digest
from kis_async.simulator import DEMO_APP_KEY, DEMO_APP_SECRET, Simulator
from kis_async.tokencache import FileTokenStore

from .conftest import ClientFactory

WORKER = Path(__file__).with_name("cache_worker.py")
TOKEN = Token("t", 2e9, 1e9)


def cache_at(path: Path, app_key: str = "key", host: str = "https://h") -> TokenCache:
    return TokenCache(path, app_key=app_key, host=host)


def saved_token(cache: Path, app_key: str, host: str) -> str:
    entry: dict[str, Any] = json.loads(cache.read_text())["tokens"][appkey_digest(app_key, host)]
    return str(entry["access_token"])


async def test_restarted_client_reuses_the_cached_token(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    cache = tmp_path / "token.json"
    for _ in range(3):
        async with make_client(token_cache=cache) as kis:
            await kis.sellable_quantity("005930")
    assert sim.stats.token_issuances == 1
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    text = cache.read_text()
    assert DEMO_APP_SECRET not in text
    assert DEMO_APP_KEY not in text
    assert saved_token(cache, DEMO_APP_KEY, sim.url).startswith("eyJ")
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
    assert saved_token(cache, DEMO_APP_KEY, sim.url).startswith("eyJ")


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
    first = saved_token(cache, DEMO_APP_KEY, sim.url)
    sim.revoke_tokens()
    async with make_client(token_cache=cache) as kis:
        await kis.sellable_quantity("005930")
    assert saved_token(cache, DEMO_APP_KEY, sim.url) != first
    assert sim.stats.token_issuances == 3, "the first, the same one handed back, a new one"
    assert sim.stats.token_revocations == 1


def test_default_location_is_per_user_and_keyed_by_host_and_appkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = TokenCache.default("key-a", "https://h1").path
    if sys.platform.startswith("linux"):
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


def test_default_folder_is_the_platforms_user_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows keeps caches in ``%LOCALAPPDATA%``, macOS in ``~/Library/Caches``: platformdirs
    knows each; simulated here by what it answers."""
    local = tmp_path / "AppData" / "Local" / "kis_async" / "Cache"
    asked: list[tuple[Any, ...]] = []

    def user_cache_path(*args: Any, **kwargs: Any) -> Path:
        asked.append((*args, *kwargs.items()))
        return local

    monkeypatch.setattr(platformdirs, "user_cache_path", user_cache_path)
    cache = TokenCache.default("key-a", "https://h1")
    assert cache.path.parent == local
    assert asked == [("kis_async", ("appauthor", False))]


def test_cache_directory_is_owner_only(tmp_path: Path) -> None:
    cache = cache_at(tmp_path / "sub" / "token.json")
    cache.save(TOKEN)
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o700
    assert cache.load() == TOKEN
    other = cache_at(cache.path, host="https://elsewhere")
    assert other.load() is None, "a token for another host is not used"


@pytest.mark.skipif(os.name == "nt" or os.geteuid() != 0, reason="needs root to chown")
def test_cache_owned_by_someone_else_is_refused(tmp_path: Path) -> None:
    cache = cache_at(tmp_path / "token.json")
    cache.save(TOKEN)
    os.chown(cache.path, 12345, 12345)
    with pytest.raises(TokenCacheError, match="another user"):
        cache.load()


# -- the path is not a regular file ----------------------------------------------------------


def _make_fifo(path: Path) -> None:
    os.mkfifo(path, 0o600)


def _make_folder(path: Path) -> None:
    path.mkdir(mode=0o700)


def _make_symlink(path: Path) -> None:
    target = path.with_name("elsewhere.json")
    cache_at(target).save(TOKEN)
    path.symlink_to(target)


def _make_socket(path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_make_fifo, "a FIFO"),
        (_make_folder, "a folder"),
        (_make_symlink, "a symbolic link"),
        (_make_socket, "a socket"),
    ],
)
def test_cache_path_that_is_not_a_regular_file_is_refused_without_blocking(
    tmp_path: Path, make: Any, kind: str
) -> None:
    """A FIFO once hung the process for good: ``open`` waited for a writer."""
    path = tmp_path / "t.json"  # short: a socket's path is limited to about 100 bytes
    make(path)
    outcome: list[object] = []

    def load() -> None:
        try:
            outcome.append(cache_at(path).load())
        except TokenCacheError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        os.close(os.open(path, os.O_WRONLY))  # a writer at last: the stuck open returns
        thread.join(5)
        pytest.fail("loading the token cache blocked")
    [error] = outcome
    assert isinstance(error, TokenCacheError), error
    assert f"{path} is {kind}, not a regular file" in str(error)


def test_saving_over_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    _make_fifo(path)
    with pytest.raises(TokenCacheError, match="a FIFO"):
        cache_at(path).save(TOKEN)
    assert stat.S_ISFIFO(path.lstat().st_mode)


# -- a huge file ---------------------------------------------------------------------------------


def test_huge_cache_file_is_ignored_without_reading_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = cache_at(tmp_path / "token.json")
    cache.save(TOKEN)
    with cache.path.open("r+b") as file:
        file.truncate(1 << 30)  # sparse: a GiB on paper, nothing on disk
    tracemalloc.start()
    try:
        with caplog.at_level(logging.WARNING, logger="kis_async"):
            assert cache.load() is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes held while loading: the file was read whole"
    assert "over 64 KiB" in caplog.text
    cache.save(TOKEN)
    assert cache.path.stat().st_size < 1024, "the next save replaces it"
    assert cache.load() == TOKEN


# -- the folder ----------------------------------------------------------------------------------


def test_own_cache_folder_open_to_others_is_closed_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cache"
    cache = cache_at(folder / "token.json")
    cache.save(TOKEN)
    for use in (cache.load, lambda: cache.save(TOKEN)):
        folder.chmod(0o777)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="kis_async"):
            use()
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert f"token cache folder {folder} could be written by others (mode 777)" in caplog.text
    assert cache.load() == TOKEN


def test_shared_sticky_folder_is_refused(tmp_path: Path) -> None:
    """Like ``/tmp``: open to all by design, so not ours to close even when we own it."""
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    cache = cache_at(folder / "token.json")
    with pytest.raises(TokenCacheError, match="can be written by others"):
        cache.save(TOKEN)
    with pytest.raises(TokenCacheError, match="not yours to change"):
        cache.load()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o1777
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.name == "nt" or os.geteuid() != 0, reason="needs root to chown")
def test_open_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "theirs"
    cache = cache_at(folder / "token.json")
    cache.save(TOKEN)
    os.chown(folder, 12345, 12345)
    folder.chmod(0o777)
    with pytest.raises(TokenCacheError, match="can be written by others"):
        cache.load()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777


def test_unusable_cache_location_costs_a_warning_not_the_client(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cache = cache_at(tmp_path / "file" / "token.json")
    assert cache.load() is None
    cache.save(TOKEN)
    cache.discard("t")


async def test_client_with_an_unusable_cache_location_still_works(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        async with make_client(token_cache=tmp_path / "file" / "token.json") as kis:
            await kis.sellable_quantity("005930")
    assert sim.stats.token_issuances == 1
    assert "not written" in caplog.text


# -- several appkeys on one file -----------------------------------------------------------------


async def test_two_appkeys_sharing_one_file_each_keep_their_own_token(
    sim: Simulator, make_client: ClientFactory, tmp_path: Path
) -> None:
    """The simulator accepts one appkey at a time, so it plays both accounts in turn."""
    cache = tmp_path / "token.json"
    other = "PSanotherAPPKEYforKISasync00000002"
    for app_key in (DEMO_APP_KEY, other, DEMO_APP_KEY, other):
        sim.config.app_key = app_key
        async with make_client(app_key=app_key, token_cache=cache) as kis:
            await kis.sellable_quantity("005930")
    assert sim.stats.token_issuances == 2, "each appkey issued once, then reused its own"
    assert sim.stats.calls == 4, "no call went out with the other appkey's token"
    text = cache.read_text()
    assert DEMO_APP_KEY not in text and other not in text
    assert saved_token(cache, DEMO_APP_KEY, sim.url) != saved_token(cache, other, sim.url)


def test_one_file_holds_an_entry_per_appkey_and_host(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    caches = [
        cache_at(path, "key-a"),
        cache_at(path, "key-b"),
        cache_at(path, "key-a", "https://g"),
    ]
    for n, cache in enumerate(caches):
        cache.save(Token(f"t{n}", 2e9, 1e9))
    assert [cache.load() for cache in caches] == [Token(f"t{n}", 2e9, 1e9) for n in range(3)]
    caches[1].discard("t1")
    assert [cache.load() for cache in caches] == [caches[0].load(), None, Token("t2", 2e9, 1e9)]
    assert caches[0].load() == Token("t0", 2e9, 1e9)
    assert "key-a" not in path.read_text()


def test_expired_entries_of_others_are_dropped_on_save(tmp_path: Path) -> None:
    path = tmp_path / "token.json"
    cache_at(path, "gone").save(Token("old", 1.0, 0.5))
    cache_at(path, "key").save(TOKEN)
    assert list(json.loads(path.read_text())["tokens"]) == [appkey_digest("key", "https://h")]


def test_file_of_the_earlier_layout_is_read_as_holding_no_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It was keyed by host only, so it cannot say whose token it holds."""
    path = tmp_path / "token.json"
    path.write_text(
        json.dumps({"host": "https://h", "access_token": "a", "expires_at": 2e9, "issued_at": 1e9})
    )
    path.chmod(0o600)
    cache = cache_at(path)
    with caplog.at_level(logging.WARNING, logger="kis_async"):
        assert cache.load() is None
    assert caplog.text == ""
    cache.save(TOKEN)
    assert cache.load() == TOKEN


# -- off the event loop, and one issuance across processes ---------------------------------------


async def test_saving_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync on a slow disk takes long; here it waits until the event loop has run something
    else. Were the save on the loop, nothing else could run and it would give up after 5 s."""
    store = FileTokenStore(cache_at(tmp_path / "token.json"))
    in_fsync, loop_ran = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        if not loop_ran.wait(5):
            raise AssertionError("the event loop was blocked while the cache was being saved")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    saving = asyncio.create_task(store.save(TOKEN))
    assert await asyncio.to_thread(in_fsync.wait, 5)
    loop_ran.set()
    await saving
    assert await store.load() == TOKEN


async def test_two_processes_cold_starting_on_one_file_issue_one_token(
    sim: Simulator, tmp_path: Path
) -> None:
    """Without the lock both asked KIS; the second was refused (one a minute) and waited 60 s."""
    sim.config.token_issue_interval = 60.0
    sim.config.request_latency = 0.3  # the first token request is still out when the second asks
    cache = tmp_path / "token.json"
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            sim.url,
            str(cache),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert await asyncio.wait_for(worker.stdout.readline(), 30) == b"ready\n"
        for worker in workers:  # both ask for a token at once
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
        outputs = await asyncio.wait_for(
            asyncio.gather(*(worker.communicate() for worker in workers)), 30
        )
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    reports = [json.loads(out) for out, _ in outputs]
    assert [w.returncode for w in workers] == [0, 0]
    assert sorted(r["issued"] for r in reports) == [0, 1], reports
    assert sim.stats.token_requests == 1
    assert stat.S_IMODE(cache.with_name("token.json.lock").stat().st_mode) == 0o600


async def test_lock_held_too_long_is_waited_for_with_a_warning_then_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fcntl = pytest.importorskip("fcntl")
    cache = cache_at(tmp_path / "token.json")
    fd = os.open(cache.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another process, as the OS sees it
        monkeypatch.setattr(tokencache, "_LOCK_PATIENCE", 0.05)
        store = FileTokenStore(cache, lock_timeout=0.3)
        with (
            caplog.at_level(logging.WARNING, logger="kis_async"),
            pytest.raises(TokenCacheError, match="still held by another process"),
        ):
            async with store.lock():
                pytest.fail("the lock was taken while another held it")
        assert "held by another process" in caplog.text
        fcntl.flock(fd, fcntl.LOCK_UN)
        async with store.lock():
            pass
    finally:
        os.close(fd)


# -- Windows -------------------------------------------------------------------------------------


def test_on_windows_the_posix_mode_checks_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mode bits say nothing there (every file looks 0644 or 0666); the profile's ACL protects
    the default folder instead. Simulated: the Windows branch runs on this platform."""
    folder = tmp_path / "cache"
    cache = cache_at(folder / "token.json")
    cache.save(TOKEN)
    cache.path.chmod(0o644)
    folder.chmod(0o777)
    with pytest.raises(TokenCacheError) as refused:
        cache.load()
    assert str(cache.path) in str(refused.value)
    folder.chmod(0o777)
    monkeypatch.setattr(tokencache, "_WINDOWS", True)
    assert cache.load() == TOKEN
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777, "no chmod on Windows"
