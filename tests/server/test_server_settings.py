"""The latency knobs end to end: each CARGO_SCHEDULER_* setting changes what the server does, over MCP,
with real cargo on generated workspaces (docs/tuning.md measures what each one costs or saves)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, _settings, build_server
from scheduler._settings import Settings
from scheduler.analyzer._pool import AnalyzerPool

pytestmark = pytest.mark.anyio
BACKGROUND = 240.0  # a background check of a few crates, with room for a slow CI machine


@pytest.fixture
def ws(make_workspace: Callable[..., GeneratedWorkspace]) -> GeneratedWorkspace:
    return make_workspace(crates=6)


def _answered(data: dict[str, object]) -> set[str]:
    packages = data["packages"]
    assert isinstance(packages, dict)
    return set(packages["ran"]) | set(packages["cached"])


async def test_the_configured_scope_is_the_default_and_a_call_can_still_name_its_own(
    ws: GeneratedWorkspace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_settings.SCOPE, "workspace")
    async with Client(build_server(ws.root)) as client:
        _, data = await call(client, "cargo_check", {})
        assert data["scope"] == "workspace" and _answered(data) == set(ws.members)
        _, data = await call(client, "cargo_check", {"package": "leaf_000", "scope": "changed"})
        assert data["scope"] == "changed" and data["packages"]["ran"] == []
        _, status = await call(client, "scheduler_status")
    assert status["settings"]["non_default"] == {"scope": "workspace"}


async def test_without_settings_the_default_scope_is_auto(ws: GeneratedWorkspace) -> None:
    async with Client(build_server(ws.root)) as client:
        _, data = await call(client, "cargo_check", {"package": "leaf_000"})
        _, status = await call(client, "scheduler_status")
    assert data["scope"] == "auto" and status["settings"]["non_default"] == {}


async def test_prewarm_check_fills_the_cache_so_the_first_question_runs_nothing(ws: GeneratedWorkspace) -> None:
    async with ServerState(ws.root, settings=Settings(prewarm="check")) as state:
        await state.warm_up(ws.root)
        await (await state.engine(ws.root)).wait_background(BACKGROUND)
        async with Client(build_server(ws.root, state=state)) as client:
            _, data = await call(client, "cargo_check", {"scope": "workspace"})
    assert data["success"] is True and data["packages"]["ran"] == []
    assert set(data["packages"]["cached"]) == set(ws.members)


async def test_prewarm_none_starts_neither_rust_analyzer_nor_the_engine(ws: GeneratedWorkspace) -> None:
    async with ServerState(ws.root, settings=Settings(prewarm="none")) as state:
        await state.warm_up(ws.root)
        assert isinstance(state.analyzers, AnalyzerPool)
        assert state.analyzers.analyzers() == [] and state.engines is not None and state.engines.engines() == []
    async with ServerState(ws.root, settings=Settings(prewarm="index", ra_wait_s=0)) as state:
        await state.warm_up(ws.root)  # the default: both are started (rust-analyzer loads in the background)
        assert isinstance(state.analyzers, AnalyzerPool)
        assert len(state.analyzers.analyzers()) == 1 and state.engines is not None and state.engines.engines()


async def test_cache_mb_0_keeps_answers_in_memory_only_so_a_restart_runs_cargo_again(
    ws: GeneratedWorkspace,
    tmp_path: Path,
) -> None:
    async def check_twice(settings: Settings) -> tuple[list[str], list[str], dict[str, object]]:
        async with (
            ServerState(ws.root, cache_dir=tmp_path / "cache", settings=settings) as state,
            Client(build_server(ws.root, state=state)) as client,
        ):
            _, first = await call(client, "cargo_check", {"package": "leaf_000", "scope": "changed"})
            _, again = await call(client, "cargo_check", {"package": "leaf_000", "scope": "changed"})
            _, status = await call(client, "scheduler_status")
        assert again["packages"]["ran"] == [] and again["packages"]["cached"] == ["leaf_000"]
        return first["packages"]["ran"], again["packages"]["cached"], status["cache"]

    memory_only = Settings(cache_mb=0)
    ran, _, cache = await check_twice(memory_only)
    assert ran == ["leaf_000"] and cache["persistent"] is False
    assert not (tmp_path / "cache" / "diagnostics").exists()  # nothing was written to disk
    ran, _, _ = await check_twice(memory_only)  # a restarted daemon: nothing survived
    assert ran == ["leaf_000"]
    ran, _, cache = await check_twice(Settings())
    assert ran == ["leaf_000"] and cache["persistent"] is True
    ran, _, _ = await check_twice(Settings())  # with the disk cache the restart answers from it
    assert ran == []


async def test_a_private_target_dir_takes_every_cargo_run_off_the_workspace_target(
    ws: GeneratedWorkspace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_settings.TARGET_DIR, "private")
    private = ws.root / "target" / "cargo-scheduler" / "agent"
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(client, "cargo_check", {"package": "leaf_000", "scope": "changed"})
        assert not is_error and data["success"] is True
        assert any((private / "debug" / ".fingerprint").glob("leaf_000-*"))  # the engine's check went there
        is_error, ran = await call(client, "cargo_run", {"package": "leaf_001"})
        assert not is_error and ran["success"] is True, ran
    assert (private / "debug" / "leaf_001").is_file()  # the plain run built there too
    assert not (ws.root / "target" / "debug").exists()  # the user's own build dir was never touched
