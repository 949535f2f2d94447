"""`rust_analyzer_workspace_diagnostics`: "is the workspace clean?", answered from both sources.

rust-analyzer publishes nothing on its own here (its cargo check is off: it would fight the engine
for the build lock) and pulls diagnostics per file only (`textDocument/diagnostic`; it has no
`workspace/diagnostic`). So "what rust-analyzer knows" is: its native diagnostics pulled for every
`.rs` file of every member (without opening them, so an agent's open documents are not evicted),
and "what cargo knows" is the engine's check of every member (cached when the sources did not
change). Native diagnostics miss borrow-check and most lints, cargo's miss nothing it compiles; an
answer with one of them is not "clean". Both are merged into one list, each item marked with its
`source`, errors first, within the token budget, with counts that are never cut and a `checked`
section that says what each source looked at (or why it could not answer).

Positions keep their source's convention: rust-analyzer's `range` is 0-based `[line, character,
end_line, end_character]` (what `line`/`character` parameters take), cargo's `line`/`column` are
1-based (what compilers print). Diagnostics rust-analyzer relays from a cargo check of its own
(source `rustc`/`clippy`, only with CARGO_SCHEDULER_RA_CHECK_ON_SAVE=1) are left out: the engine's
are the same diagnostics, and counting them twice would overstate the errors.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import anyio
from mcp_types import CallToolResult

from .._exceptions import AnalyzerError, AnalyzerIndexing, SchedulerError
from ..analyzer._documents import uri_to_path
from ..analyzer._locations import compact, path_of
from ..cargo._workspace import Workspace
from ..engine._engine import CheckRequest
from ..engine._report import fit_to_budget
from . import _peer_shapes
from ._state import ServerState

MAX_FILES = 5000
"""Files whose native diagnostics are pulled; beyond this the answer says how many were left out."""
_SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}
_RANK = {"error": 0, "warning": 1, "hint": 3}


def rust_files(ws: Workspace) -> tuple[list[Path], int]:
    """(the `.rs` files of every member, up to MAX_FILES; how many there are in all). Skipped:
    target dirs, hidden dirs, and nested directories with their own Cargo.toml (another package,
    walked from its own root if it is a member)."""
    target = ws.target_dir.resolve() if ws.target_dir else None
    found: set[Path] = set()
    for package in ws.packages.values():
        start = package.root
        for directory, subdirs, files in os.walk(start):
            here = Path(directory)
            subdirs[:] = [
                d
                for d in subdirs
                if not d.startswith(".")
                and d != "target"
                and (here / d).resolve() != target
                and not (here / d / "Cargo.toml").is_file()
            ]
            found.update(here / f for f in files if f.endswith(".rs"))
    ordered = sorted(found)
    return ordered[:MAX_FILES], len(ordered)


def _native_items(per_file: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    items = []
    for entry in per_file:
        file = path_of(entry["uri"], root)
        for d in entry.get("diagnostics") or []:
            if not isinstance(d, dict) or d.get("source") not in (None, "rust-analyzer"):
                continue
            item: dict[str, Any] = {
                "source": "rust-analyzer",
                "level": _SEVERITY.get(d.get("severity") or 1, "error"),
                "file": file,
                "range": compact(d.get("range"), root),
            }
            if d.get("code") is not None:
                item["code"] = d["code"]
            item["message"] = d.get("message", "")
            items.append(item)
    return items


async def _rust_analyzer(state: ServerState, root: Path, files: list[Path]) -> tuple[dict[str, Any], list[Any]]:
    try:
        analyzer = await state.analyzer(root)
        per_file = await analyzer.workspace_diagnostics(paths=files)
    except AnalyzerIndexing as exc:
        note = "rust-analyzer is still loading the workspace; call again shortly for its diagnostics"
        return {"status": "indexing", "progress": getattr(exc, "progress", None), "note": note}, []
    except AnalyzerError as exc:
        return {"status": "unavailable", "error": str(exc)}, []
    items = _native_items(per_file, root)
    return {"status": "ready", "files": len(files)}, items


async def _cargo(state: ServerState, root: Path, request: CheckRequest) -> tuple[dict[str, Any], list[Any]]:
    try:
        report = await (await state.engine(root)).check(request)
    except SchedulerError as exc:
        return {"status": "unavailable", "error": str(exc)}, []
    checked: dict[str, Any] = {
        "status": "ready" if report.error is None else "failed",
        "command": f"cargo {request.kind} --workspace",
        "success": report.success,
        "packages": {"ran": report.ran(), "cached": report.cached()},
    }
    if report.error:
        checked["error"] = report.error
    return checked, [{"source": "cargo", **d.compact()} for d in report.diagnostics]


async def workspace_diagnostics(
    state: ServerState, root: Path, request: CheckRequest, max_tokens: int
) -> dict[str, Any]:
    """The merged answer (see the module docstring); `request` is cargo's side (scope workspace)."""
    ws = await (await state.engine(root)).workspace()
    files, total = await anyio.to_thread.run_sync(rust_files, ws)
    parts: dict[str, tuple[dict[str, Any], list[Any]]] = {}

    async def native() -> None:
        parts["rust_analyzer"] = await _rust_analyzer(state, root, files)

    async def cargo() -> None:
        parts["cargo"] = await _cargo(state, root, request)

    async with anyio.create_task_group() as tg:
        tg.start_soon(native)
        tg.start_soon(cargo)
    native_checked, native_items = parts["rust_analyzer"]
    if total > len(files):
        native_checked["files_not_checked"] = total - len(files)
    cargo_checked, cargo_items = parts["cargo"]
    items = sorted(
        native_items + cargo_items,
        key=lambda d: (_RANK.get(d["level"], 2), d["source"], d.get("file") or "", d.get("line") or 0),
    )
    counts: dict[str, dict[str, int]] = {"rust-analyzer": {}, "cargo": {}}
    for d in items:
        counts[d["source"]][d["level"]] = counts[d["source"]].get(d["level"], 0) + 1
    errors = sum(c.get("error", 0) for c in counts.values())
    warnings = sum(c.get("warning", 0) for c in counts.values())
    answered = native_checked["status"] == "ready" and cargo_checked["status"] == "ready"
    clean = (errors == 0 and warnings == 0) if answered else (False if errors else None)
    head: dict[str, Any] = {
        "clean": clean,
        "errors": errors,
        "warnings": warnings,
        "counts": counts,
        "checked": {"rust_analyzer": native_checked, "cargo": cargo_checked},
        "positions": "rust-analyzer: 0-based range [line, character, end_line, end_character]; "
        "cargo: 1-based line and column",
    }
    if clean is None:
        head["note"] = "not every source answered (see checked): this is not a clean bill"
    return fit_to_budget(head, "diagnostics", items, max_tokens)


async def peer_workspace_diagnostics(state: ServerState, root: Path, request: CheckRequest) -> CallToolResult:
    """The same two sources in rust-analyzer-mcp's shape (`_peer_shapes.workspace_diagnostics`):
    per file, rust-analyzer's native LSP diagnostics and cargo's as rust-analyzer relays them; a
    source that could not answer is left out (the peer's answer has no place to say so)."""
    ws = await (await state.engine(root)).workspace()
    files, _ = await anyio.to_thread.run_sync(rust_files, ws)
    per_file: dict[Path, list[dict[str, Any]]] = {}
    try:
        analyzer = await state.analyzer(root)
        for entry in await analyzer.workspace_diagnostics(paths=files):
            native = [
                d
                for d in entry.get("diagnostics") or []
                if isinstance(d, dict) and d.get("source") in (None, "rust-analyzer")  # rustc's: below, once
            ]
            per_file.setdefault(uri_to_path(entry["uri"]), []).extend(native)
    except AnalyzerError:
        pass
    with contextlib.suppress(SchedulerError):
        report = await (await state.engine(root)).check(request)
        for d in report.diagnostics:
            if d.file:
                per_file.setdefault((ws.root / d.file).resolve(), []).append(_peer_shapes.rustc_as_lsp(d))
    return _peer_shapes.reply(_peer_shapes.workspace_diagnostics(root, per_file))
