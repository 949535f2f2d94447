"""Completion items made compact: what an agent chooses by (label, kind, detail), docs on request.

rust-analyzer's CompletionItem carries, besides its label, the item's full documentation (often a
page of markdown with examples), a `textEdit` with a nested range, `sortText`, `filterText` and
resolve `data`. Measured on the peer's own completion test (24 items): 49.7 KB as rust-analyzer
sends it, most of it documentation the agent did not ask for. Here an item is

    {"label": "push_str", "kind": "method", "detail": "fn(&mut self, &str)"}

plus `"insert"` when the text to insert differs from the label (`clone_into(as ToOwned)` inserts
`clone_into`), `"deprecated": true` when so, and `"documentation"` (plain text, markdown kept) only
when the call asks for it. Items keep rust-analyzer's relevance order (its `sortText`).
"""

from __future__ import annotations

from typing import Any

# LSP CompletionItemKind, 1-based (lsprotocol.types.CompletionItemKind), as readable names.
KINDS = (
    "text",
    "method",
    "function",
    "constructor",
    "field",
    "variable",
    "class",
    "interface",
    "module",
    "property",
    "unit",
    "value",
    "enum",
    "keyword",
    "snippet",
    "color",
    "file",
    "reference",
    "folder",
    "enum_member",
    "constant",
    "struct",
    "event",
    "operator",
    "type_parameter",
)


def kind_name(kind: Any) -> Any:
    """`3` -> "function"; an unknown number is passed through as it is."""
    if isinstance(kind, int) and 1 <= kind <= len(KINDS):
        return KINDS[kind - 1]
    return kind


def _insert_text(item: dict[str, Any]) -> str | None:
    edit = item.get("textEdit")
    if isinstance(edit, dict) and isinstance(edit.get("newText"), str):
        return str(edit["newText"])
    text = item.get("insertText")
    return text if isinstance(text, str) else None


def _documentation(item: dict[str, Any]) -> str | None:
    doc = item.get("documentation")
    if isinstance(doc, dict):
        doc = doc.get("value")
    return doc if isinstance(doc, str) and doc else None


def compact_item(item: dict[str, Any], *, documentation: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"label": item.get("label")}
    if item.get("kind") is not None:
        out["kind"] = kind_name(item["kind"])
    details = item.get("labelDetails")
    details = details if isinstance(details, dict) else {}
    detail = item.get("detail") or details.get("detail") or details.get("description")
    if detail:
        out["detail"] = detail
    insert = _insert_text(item)
    if insert is not None and insert != out["label"]:
        out["insert"] = insert
    if item.get("deprecated") or 1 in (item.get("tags") or ()):
        out["deprecated"] = True
    if documentation and (doc := _documentation(item)) is not None:
        out["documentation"] = doc
    return out


def compact_completion(result: Any, *, documentation: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """(compact items in relevance order, is_incomplete) of a CompletionList or CompletionItem[]."""
    if isinstance(result, dict):
        items, incomplete = result.get("items") or [], bool(result.get("isIncomplete"))
    else:
        items, incomplete = result or [], False
    ordered = sorted(
        (i for i in items if isinstance(i, dict)),
        key=lambda i: str(i.get("sortText") or i.get("label") or ""),
    )
    return [compact_item(i, documentation=documentation) for i in ordered], incomplete
