"""Running cargo: JSON messages parsed as they stream, in a session that never outlives us.

Cargo runs through `_process.run_streaming`, in a session of its own, so a timeout or a cancelled
call kills cargo, rustc, build scripts and test binaries together (terminate, a short grace, then
kill, shielded from the cancellation that caused it). The environment it sees is fixed when the
engine starts (see `stable_environment`), so build scripts that watch variables do not rebuild on
every call.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio.abc import ByteReceiveStream

from .._exceptions import CargoError
from ._process import run_streaming

_STDERR_KEEP = 64 * 1024
# Variables that differ between agent sessions and terminals but mean nothing to a build.
_VOLATILE_PREFIXES = ("CODEX_", "CLAUDE", "MCP_", "TERM_SESSION", "WINDOWID", "KITTY_", "VSCODE_")
_VOLATILE = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES", "SSH_TTY", "GPG_TTY"})
TARGET_KEY = "$cargo_scheduler_target"
"""Added to each stored rustc message: the `target` object of cargo's `compiler-message` (answers
stored before it existed lack it; readers fall back to the package's first target)."""
_FAILED_UNIT = re.compile(
    r"(?:could not compile|failed to run custom build command for) `([A-Za-z0-9_\-]+)(?: v[^`]*)?`"
)


def stable_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for every cargo run: the server's own, minus per-session noise."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if k not in _VOLATILE and not k.startswith(_VOLATILE_PREFIXES)}


def cargo_argv(args: Sequence[str], toolchain: str | None = None) -> list[str]:
    if toolchain:
        return ["rustup", "run", toolchain, "cargo", *args]
    return ["cargo", *args]


@dataclass(frozen=True)
class Unit:
    """A `compiler-artifact` message: one unit (lib, bin, test, build script) of one package."""

    package_id: str
    kinds: tuple[str, ...]
    filenames: tuple[str, ...]
    fresh: bool
    target: str = ""
    """The target's name (a lib and a bin of one package may share it: `kinds` tells them apart)."""
    test: bool = False
    """Built with the test profile (`--all-targets` checks a lib twice: once as a test)."""


@dataclass(frozen=True)
class BuildScript:
    """A `build-script-executed` message: where its output went, what it set for rustc."""

    out_dir: str
    env: tuple[str, ...]
    """Names it passed to the compiler with `cargo:rustc-env`."""


@dataclass
class CargoOutcome:
    argv: list[str]
    exit_code: int | None = None
    finished_success: bool | None = None
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """rustc diagnostics (the inner `message` objects, with TARGET_KEY) by cargo package_id."""
    artifacts: set[str] = field(default_factory=set)
    units: list[Unit] = field(default_factory=list)
    """Every unit cargo compiled or found fresh, in the order cargo reported them."""
    build_scripts: dict[str, BuildScript] = field(default_factory=dict)
    """Build scripts run (or found fresh) by package_id."""
    failed_units: set[str] = field(default_factory=set)
    """Package names cargo reported as failed in its text output (build scripts, linking...)."""
    stdout_text: list[str] = field(default_factory=list)
    stderr: str = ""
    timed_out: bool = False
    cancelled: bool = False
    duration_ms: float = 0.0

    @property
    def completed(self) -> bool:
        return not (self.timed_out or self.cancelled) and self.exit_code is not None


async def run_cargo(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    toolchain: str | None = None,
    timeout_s: float | None = None,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    on_outcome: Callable[[CargoOutcome], None] | None = None,
) -> CargoOutcome:
    """Run cargo to completion (or timeout), collecting its JSON messages. Never raises on cargo's
    own failure: a failed build is an outcome. Cancellation kills the process group and re-raises.
    `on_outcome` sees the outcome so far after each message (an early answer watches it)."""
    outcome = CargoOutcome(argv=cargo_argv(args, toolchain))
    stderr_chunks: list[bytes] = []

    def handle(line: bytes) -> None:
        if not line.startswith(b"{"):
            outcome.stdout_text.append(line.decode(errors="replace"))
            return
        try:
            msg = json.loads(line)
        except ValueError:
            return
        reason = msg.get("reason")
        if reason == "compiler-message":
            message = msg.get("message", {})
            target = msg.get("target")
            if isinstance(message, dict) and isinstance(target, dict):
                # Which target said it: cargo's JSON and its summary lines name it (shell/_cargo_output).
                message = {**message, TARGET_KEY: target}
            outcome.messages.setdefault(msg.get("package_id", ""), []).append(message)
        elif reason == "compiler-artifact":
            outcome.artifacts.add(msg.get("package_id", ""))
            target = msg.get("target") or {}
            outcome.units.append(
                Unit(
                    package_id=str(msg.get("package_id", "")),
                    kinds=tuple(str(k) for k in target.get("kind") or ()),
                    filenames=tuple(str(f) for f in msg.get("filenames") or ()),
                    fresh=bool(msg.get("fresh")),
                    target=str(target.get("name") or ""),
                    test=bool((msg.get("profile") or {}).get("test")),
                )
            )
        elif reason == "build-script-executed":
            outcome.build_scripts[str(msg.get("package_id", ""))] = BuildScript(
                out_dir=str(msg.get("out_dir") or ""),
                env=tuple(str(pair[0]) for pair in msg.get("env") or () if pair),
            )
        elif reason == "build-finished":
            outcome.finished_success = bool(msg.get("success"))
        if on_message is not None:
            on_message(msg)
        if on_outcome is not None:
            on_outcome(outcome)

    async def read_stdout(stream: ByteReceiveStream) -> None:
        await _read_lines(stream, handle)

    async def read_stderr(stream: ByteReceiveStream) -> None:
        await _collect(stream, stderr_chunks)

    start = time.perf_counter()
    try:
        run = await run_streaming(
            outcome.argv, cwd=cwd, env=env, timeout_s=timeout_s, stdout=read_stdout, stderr=read_stderr
        )
        outcome.exit_code, outcome.timed_out = run.exit_code, run.timed_out
    except OSError as exc:
        raise CargoError(f"could not start {outcome.argv[0]!r}: {exc}") from exc
    except BaseException:
        outcome.cancelled = True
        raise
    finally:
        outcome.stderr = b"".join(stderr_chunks).decode(errors="replace")[-_STDERR_KEEP:]
        outcome.failed_units = set(_FAILED_UNIT.findall(outcome.stderr))
        outcome.duration_ms = (time.perf_counter() - start) * 1000
    return outcome


async def _read_lines(stream: ByteReceiveStream, handle: Callable[[bytes], None]) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            handle(line.rstrip(b"\r"))
    if buffer:
        handle(buffer)


async def _collect(stream: ByteReceiveStream, chunks: list[bytes]) -> None:
    size = 0
    async for chunk in stream:
        chunks.append(chunk)
        size += len(chunk)
        while size > 2 * _STDERR_KEEP and len(chunks) > 1:
            size -= len(chunks.pop(0))
