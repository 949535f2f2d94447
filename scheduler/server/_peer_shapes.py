"""rust-analyzer-mcp 0.4.0's answers, for a session that asks for them (`serve --answers=rust-analyzer-mcp`).

Our answers are compact objects (`_tools_analyzer`); the peer's are its own text, which scripts and
the peer's own test suite parse: a bare `SymbolInformation[]`, the raw LSP result of a position
tool, `null` while rust-analyzer loads, diagnostics with a top-level `summary` and severities as
words, a rename described edit by edit with `old_text` and `byte_range`. Those shapes conflict with
ours (a bare list is not an object), so they are a mode of the session, chosen explicitly, and this
module is their one owner: each function turns what our tools learnt into the peer's value, and
`reply` sends it as the peer did, one pretty-printed text block. `structuredContent` (which our
tools' output schema requires to be an object) carries the same value under `result`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mcp_types import CallToolResult, TextContent

from .._answers import PEER_ANSWERS, answers
from ..analyzer._documents import uri_to_path
from ..engine._report import Diagnostic
from ._state import ServerState

SEVERITY_WORDS = {1: "error", 2: "warning", 3: "information", 4: "hint"}
"""LSP's severities as the peer spells them (and counts them in `summary`)."""
_RUSTC_SEVERITY = {"error": 1, "warning": 2, "note": 3, "help": 4}
"""rustc's levels as LSP severities, as rust-analyzer relays a cargo check's diagnostics."""


def wanted() -> bool:
    """This call's session asked for the peer's answers (its environment, else the server's)."""
    env = ServerState.question_env()
    return answers(dict(env) if env is not None else os.environ) == PEER_ANSWERS


def reply(value: Any, *, text: str | None = None, **extra: Any) -> CallToolResult:
    """The peer's answer: `value` pretty-printed (serde's `to_string_pretty`: two-space indent, UTF-8),
    or `text` as it is; `extra` (such as our `status` while loading) goes to the structured copy only."""
    shown = text if text is not None else json.dumps(value, indent=2, ensure_ascii=False)
    return CallToolResult(content=[TextContent(type="text", text=shown)], structured_content={"result": value, **extra})


def flat_symbols(tree: Any, path: Path) -> list[dict[str, Any]]:
    """`DocumentSymbol[]` (the tree we ask rust-analyzer for) as the flat `SymbolInformation[]` the
    peer's client gets: every symbol, parents before their children, with the full range as its
    location and its parent's name as `containerName`."""
    uri = path.as_uri()
    out: list[dict[str, Any]] = []

    def walk(symbols: Iterable[Any], container: str | None) -> None:
        for s in symbols:
            if not isinstance(s, dict):
                continue
            if "location" in s:  # already flat (a rust-analyzer that ignored our capability)
                out.append(s)
                continue
            item: dict[str, Any] = {
                "name": s.get("name"),
                "kind": s.get("kind"),
                "tags": s.get("tags") or [],
                "deprecated": bool(s.get("deprecated", False)),
                "location": {"uri": uri, "range": s.get("range")},
            }
            if container is not None:
                item["containerName"] = container
            out.append(item)
            walk(s.get("children") or [], s.get("name"))

    walk(tree or [], None)
    return out


def _summary(severities: Iterable[int | None]) -> dict[str, int]:
    counts = dict.fromkeys(("errors", "warnings", "information", "hints"), 0)
    plural = {1: "errors", 2: "warnings", 3: "information", 4: "hints"}
    for severity in severities:
        if severity in plural:
            counts[plural[severity]] += 1
    return counts


def summary(native: Iterable[Mapping[str, Any]], cargo: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The peer's per-file `summary` over both of our sources: rust-analyzer's LSP severities and
    cargo's levels. (Our own `rust_analyzer_diagnostics` answer carries it too: it is a superset.)"""
    return _summary([d.get("severity") for d in native] + [_RUSTC_SEVERITY.get(str(d.get("level")), 1) for d in cargo])


def rustc_as_lsp(d: Diagnostic) -> dict[str, Any]:
    """A cargo diagnostic as rust-analyzer relays one from its own check: LSP severity, 0-based range
    of the primary span (rustc's columns count characters; LSP's count UTF-16 units: the same on
    ASCII lines), source `rustc`."""
    spans = d.raw.get("spans") or []
    span = next((s for s in spans if s.get("is_primary")), spans[0] if spans else {})
    start = {
        "line": max((span.get("line_start") or 1) - 1, 0),
        "character": max((span.get("column_start") or 1) - 1, 0),
    }
    end = {"line": max((span.get("line_end") or 1) - 1, 0), "character": max((span.get("column_end") or 1) - 1, 0)}
    return {
        "severity": _RUSTC_SEVERITY.get(d.level, 1),
        "range": {"start": start, "end": end},
        "message": d.message,
        "code": d.code,
        "source": "rustc",
    }


def file_diagnostics(file_path: str, native: list[Any], cargo: list[Diagnostic], note: str | None) -> dict[str, Any]:
    """The peer's `rust_analyzer_diagnostics`: `{file, diagnostics, summary, note?}`, severities as
    words. rustc's diagnostics that rust-analyzer also reports natively (same line and message)
    are listed once."""
    items = [d for d in native if isinstance(d, dict)]
    seen = {(d.get("range", {}).get("start", {}).get("line"), d.get("message")) for d in items}
    for d in map(rustc_as_lsp, cargo):
        if (d["range"]["start"]["line"], d["message"]) not in seen:
            items.append(d)
    out: dict[str, Any] = {
        "file": file_path,
        "diagnostics": [
            {
                "severity": SEVERITY_WORDS.get(d.get("severity") or 0, "unknown"),
                "range": d.get("range"),
                "message": d.get("message", ""),
                "code": d.get("code"),
                "source": d.get("source") or "rust-analyzer",
                "relatedInformation": d.get("relatedInformation"),
            }
            for d in items
        ],
        "summary": _summary(d.get("severity") for d in items),
    }
    if note:
        out["note"] = note
    return out


def workspace_diagnostics(root: Path, per_file: Mapping[Path, list[dict[str, Any]]]) -> dict[str, Any]:
    """The peer's `rust_analyzer_workspace_diagnostics`: `{workspace, files: {uri: {diagnostics,
    summary}}, summary: {total_files, total_errors, ...}}` (LSP diagnostics, numeric severities),
    files without diagnostics left out, as the peer does."""
    files: dict[str, Any] = {}
    totals = dict.fromkeys(("errors", "warnings", "information", "hints"), 0)
    for path, diagnostics in per_file.items():
        if not diagnostics:
            continue
        counts = _summary(d.get("severity") for d in diagnostics)
        files[path.as_uri()] = {"diagnostics": diagnostics, "summary": counts}
        for key, n in counts.items():
            totals[key] += n
    return {
        "workspace": str(root),
        "files": files,
        "summary": {"total_files": len(files), **{f"total_{k}": n for k, n in totals.items()}},
    }


def byte_offset(text: str, line: int, character: int) -> int | None:
    """The byte offset in `text` (UTF-8) of an LSP position (0-based line, UTF-16 column); a column
    past the line's end is its end, as LSP says. None for a line past the end of the text."""
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return None
    offset = sum(len(s.encode()) + 1 for s in lines[:line])
    units = 0
    for ch in lines[line]:
        if units >= character:
            break
        units += 2 if ord(ch) > 0xFFFF else 1
        offset += len(ch.encode())
    return offset


def _describe_edit(edit: Mapping[str, Any], content: str | None) -> dict[str, Any]:
    start, end = edit.get("range", {}).get("start", {}), edit.get("range", {}).get("end", {})
    out: dict[str, Any] = {
        "line": start.get("line"),
        "character": start.get("character"),
        "end_line": end.get("line"),
        "end_character": end.get("character"),
        "new_text": edit.get("newText", ""),
    }
    if content is not None:
        raw = content.encode()
        a = byte_offset(content, start.get("line", -1), start.get("character", 0))
        b = byte_offset(content, end.get("line", -1), end.get("character", 0))
        if a is not None and b is not None and a <= b:
            out["byte_range"] = [a, b]
            out["old_text"] = raw[a:b].decode(errors="replace")
    return out


def _read(uri: str) -> tuple[Path | None, str | None]:
    if not uri.startswith("file:"):
        return None, None
    path = uri_to_path(uri)
    try:
        return path, path.read_text(encoding="utf-8")
    except OSError:
        return path, None


def rename(edit: Mapping[str, Any], path: Path, line: int, character: int, new_name: str) -> dict[str, Any]:
    """The peer's `rust_analyzer_rename`: its account of rust-analyzer's WorkspaceEdit, worked out from
    the files on disk (UTF-16 columns, plus each edit's `byte_range` and `old_text`), each file's
    edits last first; `old_name` is the text the edit at the asked position replaces."""
    changes: list[dict[str, Any]] = []
    operations: list[Any] = []
    if isinstance(edit.get("documentChanges"), list):
        entries = [
            (c["textDocument"]["uri"], c["edits"]) if isinstance(c.get("edits"), list) else (None, c)
            for c in edit["documentChanges"]
        ]
    else:
        entries = list((edit.get("changes") or {}).items())
    old_name = None
    for uri, edits in entries:
        if uri is None:
            operations.append(edits)
            continue
        file, content = _read(uri)
        described = sorted(
            (_describe_edit(e, content) for e in edits),
            key=lambda e: (e["line"] or 0, e["character"] or 0),
            reverse=True,
        )
        if file == path:
            old_name = next(
                (
                    e.get("old_text")
                    for e in described
                    if (e["line"], e["character"]) <= (line, character) <= (e["end_line"], e["end_character"])
                ),
                old_name,
            )
        changes.append({"file": str(file) if file is not None else uri, "edits": described})
    return {
        "applied": False,
        "old_name": old_name,
        "new_name": new_name,
        "position_encoding": "utf-16",
        "summary": {
            "files_changed": len(changes),
            "edits": sum(len(c["edits"]) for c in changes),
            "file_operations": len(operations),
        },
        "changes": changes,
        "file_operations": operations,
        "workspace_edit": edit,
    }
