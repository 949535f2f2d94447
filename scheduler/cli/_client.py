"""Asking the workspace's running daemon for a cargo-style answer: the fast path of the CLI and the shim.

Standard library only, and only its cheapest parts, as the MCP front: a cache hit through the shim
must cost less than cargo's own no-op, and the interpreter's start plus these imports are most of
what it costs (tests/cli/test_client.py pins the imports). Measured on this project's 2-core
machine: `socket` costs 16 ms (its IntEnum conversions), `json` 9 ms, `typing` 5 ms, `tomllib`
6 ms, `hashlib` 4 ms; so the C `_socket` module, a small JSON encoder for the request and a plain
framed reply, and the daemon's socket found by looking for it at each manifest directory above the
start (the nearest one with a daemon; the daemon checks it is the workspace root cargo would find,
and says unfit if not) instead of parsing manifests. The daemon is never started from `ask_daemon`:
without one the caller answers in process (`cargo-scheduler check`) or runs the real cargo (the
shim), and then starts one in the background for next time (`start_daemon`).

The request is one control line, `{"control": "cli-check", ...}`, with the command line, the
caller's directory, its whole environment (cargo runs in it and keys read it, as for the CLI in
process) and whether its stderr is a terminal (colour). The reply is a line `answer CODE OUT ERR`
followed by OUT bytes of stdout and ERR bytes of stderr, or a line `unfit WHY` (another version, other
CARGO_SCHEDULER_* settings, or a command line it would not answer), and the caller then answers
without it. The daemon's side is `shell/_served.py`.
"""

from __future__ import annotations

import _socket as _net
import os

from .._version import __version__
from ..cargo._root import manifest_dirs
from ..daemon import _socket
from ..shell import _flags

CONTROL = "cli-check"
CONNECT_S = 2.0
ANSWER_S = 3600.0
"""A cache miss runs cargo in the daemon: as long as a build may take (then the caller gives up on it)."""
_ESCAPES = {i: f"\\u{i:04x}" for i in range(32)} | {ord("\\"): "\\\\", ord('"'): '\\"'}


def encode(value: object) -> str:
    """JSON for the request's types (str, bool, int, float, list, dict of str), as `json.dumps`
    with ensure_ascii=False would write it, without importing json."""
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(encode(str(k)) + ":" + encode(v) for k, v in value.items()) + "}"
    raise TypeError(f"cannot encode {type(value).__name__}")


def request(
    kind: str, argv: list[str], cwd: str, env: dict[str, str], *, tty: bool, elapsed_s: float
) -> dict[str, object]:
    return {
        "control": CONTROL,
        "version": __version__,
        "kind": kind,
        "argv": argv,
        "cwd": cwd,
        "env": env,
        "tty": tty,
        "elapsed_s": elapsed_s,
    }


def daemon_socket(start: str) -> str | None:
    """The socket of the daemon serving the nearest manifest directory at or above `start`."""
    for directory in manifest_dirs(start):
        path = _socket.Paths(directory).socket
        if os.path.exists(path):
            return path
    return None


def ask_daemon(
    kind: str, argv: list[str], cwd: str, env: dict[str, str], *, tty: bool, elapsed_s: float = 0.0
) -> tuple[int, str, str] | None:
    """The daemon's (exit code, stdout, stderr) for this command, or None: no daemon serves the
    workspace, it would not answer this command, or anything went wrong on the way."""
    parsed = _flags.parse(kind, argv)
    if parsed.fall is not None or parsed.usage is not None or parsed.help or parsed.own:
        return None
    try:
        path = daemon_socket(_flags.start_dir(parsed, cwd))
        if path is None:
            return None
        sock = _net.socket(_net.AF_UNIX, _net.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_S)
            sock.connect(path)
            line = encode(request(kind, argv, cwd, env, tty=tty, elapsed_s=elapsed_s))
            sock.sendall(line.encode("utf-8", "surrogateescape") + b"\n")
            sock.settimeout(ANSWER_S)
            return _read_answer(sock, show_progress=tty)
        finally:
            sock.close()
    except (OSError, ValueError, TypeError):
        return None
    except Exception:  # any other surprise: answer without the daemon rather than fail the command
        return None


def _read_answer(sock: _net.socket, show_progress: bool = False) -> tuple[int, str, str] | None:
    data = b""
    shown = False
    while True:
        while b"\n" not in data:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return None
            data += chunk
        head, _, data = data.partition(b"\n")
        if not head.startswith(b"progress "):
            break
        if show_progress:  # cargo's progress line, each over the last, on the terminal
            os.write(2, b"\r\x1b[2K" + head[9:])
            shown = True
    if shown:
        os.write(2, b"\r\x1b[2K")
    words = head.split()
    if len(words) != 4 or words[0] != b"answer":
        return None  # `unfit ...`, or not our daemon
    code, out_len, err_len = int(words[1]), int(words[2]), int(words[3])
    chunks = [data]
    have = len(data)
    while have < out_len + err_len:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return None
        chunks.append(chunk)
        have += len(chunk)
    body = b"".join(chunks)
    return code, body[:out_len].decode("utf-8", "replace"), body[out_len : out_len + err_len].decode("utf-8", "replace")


def start_daemon(cwd: str, env: dict[str, str]) -> bool:
    """Start the workspace's daemon in the background, in `env`, without waiting (the miss path of
    the shim and the CLI: this command is answered without it, the next one finds it); False when there is
    no workspace or a daemon is running or starting."""
    from ..cargo._root import find_workspace_root

    try:
        root = find_workspace_root(cwd)
        if root is None:
            return False
        from ..daemon import _control  # not on the hit path: fcntl, time, typing

        return _control.start_detached(_socket.Paths(root), env)
    except Exception:  # never fail the user's cargo over a daemon that did not start
        return False
