"""Faults at the server level: a hanging cargo, a cache database destroyed under a running server, a
full disk, cancelled calls, and rust-analyzer killed mid-session. Each ends in answers that are
either correct (compared with a fresh `cargo check` in a target dir of its own) or say plainly what
went wrong, and in a server whose next call works.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import diskcache
import pytest
from analyzer_env import needs_ra
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, build_server, fresh_cargo_check

pytestmark = pytest.mark.anyio

BIG = 100_000  # max_tokens: whole answers, so they can be compared with cargo's
ERROR_SNIPPET = '\npub fn broken() -> u32 { "not a number" }\n'
WARNING_SNIPPET = "\npub fn noisy() -> u32 { let unused_here = 1; 0 }\n"


# -- helpers ------------------------------------------------------------------------------------
async def wait_until(predicate: Callable[[], bool | Awaitable[bool | int]], bound_s: float, what: str) -> None:
    """Poll a condition (processes and files give no event to wait on), bounded by `bound_s`."""
    try:
        with anyio.fail_after(bound_s):
            while True:
                result = predicate()
                outcome = result if isinstance(result, bool) else await result
                if outcome:
                    return
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {bound_s} s: {what}") from None


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie nobody reaped has finished running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def hang_build_script(ws: GeneratedWorkspace, pid_file: Path) -> Callable[[], object]:
    """Make buildinfo's build script record its pid and sleep; returns the undo."""
    build_rs = ws.crate_dir("buildinfo") / "build.rs"
    original = build_rs.read_text()
    hang = (
        f'fn main() {{\n    std::fs::write(r"{pid_file}", std::process::id().to_string()).unwrap();\n'
        "    std::thread::sleep(std::time::Duration::from_secs(600));"
    )
    build_rs.write_text(original.replace("fn main() {", hang, 1))
    return lambda: build_rs.write_text(original)


def pid_from(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def target_locks_are_free(root: Path) -> bool:
    locks = list((root / "target").glob("*/.cargo-lock")) + list((root / "target").glob(".*lock"))
    for lock in locks:
        with lock.open("a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(fh, fcntl.LOCK_UN)
    return True


def identities(answer: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        (d["package"], d["level"], d.get("code"), d["message"], d.get("file"), d.get("line"), d.get("column"))
        for d in answer["diagnostics"]
    }


def assert_equals_fresh_cargo(answer: dict[str, Any], root: Path, baseline_target: Path) -> None:
    assert answer["packages"]["pending"] == [] and "omitted" not in answer, answer
    success, theirs = fresh_cargo_check(root, baseline_target)
    ours = identities(answer)
    assert ours == theirs, f"only engine {ours - theirs}; only cargo {theirs - ours}"
    assert answer["success"] == success


@contextlib.asynccontextmanager
async def serve(root: Path, cache_dir: Path) -> AsyncIterator[tuple[Client, ServerState]]:
    async with ServerState(root, cache_dir=cache_dir) as state, Client(build_server(root, state=state)) as client:
        yield client, state


async def check(client: Client, **args: Any) -> dict[str, Any]:
    with anyio.fail_after(300):
        is_error, data = await call(client, "cargo_check", {"scope": "workspace", "max_tokens": BIG, **args})
    assert not is_error, data
    return data


@pytest.fixture
def ws(make_workspace: Callable[..., GeneratedWorkspace]) -> GeneratedWorkspace:
    return make_workspace(crates=6)


@pytest.fixture
def small_ws(make_workspace: Callable[..., GeneratedWorkspace]) -> GeneratedWorkspace:
    return make_workspace(crates=4)


# -- cargo hangs ------------------------------------------------------------------------------------
async def test_a_hanging_build_script_is_answered_with_a_timeout_its_process_group_killed_and_the_lock_freed(
    ws: GeneratedWorkspace, tmp_path: Path
) -> None:
    pid_file = tmp_path / "build-script.pid"
    undo = hang_build_script(ws, pid_file)
    async with serve(ws.root, tmp_path / "cache") as (client, _):
        with anyio.fail_after(180):
            data = await check(client, package="buildinfo", scope="changed", timeout_s=15)
        assert data["success"] is False
        assert "timed out after 15" in data["error"] and "buildinfo" in data["error"], data
        pid = pid_from(pid_file)
        assert pid is not None, "the build script ran before the time limit"
        await wait_until(lambda: not alive(pid), 10, f"build script {pid} killed with cargo's process group")
        assert target_locks_are_free(ws.root), "cargo's target-dir lock is released"
        undo()
        fixed = await check(client, timeout_s=300)
    assert fixed["success"] is True and "buildinfo" in fixed["packages"]["ran"]
    assert_equals_fresh_cargo(fixed, ws.root, tmp_path / "baseline")


# -- the cache database destroyed while the server runs ------------------------------------------------
def _delete(db: Path) -> None:
    shutil.rmtree(db.parent)


def _truncate(db: Path) -> None:
    with db.open("r+b") as fh:
        fh.truncate(db.stat().st_size // 2)


def _zero(db: Path) -> None:
    with db.open("r+b") as fh:
        fh.truncate(0)


def _garbage_pages(db: Path) -> None:
    size = db.stat().st_size
    with db.open("r+b") as fh:
        for offset in range(4096, size, 4096 * 2):  # every other page after the header page
            fh.seek(offset + 100)
            fh.write(os.urandom(1500))


def _garbage_header(db: Path) -> None:
    with db.open("r+b") as fh:
        fh.write(b"this is not an SQLite database at all" * 4)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "deleted": _delete,
    "truncated": _truncate,
    "emptied": _zero,
    "garbage-pages": _garbage_pages,
    "garbage-header": _garbage_header,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
async def test_a_cache_database_damaged_under_a_running_server_never_yields_a_wrong_answer(
    small_ws: GeneratedWorkspace, tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A lock must fail in seconds here, not after diskcache's default 60 s.
    original_init = diskcache.Cache.__init__
    monkeypatch.setattr(
        diskcache.Cache, "__init__", lambda self, *a, **kw: original_init(self, *a, **{"timeout": 3, **kw})
    )
    ws, cache_dir = small_ws, tmp_path / "cache"
    db = cache_dir / "diagnostics" / "cache.db"
    mid = ws.mids[0]
    async with serve(ws.root, cache_dir) as (client, _):
        first = await check(client)
        assert sorted(first["packages"]["ran"]) == sorted(ws.members)
        DAMAGE[damage](db)
        # The server goes on: an edit, then the same question twice.
        ws.lib_rs(mid).write_text(ws.lib_rs(mid).read_text() + ERROR_SNIPPET)
        edited = await check(client)
        assert mid in edited["packages"]["ran"] and "cache" not in edited, "rebuilt, and the answer says it ran"
        assert_equals_fresh_cargo(edited, ws.root, tmp_path / "baseline")
        again = await check(client)
        assert again["packages"]["ran"] == [] and mid in again["packages"]["cached"]
        assert_equals_fresh_cargo(again, ws.root, tmp_path / "baseline")
    # Another server (nothing in memory) on the same cache: whatever it takes from disk is right.
    async with serve(ws.root, cache_dir) as (client, state):
        damage_again = await check(client)
        assert_equals_fresh_cargo(damage_again, ws.root, tmp_path / "baseline")
        assert state.engines is not None and state.engines.cache is not None
        assert state.engines.cache.available, state.engines.cache.problem
    assert db.is_file(), "the database was rebuilt"


# -- disk full ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[bool]:
    """Mount a small tmpfs at `where` (root only); yields False when it cannot be mounted."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield False
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, check=False
    )
    if done.returncode != 0:
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(directory: Path) -> None:
    """Write until the filesystem says ENOSPC."""
    chunk = b"\0" * 4096
    try:
        with (directory / "filler").open("wb") as fh:
            while True:
                fh.write(chunk)
                fh.flush()
    except OSError as exc:  # on open too: the cache's own files may have taken the last blocks
        assert exc.errno == errno.ENOSPC, exc


async def test_a_full_disk_leaves_answers_coming_without_the_cache_and_saying_so(
    small_ws: GeneratedWorkspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, mid = small_ws, small_ws.mids[0]
    with tiny_tmpfs(tmp_path / "tmpfs", "1m") as mounted:
        cache_dir = tmp_path / "tmpfs" / "cache"
        async with serve(ws.root, cache_dir) as (client, _):
            first = await check(client)
            assert "cache" not in first
            if mounted:
                fill(tmp_path / "tmpfs")
            else:  # no tmpfs (not root): the same failure, injected

                def full(*_: Any, **__: Any) -> None:
                    raise OSError(errno.ENOSPC, "No space left on device")

                monkeypatch.setattr(diskcache.Cache, "set", full)
            for snippet in (ERROR_SNIPPET, WARNING_SNIPPET):
                ws.lib_rs(mid).write_text(ws.lib_rs(mid).read_text() + snippet)
                answer = await check(client)
                assert answer["cache"].startswith("unavailable"), answer
                assert mid in answer["packages"]["ran"]
                assert_equals_fresh_cargo(answer, ws.root, tmp_path / "baseline")
            status = await call(client, "scheduler_status")
            assert not status[0]


# -- cancelled calls ------------------------------------------------------------------------------------
async def test_a_cancelled_call_kills_the_cargo_it_started(ws: GeneratedWorkspace, tmp_path: Path) -> None:
    pid_file = tmp_path / "build-script.pid"
    undo = hang_build_script(ws, pid_file)
    async with serve(ws.root, tmp_path / "cache") as (client, _):
        with anyio.fail_after(180):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.call_tool, "cargo_check", {"package": "buildinfo", "scope": "changed"})
                await wait_until(lambda: pid_from(pid_file) is not None, 150, "the build script started")
                tg.cancel_scope.cancel()
        pid = pid_from(pid_file)
        assert pid is not None
        await wait_until(lambda: not alive(pid), 15, f"build script {pid} killed after the call was cancelled")
        undo()
        after = await check(client, package="buildinfo", scope="changed", timeout_s=300)
    assert after["success"] is True and target_locks_are_free(ws.root)


async def _flight_callers(client: Client) -> int:
    _, status = await call(client, "scheduler_status")
    flights = [f for e in status.get("engines", []) for f in e["in_flight"]]
    return sum(f["callers"] for f in flights)


async def test_a_cancelled_call_leaves_a_run_it_shares_with_another_caller_running(
    ws: GeneratedWorkspace, tmp_path: Path
) -> None:
    pid_file = tmp_path / "build-script.pid"
    undo = hang_build_script(ws, pid_file)
    args = {"package": "buildinfo", "scope": "changed"}
    async with ServerState(ws.root, cache_dir=tmp_path / "cache") as state:
        server = build_server(ws.root, state=state)
        async with Client(server) as first, Client(server) as second, Client(server) as observer:
            with anyio.fail_after(240):
                async with anyio.create_task_group() as tg:
                    first_scope, second_scope = anyio.CancelScope(), anyio.CancelScope()

                    async def ask(client: Client, scope: anyio.CancelScope) -> None:
                        with scope:
                            await client.call_tool("cargo_check", args)

                    tg.start_soon(ask, first, first_scope)
                    tg.start_soon(ask, second, second_scope)
                    await wait_until(lambda: pid_from(pid_file) is not None, 150, "the build script started")
                    await wait_until(lambda: _flight_callers(observer), 30, "both calls wait on the run")
                    assert await _flight_callers(observer) == 2, "identical calls share one run"
                    found = pid_from(pid_file)
                    assert found is not None
                    pid: int = found

                    first_scope.cancel()
                    await wait_until(lambda: _is(_flight_callers(observer), 1), 15, "the first caller left")
                    assert alive(pid), "the run the second caller waits for goes on"

                    second_scope.cancel()
                await wait_until(lambda: not alive(pid), 15, "the last caller left: the run is killed")
            undo()
            _, data = await call(observer, "cargo_check", {**args, "timeout_s": 300})
    assert data["success"] is True


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


# -- rust-analyzer killed mid-session --------------------------------------------------------------------
@pytest.mark.analyzer
@needs_ra
async def test_killing_rust_analyzer_mid_session_restarts_it_and_the_next_hover_works(
    ws: GeneratedWorkspace, tmp_path: Path
) -> None:
    hover = {"file_path": "crates/hub/src/lib.rs", "line": 5, "character": 8}

    async def ready_hover(client: Client) -> dict[str, Any]:
        answer: dict[str, Any] = {}

        async def ready() -> bool:
            nonlocal answer
            is_error, answer = await call(client, "rust_analyzer_hover", hover)
            assert not is_error, answer
            return bool(answer["status"] == "ready")

        await wait_until(ready, 240, "rust-analyzer answers a hover")
        return answer

    async with serve(ws.root, tmp_path / "cache") as (client, _):
        before = await ready_hover(client)
        assert "hub_value" in json.dumps(before["result"])
        _, status = await call(client, "scheduler_status")
        pid = status["analyzers"][0]["pid"]
        os.kill(pid, signal.SIGKILL)
        after = await ready_hover(client)
        assert after["result"] == before["result"]
        _, status = await call(client, "scheduler_status")
    analyzer = status["analyzers"][0]
    assert analyzer["restarts"] >= 1 and analyzer["pid"] not in (None, pid), analyzer
