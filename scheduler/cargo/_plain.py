"""Plain cargo runs for the tools the engine does not answer (fmt, add, remove, update, clean, run, bench).

These commands have no diagnostics to cache, so they run as they are, but with the same discipline as
the engine's runs: argv only (never a shell), `_process.run_streaming` (their own session, so a
timeout or a cancelled call kills cargo *and* what it started: rustfmt, the user's binary, a
benchmark; a shielded cleanup: terminate, a grace, then kill), and bounded output buffers so a
chatty program cannot exhaust memory. A timeout is an answer that says so, not an exception: the
agent learns what happened and what ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from anyio.abc import ByteReceiveStream

from .._exceptions import CargoError
from ._process import run_streaming
from ._run import cargo_argv, stable_environment

KEEP_BYTES = 256 * 1024
"""Per stream: the head and the tail of the output are kept, the middle is counted and dropped."""


@dataclass
class PlainResult:
    command: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: float
    timed_out: bool = False
    dropped_bytes: int = 0

    @property
    def success(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class _Capture:
    """A byte stream's head and tail within `KEEP_BYTES`, plus how much was dropped between them."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes) -> None:
        room = KEEP_BYTES // 4 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        excess = len(self.tail) - (KEEP_BYTES - KEEP_BYTES // 4)
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    async def pump(self, stream: ByteReceiveStream) -> None:
        async for chunk in stream:
            self.add(chunk)

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes of output not kept ...]\n".encode() if self.dropped else b""
        return bytes(self.head + middle + self.tail).decode(errors="replace")


async def run_cargo_plain(
    root: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    env_extra: Mapping[str, str] | None = None,
    toolchain: str | None = None,
    timeout_s: float | None = None,
) -> PlainResult:
    """Run `cargo <args>` (or `rustup run <toolchain> cargo <args>`) in `root` to completion.

    Cancel-safe: if the calling task is cancelled, the process group is killed (shielded) before
    the cancellation propagates. A timeout kills it the same way and returns `timed_out=True`.
    `env` is the environment of the question (default: this process's), `env_extra` the call's additions.
    """
    argv = cargo_argv(args, toolchain)
    run_env = stable_environment(env)
    run_env.setdefault("CARGO_TERM_COLOR", "never")
    run_env.update(env_extra or {})
    out, err = _Capture(), _Capture()
    try:
        run = await run_streaming(argv, cwd=root, env=run_env, timeout_s=timeout_s, stdout=out.pump, stderr=err.pump)
    except OSError as exc:
        raise CargoError(f"could not start {argv[0]!r}: {exc}; is it installed and on PATH?") from exc
    return PlainResult(
        command=argv,
        exit_code=run.exit_code,
        stdout=out.text(),
        stderr=err.text(),
        duration_ms=run.duration_ms,
        timed_out=run.timed_out,
        dropped_bytes=out.dropped + err.dropped,
    )
