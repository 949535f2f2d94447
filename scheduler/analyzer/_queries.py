"""The questions an Analyzer answers: one LSP request each, raw LSP results (JSON-able) back.

Split from `_analyzer` (which keeps rust-analyzer running and ready) so each file reads on its own.
Positions are 0-based with UTF-16 columns, as rust-analyzer-mcp 0.4.0 takes them. Nothing here
applies an edit: formatting, code actions and rename return them, as the peer does (it returns
`textDocument/formatting`'s TextEdits as they are, and for rename asks `prepareRename` first, then
returns the WorkspaceEdit with `"applied": false`). Every method takes `wait`: how long to wait for
rust-analyzer to finish loading before raising `AnalyzerIndexing` (default: the pool's bound).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from .._exceptions import AnalyzerError, InvalidArgument, LspResponseError
from ._lsp import METHOD_NOT_FOUND

_PULL_CONCURRENCY = 4
_CODE_ACTION_KINDS = ["quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source"]


class Queries:
    """Mixin: the LSP questions, over `_ask` (sync the file, wait for readiness, request, retry)."""

    async def _ask(
        self,
        path: Path,
        method: str,
        params: Callable[[str], dict[str, Any]],
        wait: float | None = None,
        *,
        open_document: bool = True,
        parse_only: bool = False,
    ) -> Any:
        raise NotImplementedError

    async def _snapshot(self, wait: float | None) -> tuple[dict[Path, list[Any]], list[Path]]:
        """(published diagnostics by path, open documents), once ready."""
        raise NotImplementedError

    def _published_for(self, path: Path) -> list[Any]:
        raise NotImplementedError

    @staticmethod
    def _at(line: int, character: int) -> dict[str, int]:
        return {"line": line, "character": character}

    async def hover(self, path: Path, line: int, character: int, *, wait: float | None = None) -> Any:
        return await self._ask(
            path,
            "textDocument/hover",
            lambda uri: {"textDocument": {"uri": uri}, "position": self._at(line, character)},
            wait,
        )

    async def definition(self, path: Path, line: int, character: int, *, wait: float | None = None) -> Any:
        return await self._ask(
            path,
            "textDocument/definition",
            lambda uri: {"textDocument": {"uri": uri}, "position": self._at(line, character)},
            wait,
        )

    async def references(self, path: Path, line: int, character: int, *, wait: float | None = None) -> Any:
        return await self._ask(
            path,
            "textDocument/references",
            lambda uri: {
                "textDocument": {"uri": uri},
                "position": self._at(line, character),
                "context": {"includeDeclaration": True},
            },
            wait,
        )

    async def completion(self, path: Path, line: int, character: int, *, wait: float | None = None) -> Any:
        return await self._ask(
            path,
            "textDocument/completion",
            lambda uri: {"textDocument": {"uri": uri}, "position": self._at(line, character)},
            wait,
        )

    async def document_symbols(self, path: Path, *, wait: float | None = None) -> Any:
        """The file's outline. Answered from its parse alone, so it does not wait for the workspace to load."""
        return await self._ask(
            path, "textDocument/documentSymbol", lambda uri: {"textDocument": {"uri": uri}}, wait, parse_only=True
        )

    async def formatting(self, path: Path, *, wait: float | None = None) -> list[Any]:
        """rustfmt's edits as TextEdits (UTF-16 ranges); [] when the file is formatted. Not applied."""
        result = await self._ask(
            path,
            "textDocument/formatting",
            lambda uri: {"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": True}},
            wait,
        )
        return list(result or [])

    async def diagnostics(self, path: Path, *, wait: float | None = None, open_document: bool = True) -> list[Any]:
        """rust-analyzer's native diagnostics for the file as it is on disk now (pull model).
        `open_document=False` asks about a file rust-analyzer knows from disk without opening it
        (for many files at once: opening them would evict the agent's open documents)."""
        try:
            result = await self._ask(
                path,
                "textDocument/diagnostic",
                lambda uri: {"textDocument": {"uri": uri}},
                wait,
                open_document=open_document,
            )
        except LspResponseError as exc:  # a rust-analyzer without the pull model: what it published
            if exc.code != METHOD_NOT_FOUND:
                raise
            result = None
        if isinstance(result, dict) and isinstance(result.get("items"), list):
            return list(result["items"])
        return self._published_for(path)

    async def code_actions(
        self, path: Path, line: int, character: int, end_line: int, end_character: int, *, wait: float | None = None
    ) -> list[Any]:
        """Code actions for a range, each with its edit (we do not ask for lazy resolution)."""
        native = await self.diagnostics(path, wait=wait)
        near = [
            d
            for d in native
            if isinstance(d, dict)
            and d.get("range", {}).get("start", {}).get("line", -1) <= end_line
            and d.get("range", {}).get("end", {}).get("line", -1) >= line
        ]
        result = await self._ask(
            path,
            "textDocument/codeAction",
            lambda uri: {
                "textDocument": {"uri": uri},
                "range": {"start": self._at(line, character), "end": self._at(end_line, end_character)},
                "context": {"diagnostics": near, "only": _CODE_ACTION_KINDS},
            },
            wait,
        )
        return list(result or [])

    async def rename(self, path: Path, line: int, character: int, new_name: str, *, wait: float | None = None) -> Any:
        """The WorkspaceEdit of the rename, not applied. Like the peer, prepareRename first: it says
        precisely why there is nothing to rename at a position."""
        prepared = await self._ask(
            path,
            "textDocument/prepareRename",
            lambda uri: {"textDocument": {"uri": uri}, "position": self._at(line, character)},
            wait,
        )
        edit = (
            None
            if prepared is None
            else await self._ask(
                path,
                "textDocument/rename",
                lambda uri: {"textDocument": {"uri": uri}, "position": self._at(line, character), "newName": new_name},
                wait,
            )
        )
        if edit is None:
            raise AnalyzerError(f"nothing to rename at {path}:{line}:{character} (0-based)")
        return edit

    async def workspace_diagnostics(
        self, *, paths: Sequence[Path] = (), wait: float | None = None, concurrency: int = _PULL_CONCURRENCY
    ) -> list[dict[str, Any]]:
        """Native diagnostics of `paths` (pulled without opening them), of every open document
        (pulled afresh) and any others published, as PublishDiagnosticsParams-shaped dicts; only
        files with diagnostics. Pulls run `concurrency` at a time: rust-analyzer answers them on
        its own threads, and a file that vanished meanwhile is skipped."""
        published, open_paths = await self._snapshot(wait)
        found: dict[Path, list[Any]] = {p: d for p, d in published.items() if d}
        limiter = anyio.CapacityLimiter(max(1, concurrency))
        opened = set(open_paths)

        async def pull(path: Path) -> None:
            async with limiter:
                with contextlib.suppress(AnalyzerError, InvalidArgument):  # e.g. the file just vanished
                    found[path] = await self.diagnostics(path, wait=wait, open_document=path in opened)

        async with anyio.create_task_group() as tg:
            for path in dict.fromkeys([*open_paths, *paths]):
                tg.start_soon(pull, path)
        return [{"uri": p.as_uri(), "diagnostics": d} for p, d in sorted(found.items()) if d]
