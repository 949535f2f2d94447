"""The per-workspace daemon: sharing, replacement, crashes, idle exit, access control, HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon_env import Env, isolated_env, wait_dead

from scheduler._exceptions import UnsafeDirectory, UnsafeTokenFile
from scheduler._version import __version__
from scheduler.daemon import _control, _socket


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


def ok(reply: dict[str, Any]) -> bool:
    return "result" in reply and reply["result"].get("isError") is False


def test_two_fronts_share_one_daemon(env: Env) -> None:
    first = env.front()
    first.initialize()
    assert ok(first.call("scheduler_status"))
    pid = env.wait_status()["pid"]
    second = env.front()
    second.initialize()
    started = time.monotonic()
    assert ok(second.call("scheduler_status"))
    assert time.monotonic() - started < 5.0  # warm: no second daemon start (~1.5 s)
    status = env.wait_status()
    assert status["pid"] == pid
    assert status["sessions"] == 2


def test_a_killed_daemon_is_replaced_and_the_next_call_works(env: Env) -> None:
    front = env.front()
    front.initialize()
    assert ok(front.call("scheduler_status"))
    pid = env.wait_status()["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_dead(pid, 10)
    reply = front.call("scheduler_status")
    if "error" in reply:  # it raced the daemon's death: a clear, retryable error
        assert "retry" in reply["error"]["message"]
        reply = front.call("scheduler_status")
    assert ok(reply)
    assert ok(front.call("scheduler_status"))
    assert env.wait_status()["pid"] != pid


def test_a_call_in_flight_when_the_daemon_dies_gets_a_retry_error_and_the_next_call_works(env: Env) -> None:
    """A stand-in daemon drops the first connection mid-call, then answers on the next one."""
    paths = env.paths
    want = _control.expected(paths)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(paths.socket)
    listener.listen()
    listener.settimeout(60)

    def serve(drop_mid_call: bool) -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rwb") as f:
            assert json.loads(f.readline())["control"] == "hello"
            f.write(json.dumps({**want, "pid": os.getpid()}).encode() + b"\n")
            f.flush()
            while line := f.readline():
                msg = json.loads(line)
                if msg.get("method") == "initialize":
                    f.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {}}).encode() + b"\n")
                elif msg.get("method") == "tools/call":
                    if drop_mid_call:
                        return
                    result = {"content": [], "isError": False}
                    f.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode() + b"\n")
                f.flush()

    def stand_in() -> None:
        serve(drop_mid_call=True)
        serve(drop_mid_call=False)

    thread = threading.Thread(target=stand_in, daemon=True)
    thread.start()
    front = env.front()
    front.initialize()
    lost = front.call("scheduler_status")
    assert lost["error"]["data"] == {"retry": True}
    assert "daemon stopped" in lost["error"]["message"] and "retry" in lost["error"]["message"]
    assert ok(front.call("scheduler_status"))
    front.close()
    thread.join(timeout=30)
    listener.close()


def test_a_daemon_of_another_version_is_replaced_by_the_next_serve(env: Env) -> None:
    _control.spawn(env.paths, ["--report-version", "0.0.0-old"])
    old = env.wait_status()
    assert old["version"] == "0.0.0-old"
    front = env.front()
    front.initialize()
    assert ok(front.call("scheduler_status"))
    new = env.wait_status()
    assert new["version"] == __version__
    assert new["pid"] != old["pid"]
    assert wait_dead(old["pid"], 10)


def test_a_daemon_started_with_other_settings_is_replaced_by_the_next_serve(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    front = env.front()
    front.initialize()
    assert ok(front.call("scheduler_status"))
    old = env.wait_status()
    assert old["settings"] == {}
    monkeypatch.setenv("CARGO_SCHEDULER_SCOPE", "workspace")  # the user changed the client's config
    second = env.front()
    second.initialize()
    reply = second.call("scheduler_status")
    assert ok(reply)
    assert reply["result"]["structuredContent"]["settings"]["non_default"] == {"scope": "workspace"}
    new = env.wait_status()
    assert new["settings"] == {"CARGO_SCHEDULER_SCOPE": "workspace"} and new["pid"] != old["pid"]
    assert wait_dead(old["pid"], 10)


def test_a_bad_setting_is_reported_to_the_caller_naming_the_variable(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARGO_SCHEDULER_PREWARM", "eager")
    front = env.front()
    front.initialize()  # the handshake is answered locally: the agent still gets its tools
    reply = front.call("scheduler_status")
    text = json.dumps(reply)
    assert "CARGO_SCHEDULER_PREWARM='eager'" in text and "index, none, check" in text
    assert env.status() is None  # no daemon runs with a setting it cannot honour


def test_the_daemon_stops_after_its_idle_timeout_and_cleans_up(env: Env) -> None:
    _control.spawn(env.paths, ["--idle-timeout", "0.5"])
    status = env.wait_status()
    assert status["idle_timeout_s"] == 0.5
    assert _control.wait_gone(env.paths, 30)
    assert wait_dead(status["pid"], 10)
    assert not os.path.exists(env.paths.socket)
    assert not os.path.exists(env.paths.pidfile)


def test_daemon_status_stop_and_logs_commands(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    ws = ["--workspace", str(env.workspace)]
    assert _control.daemon_main(["status", *ws]) == 1
    assert json.loads(capsys.readouterr().out)["running"] is False
    _control.spawn(env.paths, [])
    pid = env.wait_status()["pid"]
    assert _control.daemon_main(["status", *ws]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pid"] == pid and status["workspace"] == str(env.workspace.resolve())
    assert _control.daemon_main(["logs", *ws]) == 0
    assert f"pid {pid}" in capsys.readouterr().out
    assert _control.daemon_main(["stop", *ws]) == 0
    assert wait_dead(pid, 10)
    assert env.status() is None


def test_the_socket_directory_is_private_and_verified(tmp_path: Path, env: Env) -> None:
    runtime = Path(_socket.runtime_dir())
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    mine = tmp_path / "mine"
    _socket.ensure_private_dir(str(mine), os.getuid())
    os.chmod(mine, 0o755)
    _socket.ensure_private_dir(str(mine), os.getuid())
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(UnsafeDirectory):
        _socket.ensure_private_dir(str(link), os.getuid())
    with pytest.raises(UnsafeDirectory):  # someone else's directory is refused, not repaired
        _socket.ensure_private_dir(str(mine), os.getuid() + 1)


def test_only_the_same_uid_passes_the_peer_check() -> None:
    assert _socket.peer_allowed(1000, own_uid=1000)
    assert not _socket.peer_allowed(1001, own_uid=1000)
    assert not _socket.peer_allowed(0, own_uid=1000)
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert _socket.peer_uid(a) == os.getuid()


def test_the_daemon_hangs_up_on_another_uid(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler.daemon._daemon import Daemon

    monkeypatch.setattr(_socket, "peer_uid", lambda sock: os.getuid() + 1)
    daemon = Daemon(env.workspace, env.paths, idle_timeout=300, reported_version=__version__)

    async def scenario() -> bytes:
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(30):
                await tg.start(daemon.run, None, env.paths.token)
                async with await anyio.connect_unix(env.paths.socket) as stream:
                    await stream.send(b'{"control": "status"}\n')
                    try:
                        reply = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):  # closed unread: reset
                        reply = b""
            daemon.stopping.set()
        return reply

    assert anyio.run(scenario) == b""
    daemon.cleanup()


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    from scheduler.daemon._http import load_token

    fresh = tmp_path / "token"
    token = load_token(str(fresh))
    assert len(token) >= 32 and stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert load_token(str(fresh)) == token
    os.chmod(fresh, 0o644)
    with pytest.raises(UnsafeTokenFile):
        load_token(str(fresh))


def test_http_needs_the_token_and_a_loopback_host_and_origin(env: Env) -> None:
    _control.spawn(env.paths, ["--http"])
    status = env.wait_status()
    url = status["http_url"]
    assert url.startswith("http://127.0.0.1:")
    token = Path(env.paths.token).read_text().strip()
    port = url.split(":")[2].split("/")[0]
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
    ).encode()

    def post(headers: dict[str, str]) -> tuple[int, str]:
        base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        request = urllib.request.Request(url, data=body, headers={**base, **headers}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    auth = {"Authorization": f"Bearer {token}"}
    assert post({})[0] == 401
    assert post({"Authorization": "Bearer not-the-token"})[0] == 401
    assert post({**auth, "Host": f"evil.example:{port}"})[0] == 421
    assert post({**auth, "Origin": "http://evil.example"})[0] == 403
    code, text = post({**auth, "Origin": f"http://localhost:{port}"})
    assert code == 200 and '"protocolVersion":"2025-06-18"' in text
    info = json.loads(Path(env.paths.http).read_text())
    assert info["url"] == url
