"""Scheduling through the MCP server, proved from the scheduler's recorded start/end events, with
real rust-analyzer and real cargo."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, build_server
from scheduler.cargo import _run
from scheduler.engine import _engine

pytestmark = pytest.mark.anyio

needs_analyzer = pytest.mark.skipif(
    shutil.which("rust-analyzer") is None and not Path("/usr/bin/rust-analyzer").exists(),
    reason="rust-analyzer is not installed",
)
UNFORMATTED = "\npub fn   spaced_out( x:u32 )->u32{x}\n"


async def until(predicate: Callable[[], bool], limit_s: float = 60) -> None:
    """Wait (bounded) for a state the server reaches on its own; it offers no event for "N calls
    admitted", so this polls the scheduler's own records. Ordering is asserted from the records."""
    with anyio.fail_after(limit_s):
        while not predicate():  # noqa: ASYNC110 - polling server state, not ordering by time
            await anyio.sleep(0.01)


@pytest.fixture
async def served(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> AsyncIterator[tuple[Client, ServerState, GeneratedWorkspace]]:
    ws = make_workspace(crates=6)
    async with ServerState(ws.root) as state, Client(build_server(ws.root, state=state)) as client:
        yield client, state, ws


@needs_analyzer
async def test_concurrent_hovers_overlap_and_a_fmt_among_them_runs_alone_between_them(
    served: tuple[Client, ServerState, GeneratedWorkspace],
) -> None:
    client, state, ws = served
    await anyio.run_process(["cargo", "fmt"], cwd=ws.root)  # so that only our line moves
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + UNFORMATTED)
    spaced_line = lib.read_text().splitlines().index(UNFORMATTED.strip())
    rel = str(lib.relative_to(ws.root))
    sched = state.scheduler.for_workspace(ws.root.resolve())  # type: ignore[union-attr]
    answers: dict[str, dict[str, Any]] = {}

    async def hover(name: str, line: int, character: int) -> None:
        error, data = await call(
            client, "rust_analyzer_hover", {"file_path": rel, "line": line, "character": character}
        )
        assert not error, data
        answers[name] = data

    async def fmt() -> None:
        error, data = await call(client, "cargo_fmt", {})
        assert not error and data["success"], data
        answers["fmt"] = data

    def started(label: str) -> int:
        return sum(1 for e in sched.events() if e.label == label and e.kind == "start")

    def queued_mutations() -> int:
        return len(sched.status()["queued"]["mutation"])

    with anyio.fail_after(240):
        async with anyio.create_task_group() as tg:
            for i in range(3):  # while rust-analyzer loads, these hovers all wait inside their slots
                tg.start_soon(hover, f"early{i}", 3, 8)
            await until(lambda: started("rust_analyzer_hover") == 3)
            tg.start_soon(fmt)
            await until(lambda: queued_mutations() == 1)
            for i in range(3):
                tg.start_soon(hover, f"late{i}", spaced_line, 7)

    events = [e for e in sched.events() if e.label in ("rust_analyzer_hover", "cargo_fmt")]
    seqs = sorted({e.seq for e in events})
    at = {(e.seq, e.kind): e.at for e in events}
    early, fmt_seq, late = seqs[:3], seqs[3], seqs[4:]
    assert next(e.label for e in events if e.seq == fmt_seq) == "cargo_fmt"
    assert max(at[s, "start"] for s in early) < min(at[s, "end"] for s in early), "early hovers overlap"
    assert at[fmt_seq, "start"] >= max(at[s, "end"] for s in early), "fmt waits for the reads before it"
    assert at[fmt_seq, "end"] <= min(at[s, "start"] for s in late), "reads after fmt wait for it"
    assert max(at[s, "start"] for s in late) < min(at[s, "end"] for s in late), "late hovers overlap"
    # The early hovers answered for real (not an empty "no result"), the late ones saw fmt's result.
    assert all("value" in str(answers[f"early{i}"]["result"]) for i in range(3))
    assert all("spaced_out" in str(answers[f"late{i}"]["result"]) for i in range(3))


async def test_two_identical_cargo_checks_at_once_start_one_cargo(
    served: tuple[Client, ServerState, GeneratedWorkspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, ws = served
    runs: list[list[str]] = []
    real = _run.run_cargo

    async def counting(args: Any, **kwargs: Any) -> Any:
        runs.append(list(args))
        return await real(args, **kwargs)

    monkeypatch.setattr(_engine, "run_cargo", counting)
    answers: list[dict[str, Any]] = []

    async def check() -> None:
        error, data = await call(client, "cargo_check", {"scope": "workspace"})
        assert not error, data
        answers.append(data)

    with anyio.fail_after(180):
        async with anyio.create_task_group() as tg:
            tg.start_soon(check)
            tg.start_soon(check)
    assert len(runs) == 1
    assert answers[0]["packages"] == answers[1]["packages"]
    assert sorted(answers[0]["packages"]["ran"]) == sorted(ws.members)


async def test_a_cached_check_does_not_wait_behind_a_running_build(
    served: tuple[Client, ServerState, GeneratedWorkspace],
) -> None:
    client, state, ws = served
    assert not (await call(client, "cargo_check", {"scope": "workspace"}))[0]
    build_rs = ws.crate_dir("buildinfo") / "build.rs"
    build_rs.write_text(
        build_rs.read_text().replace(
            "fn main() {", "fn main() {\n    std::thread::sleep(std::time::Duration::from_secs(600));", 1
        )
    )
    engine = await state.engine(ws.root)
    finished: list[str] = []

    async def slow_build() -> None:
        await call(client, "cargo_build", {"package": "buildinfo", "timeout_s": 120})
        finished.append("build")

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_build)
            await until(lambda: any(g.holder for g in engine._gates.values()))
            error, data = await call(client, "cargo_check", {"package": ws.leaves[0]})
            finished.append("check")
            assert not error and data["packages"]["cached"] == [ws.leaves[0]], data
            tg.cancel_scope.cancel()
    assert finished == ["check"]


async def test_a_mutation_drops_the_background_checks_it_would_make_stale_before_it_runs(
    served: tuple[Client, ServerState, GeneratedWorkspace],
) -> None:
    client, state, ws = served
    build_rs = ws.crate_dir("buildinfo") / "build.rs"
    build_rs.write_text(
        build_rs.read_text().replace(
            "fn main() {", "fn main() {\n    std::thread::sleep(std::time::Duration::from_secs(600));", 1
        )
    )
    engine = await state.engine(ws.root)
    with anyio.fail_after(120):
        await engine.prefill()  # a background check of every member, stuck in buildinfo's build script
        await until(lambda: any((g.holder or "").startswith("background") for g in engine._gates.values()))
        error, data = await call(client, "cargo_fmt", {})  # declared a MUTATION; nothing else asks for this
    assert not error and data["success"], data
    assert engine.status()["background"] == [], "the stale background check was cancelled"
    assert not any(g.busy for g in engine._gates.values()), "and its cargo is gone"
