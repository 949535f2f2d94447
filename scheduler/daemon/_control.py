"""Finding, starting, replacing and querying a workspace's daemon (client side; stdlib only).

Used by the stdio front on its background thread and by `cargo-scheduler daemon status|stop|logs`.
Standard library only, for the same reason as `_front.py`: `serve` must not pay for anyio or the SDK.

Every connection opens with one control line. `{"control": "hello", ...}` gets the daemon's status
line and then the connection carries MCP JSON-RPC lines; `status` and `stop` get one line and close.
A front's hello carries `session`: its client's environment and `--allow-env`/`--allow-unsafe-env`
policy, which the daemon applies to that session's calls only (a malformed one gets `{"error": ...}`).
Starting is serialised by a per-workspace spawn lock so parallel sessions start one daemon, and the
daemon itself holds a lifetime lock, so "is the old one gone?" is answered by the kernel (a killed
daemon releases it at once; a zombie no container init reaps would fool a pid check).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from typing import Any, BinaryIO

from .. import _settings
from .._exceptions import DaemonUnavailable
from .._version import __version__
from ..cargo import _groups
from . import _socket

START_TIMEOUT = 60.0
"""A cold daemon imports the SDK (~1.5 s) and builds the server; generous for slow CI machines."""


def expected(paths: _socket.Paths, http: bool = False) -> dict[str, Any]:
    """What a daemon must report to be reused: same build, protocol, tool list, workspace, settings
    (the CARGO_SCHEDULER_* knobs: a user who changed one in the client's config gets it) and HTTP."""
    with open(_socket.TOOLLIST_PATH, "rb") as f:
        digest = _socket.toollist_digest(f.read())
    return {
        "version": __version__,
        "protocol": _socket.PROTOCOL,
        "digest": digest,
        "workspace": paths.workspace,
        "settings": _settings.fingerprint(),
        "http": http,
    }


def outdated(status: dict[str, Any], want: dict[str, Any]) -> str | None:
    """Why a running daemon must be replaced, or None if it fits."""
    for key in ("version", "protocol", "digest", "workspace"):
        if status.get(key) != want[key]:
            return f"{key} {status.get(key)!r} != {want[key]!r}"
    if status.get("settings", {}) != want["settings"]:
        return f"settings {status.get('settings', {})!r} != {want['settings']!r}"
    if want["http"] and not status.get("http"):
        return "HTTP wanted but not served"
    return None


def open_control(
    paths: _socket.Paths, request: dict[str, Any], timeout: float = 10.0
) -> tuple[socket.socket, BinaryIO, dict[str, Any]] | None:
    """Connect, send one control line, read the reply line; None if nobody listens (absent or stale).

    A reset counts as nobody: a killed daemon's listener lives until its last thread has exited (after
    its pid already reads as a zombie), and a connection that lands in it then is reset unread."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(paths.socket)
        sock.sendall(json.dumps(request).encode() + b"\n")
        reader = sock.makefile("rb")
        line = reader.readline()
        if not line:
            raise ConnectionError("daemon closed the connection")
        reply = json.loads(line)
        sock.settimeout(None)
        return sock, reader, reply
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
        sock.close()
        return None
    except (OSError, ValueError):
        sock.close()
        raise


def control(paths: _socket.Paths, command: str) -> dict[str, Any] | None:
    """One-shot `status`/`stop`; None if no daemon answers."""
    opened = open_control(paths, {"control": command})
    if opened is None:
        return None
    sock, reader, reply = opened
    reader.close()
    sock.close()
    return reply


def _lock_held(path: str) -> bool:
    """Whether a live daemon holds its lifetime lock (the kernel drops it the instant the process dies)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our probe lock too
    return False


def wait_gone(paths: _socket.Paths, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _lock_held(paths.lock):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def stop(paths: _socket.Paths, timeout: float = 15.0) -> dict[str, Any] | None:
    """Ask the daemon to stop and wait until it has; escalate to SIGTERM/SIGKILL if it hangs.

    Then, with no daemon left holding the workspace lock, kill what a crashed (or killed) one left
    running: its cargo runs, build scripts, rust-analyzer and what that started (`_groups.sweep`)."""
    reply = control(paths, "stop")
    if reply is not None and not wait_gone(paths, timeout):
        import signal

        pid = int(reply.get("pid", 0))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if pid > 0 and _socket.pid_alive(pid):
                os.kill(pid, sig)
            if wait_gone(paths, 5.0):
                break
    if not _lock_held(paths.lock):
        _groups.sweep(paths.sessions)
    return reply


def spawn(paths: _socket.Paths, extra_args: list[str], env: dict[str, str] | None = None) -> int:
    """Start a detached daemon (own session, stdio off the client's pipes, stderr to its log).

    `posix_spawn(setsid=True)` is `Popen(start_new_session=True)` without importing subprocess
    (which costs the front ~15 ms). `-P` keeps the agent's cwd off sys.path; PYTHONPATH pins the
    daemon to the very package this front runs from.
    """
    pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-P", "-m", "scheduler.daemon._daemon", "--workspace", paths.workspace, *extra_args]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, paths.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600),
    ]
    return os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)


def start_detached(paths: _socket.Paths, env: dict[str, str]) -> bool:
    """Start a daemon for `paths` without waiting for it (the shim's miss path); False when one is
    running or starting already (its lifetime lock is held, or a front holds the spawn lock)."""
    fd = os.open(paths.spawn_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        try:
            if _lock_held(paths.lock):  # not the socket file: a killed daemon leaves its socket behind
                return False
            spawn(paths, ["--no-analyzer-warmup"], env)  # a shell's cargo never asks rust-analyzer
            return True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def log_tail(paths: _socket.Paths, lines: int = 20) -> str:
    try:
        with open(paths.log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            return b"".join(f.read().splitlines(keepends=True)[-lines:]).decode(errors="replace")
    except OSError:
        return ""


def connect(
    paths: _socket.Paths, extra_args: list[str], http: bool = False, session: dict[str, Any] | None = None
) -> tuple[socket.socket, BinaryIO, dict[str, Any]]:
    """A session connection to a fitting daemon, starting or replacing one if needed.

    `session` (the front's client: `env`, `allow_unsafe_env`, `allow_env`) goes with the hello.
    Returns the socket, its line reader (positioned after the hello reply) and the daemon's status.
    """
    want = expected(paths, http)
    hello = {"control": "hello", **want, **({"session": session} if session is not None else {})}
    opened = _refused(open_control(paths, hello))
    if opened is not None and outdated(opened[2], want) is None:
        return opened
    if opened is not None:
        opened[1].close()
        opened[0].close()
    fd = os.open(paths.spawn_lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # bounded: another front holds this only while it starts a daemon
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    msg = "timed out waiting for another session to start the daemon"
                    raise DaemonUnavailable(msg) from None
                time.sleep(0.02)
        spawned: int | None = None
        while True:
            opened = _refused(open_control(paths, hello))
            if opened is not None:
                why = outdated(opened[2], want)
                if why is None:
                    return opened
                opened[1].close()
                opened[0].close()
                if spawned is not None:
                    raise DaemonUnavailable(f"the daemon just started reports {why}; see {paths.log}")
                print(f"cargo-scheduler: replacing the running daemon ({why})", file=sys.stderr)
                stop(paths)
                continue
            if spawned is None:
                if not _lock_held(paths.lock):  # a holder that does not answer yet is still starting
                    spawned = spawn(paths, extra_args)
            else:
                done, status = os.waitpid(spawned, os.WNOHANG)
                if done:
                    msg = f"daemon exited with status {status} while starting; log {paths.log}:"
                    raise DaemonUnavailable(f"{msg}\n{log_tail(paths)}")
            if time.monotonic() > deadline:
                raise DaemonUnavailable(f"no daemon answered within {START_TIMEOUT:.0f} s; see {paths.log}")
            time.sleep(0.02)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _refused(
    opened: tuple[socket.socket, BinaryIO, dict[str, Any]] | None,
) -> tuple[socket.socket, BinaryIO, dict[str, Any]] | None:
    """A daemon that refused the hello itself (not an outdated one: replacing it would not help)."""
    if opened is not None and "error" in opened[2] and "version" not in opened[2]:
        opened[1].close()
        opened[0].close()
        raise DaemonUnavailable(f"the daemon refused the session: {opened[2]['error']}")
    return opened


def running() -> list[str]:
    """The workspace roots this user's daemons serve (from their pid files; a stale file is skipped)."""
    roots = []
    directory = _socket.runtime_dir()
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), "rb") as f:
                status = json.loads(f.read())
            if _socket.pid_alive(int(status["pid"])):
                roots.append(str(status["workspace"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return roots


USAGE = """\
usage: cargo-scheduler daemon status|stop|logs [WORKSPACE] [--workspace PATH] [--lines N]
       cargo-scheduler daemon stop --all
       cargo-scheduler daemon list

One daemon serves each workspace root; WORKSPACE (default: the current directory) may be any
directory inside it. `stop --all` stops every daemon of this user; `list` prints their workspaces."""


def daemon_main(argv: list[str]) -> int:
    """`cargo-scheduler daemon status|stop|logs [WORKSPACE] [--lines N]`, `stop --all`, `list`."""
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if not argv or argv[0] not in ("status", "stop", "logs", "list"):
        print(USAGE, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    workspace, lines, every = None, 200, False
    while rest:
        flag = rest.pop(0)
        if flag == "--workspace" and rest and workspace is None:
            workspace = rest.pop(0)
        elif flag == "--lines" and rest:
            lines = int(rest.pop(0))
        elif flag == "--all" and command == "stop":
            every = True
        elif flag in ("-h", "--help"):
            print(USAGE)
            return 0
        elif not flag.startswith("-") and workspace is None:
            workspace = flag
        else:
            print(f"cargo-scheduler daemon: unexpected argument {flag!r}\n{USAGE}", file=sys.stderr)
            return 2
    if command == "list":
        print(json.dumps(running(), indent=2))
        return 0
    if every:
        if workspace is not None:
            print("cargo-scheduler daemon stop: give a workspace or --all, not both", file=sys.stderr)
            return 2
        stopped = [root for root in running() if stop(_socket.Paths(root)) is not None]
        print(json.dumps({"stopped": stopped}, indent=2))
        return 0
    if workspace is not None and not os.path.isdir(workspace):
        print(f"cargo-scheduler daemon: {workspace!r} is not a directory", file=sys.stderr)
        return 2
    paths = _socket.Paths(_socket.workspace_root(workspace or os.getcwd()))
    if command == "logs":
        sys.stdout.write(log_tail(paths, lines))
        return 0
    reply = control(paths, "status") if command == "status" else stop(paths)
    if reply is None:
        print(json.dumps({"running": False, "workspace": paths.workspace, "log": paths.log}))
        others = [root for root in running() if root != paths.workspace]
        if others:
            print(
                f"cargo-scheduler: no daemon serves {paths.workspace}; daemons are running for: "
                f"{', '.join(others)} (pass one as WORKSPACE, or `cargo-scheduler daemon stop --all`)",
                file=sys.stderr,
            )
        return 1 if command == "status" else 0
    reply["running"] = command == "status"
    print(json.dumps(reply, indent=2))
    return 0
