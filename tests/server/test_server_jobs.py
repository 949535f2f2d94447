"""Long work as jobs: a test run past `job_after_s` answers with a handle that can be polled, waited
on and cancelled, with progress seen while it runs and no process left after a cancel.

A real cargo on a one-crate workspace whose only test sleeps for three minutes; the in-memory client.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client
from server_env import call

from scheduler import ServerState, build_server
from scheduler._settings import Settings

pytestmark = pytest.mark.anyio
SLEEPER = """#[cfg(test)]
mod tests {
    #[test]
    fn sleeps_three_minutes() {
        std::thread::sleep(std::time::Duration::from_secs(180));
    }

    #[test]
    fn is_quick() {}
}
"""
BOUND = 120.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sleeper_workspace(root: Path, body: str = SLEEPER) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "sleeper"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "src" / "lib.rs").write_text(body)
    return root


def _test_binaries_running(root: Path) -> list[int]:
    """Pids of processes whose executable lies in this workspace's target dir (the test binary)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if exe.startswith(str(root / "target")):
            found.append(int(entry.name))
    return found


async def test_a_three_minute_test_run_becomes_a_job_that_is_polled_shows_progress_and_is_cancelled(
    tmp_path: Path,
) -> None:
    root = sleeper_workspace(tmp_path / "ws")
    seen: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message or "")

    async with (
        ServerState(root, settings=Settings(job_after_s=8.0)) as state,
        Client(build_server(root, state=state)) as client,
    ):
        with anyio.fail_after(BOUND):
            started = time.monotonic()
            result = await client.call_tool("cargo_test", {}, progress_callback=on_progress)
            answered_after = time.monotonic() - started
        data = result.structured_content
        assert isinstance(data, dict) and not result.is_error, result
        job = data["job"]
        assert job["state"] == "running" and job["tool"] == "cargo_test" and answered_after < 60
        assert any("cargo" in p for p in seen), seen  # notifications while it waited

        with anyio.fail_after(BOUND):  # the test binary runs: the job says so
            while True:
                _, polled = await call(client, "scheduler_job", {"job_id": job["job_id"], "wait_s": 0})
                running = polled["job"]["progress"]["running"]
                if _test_binaries_running(root):
                    break
                await anyio.sleep(0.2)
        assert polled["job"]["state"] == "running" and running, polled
        _, status = await call(client, "scheduler_status")
        assert [j["job_id"] for j in status["jobs"]] == [job["job_id"]]

        with anyio.fail_after(BOUND):
            _, cancelled = await call(client, "scheduler_job_cancel", {"job_id": job["job_id"]})
        assert cancelled["job"]["state"] == "cancelled" and cancelled["job"]["processes_running"] == 0
        assert _test_binaries_running(root) == []
        _, after = await call(client, "scheduler_job", {"job_id": job["job_id"], "wait_s": 0})
        assert after["job"]["state"] == "cancelled"


async def test_a_job_that_ends_is_answered_by_scheduler_job_with_the_tools_own_answer(tmp_path: Path) -> None:
    quick = SLEEPER.replace("from_secs(180)", "from_secs(6)")
    root = sleeper_workspace(tmp_path / "ws", quick)
    async with (
        ServerState(root, settings=Settings(job_after_s=0.5)) as state,
        Client(build_server(root, state=state)) as client,
    ):
        with anyio.fail_after(BOUND):
            _, first = await call(client, "cargo_test", {})
            assert first["job"]["state"] == "running"
            _, done = await call(client, "scheduler_job", {"job_id": first["job"]["job_id"], "wait_s": 100})
    assert done["job"]["state"] == "done"
    assert done["success"] is True and done["counts"]["passed"] == 2, done


async def test_a_call_that_ends_within_the_bound_answers_as_usual_and_leaves_no_job(tmp_path: Path) -> None:
    root = sleeper_workspace(tmp_path / "ws", "pub fn f() {}\n")
    async with (
        ServerState(root, settings=Settings(job_after_s=60.0)) as state,
        Client(build_server(root, state=state)) as client,
    ):
        with anyio.fail_after(BOUND):
            _, data = await call(client, "cargo_check", {})
            _, status = await call(client, "scheduler_status")
    assert "job" not in data and data["success"] is True
    assert status["jobs"] == []


async def test_an_unknown_job_id_is_refused_naming_the_argument(tmp_path: Path) -> None:
    root = sleeper_workspace(tmp_path / "ws", "pub fn f() {}\n")
    async with Client(build_server(root)) as client:
        failed, data = await call(client, "scheduler_job", {"job_id": "job-nope", "wait_s": 0})
    assert failed and data["argument"] == "job_id" and "job-nope" in data["error"]
