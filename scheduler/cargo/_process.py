"""Every child process, one way: its own session, bounded, killed as a whole, logged once.

cargo, rustc, build scripts, test binaries, rust-analyzer and what rust-analyzer starts must never
outlive the call (or the daemon) that started them, or a hung build script runs forever. So every
child starts in a session of its own, and ending it (at its exit, a timeout, a cancelled caller, an
exception) always goes the same way, shielded from the cancellation that caused it: SIGTERM to its
group, a short grace, then SIGKILL to everything left in its session (`_groups.kill_session`: a
build script or test may have forked, rust-analyzer's own cargo outlives it). Each session is
recorded while it runs (`record_sessions_in`), so a daemon killed with SIGKILL leaves a list for the
next one to clean up.

Three forms: `owned_process` (a context manager, for a child talked to for a long time: the LSP
server), `run_streaming` (consumers for stdout and stderr, a timeout: cargo runs) and `run_bounded`
(collect the output of a short command: `cargo metadata`, `rustc -vV`). Each run writes one line to
the `cargo_scheduler.process` logger (the daemon log): argv, exit code, duration, timed out or
cancelled, so the log shows what cargo did. No child sees cargo-scheduler's shim on PATH
(`_shimless`): our cargo must be the real one. OSError from starting the program propagates: callers
translate it into the error their answer needs.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import shlex
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, Process

from . import _groups
from ._shimless import shimless_env

log = logging.getLogger("cargo_scheduler.process")

TERM_GRACE_S = 2.0
"""From SIGTERM to SIGKILL: long enough for cargo to write its lock and fingerprint files."""
_LOG_ARGV = 400
_live: dict[int, _groups.Session] = {}
_record: _groups.Record | None = None

Consumer = Callable[[ByteReceiveStream], Coroutine[Any, Any, None]]


class Activity:
    """The children one piece of work (a job) has running and has run: its progress, for a caller
    who waits. `ACTIVITY` carries it into every run the work makes, however deep."""

    def __init__(self) -> None:
        self.running: dict[int, tuple[str, float]] = {}
        self.finished = 0

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "running": [{"command": cmd, "for_s": round(now - t, 1)} for cmd, t in self.running.values()],
            "finished_runs": self.finished,
        }

    def summary(self) -> str:
        """One line for a progress notification."""
        now = time.monotonic()
        running = "; ".join(f"{cmd} ({now - t:.0f} s)" for cmd, t in self.running.values())
        return f"running {running}" if running else f"{self.finished} run(s) finished"


ACTIVITY: contextvars.ContextVar[Activity | None] = contextvars.ContextVar("cargo_scheduler.activity", default=None)


def _short(argv: Sequence[str]) -> str:
    """`cargo test -p foo ...` without the program's directory, cut to a line."""
    words = [Path(argv[0]).name, *argv[1:]] if argv else []
    text = " ".join(words)
    return text if len(text) <= 160 else text[:157] + "..."


def record_sessions_in(path: str | None) -> None:
    """Write every session started from now on to `path` (the daemon's record; None stops)."""
    global _record
    _record = _groups.Record(path) if path is not None else None


def live_sessions() -> list[_groups.Session]:
    """Sessions started here and not yet ended (tests and the daemon's last-resort cleanup)."""
    return list(_live.values())


def kill_live_sessions() -> None:
    """Kill every session still open, synchronously: the daemon's last step on any way out."""
    for leader, started in list(_live.values()):
        _groups.kill_session(leader, since=started)
        _forget(leader)


def _remember(pid: int) -> None:
    session = (pid, _groups.start_time(pid) or 0)
    _live[pid] = session
    if _record is not None:
        with contextlib.suppress(OSError):
            _record.add(session)


def _forget(pid: int) -> None:
    session = _live.pop(pid, None)
    if session is not None and _record is not None:
        with contextlib.suppress(OSError):
            _record.remove(session)


@dataclass
class ProcessRun:
    """What one child did. `exit_code` is None when it did not exit by itself (timeout, cancel)."""

    argv: list[str]
    pid: int = 0
    exit_code: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    duration_ms: float = 0.0

    def describe(self) -> str:
        command = shlex.join(self.argv)
        if len(command) > _LOG_ARGV:
            command = command[:_LOG_ARGV] + f"... ({len(self.argv)} args)"
        how = "timed out" if self.timed_out else "cancelled" if self.cancelled else f"exit {self.exit_code}"
        return f"{command}: {how} after {self.duration_ms:.0f} ms (pid {self.pid})"


@dataclass
class Child:
    process: Process
    run: ProcessRun


@contextlib.asynccontextmanager
async def owned_process(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None,
    stdin_pipe: bool = False,
    grace_s: float = TERM_GRACE_S,
    exit_wait_s: float = 0.0,
) -> AsyncIterator[Child]:
    """Start `argv` in its own session with piped stdout/stderr (and stdin if `stdin_pipe`, else
    /dev/null); on leaving, end its whole session.

    `exit_wait_s` is how long a child asked to exit (an LSP server after `exit`) may take before it
    is terminated. Leaving by an exception (a cancellation included) marks the run `cancelled`."""
    run = ProcessRun(list(argv))
    started = time.perf_counter()
    process = await anyio.open_process(
        run.argv,
        cwd=cwd,
        env=shimless_env(dict(os.environ if env is None else env)),
        stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    run.pid = process.pid
    _remember(process.pid)
    activity = ACTIVITY.get()
    if activity is not None:
        activity.running[process.pid] = (_short(run.argv), time.monotonic())
    try:
        yield Child(process, run)
    except BaseException:
        run.cancelled = True
        raise
    finally:
        if activity is not None:
            activity.running.pop(process.pid, None)
            activity.finished += 1
        with anyio.CancelScope(shield=True):
            await end_session(process, grace_s, exit_wait_s)
        if run.exit_code is None and not (run.timed_out or run.cancelled):
            run.exit_code = process.returncode  # a long-lived child (the LSP server) ended
        run.duration_ms = (time.perf_counter() - started) * 1000
        log.info("%s", run.describe())


async def end_session(process: Process, grace_s: float = TERM_GRACE_S, exit_wait_s: float = 0.0) -> None:
    """SIGTERM the group, a grace, then SIGKILL what is left of the session; reap. Call shielded."""
    try:
        if process.returncode is None and exit_wait_s > 0:
            with anyio.move_on_after(exit_wait_s):
                await process.wait()
        if process.returncode is None:
            _groups.signal_group(process.pid, signal.SIGTERM)
            with anyio.move_on_after(grace_s):
                await process.wait()
        # Even when the leader exited: a build script or test may have forked, and rust-analyzer's
        # cargo outlives it. The leader is not reaped yet, so its pid (the session id) is still ours.
        await anyio.to_thread.run_sync(_groups.kill_session, process.pid)
        if process.returncode is None:
            await process.wait()
    finally:
        _forget(process.pid)
        with contextlib.suppress(Exception):
            await process.aclose()


async def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None,
    timeout_s: float | None,
    stdout: Consumer,
    stderr: Consumer,
    grace_s: float = TERM_GRACE_S,
) -> ProcessRun:
    """Run to its exit or `timeout_s`, feeding stdout and stderr to the consumers as they arrive.

    A timeout is an outcome (`timed_out`), not an exception; a cancelled caller gets the session
    killed before the cancellation propagates."""
    async with owned_process(argv, cwd=cwd, env=env, grace_s=grace_s) as child:
        with anyio.move_on_after(timeout_s) as scope:
            async with anyio.create_task_group() as tg:
                assert child.process.stdout is not None and child.process.stderr is not None
                tg.start_soon(stdout, child.process.stdout)
                tg.start_soon(stderr, child.process.stderr)
            child.run.exit_code = await child.process.wait()
        child.run.timed_out = scope.cancelled_caught
    return child.run


@dataclass
class BoundedResult:
    """A short command's whole output (up to `max_bytes` per stream) and how it ended."""

    run: ProcessRun
    stdout: bytes = b""
    stderr: bytes = b""
    truncated: bool = False

    @property
    def argv(self) -> list[str]:
        return self.run.argv

    @property
    def exit_code(self) -> int | None:
        return self.run.exit_code

    @property
    def timed_out(self) -> bool:
        return self.run.timed_out

    @property
    def ok(self) -> bool:
        return self.run.exit_code == 0 and not self.truncated


async def run_bounded(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float,
    max_bytes: int = 256 * 1024 * 1024,
) -> BoundedResult:
    """Run a short command to completion within `timeout_s`, collecting its output.

    Past `max_bytes` on a stream the rest is dropped and `truncated` set (a result to refuse, not
    to parse). `env=None` inherits ours."""
    chunks: dict[str, list[bytes]] = {"out": [], "err": []}
    size = {"out": 0, "err": 0}
    truncated = False

    def collector(name: str) -> Consumer:
        async def collect(stream: ByteReceiveStream) -> None:
            nonlocal truncated
            async for chunk in stream:
                if size[name] + len(chunk) > max_bytes:
                    truncated = True
                    continue
                size[name] += len(chunk)
                chunks[name].append(chunk)

        return collect

    run = await run_streaming(
        argv, cwd=cwd, env=env, timeout_s=timeout_s, stdout=collector("out"), stderr=collector("err")
    )
    return BoundedResult(run, b"".join(chunks["out"]), b"".join(chunks["err"]), truncated)
