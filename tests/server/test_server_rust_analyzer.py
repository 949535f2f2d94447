"""The rust_analyzer_* tools end to end: the MCP client, the server, a real rust-analyzer."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from analyzer_env import LOAD, hold_the_load
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, build_server
from scheduler._settings import RA_WAIT

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.analyzer,
    pytest.mark.skipif(
        shutil.which("rust-analyzer") is None and not Path("/usr/bin/rust-analyzer").exists(),
        reason="rust-analyzer is not installed",
    ),
]
HUB = "crates/hub/src/lib.rs"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory: pytest.TempPathFactory) -> GeneratedWorkspace:
    from scheduler.testing._generate import generate_workspace

    return generate_workspace(tmp_path_factory.mktemp("ra") / "ws", 6)


@pytest.fixture(scope="module")
async def client(module_ws: GeneratedWorkspace, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    """One server and one rust-analyzer for the read-only tests of this module (it loads once)."""
    cache = tmp_path_factory.mktemp("cache")
    async with (
        ServerState(module_ws.root, cache_dir=cache) as state,
        Client(build_server(module_ws.root, state=state)) as c,
    ):
        yield c


async def test_hover_answers_the_signature_not_an_empty_result(client: Client) -> None:
    error, data = await call(client, "rust_analyzer_hover", {"file_path": HUB, "line": 5, "character": 8})
    assert not error, data
    assert data["status"] == "ready"
    assert "pub fn hub_value(x: u32) -> u32" in str(data["result"])


async def test_definition_from_a_leaf_lands_in_the_hub_whatever_the_path_spelling(
    client: Client, module_ws: GeneratedWorkspace
) -> None:
    leaf = module_ws.lib_rs(module_ws.leaves[0])
    for spelling in (str(leaf.relative_to(module_ws.root)), str(leaf), leaf.as_uri()):
        error, data = await call(
            client, "rust_analyzer_definition", {"file_path": spelling, "line": 4, "character": 10}
        )
        assert not error, data
        assert [t.get("target_file") or t.get("file") for t in data["result"]] == [HUB], spelling


async def test_references_cross_crates(client: Client, module_ws: GeneratedWorkspace) -> None:
    error, data = await call(client, "rust_analyzer_references", {"file_path": HUB, "line": 5, "character": 8})
    assert not error, data
    files = {r["file"] for r in data["result"]}
    assert f"crates/{module_ws.leaves[0]}/src/lib.rs" in files and "crates/hub/src/lib.rs" in files
    assert all(len(r["range"]) == 4 for r in data["result"]) and "file://" not in json.dumps(data)


async def test_symbols_list_the_items_of_a_file(client: Client) -> None:
    error, data = await call(client, "rust_analyzer_symbols", {"file_path": HUB})
    assert not error, data
    names = {s["name"] for s in data["result"]}
    assert {"hub_value", "Record", "Describe"} <= names


async def test_rename_returns_the_edit_and_leaves_the_files_alone(
    client: Client, module_ws: GeneratedWorkspace
) -> None:
    before = (module_ws.root / HUB).read_text()
    error, data = await call(
        client, "rust_analyzer_rename", {"file_path": HUB, "line": 5, "character": 8, "new_name": "hub_score"}
    )
    assert not error, data
    assert "hub_score" in str(data["result"])
    assert HUB in json.dumps(data["result"]) and "file://" not in json.dumps(data["result"])
    assert (module_ws.root / HUB).read_text() == before


async def test_a_path_outside_the_workspace_is_refused_naming_the_argument(client: Client) -> None:
    error, data = await call(
        client, "rust_analyzer_hover", {"file_path": "../../etc/passwd", "line": 0, "character": 0}
    )
    assert error
    assert "file_path" in str(data)


async def test_symbols_of_a_cold_workspace_come_from_the_parse_while_semantic_questions_wait_for_the_load(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace()
    gate = hold_the_load(ws.crate_dir("hub"), tmp_path / "gate")  # the load cannot finish before `gate`
    monkeypatch.setenv(RA_WAIT, "1")
    position = {"file_path": HUB, "line": 5, "character": 8}
    async with ServerState(ws.root, cache_dir=tmp_path / "c") as state, Client(build_server(ws.root, state=state)) as c:
        with anyio.fail_after(LOAD):
            error, data = await call(c, "rust_analyzer_symbols", {"file_path": HUB})
            assert not error, data
            assert {"hub_value", "Record", "Describe"} <= {s["name"] for s in data["result"]}
            assert data["analysis"] == "pending" and "parse" in data["analysis_note"], data
            for tool, args in (("rust_analyzer_hover", position), ("rust_analyzer_format", {"file_path": HUB})):
                error, data = await call(c, tool, args)  # rustfmt answers [] before the crate is known
                assert not error and data["status"] == "indexing" and "result" not in data, (tool, data)
            gate.touch()
            while data["status"] == "indexing":  # each call waits up to RA_WAIT for the load
                error, data = await call(c, "rust_analyzer_hover", position)
                assert not error, data
        assert "pub fn hub_value(x: u32) -> u32" in str(data["result"]) and "analysis" not in data
        error, data = await call(c, "rust_analyzer_symbols", {"file_path": HUB})
        assert not error and "analysis" not in data, "loaded: the outline is no longer qualified"


async def test_after_set_workspace_the_first_workspaces_files_are_still_answered_by_its_own_analyzer(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    first, second = make_workspace(name="first"), make_workspace(name="second", crates=4)
    hub = first.lib_rs("hub")
    hub.write_text(hub.read_text().replace("pub fn hub_value(x: u32) -> u32", "pub fn hub_value(x: u64) -> u64"))
    leaf = first.lib_rs(first.leaves[0]).resolve()
    stray = tmp_path / "stray.rs"
    stray.write_text("pub fn stray() {}\n")
    async with (
        ServerState(first.root, cache_dir=tmp_path / "c") as state,
        Client(build_server(first.root, state=state), mode="legacy") as c,  # a session that remembers
    ):
        error, data = await call(c, "rust_analyzer_set_workspace", {"workspace_path": str(second.root)})
        assert not error, data
        data = {"status": "indexing"}
        with anyio.fail_after(LOAD):
            while data["status"] == "indexing":  # each call waits up to the bound for the load
                error, data = await call(c, "rust_analyzer_hover", {"file_path": str(leaf), "line": 4, "character": 10})
                assert not error, data
        # the first workspace's own crate graph: its hub takes a u64 (the second's takes a u32)
        assert "pub fn hub_value(x: u64) -> u64" in str(data["result"]), data
        assert data["workspace"] == str(first.root.resolve()) and data["file"] == str(
            leaf.relative_to(first.root.resolve())
        )
        error, data = await call(c, "rust_analyzer_symbols", {"file_path": HUB})
        assert not error and "workspace" not in data, "relative paths are the current workspace's"
        error, data = await call(c, "rust_analyzer_symbols", {"file_path": str(stray)})
        assert error and str(stray) in data["error"], data
        assert str(first.root.resolve()) in data["error"] and str(second.root.resolve()) in data["error"], data


async def test_diagnostics_merge_rust_analyzer_and_cargo_for_the_file(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "no" }\n')
    rel = str(lib.relative_to(ws.root))
    async with ServerState(ws.root, cache_dir=tmp_path / "c") as state, Client(build_server(ws.root, state=state)) as c:
        error, data = await call(c, "rust_analyzer_diagnostics", {"file_path": rel})
    assert not error, data
    text = str(data)
    assert "E0308" in text
    assert "cargo" in data and "rust_analyzer" in data, sorted(data)


U32_MAX = 2**32 - 1


@pytest.mark.parametrize(
    ("line", "character", "argument"),
    [
        (U32_MAX, 0, "line"),
        (U32_MAX, U32_MAX, "line"),
        (0, U32_MAX, "character"),
        (-1, 0, "line"),
        (0, -1, "character"),
    ],
)
async def test_a_position_outside_lsps_range_is_refused_naming_the_argument_and_the_range(
    client: Client, line: int, character: int, argument: str
) -> None:
    # the peer's own invalid-position test sends u32::MAX; LSP positions stop at 2**31 - 1
    error, data = await call(
        client, "rust_analyzer_definition", {"file_path": HUB, "line": line, "character": character}
    )
    assert error and data["argument"] == argument, data
    assert f"argument '{argument}'" in data["error"] and "from 0 to 2147483647" in data["error"], data
    assert "validation error" not in data["error"] and "pydantic" not in data["error"]


async def test_the_position_range_is_still_advertised_in_the_schema(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("line", "character"):
        schema = tools["rust_analyzer_definition"].input_schema["properties"][name]
        assert (schema["minimum"], schema["maximum"]) == (0, 2**31 - 1), schema


async def test_a_definition_in_the_standard_library_can_be_read_further_but_not_edited(
    client: Client, module_ws: GeneratedWorkspace
) -> None:
    leaf = str(module_ws.lib_rs(module_ws.leaves[0]).relative_to(module_ws.root))
    # `String::from("leaf_000")` in the member's `describe`, on `from`
    error, data = await call(client, "rust_analyzer_definition", {"file_path": leaf, "line": 8, "character": 50})
    assert not error, data
    target = data["result"][0]["target_file"]
    if not Path(target).is_absolute():
        pytest.skip(f"no standard library sources here: the definition is {target}")
    line, character = data["result"][0]["targetSelectionRange"][:2]
    error, hover = await call(
        client, "rust_analyzer_hover", {"file_path": target, "line": line, "character": character}
    )
    assert not error, hover
    assert hover["outside_workspace"] == "standard library" and hover["read_only"] is True
    assert "fn from" in str(hover["result"])
    error, symbols = await call(client, "rust_analyzer_symbols", {"file_path": target})
    assert not error and any(s["name"] == "String" for s in symbols["result"]), symbols
    error, refused = await call(
        client, "rust_analyzer_rename", {"file_path": target, "line": line, "character": character, "new_name": "x"}
    )
    assert error and "no tool edits files outside the workspace" in refused["error"]


async def test_a_code_action_range_ending_past_an_empty_line_is_answered(client: Client) -> None:
    # the peer's own code-actions test: a range whose end lies past the end of an empty line
    args = {"file_path": HUB, "line": 0, "character": 0, "end_line": 4, "end_character": 10}
    error, data = await call(client, "rust_analyzer_code_actions", args)
    assert not error, data
    assert data["status"] == "ready" and data["clamped"]["end_character"]["used"] == 0


async def test_completion_is_compact_and_documentation_comes_on_request(
    client: Client, module_ws: GeneratedWorkspace
) -> None:
    leaf = str(module_ws.lib_rs(module_ws.leaves[0]).relative_to(module_ws.root))
    at = {"file_path": leaf, "line": 9, "character": 11}  # after `record.`
    error, data = await call(client, "rust_analyzer_completion", at)
    assert not error, data
    labels = [i["label"] for i in data["result"]]
    assert any(label.startswith("describe") for label in labels), labels
    assert all({"label", "kind"} <= set(i) and "documentation" not in i for i in data["result"])
    per_item = len(json.dumps(data["result"])) / len(data["result"])
    error, full = await call(client, "rust_analyzer_completion", {**at, "documentation": True, "max_tokens": 50_000})
    assert not error and any("documentation" in i for i in full["result"]), full
    assert per_item < 200, per_item  # the peer's 24-item answer: 19.8 KB, about 825 bytes an item


async def test_workspace_diagnostics_say_whether_the_workspace_is_clean_from_both_sources(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "no" }\n')
    rel = str(lib.relative_to(ws.root))
    async with ServerState(ws.root, cache_dir=tmp_path / "c") as state, Client(build_server(ws.root, state=state)) as c:
        error, data = await call(c, "rust_analyzer_workspace_diagnostics", {})
    assert not error, data
    assert data["clean"] is False and data["checked"]["rust_analyzer"]["status"] == "ready", data
    found = {(d["source"], d["file"], d.get("code")) for d in data["diagnostics"] if d["level"] == "error"}
    # rust-analyzer's from a file nobody opened, cargo's from the engine's check of every member
    assert {("rust-analyzer", rel, "E0308"), ("cargo", rel, "E0308")} <= found, found
    assert data["errors"] >= 2 and data["diagnostics"][0]["level"] == "error"
