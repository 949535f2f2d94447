"""The rust-analyzer tools over a stand-in analyzer: paths, positions, indexing, budgets, merged diagnostics.

The stand-in follows the contract of `scheduler.analyzer._pool` (`pool.get(root)`, one async method per
question, `AnalyzerIndexing` while loading), so these tests pin the tool layer, not rust-analyzer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, ServerState, build_server
from scheduler._exceptions import AnalyzerIndexing

pytestmark = pytest.mark.anyio

HUB_LIB = "crates/hub/src/lib.rs"


class FakeAnalyzer:
    def __init__(self) -> None:
        self.indexing = False
        self.asked: list[tuple[Any, ...]] = []

    def _answer(self, *question: Any) -> None:
        self.asked.append(question)
        if self.indexing:
            raise AnalyzerIndexing("still loading", {"done": 3, "total": 10})

    async def hover(self, path: Path, line: int, character: int) -> dict[str, Any]:
        self._answer("hover", path, line, character)
        return {"contents": {"kind": "markdown", "value": "pub fn hub_fn() -> u32"}}

    async def references(self, path: Path, line: int, character: int) -> list[dict[str, Any]]:
        self._answer("references", path, line, character)
        return [{"uri": path.as_uri(), "range": {"start": {"line": i, "character": 0}}} for i in range(500)]

    async def diagnostics(self, path: Path) -> list[dict[str, Any]]:
        self._answer("diagnostics", path)
        return [{"range": {"start": {"line": 0, "character": 0}}, "message": "native", "source": "rust-analyzer"}]

    async def rename(self, path: Path, line: int, character: int, new_name: str) -> dict[str, Any]:
        self._answer("rename", path, line, character, new_name)
        return {"changes": {path.as_uri(): [{"newText": new_name}]}}

    # The rest of the analyzer's questions (scheduler.server._ports.AnalyzerClient): no test here asks them.
    async def definition(self, path: Path, line: int, character: int) -> list[Any]:
        self._answer("definition", path, line, character)
        return []

    async def completion(self, path: Path, line: int, character: int) -> list[Any]:
        self._answer("completion", path, line, character)
        return []

    async def document_symbols(self, path: Path) -> list[Any]:
        self._answer("document_symbols", path)
        return []

    async def formatting(self, path: Path) -> list[Any]:
        self._answer("formatting", path)
        return []

    async def workspace_diagnostics(self) -> list[dict[str, Any]]:
        self._answer("workspace_diagnostics")
        return []

    async def code_actions(self, path: Path, line: int, character: int, end_line: int, end_character: int) -> list[Any]:
        self._answer("code_actions", path, line, character, end_line, end_character)
        return []


class FakePool:
    def __init__(self) -> None:
        self.analyzer = FakeAnalyzer()
        self.roots: list[Path] = []

    async def get(self, root: Path) -> FakeAnalyzer:
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


async def test_set_workspace_starts_the_analyzer_for_the_new_root(
    env: tuple[Client, FakePool], make_workspace: Callable[..., GeneratedWorkspace]
) -> None:
    client, pool = env
    other = make_workspace(name="other", crates=4)
    is_error, _ = await call(client, "rust_analyzer_set_workspace", {"workspace_path": str(other.root)})
    assert not is_error and pool.roots == [other.root.resolve()]


async def test_without_an_analyzer_the_error_says_how_to_get_one(ws: GeneratedWorkspace) -> None:
    async with ServerState(ws.root) as state:
        state.analyzers = None
        async with Client(build_server(ws.root, state=state)) as client:
            is_error, data = await call(client, "rust_analyzer_symbols", {"file_path": HUB_LIB})
    assert is_error and "rust-analyzer" in data["error"] and "install" in data["error"]
