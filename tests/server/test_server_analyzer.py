"""The rust-analyzer tools over a stand-in analyzer: paths, positions, indexing, budgets, merged diagnostics.

The stand-in follows the contract of `scheduler.analyzer._pool` (`pool.get(root)`, one async method per
question, `AnalyzerIndexing` while loading), so these tests pin the tool layer, not rust-analyzer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, build_server
from scheduler._analyzer_options import DEFAULT_OPTIONS, AnalyzerOptions
from scheduler._answers import ANSWERS, PEER_ANSWERS
from scheduler._exceptions import AnalyzerIndexing
from scheduler.server._tools_analyzer import PEER_NATIVE_WAIT_S

pytestmark = pytest.mark.anyio

HUB_LIB = "crates/hub/src/lib.rs"
DOCS = "Appends a string slice onto the end of this `String`.\n\n# Examples\n\n```\nlet mut s = String::new();\n```"
COMPLETION_ITEMS = [
    {
        "label": f"item_{i:02d}(as Trait)",
        "kind": 2,
        "detail": f"fn(&mut self, &str) -> u{i}",
        "documentation": {"kind": "markdown", "value": DOCS * 4},
        "sortText": f"{80000000 + (23 - i)}",
        "filterText": f"item_{i:02d}",
        "textEdit": {
            "range": {"start": {"line": 9, "character": 11}, "end": {"line": 9, "character": 11}},
            "newText": f"item_{i:02d}",
        },
        "data": {"position": {"line": 9, "character": 11}, "imports": [], "version": 3, "trigger_character": "."},
    }
    for i in range(24)
]


class FakeAnalyzer:
    def __init__(self) -> None:
        self.indexing = False
        self.state = "ready"  # what status() says; "indexing" with indexing=False: answers from the parse
        self.asked: list[tuple[Any, ...]] = []
        self.native: dict[Path, list[dict[str, Any]]] = {}
        self.diagnostics_waits: list[float | None] = []

    def _answer(self, *question: Any) -> None:
        self.asked.append(question)
        if self.indexing:
            raise AnalyzerIndexing("still loading", {"done": 3, "total": 10})

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "progress": {"text": "Loading metadata", "percentage": None, "active": []}}

    async def hover(self, path: Path, line: int, character: int) -> dict[str, Any]:
        self._answer("hover", path, line, character)
        return {"contents": {"kind": "markdown", "value": "pub fn hub_fn() -> u32"}}

    async def references(self, path: Path, line: int, character: int) -> list[dict[str, Any]]:
        self._answer("references", path, line, character)
        return [{"uri": path.as_uri(), "range": {"start": {"line": i, "character": 0}}} for i in range(500)]

    async def diagnostics(self, path: Path, *, wait: float | None = None) -> list[dict[str, Any]]:
        self.diagnostics_waits.append(wait)
        self._answer("diagnostics", path)
        return [{"range": {"start": {"line": 0, "character": 0}}, "message": "native", "source": "rust-analyzer"}]

    async def rename(self, path: Path, line: int, character: int, new_name: str) -> dict[str, Any]:
        self._answer("rename", path, line, character, new_name)
        return {"changes": {path.as_uri(): [{"newText": new_name}]}}

    async def definition(self, path: Path, line: int, character: int) -> list[Any]:
        self._answer("definition", path, line, character)
        return []

    async def document_symbols(self, path: Path) -> list[dict[str, Any]]:
        self._answer("document_symbols", path)
        return [{"name": "shared_fn", "kind": 12}]

    async def formatting(self, path: Path) -> list[dict[str, Any]]:
        self._answer("formatting", path)
        return []

    async def code_actions(
        self, path: Path, line: int, character: int, end_line: int, end_character: int
    ) -> list[dict[str, Any]]:
        self._answer("code_actions", path, line, character, end_line, end_character)
        return [{"title": "a fix", "kind": "quickfix"}]

    async def completion(self, path: Path, line: int, character: int) -> dict[str, Any]:
        self._answer("completion", path, line, character)
        return {"isIncomplete": True, "items": COMPLETION_ITEMS}

    async def workspace_diagnostics(self, *, paths: Sequence[Path] = ()) -> list[dict[str, Any]]:
        self._answer("workspace_diagnostics", tuple(paths))
        return [{"uri": p.as_uri(), "diagnostics": self.native.get(p, [])} for p in paths if self.native.get(p)]


class FakePool:
    def __init__(self) -> None:
        self.analyzer = FakeAnalyzer()
        self.roots: list[Path] = []

    async def get(self, root: Path, options: AnalyzerOptions = DEFAULT_OPTIONS) -> FakeAnalyzer:
        self.roots.append(root)
        return self.analyzer

    def status(self) -> list[dict[str, Any]]:
        return [{"root": str(root), "state": "fake"} for root in self.roots]


@pytest.fixture
def ws(make_workspace: Callable[..., GeneratedWorkspace]) -> GeneratedWorkspace:
    return make_workspace(crates=6)


@pytest.fixture
async def env(ws: GeneratedWorkspace) -> AsyncIterator[tuple[Client, FakePool]]:
    async with ServerState(ws.root) as state:
        pool = FakePool()
        state.analyzers = pool
        async with Client(build_server(ws.root, state=state), mode="legacy") as client:
            yield client, pool


async def test_every_path_spelling_reaches_the_analyzer_as_the_same_file(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace
) -> None:
    client, pool = env
    lib = ws.lib_rs("hub").resolve()
    for spelling in (HUB_LIB, str(lib), lib.as_uri()):
        is_error, data = await call(client, "rust_analyzer_hover", {"file_path": spelling, "line": 2, "character": 7})
        assert not is_error and data["status"] == "ready" and data["file"] == HUB_LIB
        assert data["position"] == {"line": 2, "character": 7}
    assert {q[1] for q in pool.analyzer.asked} == {lib}
    assert {q[2:] for q in pool.analyzer.asked} == {(2, 7)}, "0-based positions are passed through unchanged"


async def test_while_indexing_the_answer_says_so_instead_of_an_empty_result(env: tuple[Client, FakePool]) -> None:
    client, pool = env
    pool.analyzer.indexing = True
    is_error, data = await call(client, "rust_analyzer_references", {"file_path": HUB_LIB, "line": 0, "character": 0})
    assert not is_error and data["status"] == "indexing" and data["progress"] == {"done": 3, "total": 10}
    assert "result" not in data


async def test_an_answer_given_while_still_loading_says_the_analysis_is_pending(env: tuple[Client, FakePool]) -> None:
    client, pool = env
    pool.analyzer.state = "indexing"
    is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": HUB_LIB})
    assert not is_error and data["status"] == "ready" and data["result"] == [{"name": "shared_fn", "kind": 12}]
    assert data["analysis"] == "pending" and data["progress"]["text"] == "Loading metadata"
    assert "parse" in data["analysis_note"]
    pool.analyzer.state = "ready"
    is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": HUB_LIB})
    assert not is_error and "analysis" not in data and "progress" not in data, "loaded: nothing to qualify"


async def test_a_long_result_is_cut_to_the_budget_with_a_count_of_what_was_left_out(
    env: tuple[Client, FakePool],
) -> None:
    client, _ = env
    _, data = await call(
        client, "rust_analyzer_references", {"file_path": HUB_LIB, "line": 0, "character": 0, "max_tokens": 500}
    )
    assert 0 < len(data["result"]) < 500 and data["omitted"]["result"] == 500 - len(data["result"])


async def test_rename_returns_the_edit_without_applying_it(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace
) -> None:
    client, _ = env
    before = ws.lib_rs("hub").read_text()
    _, data = await call(
        client, "rust_analyzer_rename", {"file_path": HUB_LIB, "line": 0, "character": 0, "new_name": "renamed"}
    )
    assert "changes" in data["result"] and ws.lib_rs("hub").read_text() == before


async def test_diagnostics_merge_the_analyzers_with_cargos_for_the_file(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace
) -> None:
    client, _ = env
    lib = ws.lib_rs("leaf_000")
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "not a number" }\n')
    is_error, data = await call(client, "rust_analyzer_diagnostics", {"file_path": "crates/leaf_000/src/lib.rs"})
    assert not is_error
    assert data["rust_analyzer"]["diagnostics"][0]["message"] == "native"
    cargo = data["cargo"]
    assert cargo["package"] == "leaf_000" and cargo["success"] is False
    assert cargo["diagnostics"] and all(d["file"] == "crates/leaf_000/src/lib.rs" for d in cargo["diagnostics"])


async def test_peer_shaped_diagnostics_wait_only_the_peers_short_bound_and_say_the_load_had_not_finished(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer's clients time a tool call out after 10 s and ask again on its `note`: waiting our
    usual 30 s for rust-analyzer's load there turns a "not yet" into a timeout."""
    client, pool = env
    pool.analyzer.indexing = True
    monkeypatch.setenv(ANSWERS, PEER_ANSWERS)
    result = await client.call_tool("rust_analyzer_diagnostics", {"file_path": "crates/leaf_000/src/lib.rs"})
    assert not result.is_error
    data = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert pool.analyzer.diagnostics_waits == [PEER_NATIVE_WAIT_S] and PEER_NATIVE_WAIT_S < 10
    assert "had not finished loading" in data["note"]
    assert data["summary"]["errors"] == 0 and data["file"] == "crates/leaf_000/src/lib.rs"


async def test_set_workspace_starts_the_analyzer_for_the_new_root(
    env: tuple[Client, FakePool], make_workspace: Callable[..., GeneratedWorkspace]
) -> None:
    client, pool = env
    other = make_workspace(name="other", crates=4)
    is_error, _ = await call(client, "rust_analyzer_set_workspace", {"workspace_path": str(other.root)})
    assert not is_error and pool.roots == [other.root.resolve()]


async def test_after_a_switch_a_file_of_an_earlier_workspace_is_answered_by_that_workspaces_analyzer(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace, make_workspace: Callable[..., GeneratedWorkspace]
) -> None:
    client, pool = env
    second, third = make_workspace(name="second", crates=4), make_workspace(name="third", crates=4)
    for other in (second, third):
        is_error, _ = await call(client, "rust_analyzer_set_workspace", {"workspace_path": str(other.root)})
        assert not is_error
    for earlier in (ws, second):  # where the server started, and one the session set
        lib = earlier.lib_rs("hub").resolve()
        for tool, args in (
            ("rust_analyzer_hover", {"line": 2, "character": 7}),
            ("rust_analyzer_rename", {"line": 2, "character": 7, "new_name": "renamed"}),
        ):
            pool.roots.clear()
            is_error, data = await call(client, tool, {"file_path": lib.as_uri(), **args})
            assert not is_error and data["status"] == "ready", data
            assert data["file"] == HUB_LIB and data["workspace"] == str(earlier.root.resolve()), data
            assert pool.roots == [earlier.root.resolve()], "asked of the analyzer that has the file in its crates"
    is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": HUB_LIB})
    assert not is_error and "workspace" not in data, "the current workspace's files are as before"


async def test_a_file_outside_every_workspace_of_the_session_is_refused_naming_it_and_them(
    env: tuple[Client, FakePool],
    ws: GeneratedWorkspace,
    make_workspace: Callable[..., GeneratedWorkspace],
    tmp_path: Path,
) -> None:
    client, pool = env
    second = make_workspace(name="second", crates=4)
    stray = tmp_path / "stray.rs"
    stray.write_text("fn main() {}\n")
    is_error, _ = await call(client, "rust_analyzer_set_workspace", {"workspace_path": str(second.root)})
    assert not is_error
    is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": str(stray)})
    assert is_error and data["argument"] == "file_path", data
    assert str(stray) in data["error"] and str(second.root.resolve()) in data["error"], data
    assert str(ws.root.resolve()) in data["error"] and "other workspaces" in data["error"], data
    assert pool.analyzer.asked == []


async def test_without_an_analyzer_the_error_says_how_to_get_one(ws: GeneratedWorkspace) -> None:
    async with ServerState(ws.root) as state:
        state.analyzers = None
        async with Client(build_server(ws.root, state=state)) as client:
            is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": HUB_LIB})
    assert is_error and "rust-analyzer" in data["error"] and "install" in data["error"]


# -- positions as LSP defines them ----------------------------------------------------------------
async def test_a_character_past_the_end_of_a_line_means_its_end_and_the_answer_says_it_was_clamped(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace
) -> None:
    client, pool = env
    width = len(ws.lib_rs("hub").read_text().split("\n")[5])  # `pub fn hub_value(x: u32) -> u32 {`
    is_error, data = await call(client, "rust_analyzer_hover", {"file_path": HUB_LIB, "line": 5, "character": 500})
    assert not is_error, data
    assert pool.analyzer.asked[-1][2:] == (5, width)
    assert data["position"] == {"line": 5, "character": width}
    assert data["clamped"]["character"]["given"] == 500 and data["clamped"]["character"]["used"] == width


async def test_a_range_ending_past_an_empty_line_is_clamped_to_it_not_refused(env: tuple[Client, FakePool]) -> None:
    client, pool = env
    args = {"file_path": HUB_LIB, "line": 0, "character": 0, "end_line": 4, "end_character": 20}
    is_error, data = await call(client, "rust_analyzer_code_actions", args)
    assert not is_error, data
    assert pool.analyzer.asked[-1][2:] == (0, 0, 4, 0)  # line 4 of the hub is empty
    assert set(data["clamped"]) == {"end_character"} and data["clamped"]["end_character"]["used"] == 0


async def test_a_position_within_its_line_is_not_reported_as_clamped(env: tuple[Client, FakePool]) -> None:
    client, _ = env
    _, data = await call(client, "rust_analyzer_hover", {"file_path": HUB_LIB, "line": 5, "character": 8})
    assert "clamped" not in data


async def test_a_line_past_the_end_of_the_file_is_still_refused_naming_it(env: tuple[Client, FakePool]) -> None:
    client, pool = env
    is_error, data = await call(client, "rust_analyzer_hover", {"file_path": HUB_LIB, "line": 10_000, "character": 0})
    assert is_error and data["argument"] == "line" and "past the end" in data["error"]
    assert pool.analyzer.asked == []


# -- files rust-analyzer knows outside the workspace ------------------------------------------------
@pytest.fixture
def with_path_dependency(ws: GeneratedWorkspace) -> Path:
    """`../shared` (outside the workspace) as a path dependency of leaf_000, with its own path dep."""
    for name, dep in (("shared", 'deeper = { path = "../deeper" }'), ("deeper", "")):
        crate = ws.root.parent / name
        (crate / "src").mkdir(parents=True)
        (crate / "Cargo.toml").write_text(
            f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{dep}\n'
        )
        (crate / "src" / "lib.rs").write_text("pub fn shared_fn() -> u32 { 1 }\n")
    manifest = ws.crate_dir("leaf_000") / "Cargo.toml"
    manifest.write_text(
        manifest.read_text().replace("[dependencies]", '[dependencies]\nshared = { path = "../../../shared" }')
    )
    (ws.root.parent / "elsewhere.rs").write_text("fn secret() {}\n")
    return ws.root.parent / "shared"


async def test_a_path_dependency_outside_the_workspace_is_readable_and_says_so(
    env: tuple[Client, FakePool], with_path_dependency: Path
) -> None:
    client, _ = env
    for crate in ("shared", "deeper"):
        lib = (with_path_dependency.parent / crate / "src" / "lib.rs").resolve()
        is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": str(lib)})
        assert not is_error, data
        assert data["file"] == str(lib) and data["outside_workspace"] == "path dependency" and data["read_only"]
        is_error, data = await call(
            client, "rust_analyzer_hover", {"file_path": lib.as_uri(), "line": 0, "character": 3}
        )
        assert not is_error, data


async def test_the_tools_that_make_edits_refuse_a_file_outside_the_workspace(
    env: tuple[Client, FakePool], with_path_dependency: Path
) -> None:
    client, pool = env
    lib = str((with_path_dependency / "src" / "lib.rs").resolve())
    pos = {"file_path": lib, "line": 0, "character": 0}
    for tool, args in (
        ("rust_analyzer_format", {"file_path": lib}),
        ("rust_analyzer_rename", {**pos, "new_name": "renamed"}),
        ("rust_analyzer_code_actions", {**pos, "end_line": 0, "end_character": 1}),
    ):
        is_error, data = await call(client, tool, args)
        assert is_error and data["argument"] == "file_path", (tool, data)
        assert "path dependency" in data["error"] and "no tool edits files outside the workspace" in data["error"]
    assert pool.analyzer.asked == []


async def test_any_other_file_outside_the_workspace_is_still_refused(
    env: tuple[Client, FakePool], with_path_dependency: Path
) -> None:
    client, pool = env
    for spelling in (str(with_path_dependency.parent / "elsewhere.rs"), "../elsewhere.rs"):
        is_error, data = await call(client, "rust_analyzer_hover", {"file_path": spelling, "line": 0, "character": 0})
        assert is_error and "outside the workspace" in data["error"] and data["argument"] == "file_path", data
    assert pool.analyzer.asked == []


async def test_registry_and_git_sources_under_cargo_home_are_readable(
    env: tuple[Client, FakePool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = env
    home = tmp_path / "cargo-home"
    files = [
        home / "registry/src/index.crates.io-1949cf8c6b5b557f/itoa-1.0.15/src/lib.rs",
        home / "git/checkouts/serde-1a2b3c/abc1234/src/lib.rs",
    ]
    for f in files:
        f.parent.mkdir(parents=True)
        f.write_text("pub fn f() {}\n")
    (home / "config.rs").write_text("fn not_a_source() {}\n")
    monkeypatch.setenv("CARGO_HOME", str(home))
    for f, kind in zip(files, ("registry source", "git checkout"), strict=True):
        is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": str(f)})
        assert not is_error and data["outside_workspace"] == kind, data
    is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": str(home / "config.rs")})
    assert is_error and "outside the workspace" in data["error"]


# -- compact completion -------------------------------------------------------------------------------
async def test_completion_answers_labels_kinds_and_details_without_documentation_by_default(
    env: tuple[Client, FakePool],
) -> None:
    client, _ = env
    raw = len(json.dumps({"isIncomplete": True, "items": COMPLETION_ITEMS}, indent=2))
    is_error, data = await call(client, "rust_analyzer_completion", {"file_path": HUB_LIB, "line": 5, "character": 8})
    assert not is_error, data
    assert len(data["result"]) == 24 and data["is_incomplete"] is True
    first = data["result"][0]
    assert first == {
        "label": "item_23(as Trait)",
        "kind": "method",
        "detail": "fn(&mut self, &str) -> u23",
        "insert": "item_23",
    }
    assert "documentation" not in json.dumps(data)
    size = len(json.dumps(data, separators=(",", ":")))
    assert size * 10 < raw, (size, raw)  # a tenth of what rust-analyzer sends


async def test_completion_documentation_comes_on_request(env: tuple[Client, FakePool]) -> None:
    client, _ = env
    args = {"file_path": HUB_LIB, "line": 5, "character": 8, "documentation": True, "max_tokens": 100_000}
    is_error, data = await call(client, "rust_analyzer_completion", args)
    assert not is_error, data
    assert all(item["documentation"].startswith("Appends a string slice") for item in data["result"])


# -- is the workspace clean? ---------------------------------------------------------------------------
async def test_workspace_diagnostics_merge_native_ones_for_every_file_with_cargos_for_every_member(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace
) -> None:
    client, pool = env
    is_error, data = await call(client, "rust_analyzer_workspace_diagnostics", {})
    assert not is_error, data
    assert data["clean"] is True and data["errors"] == 0 and data["warnings"] == 0, data
    asked = next(q for q in pool.analyzer.asked if q[0] == "workspace_diagnostics")[1]
    every_rs = {p.resolve() for p in ws.root.rglob("*.rs") if "target" not in p.parts}
    assert {p.resolve() for p in asked} == every_rs
    assert data["checked"]["rust_analyzer"] == {"status": "ready", "files": len(every_rs)}
    assert sorted(
        data["checked"]["cargo"]["packages"]["ran"] + data["checked"]["cargo"]["packages"]["cached"]
    ) == sorted(ws.members)

    hub = ws.lib_rs("hub").resolve()
    pool.analyzer.native[hub] = [
        {
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 4}},
            "severity": 4,
            "message": "code is inactive",
            "source": "rust-analyzer",
        },
        {
            "range": {"start": {"line": 5, "character": 7}, "end": {"line": 5, "character": 16}},
            "severity": 1,
            "code": "E0425",
            "message": "native error",
            "source": "rust-analyzer",
        },
        {
            "range": {"start": {"line": 5, "character": 7}, "end": {"line": 5, "character": 16}},
            "severity": 1,
            "message": "relayed from rust-analyzer's own cargo check",
            "source": "rustc",
        },
    ]
    leaf = ws.lib_rs("leaf_000")
    leaf.write_text(leaf.read_text() + '\npub fn broken() -> u32 { "not a number" }\n')
    other = ws.lib_rs("leaf_001")
    other.write_text(other.read_text() + "\nfn unused() {}\n")  # a warning (dead code) where nothing fails
    is_error, data = await call(client, "rust_analyzer_workspace_diagnostics", {})
    assert not is_error, data
    assert data["clean"] is False
    assert data["counts"]["rust-analyzer"] == {"error": 1, "hint": 1}
    assert data["counts"]["cargo"]["error"] >= 1 and data["counts"]["cargo"]["warning"] >= 1
    assert data["errors"] == 1 + data["counts"]["cargo"]["error"]
    levels = [d["level"] for d in data["diagnostics"]]
    assert levels == sorted(levels, key=lambda lv: {"error": 0, "warning": 1, "hint": 3}.get(lv, 2)), "errors first"
    native = [d for d in data["diagnostics"] if d["source"] == "rust-analyzer"]
    assert native[0] == {
        "source": "rust-analyzer",
        "level": "error",
        "file": HUB_LIB,
        "range": [5, 7, 5, 16],
        "code": "E0425",
        "message": "native error",
    }
    cargo = [d for d in data["diagnostics"] if d["source"] == "cargo"]
    assert {d["file"] for d in cargo} == {"crates/leaf_000/src/lib.rs", "crates/leaf_001/src/lib.rs"}
    assert cargo[0]["level"] == "error" and cargo[-1]["level"] == "warning"
    assert "relayed" not in json.dumps(data)


async def test_workspace_diagnostics_while_indexing_are_not_a_clean_bill(env: tuple[Client, FakePool]) -> None:
    client, pool = env
    pool.analyzer.indexing = True
    is_error, data = await call(client, "rust_analyzer_workspace_diagnostics", {})
    assert not is_error, data
    assert data["clean"] is None and data["checked"]["rust_analyzer"]["status"] == "indexing"
    assert data["checked"]["cargo"]["status"] == "ready" and "not a clean bill" in data["note"]


async def test_workspace_diagnostics_fit_the_budget_with_the_counts_whole(
    env: tuple[Client, FakePool], ws: GeneratedWorkspace
) -> None:
    client, pool = env
    hub = ws.lib_rs("hub").resolve()
    pool.analyzer.native[hub] = [
        {
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
            "severity": 2,
            "message": f"warning {i} " + "x" * 200,
            "source": "rust-analyzer",
        }
        for i in range(300)
    ]
    is_error, data = await call(client, "rust_analyzer_workspace_diagnostics", {"max_tokens": 1000})
    assert not is_error, data
    assert data["warnings"] == 300 and data["omitted"]["diagnostics"] == 300 - len(data["diagnostics"])
    assert len(json.dumps(data)) < 1000 * 4 + 200
