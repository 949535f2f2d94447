"""No process of ours outlives the daemon: not cargo, not a build script, not rust-analyzer or the
cargo and build scripts rust-analyzer starts, whether the daemon is stopped, sent SIGTERM or killed.

A real daemon on a generated workspace whose build script hangs forever (after starting a grandchild
of its own). The build script runs twice: under the engine's cargo (a `cargo_check` call) and under
rust-analyzer's own cargo (its load, started by the default prewarm). Every such process carries a
unique marker (in its environment through `.cargo/config.toml`'s `[env]`, and in the grandchild's
argv), found by scanning /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_env import REPO, Env, analyzer_pids, isolated_env, wait_dead
from processes import carrying, kill_carrying, new_marker, wait_for, wait_none_carrying

from scheduler.daemon import _control

LOAD_TIMEOUT = 240.0
"""rust-analyzer's cold load (std, then the build scripts) on a busy two-core machine."""
GONE_TIMEOUT = 30.0

HANGING_BUILD_RS = """use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let _grandchild = Command::new("sh").args(["-c", "sleep 3600; :", "MARKER"]).spawn().unwrap();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


@pytest.fixture
def marker(env: Env) -> Iterator[str]:
    value = new_marker()
    (env.workspace / "crates" / "buildinfo" / "build.rs").write_text(HANGING_BUILD_RS.replace("MARKER", value))
    (env.workspace / ".cargo").mkdir(exist_ok=True)
    (env.workspace / ".cargo" / "config.toml").write_text(f'[env]\nCS_HANG_MARKER = "{value}"\n')
    yield value
    kill_carrying(value)  # only if the test failed: never leave them on a shared machine


def hang_under_both(env: Env, marker: str) -> dict[int, str]:
    """Start a check and rust-analyzer's load; return once both have a hung build script running."""
    front = env.front()
    front.initialize()
    front.send(
        {"id": 1, "method": "tools/call", "params": {"name": "cargo_check", "arguments": {"package": "buildinfo"}}}
    )

    def both() -> dict[int, str] | None:
        found = carrying(marker)
        scripts = [cmd for cmd in found.values() if "build-script-build" in cmd]
        under_ra = any("/rust-analyzer/" in cmd for cmd in scripts)
        under_engine = any("/rust-analyzer/" not in cmd for cmd in scripts)
        return found if under_ra and under_engine else None

    found = wait_for(both, LOAD_TIMEOUT, "the build script to hang under the engine's cargo and rust-analyzer's")
    assert any(cmd.startswith("sh -c") for cmd in found.values()), f"the grandchildren run too: {found}"
    return found


def daemon_stop(env: Env) -> None:
    argv = [sys.executable, "-m", "scheduler.cli._main", "daemon", "stop", "--workspace", str(env.workspace)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def kill_daemon(env: Env) -> None:
    """SIGKILL the daemon with its sessions' work in flight. The fronts are frozen first and killed
    after: a front whose daemon died starts a new one, which would clean up before the test looks,
    and a front that exits first ends its session, which cancels the check cleanly."""
    pid = int(env.wait_status()["pid"])
    for front in env.fronts:
        os.kill(front.proc.pid, signal.SIGSTOP)
    os.kill(pid, signal.SIGKILL)
    # Not `wait_dead`: /proc shows the main thread a zombie while other threads still hold the
    # files (the listening socket among them); the lifetime lock goes only with the last of them.
    assert _control.wait_gone(env.paths, GONE_TIMEOUT)
    for front in env.fronts:
        front.proc.kill()
        front.proc.wait(timeout=GONE_TIMEOUT)


def test_daemon_stop_leaves_no_cargo_build_script_or_rust_analyzer_behind(env: Env, marker: str) -> None:
    hang_under_both(env, marker)
    analyzer = wait_for(lambda: analyzer_pids(env), 30, "rust-analyzer's pid")
    daemon_stop(env)
    wait_none_carrying(marker, GONE_TIMEOUT)
    assert all(wait_dead(pid, GONE_TIMEOUT) for pid in analyzer)


def test_sigterm_to_the_daemon_leaves_nothing_behind(env: Env, marker: str) -> None:
    hang_under_both(env, marker)
    pid = int(env.wait_status()["pid"])
    os.kill(pid, signal.SIGTERM)
    assert wait_dead(pid, GONE_TIMEOUT)
    wait_none_carrying(marker, GONE_TIMEOUT)


def test_after_a_daemon_is_killed_daemon_stop_kills_what_it_left(env: Env, marker: str) -> None:
    hang_under_both(env, marker)
    kill_daemon(env)
    assert carrying(marker), "a SIGKILLed daemon cannot clean up: its processes are still there"
    daemon_stop(env)
    wait_none_carrying(marker, GONE_TIMEOUT)


def test_after_a_daemon_is_killed_the_next_daemon_kills_what_it_left(
    env: Env, marker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hang_under_both(env, marker)
    kill_daemon(env)
    assert carrying(marker)
    monkeypatch.setenv("CARGO_SCHEDULER_PREWARM", "none")  # the new daemon starts no build of its own
    _control.spawn(env.paths, [])
    env.wait_status()
    wait_none_carrying(marker, GONE_TIMEOUT)
