"""The one child-process primitive: its own session, bounded, killed whole, recorded, logged.

Real subprocesses throughout: a Python child that starts a grandchild in a process group of its own
(as rust-analyzer runs flycheck's cargo), each carrying a unique marker in its argv, found in /proc.
"""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteReceiveStream
from processes import carrying, kill_carrying, new_marker, wait_for, wait_none_carrying

from scheduler.cargo import _groups, _process
from scheduler.cargo._process import run_bounded, run_streaming

pytestmark = pytest.mark.anyio
SCHEDULER_DIR = Path(__file__).resolve().parents[2] / "scheduler"

# argv: marker, then "hang" (wait forever) or "exit" (exit at once, leaving the grandchild running).
PARENT = r"""
import subprocess, sys, time
marker, mode = sys.argv[1], sys.argv[2]
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)", marker],
    process_group=0, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
print(grandchild.pid, flush=True)
if mode == "hang":
    time.sleep(600)
"""


@pytest.fixture
def marker() -> Iterator[str]:
    value = new_marker()
    yield value
    kill_carrying(value)


def parent_argv(marker: str, mode: str) -> list[str]:
    return [sys.executable, "-c", PARENT, marker, mode]


class PidLine:
    """A stdout consumer that keeps the grandchild's pid and says when it arrived."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.seen = anyio.Event()

    async def __call__(self, stream: ByteReceiveStream) -> None:
        async for chunk in stream:
            if self.pid is None and chunk.strip():
                self.pid = int(chunk.split()[0])
                self.seen.set()


async def drain(stream: ByteReceiveStream) -> None:
    async for _ in stream:
        pass


async def test_a_timeout_kills_the_whole_session_including_a_grandchild_in_another_group(marker: str) -> None:
    out = PidLine()
    with anyio.fail_after(60):
        run = await run_streaming(
            parent_argv(marker, "hang"), cwd=Path.cwd(), env=None, timeout_s=5, stdout=out, stderr=drain
        )
    assert run.timed_out and run.exit_code is None
    assert out.pid is not None, "the grandchild started before the timeout"
    wait_none_carrying(marker, timeout=10)


async def test_a_cancelled_caller_gets_the_session_killed_before_the_cancellation_propagates(marker: str) -> None:
    out = PidLine()

    async def cancel_once_started(scope: anyio.CancelScope) -> None:
        await out.seen.wait()
        scope.cancel()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:
                tg.start_soon(cancel_once_started, scope)
                await run_streaming(
                    parent_argv(marker, "hang"), cwd=Path.cwd(), env=None, timeout_s=None, stdout=out, stderr=drain
                )
    assert scope.cancelled_caught
    assert out.pid is not None
    wait_none_carrying(marker, timeout=10)


async def test_a_child_that_exits_still_has_the_grandchild_it_left_killed(marker: str) -> None:
    with anyio.fail_after(60):
        done = await run_bounded(parent_argv(marker, "exit"), cwd=Path.cwd(), timeout_s=30)
    assert done.exit_code == 0 and not done.timed_out
    assert int(done.stdout.split()[0]) > 0
    wait_none_carrying(marker, timeout=10)


async def test_every_run_writes_one_log_line_with_argv_exit_duration_and_how_it_ended(
    caplog: pytest.LogCaptureFixture, marker: str
) -> None:
    caplog.set_level(logging.INFO, logger="cargo_scheduler.process")
    with anyio.fail_after(60):
        await run_bounded([sys.executable, "-c", "raise SystemExit(3)", marker], timeout_s=30)
        await run_bounded([sys.executable, "-c", "import time; time.sleep(60)", marker], timeout_s=0.5)
    lines = [r.getMessage() for r in caplog.records if r.name == "cargo_scheduler.process"]
    assert len(lines) == 2
    assert marker in lines[0] and "exit 3 after" in lines[0] and " ms (pid " in lines[0]
    assert marker in lines[1] and "timed out after" in lines[1]


async def test_the_bounded_form_collects_both_streams_and_flags_output_past_its_bound() -> None:
    script = "import sys; sys.stdout.write('o' * 5000); sys.stderr.write('err')"
    with anyio.fail_after(60):
        done = await run_bounded([sys.executable, "-c", script], timeout_s=30)
        small = await run_bounded([sys.executable, "-c", script], timeout_s=30, max_bytes=100)
    assert done.ok and done.stdout == b"o" * 5000 and done.stderr == b"err"
    assert small.truncated and not small.ok and len(small.stdout) <= 100


async def test_a_program_that_does_not_exist_raises_oserror_and_leaves_nothing_recorded() -> None:
    with pytest.raises(FileNotFoundError):
        await run_bounded(["/nonexistent/cs-no-such-program"], timeout_s=5)
    assert _process.live_sessions() == []


async def test_a_running_session_is_in_the_record_and_is_crossed_out_when_it_ends(tmp_path: Path) -> None:
    record = tmp_path / "sessions"
    _process.record_sessions_in(str(record))
    seen: list[set[_groups.Session]] = []

    async def look(stream: ByteReceiveStream) -> None:
        async for _ in stream:
            seen.append(_groups.Record(str(record)).load())

    try:
        with anyio.fail_after(60):
            run = await run_streaming(
                [sys.executable, "-c", "print('up', flush=True)"],
                cwd=tmp_path,
                env=None,
                timeout_s=30,
                stdout=look,
                stderr=drain,
            )
    finally:
        _process.record_sessions_in(None)
    assert seen and [pid for pid, _ in seen[0]] == [run.pid]
    assert _groups.Record(str(record)).load() == set()
    assert _process.live_sessions() == []


def test_a_sweep_kills_the_sessions_a_dead_owner_left_even_when_their_leader_is_gone(
    tmp_path: Path, marker: str
) -> None:
    # A leader that exits at once, leaving its grandchild running: a crashed daemon's orphans.
    leader = subprocess.Popen(parent_argv(marker, "exit"), start_new_session=True, stdout=subprocess.PIPE)
    started = _groups.start_time(leader.pid)
    assert started is not None
    record = _groups.Record(str(tmp_path / "sessions"))
    record.add((leader.pid, started))
    assert leader.stdout is not None
    grandchild = int(leader.stdout.readline())
    leader.wait(timeout=30)
    assert grandchild in carrying(marker)
    killed = _groups.sweep(record.path)
    assert grandchild in killed
    wait_none_carrying(marker, timeout=10)
    assert not Path(record.path).exists()


def test_a_sweep_never_signals_a_process_that_only_reuses_a_recorded_pid(tmp_path: Path, marker: str) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker], start_new_session=True)
    try:
        started = wait_for(lambda: _groups.start_time(bystander.pid), 10, "the bystander's start time")
        # Popen returns when exec closes the error pipe, before the kernel has set up the new
        # argv: until then /proc shows an empty command line (seen once under load in CI).
        wait_for(lambda: bystander.pid in carrying(marker), 10, "the bystander's command line")
        record = _groups.Record(str(tmp_path / "sessions"))
        record.add((bystander.pid, started - 1))  # the same pid, another process's start time
        assert _groups.sweep(record.path) == []
        assert bystander.poll() is None and bystander.pid in carrying(marker)
    finally:
        bystander.kill()
        bystander.wait(timeout=10)


def test_a_record_ignores_a_torn_last_line_and_crossed_out_sessions(tmp_path: Path) -> None:
    record = _groups.Record(str(tmp_path / "sessions"))
    record.add((10, 1))
    record.add((11, 2))
    record.remove((10, 1))
    with open(record.path, "a") as f:
        f.write("+ 12")  # a crash in the middle of a write
    assert record.load() == {(11, 2)}


# Started elsewhere on purpose: the stdlib-only front spawns the daemon with posix_spawn (no anyio);
# `cargo-scheduler bench` runs a script in the foreground; the baseline is the tests' own reference.
# The tests' own tooling (the fresh-cargo reference, the soundness scenario's `rustup toolchain list`)
# is not the product: it runs plain subprocesses with their own timeouts.
_SPAWN_ALLOWED = {"cargo/_process.py", "cli/_main.py", "testing/_baseline.py", "testing/_scenarios.py"}


def test_no_module_but_the_primitive_starts_a_child_process() -> None:
    problems = []
    for source in sorted(SCHEDULER_DIR.rglob("*.py")):
        where = str(source.relative_to(SCHEDULER_DIR))
        if where in _SPAWN_ALLOWED:
            continue
        for node in ast.walk(ast.parse(source.read_text(), where)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
                if name in ("open_process", "run_process", "Popen", "create_subprocess_exec", "fork"):
                    problems.append(f"{where}:{node.lineno}: {name}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "subprocess" in names and where != "cargo/_process.py":
                    problems.append(f"{where}:{node.lineno}: imports subprocess")
    assert problems == []
