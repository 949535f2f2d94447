"""Bad arguments are refused with a message naming the argument, and the session keeps working."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, build_server
from scheduler._exceptions import InvalidArgument
from scheduler._settings import Settings
from scheduler.server._state import CLIENT, ClientSession, ServerState

pytestmark = pytest.mark.anyio

HUB_LIB = "crates/hub/src/lib.rs"
GOOD = ("cargo_affected", {"files": [HUB_LIB]})


@pytest.fixture
def ws(make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path) -> GeneratedWorkspace:
    g = make_workspace(crates=6)
    (tmp_path / "secret.rs").write_text("// outside the workspace\n")
    (g.root / "crates" / "hub" / "src" / "escape.rs").symlink_to(tmp_path / "secret.rs")
    (tmp_path / "not_a_workspace").mkdir()
    return g


BAD_CALLS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "rust_analyzer_hover",
        {"file_path": "../outside.rs", "line": 0, "character": 0},
        "file_path",
        "outside the workspace",
    ),
    (
        "rust_analyzer_hover",
        {"file_path": "crates/hub/src/escape.rs", "line": 0, "character": 0},
        "file_path",
        "outside the workspace",
    ),
    ("rust_analyzer_symbols", {"file_path": "file://buildhost/" + HUB_LIB}, "file_path", "host 'buildhost'"),
    ("cargo_affected", {"files": ["../../etc/passwd"]}, "files", "outside the workspace"),
    ("cargo_check", {"package": "nope"}, "package", "not a member of this workspace"),
    ("cargo_check", {"features": "a;rm -rf"}, "features", "feature names"),
    ("cargo_check", {"cargo_env": {"RUSTC_WRAPPER": "/bin/sh"}}, "cargo_env", "RUSTC_WRAPPER"),
    ("cargo_check", {"toolchain": "stable;id"}, "toolchain", "rustup toolchain"),
    ("cargo_check", {"workspace": "/nonexistent/ws"}, "workspace", "not a directory"),
    ("cargo_test", {"test_name": "--ignored"}, "test_name", "no leading '-'"),
    ("cargo_add", {"dependencies": ["--git=https://example.com/x"]}, "dependencies", "name@version"),
    ("cargo_add", {"dependencies": ["../local_crate"]}, "dependencies", "name@version"),
    ("cargo_add", {"dependencies": []}, "dependencies", "at least one"),
    ("cargo_run", {"bin": "--config=x"}, "bin", "target name"),
    ("cargo_update", {"package": "--precise"}, "package", "name@version"),
]


@pytest.mark.parametrize(("tool", "args", "argument", "says"), BAD_CALLS, ids=[f"{t}-{a}" for t, _, a, _ in BAD_CALLS])
async def test_a_bad_argument_is_an_error_naming_it_and_the_next_good_call_works(
    ws: GeneratedWorkspace, tool: str, args: dict[str, Any], argument: str, says: str
) -> None:
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(client, tool, args)
        assert is_error
        assert argument in data["error"] and says in data["error"]
        assert data.get("argument") == argument
        is_error, good = await call(client, *GOOD)
    assert not is_error and good["owners"] == ["hub"]


async def test_a_workspace_without_a_manifest_is_refused_by_set_working_directory(
    ws: GeneratedWorkspace, tmp_path: Path
) -> None:
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(client, "set_working_directory", {"path": str(tmp_path / "not_a_workspace")})
        assert is_error and "path" in data["error"] and "Cargo.toml" in data["error"]
        is_error, _ = await call(client, *GOOD)
    assert not is_error, "a refused set_working_directory leaves the session's workspace as it was"


async def test_a_server_started_outside_a_workspace_says_how_to_set_one(tmp_path: Path) -> None:
    async with Client(build_server(tmp_path)) as client:
        is_error, data = await call(client, "cargo_check")
    assert is_error and "set_working_directory" in data["error"]


async def test_a_negative_position_is_refused_by_the_schema(ws: GeneratedWorkspace) -> None:
    async with Client(build_server(ws.root)) as client:
        result = await client.call_tool("rust_analyzer_hover", {"file_path": HUB_LIB, "line": -1, "character": 0})
        assert result.is_error and "line" in result.content[0].text  # type: ignore[union-attr]
        is_error, _ = await call(client, *GOOD)
    assert not is_error


async def test_unsafe_env_is_accepted_when_the_server_allows_it(ws: GeneratedWorkspace) -> None:
    async with Client(build_server(ws.root, allow_unsafe_env=True)) as client:
        env = {"CARGO_HOME": str(Path.home() / ".cargo")}
        is_error, data = await call(client, "cargo_fmt_check", {"cargo_env": env})
    assert not is_error and data["command"][:2] == ["cargo", "fmt"]


async def test_a_variable_the_server_allows_by_name_is_accepted_and_others_are_still_refused(
    ws: GeneratedWorkspace,
) -> None:
    async with Client(build_server(ws.root, allow_env=("PROBE_SETTING",))) as client:
        allowed, data = await call(client, "cargo_fmt_check", {"cargo_env": {"PROBE_SETTING": "1"}})
        assert not allowed and data["command"][:2] == ["cargo", "fmt"]
        refused, data = await call(client, "cargo_fmt_check", {"cargo_env": {"OTHER_SETTING": "1"}})
    assert refused and "OTHER_SETTING" in data["error"] and "--allow-env OTHER_SETTING" in data["error"]


async def test_the_allow_env_setting_extends_the_allow_list_by_prefix(ws: GeneratedWorkspace) -> None:
    settings = Settings(allow_env=("PROBE_*",))
    async with ServerState(ws.root, settings=settings) as state, Client(build_server(ws.root, state=state)) as client:
        allowed, _ = await call(client, "cargo_fmt_check", {"cargo_env": {"PROBE_MODE": "1"}})
        refused, data = await call(client, "cargo_fmt_check", {"cargo_env": {"GIT_CONFIG_COUNT": "1"}})
    assert not allowed
    assert refused and "GIT_CONFIG_COUNT" in data["error"]


async def test_a_client_session_has_its_own_environment_and_cargo_env_policy_not_the_servers() -> None:
    state = ServerState(None, allow_unsafe_env=True, settings=Settings())
    token = CLIENT.set(ClientSession(env=(("FOO", "1"),), allow_unsafe_env=False, allow_env=("MINE",)))
    try:
        assert state.question_env() == (("FOO", "1"),)
        assert state.check_env({"MINE": "x"}) == {"MINE": "x"}
        with pytest.raises(InvalidArgument, match="RUSTC_WRAPPER"):
            state.check_env({"RUSTC_WRAPPER": "/bin/sh"})
    finally:
        CLIENT.reset(token)
    assert state.question_env() is None  # no client: the server's own environment and flags
    assert state.check_env({"RUSTC_WRAPPER": "/bin/sh"}) == {"RUSTC_WRAPPER": "/bin/sh"}
