"""Compact locations: what rust-analyzer says, with workspace-relative paths and four-number ranges."""

from __future__ import annotations

from pathlib import Path

from scheduler.analyzer._locations import compact, path_of

ROOT = Path("/ws")


def _range(a: int, b: int, c: int, d: int) -> dict[str, dict[str, int]]:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


def test_references_become_relative_files_and_four_number_ranges() -> None:
    refs = [
        {"uri": "file:///ws/crates/hub/src/lib.rs", "range": _range(5, 7, 5, 16)},
        {"uri": "file:///ws/crates/my%20leaf/src/lib.rs", "range": _range(27, 4, 27, 13)},
    ]
    assert compact(refs, ROOT) == [
        {"file": "crates/hub/src/lib.rs", "range": [5, 7, 5, 16]},
        {"file": "crates/my leaf/src/lib.rs", "range": [27, 4, 27, 13]},
    ]


def test_a_definition_outside_the_workspace_keeps_its_absolute_path() -> None:
    link = {
        "originSelectionRange": _range(4, 9, 4, 18),
        "targetUri": "file:///usr/src/rustc/library/core/lib.rs",
        "targetRange": _range(1, 0, 9, 1),
        "targetSelectionRange": _range(1, 4, 1, 8),
    }
    assert compact([link], ROOT) == [
        {
            "originSelectionRange": [4, 9, 4, 18],
            "target_file": "/usr/src/rustc/library/core/lib.rs",
            "targetRange": [1, 0, 9, 1],
            "targetSelectionRange": [1, 4, 1, 8],
        }
    ]


def test_a_workspace_edit_is_keyed_by_path_and_nested_symbols_are_compacted() -> None:
    edit = {
        "changes": {"file:///ws/a.rs": [{"range": _range(0, 0, 0, 3), "newText": "new"}]},
        "documentChanges": [{"textDocument": {"uri": "file:///ws/b.rs", "version": 3}, "edits": []}],
    }
    assert compact(edit, ROOT) == {
        "changes": {"a.rs": [{"range": [0, 0, 0, 3], "newText": "new"}]},
        "documentChanges": [{"textDocument": {"file": "b.rs", "version": 3}, "edits": []}],
    }
    symbol = {"name": "Outer", "range": _range(0, 0, 9, 1), "children": [{"name": "f", "range": _range(1, 4, 1, 9)}]}
    assert compact(symbol, ROOT)["children"] == [{"name": "f", "range": [1, 4, 1, 9]}]


def test_what_only_looks_like_a_location_passes_through_untouched() -> None:
    odd = {
        "uri": "https://docs.rs/x",
        "start": {"line": 1},
        "end": {"line": 2, "character": 0},
        "range": {"start": {"line": 0, "character": "0"}, "end": {"line": 0, "character": 1}},
        "value": "```rust\nfile:///ws/x\n```",
    }
    assert compact(odd, ROOT) == odd
    assert path_of("file:///ws", ROOT) == "." and path_of("file:///other/x.rs", ROOT) == "/other/x.rs"
