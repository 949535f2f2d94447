"""A session's workspace is its own: set_working_directory in one session never redirects another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp_types import RequestParamsMeta
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, build_server

pytestmark = pytest.mark.anyio


async def _workspace_of(client: Client) -> str:
    is_error, data = await call(client, "scheduler_status")
    assert not is_error
    return str(data["session_workspace"])


async def test_two_sessions_on_one_shared_state_keep_their_own_workspaces_under_concurrency(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    a, b = make_workspace(name="a"), make_workspace(name="b", crates=5)
    seen: dict[str, list[str]] = {"a": [], "b": []}
    async with ServerState(a.root) as state:
        server = build_server(a.root, state=state)
        # Handshake-era sessions, as Codex and Claude Code open them.
        async with Client(server, mode="legacy") as first, Client(server, mode="legacy") as second:
            is_error, data = await call(first, "set_working_directory", {"path": str(b.root)})
            assert not is_error and data["workspace"] == str(b.root.resolve())

            async def ask(client: Client, key: str) -> None:
                for _ in range(5):
                    _, affected = await call(client, "cargo_affected", {"files": ["Cargo.toml"]})
                    seen[key].append(affected["check_order"][-1])
                    seen[key].append(await _workspace_of(client))

            async with anyio.create_task_group() as tg:
                tg.start_soon(ask, first, "b")
                tg.start_soon(ask, second, "a")
    assert set(seen["b"]) == {b.leaves[-1], str(b.root.resolve())}
    assert set(seen["a"]) == {a.leaves[-1], str(a.root.resolve())}


async def test_a_workspace_argument_applies_to_one_call_only(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    a, b = make_workspace(name="a"), make_workspace(name="b", crates=5)
    async with Client(build_server(a.root)) as client:
        _, data = await call(client, "cargo_affected", {"files": ["Cargo.toml"], "workspace": str(b.root)})
        assert data["check_order"][-1] == b.leaves[-1]
        assert await _workspace_of(client) == str(a.root.resolve())


async def test_set_working_directory_accepts_a_path_relative_to_the_current_one(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    a, b = make_workspace(name="a"), make_workspace(name="b", crates=5)
    async with Client(build_server(a.root), mode="legacy") as client:
        _, data = await call(client, "set_working_directory", {"path": "../b"})
        assert data["workspace"] == str(b.root.resolve())
        assert await _workspace_of(client) == str(b.root.resolve())
        _, data = await call(client, "rust_analyzer_set_workspace", {"workspace_path": str(a.root)})
        assert await _workspace_of(client) == str(a.root.resolve())


async def test_a_2026_era_request_names_its_session_in_meta(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    a, b = make_workspace(name="a"), make_workspace(name="b", crates=5)
    async with Client(build_server(a.root), mode="2026-07-28") as client:
        meta: RequestParamsMeta = {"sessionId": "s1"}  # type: ignore[typeddict-unknown-key]
        result = await client.call_tool("set_working_directory", {"path": str(b.root)}, meta=meta)
        assert not result.is_error
        mine = await client.call_tool("scheduler_status", {}, meta=meta)
        other = await client.call_tool("scheduler_status", {}, meta=RequestParamsMeta(sessionId="s2"))  # type: ignore[typeddict-unknown-key]
    assert mine.structured_content and mine.structured_content["session_workspace"] == str(b.root.resolve())
    assert other.structured_content and other.structured_content["session_workspace"] == str(a.root.resolve())


async def test_set_working_directory_without_any_session_says_to_pass_workspace(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    a, b = make_workspace(name="a"), make_workspace(name="b", crates=5)
    async with Client(build_server(a.root), mode="2026-07-28") as client:
        is_error, data = await call(client, "set_working_directory", {"path": str(b.root)})
        assert is_error and "workspace=" in data["error"]
        is_error, data = await call(client, "cargo_affected", {"files": ["Cargo.toml"], "workspace": str(b.root)})
    assert not is_error and data["check_order"][-1] == b.leaves[-1]


async def test_a_shared_state_outlives_the_sessions_that_used_it(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    a = make_workspace(name="a")
    async with ServerState(a.root) as state:
        server = build_server(a.root, state=state)
        async with Client(server, mode="legacy") as client:
            await call(client, "cargo_affected", {"files": ["Cargo.toml"]})
        assert state.engines is not None and len(state.engines.engines()) == 1
        async with Client(server) as client:
            is_error, _ = await call(client, "cargo_affected", {"files": ["Cargo.toml"]})
        assert not is_error and len(state.engines.engines()) == 1
