"""What the README and docs/operations.md claim for each platform, tested: Linux checks the peer with SO_PEERCRED;
elsewhere (macOS, BSD: no SO_PEERCRED, and CPython has no `os.getpeereid`) the daemon serves only
while its socket is one that only this uid can reach (0600, in a 0700 directory of its own)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from daemon_env import Env, isolated_env

from scheduler._version import __version__
from scheduler.daemon import _socket


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


@pytest.fixture
def private() -> Iterator[tuple[Path, socket.socket]]:
    """A listening socket at mode 0600 in a 0700 directory (under /tmp: socket paths cap at 108 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="cs-", dir="/tmp"))  # mkdtemp makes it 0700
    path = directory / "s.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(1)
        yield path, listener
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)


def _accepted_peer(path: Path, listener: socket.socket) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(path))
        conn, _ = listener.accept()
        with conn:
            return _socket.peer_uid(conn)


def test_linux_asks_the_kernel_for_the_peers_uid(private: tuple[Path, socket.socket]) -> None:
    assert sys.platform.startswith("linux")
    path, listener = private
    os.chmod(path.parent, 0o755)  # the permissions play no part on Linux
    assert _accepted_peer(path, listener) == os.getuid()


@pytest.mark.parametrize("platform", ["darwin", "freebsd14"])
def test_elsewhere_a_peer_is_this_uid_only_while_the_socket_is_private(
    private: tuple[Path, socket.socket], monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    path, listener = private
    assert _accepted_peer(path, listener) == os.getuid()
    os.chmod(path, 0o660)
    assert _accepted_peer(path, listener) == -1 and not _socket.peer_allowed(-1)
    os.chmod(path, 0o600)
    os.chmod(path.parent, 0o750)
    assert _accepted_peer(path, listener) == -1


def test_elsewhere_the_daemon_serves_its_user_through_the_private_socket(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler.daemon._daemon import Daemon

    monkeypatch.setattr(sys, "platform", "darwin")
    daemon = Daemon(env.workspace, env.paths, idle_timeout=300, reported_version=__version__)

    async def ask() -> bytes:
        async with await anyio.connect_unix(env.paths.socket) as stream:
            await stream.send(b'{"control": "status"}\n')
            try:
                return await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):  # hung up
                return b""

    async def scenario() -> tuple[bytes, bytes]:
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(30):
                await tg.start(daemon.run, None, env.paths.token)
                served = await ask()
                os.chmod(env.paths.socket, 0o666)
                refused = await ask()
            daemon.stopping.set()
        return served, refused

    served, refused = anyio.run(scenario)
    daemon.cleanup()
    assert b'"pid"' in served and refused == b""
