"""Plain cargo runs: argv only, bounded output, and a timeout that kills the whole process group."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import pytest

from scheduler.cargo._plain import KEEP_BYTES, run_cargo_plain
from scheduler.server._answer import cut, plain_dict

pytestmark = pytest.mark.anyio


def _fake_cargo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """Put a `cargo` that runs `script` first on PATH (the runner reads PATH at call time)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    cargo = bindir / "cargo"
    cargo.write_text("#!/bin/sh\n" + script)
    cargo.chmod(cargo.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _until_dead(pid: int, bound_s: float = 10.0) -> None:
    """Bounded wait for a grandchild's exit, which has no event to wait on (it is not our child)."""
    with anyio.fail_after(bound_s):
        while _alive(pid):  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def test_arguments_reach_cargo_verbatim_without_a_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_cargo(tmp_path, monkeypatch, 'for a in "$@"; do echo "[$a]"; done\n')
    result = await run_cargo_plain(root, ["run", "--", "$(id)", "a b;c"])
    assert result.success and result.stdout.splitlines() == ["[run]", "[--]", "[$(id)]", "[a b;c]"]


async def test_a_timeout_kills_cargo_and_what_it_started_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "child.pid"
    root = _fake_cargo(tmp_path, monkeypatch, f"sleep 60 &\necho $! > {pidfile}\nwait\n")
    with anyio.fail_after(20):
        result = await run_cargo_plain(root, ["run"], timeout_s=0.5)
    assert result.timed_out and not result.success and result.exit_code is None
    await _until_dead(int(pidfile.read_text()))
    answer = plain_dict(result, max_tokens=None)
    assert answer["timed_out"] is True and "killed" in answer["error"]


async def test_a_cancelled_call_kills_the_process_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "child.pid"
    root = _fake_cargo(tmp_path, monkeypatch, f"sleep 60 &\necho $! > {pidfile}\nwait\n")
    with anyio.move_on_after(0.5):
        await run_cargo_plain(root, ["run"])
    # The group was killed (shielded) before move_on_after returned: nothing writes the file any more.
    if pidfile.exists():
        await _until_dead(int(pidfile.read_text()))


async def test_huge_output_keeps_its_head_and_tail_within_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _fake_cargo(tmp_path, monkeypatch, "echo FIRST; yes filler | head -c 2000000; echo; echo LAST\n")
    result = await run_cargo_plain(root, ["run"])
    assert result.stdout.startswith("FIRST") and result.stdout.rstrip().endswith("LAST")
    assert len(result.stdout) < KEEP_BYTES + 200 and result.dropped_bytes > 0


def test_cutting_to_budget_keeps_errors_first_and_the_tail() -> None:
    text = "error[E0308]: mismatched types\n --> src/lib.rs:1:1\n\n" + "noise\n" * 5000 + "final verdict"
    out = cut(text, 800, errors_first=True)
    assert out.startswith("error[E0308]") and out.endswith("final verdict") and "omitted" in out
    assert len(out.encode()) <= 900
