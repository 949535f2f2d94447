"""Asking the workspace's running daemon for a cargo-style answer: the fast path of the CLI and the shim.

Not wired yet: the daemon does not answer `cli-check` (its side must not import the CLI; it needs a
home below both), so `ask_daemon` gets "unknown control" and the CLI answers in process.

Standard library only (os, json, socket and this package's stdlib-only modules; no argparse, anyio,
typing or the MCP SDK), as the MCP front is: a cache hit must cost less than cargo's own no-op, and
the interpreter's start plus these imports are most of what it costs (tests/cli/test_client.py
pins the imports). The daemon is never started from here: without one the caller answers in-process
(`cargo-scheduler check`) or runs the real cargo (the shim).

The request is one control line, `{"control": "cli-check", ...}`, with the command line, the
caller's directory, its whole environment (cargo runs in it and keys read it, as for the CLI in
process) and whether its stderr is a terminal (colour); the daemon answers one line, `{"exit_code",
"stdout", "stderr"}`, or `{"unfit": why}` (another version, other CARGO_SCHEDULER_* settings, or a
command line it would not answer), and the caller then answers without it.
"""

from __future__ import annotations

import json
import os
import socket

from .._version import __version__
from ..daemon import _socket
from . import _flags

CONTROL = "cli-check"
CONNECT_S = 2.0
ANSWER_S = 3600.0
"""A cache miss runs cargo in the daemon: as long as a build may take (then the caller gives up on it)."""


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


def ask_daemon(
    kind: str, argv: list[str], cwd: str, env: dict[str, str], *, tty: bool, elapsed_s: float = 0.0
) -> tuple[int, str, str] | None:
    """The daemon's (exit code, stdout, stderr) for this command, or None: no daemon serves the
    workspace, it would not answer this command, or anything went wrong on the way."""
    parsed = _flags.parse(kind, argv)
    if parsed.fall is not None or parsed.usage is not None or parsed.help or parsed.own:
        return None
    try:
        root = _socket.workspace_root(_flags.start_dir(parsed, cwd))
        path = _socket.Paths(root).socket
        if not os.path.exists(path):
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_S)
            sock.connect(path)
            line = json.dumps(request(kind, argv, cwd, env, tty=tty, elapsed_s=elapsed_s), ensure_ascii=False)
            sock.sendall(line.encode("utf-8", "surrogateescape") + b"\n")
            sock.settimeout(ANSWER_S)
            reply = _read_line(sock)
        finally:
            sock.close()
        answer = json.loads(reply)
        if not isinstance(answer, dict) or "exit_code" not in answer:
            return None
        return int(answer["exit_code"]), str(answer.get("stdout", "")), str(answer.get("stderr", ""))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    except Exception:  # any other surprise: answer without the daemon rather than fail the command
        return None


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            break
    return b"".join(chunks)
