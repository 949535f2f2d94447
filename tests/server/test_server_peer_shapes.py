"""`--answers=rust-analyzer-mcp`: that peer's exact answer shapes, end to end over a real rust-analyzer.

The session's environment chooses (here the server's own: an in-memory client has no front); the
text is the peer's pretty JSON, and the structured copy carries the same value under `result`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from analyzer_env import needs_ra
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, build_server
from scheduler._answers import ANSWERS, PEER_ANSWERS, answers
from scheduler._exceptions import ConfigError
from scheduler.server import _peer_shapes
from scheduler.server._state import CLIENT, ClientSession

pytestmark = [pytest.mark.anyio, pytest.mark.analyzer, needs_ra]
HUB = "crates/hub/src/lib.rs"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def module_ws(tmp_path_factory: pytest.TempPathFactory) -> GeneratedWorkspace:
    from scheduler.testing._generate import generate_workspace

    return generate_workspace(tmp_path_factory.mktemp("peer") / "ws", 6)


@pytest.fixture(scope="module")
async def client(module_ws: GeneratedWorkspace, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    async with (
        ServerState(module_ws.root, cache_dir=tmp_path_factory.mktemp("cache")) as state,
        Client(build_server(module_ws.root, state=state), mode="legacy") as c,
    ):
        yield c


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ANSWERS, PEER_ANSWERS)


async def peer_call(client: Client, tool: str, args: dict[str, Any]) -> tuple[bool, Any]:
    """(is_error, the peer's value parsed from the text); the structured copy holds the same value."""
    result = await client.call_tool(tool, args)
    text = result.content[0].text if result.content and hasattr(result.content[0], "text") else ""
    if result.is_error:
        return True, text
    assert (isinstance(result.structured_content, dict) and "\n  " in text) or text in ("null", "[]"), text
    value = json.loads(text)
    assert result.structured_content["result"] == value
    return False, value


def _read(file: str) -> bytes:
    return Path(file).read_bytes()


@pytest.mark.usefixtures("peer")
async def test_symbols_are_the_flat_symbol_information_list_with_each_parent_named(client: Client) -> None:
    error, symbols = await peer_call(client, "rust_analyzer_symbols", {"file_path": HUB})
    assert not error and isinstance(symbols, list), symbols
    assert {"hub_value", "Record", "Describe"} <= {s["name"] for s in symbols}
    assert all(s["location"]["uri"].startswith("file://") and "start" in s["location"]["range"] for s in symbols)
    children = [s for s in symbols if "containerName" in s]
    assert children and all(c["containerName"] in {s["name"] for s in symbols} for c in children), symbols


@pytest.mark.usefixtures("peer")
async def test_position_tools_send_rust_analyzers_own_result(client: Client) -> None:
    error, hover = await peer_call(client, "rust_analyzer_hover", {"file_path": HUB, "line": 5, "character": 8})
    assert not error and "pub fn hub_value(x: u32) -> u32" in hover["contents"]["value"], hover
    error, refs = await peer_call(client, "rust_analyzer_references", {"file_path": HUB, "line": 5, "character": 8})
    assert not error and all(r["uri"].startswith("file://") and "start" in r["range"] for r in refs), refs


@pytest.mark.usefixtures("peer")
async def test_rename_spells_out_each_edit_with_its_bytes_and_old_text_last_first(
    client: Client, module_ws: GeneratedWorkspace
) -> None:
    before = (module_ws.root / HUB).read_bytes()
    error, rename = await peer_call(
        client, "rust_analyzer_rename", {"file_path": HUB, "line": 5, "character": 8, "new_name": "hub_score"}
    )
    assert not error, rename
    assert (rename["old_name"], rename["new_name"], rename["applied"]) == ("hub_value", "hub_score", False)
    assert rename["summary"]["edits"] >= 2 and rename["summary"]["files_changed"] >= 2, rename
    for change in rename["changes"]:
        content = _read(change["file"])
        for edit in change["edits"]:
            start, end = edit["byte_range"]
            assert edit["old_text"] == "hub_value" == content[start:end].decode() and edit["new_text"] == "hub_score"
        at = [(e["line"], e["character"]) for e in change["edits"]]
        assert at == sorted(at, reverse=True)
    assert (module_ws.root / HUB).read_bytes() == before


@pytest.mark.usefixtures("peer")
async def test_nothing_to_rename_is_an_error_naming_the_position(client: Client) -> None:
    error, text = await peer_call(
        client, "rust_analyzer_rename", {"file_path": HUB, "line": 0, "character": 0, "new_name": "x"}
    )
    assert error and (f"{HUB}:0:0" in text or "rename" in text.lower()), text


@pytest.mark.usefixtures("peer")
async def test_set_workspace_answers_the_peers_sentence(client: Client, module_ws: GeneratedWorkspace) -> None:
    result = await client.call_tool("rust_analyzer_set_workspace", {"workspace_path": str(module_ws.root)})
    assert result.content[0].text == f"Workspace set to: {module_ws.root.resolve()}"  # type: ignore[union-attr]


async def test_diagnostics_have_the_summary_in_both_shapes_and_severity_words_in_the_peers(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace()
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "no" }\n')
    rel = str(lib.relative_to(ws.root))
    async with ServerState(ws.root, cache_dir=tmp_path / "c") as state, Client(build_server(ws.root, state=state)) as c:
        error, ours = await call(c, "rust_analyzer_diagnostics", {"file_path": rel})
        assert not error and {"rust_analyzer", "cargo"} <= set(ours), ours
        assert ours["summary"]["errors"] >= 1, ours  # the peer's counts, added to our answer
        monkeypatch.setenv(ANSWERS, PEER_ANSWERS)
        error, theirs = await peer_call(c, "rust_analyzer_diagnostics", {"file_path": rel})
        assert not error and theirs["file"] == rel and theirs["summary"]["errors"] >= 1, theirs
        assert any(d["severity"] == "error" and d["code"] == "E0308" for d in theirs["diagnostics"]), theirs
        error, workspace = await peer_call(c, "rust_analyzer_workspace_diagnostics", {})
    assert not error and workspace["summary"]["total_errors"] >= 1, workspace
    assert workspace["workspace"] == str(ws.root.resolve()) and lib.resolve().as_uri() in workspace["files"], workspace


def test_a_sessions_own_environment_chooses_not_the_daemons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ANSWERS, raising=False)
    token = CLIENT.set(ClientSession(((ANSWERS, PEER_ANSWERS),)))
    try:
        assert _peer_shapes.wanted()
    finally:
        CLIENT.reset(token)
    assert not _peer_shapes.wanted()


def test_an_unknown_choice_is_refused_naming_the_variable_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"CARGO_SCHEDULER_ANSWERS.*cargo-scheduler, rust-analyzer-mcp"):
        answers({ANSWERS: "peer"})


def test_a_byte_offset_counts_utf16_columns_as_lsp_does() -> None:
    text = "let é = 1;\nfn 😀x() {}\n"
    assert _peer_shapes.byte_offset(text, 0, 5) == len("let é".encode())
    assert _peer_shapes.byte_offset(text, 1, 5) == len("let é = 1;\n".encode()) + len("fn 😀".encode())
    assert _peer_shapes.byte_offset(text, 9, 0) is None
