"""The daemon's side of the stdlib client (`cli/_client.py`): one `cli-check` line in, one answer out.

The client is the CLI's and the shim's fast path: it pays for no imports beyond the standard library,
and the daemon's engine is warm (its stat cache, its graph, its open diagnostics cache), so a cache
hit costs a socket round trip instead of a Python start-up plus the engine's set-up. The answer must
be the one the same command line gets in process, so it is rendered by the same code
(`_cargo_mode.answer`), with the caller's directory, environment and terminal.

What the daemon will not answer it says (`{"unfit": why}`) and the caller answers without it: a
client of another version (its flags table may differ), other CARGO_SCHEDULER_* settings than the
daemon's (they change what an answer is), a directory outside this daemon's workspace or one where
cargo would read other configuration than at the root (a member's own `.cargo/config.toml` or
`rust-toolchain.toml`: cargo and rustup look from where they run), or a command line the engine
does not take. A malformed request is unfit too, never an exception in the daemon.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _settings
from .._version import __version__
from ..cargo import _root
from ..cargo._config import read_from_elsewhere
from . import _flags

if TYPE_CHECKING:
    from ..engine._engine import Engine

CONTROL = "cli-check"


class Question:
    """A well-formed `cli-check` request, checked field by field."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        kind, argv, cwd, env = request.get("kind"), request.get("argv"), request.get("cwd"), request.get("env")
        if kind not in _flags.KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(_flags.KINDS)}")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv is not a list of strings")
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            raise ValueError("cwd is not an absolute path")
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ValueError("env is not a map of strings")
        elapsed = request.get("elapsed_s", 0.0)
        self.kind: str = kind
        self.argv: list[str] = argv
        self.cwd: str = cwd
        self.env: dict[str, str] = env
        self.tty = request.get("tty") is True
        self.elapsed_s = float(elapsed) if isinstance(elapsed, (int, float)) else 0.0
        self.version = request.get("version")


def progress_frame(line: str) -> bytes:
    """One progress line on the wire, before the reply: `progress TEXT` (the client shows it on its
    terminal, each over the last, and clears it before the answer)."""
    return b"progress " + line.replace("\n", " ").replace("\r", " ").encode("utf-8", "replace") + b"\n"


def frame(reply: Mapping[str, Any]) -> bytes:
    """The reply on the wire, read by the client without json (`cli/_client.py`): a line
    `answer CODE OUT ERR` and then OUT bytes of stdout and ERR bytes of stderr, or `unfit WHY`."""
    if "unfit" in reply:
        return b"unfit " + " ".join(str(reply["unfit"]).split()).encode("utf-8", "replace") + b"\n"
    out = str(reply["stdout"]).encode("utf-8", "surrogateescape")
    err = str(reply["stderr"]).encode("utf-8", "surrogateescape")
    return b"answer %d %d %d\n" % (int(reply["exit_code"]), len(out), len(err)) + out + err


def unfit(question: Question, workspace: Path, settings: Mapping[str, str]) -> tuple[str | None, _flags.Parsed]:
    """Why this daemon must not answer `question` (None: it may), and the parsed command line."""
    parsed = _flags.parse(question.kind, question.argv)
    if question.version != __version__:
        return f"client version {question.version!r}, daemon {__version__!r}", parsed
    if _settings.fingerprint(question.env) != dict(settings):
        return "the caller's CARGO_SCHEDULER_* settings are not the daemon's", parsed
    if parsed.fall is not None or parsed.usage is not None or parsed.help or parsed.own:
        return "a command line the engine does not answer", parsed
    root = _root.find_workspace_root(_flags.start_dir(parsed, question.cwd))
    if root is None or Path(root) != workspace.resolve():
        return f"{question.cwd!r} is not in this daemon's workspace {str(workspace)!r}", parsed
    elsewhere = read_from_elsewhere(Path(root), question.cwd)
    if elsewhere is not None:
        return f"cargo would read {elsewhere!r} in {question.cwd!r}, and the engine runs at the root", parsed
    return None, parsed


async def serve(
    request: Mapping[str, Any],
    workspace: Path,
    settings: Mapping[str, str],
    engine: Callable[[], Awaitable[Engine]],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The reply for one request: `{"exit_code", "stdout", "stderr"}` or `{"unfit": why}`; before
    it, `progress` gets cargo's progress lines when the caller's terminal would show them."""
    from ._cargo_mode import answer, foreign_selection

    try:
        question = Question(request)
    except (ValueError, TypeError) as exc:
        return {"unfit": f"malformed request: {exc}"}
    why, parsed = unfit(question, workspace, settings)
    if why is not None:
        return {"unfit": why}
    served = await engine()
    foreign = await foreign_selection(served, parsed)
    if foreign is not None:
        return {"unfit": foreign}
    code, out, err = await answer(
        served,
        parsed,
        question.cwd,
        question.env,
        tty=question.tty,
        elapsed_s=question.elapsed_s,
        progress=progress,
    )
    return {"exit_code": code, "stdout": out, "stderr": err}
