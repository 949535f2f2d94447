"""rust-analyzer's answers made compact: workspace-relative paths, and ranges as four numbers.

LSP names every file by an absolute `file://` URI and every range as two nested objects; of a
references answer for a hub item in a 150-crate workspace (24 KB), nine tenths are that. An agent
hands these locations back as `file_path`, `line` and `character`, which take workspace-relative
paths and 0-based positions, so the compact form is also the one it can pass on as it is:

- `"uri"` / `"targetUri"` holding a `file:` URI become `"file"` / `"target_file"`: the path relative
  to the workspace, or the absolute path for a file outside it (a definition in the standard
  library). Other URIs are left alone.
- A range `{"start": {"line", "character"}, "end": {...}}` becomes `[start_line, start_character,
  end_line, end_character]`, 0-based with UTF-16 columns like the tools' parameters.
- A workspace edit's `changes`, keyed by URI, is keyed by path instead.

Everything else (names, kinds, markdown, edits' new text) passes through untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._documents import uri_to_path

_URI_KEYS = {"uri": "file", "targetUri": "target_file"}


def compact(value: Any, root: Path) -> Any:
    """`value` (any JSON from rust-analyzer) with its locations in the compact form above."""
    if isinstance(value, list):
        return [compact(item, root) for item in value]
    if not isinstance(value, dict):
        return value
    span = _range(value)
    if span is not None:
        return span
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _URI_KEYS and isinstance(item, str) and item.startswith("file:"):
            out[_URI_KEYS[key]] = path_of(item, root)
        elif key == "changes" and isinstance(item, dict):
            out[key] = {
                path_of(uri, root) if uri.startswith("file:") else uri: compact(edits, root)
                for uri, edits in item.items()
            }
        else:
            out[key] = compact(item, root)
    return out


def path_of(uri: str, root: Path) -> str:
    """A `file:` URI as a path: relative to `root` when inside it, absolute otherwise."""
    path = uri_to_path(uri)
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _range(value: dict[str, Any]) -> list[int] | None:
    if value.keys() != {"start", "end"}:
        return None
    start, end = value["start"], value["end"]
    if not (_position(start) and _position(end)):
        return None
    return [start["line"], start["character"], end["line"], end["character"]]


def _position(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.keys() == {"line", "character"}
        and all(isinstance(v, int) for v in value.values())
    )
