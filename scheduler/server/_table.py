"""The shipped handshake table's byte format: written by `_toollist.py`, read by the stdio front.

Standard library only and cheap to import (no pathlib, no typing at run time): the front reads this
table before every agent session's first turn. Parsing the whole table as JSON in a fresh process
cost 1.6-8 ms here (265 KB for the handshake era alone; ~350 KB with 2026-07-28 added) and
re-serialising the answer 0.5 ms more, so the answers are stored as the exact bytes of their wire
`result`, each once (versions that answer alike share one: 98 KB), found through an index in the
file's first line (0.2 ms to read):

    {"format":3,"latest_handshake":"...","latest_modern":"...","index":{"handshake/V/initialize":[OFFSET,LENGTH],...},"answers":[
    {...one answer, compact...},
    {...}
    ]}

OFFSET is a byte offset counted from the start of the second line. The whole file is still one valid
JSON document (`decode` reads it back, through the same index the front uses, for the test that the
table equals the full server's answers).
"""

from __future__ import annotations

import json

FORMAT = 3
"""3: answers stored once as raw compact bytes behind a first-line index. (2 added `modern`: the
2026-07-28 `server/discover` and `tools/list`; 1 had the handshake era only.)"""
OPEN = b',"answers":['
"""How the first line ends: the front parses the line up to here, closed with `}`."""


def encode(latest_handshake: str, latest_modern: str, answers: dict[str, object]) -> bytes:
    """The file's bytes for `answers` (key "era/version/method" -> wire result, era "handshake" or
    "modern"), stable for equal input."""
    lines: list[bytes] = []
    seen: dict[bytes, list[int]] = {}
    index: dict[str, list[int]] = {}
    offset = 0
    for key in sorted(answers):
        raw = json.dumps(answers[key], ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode()
        if raw not in seen:
            seen[raw] = [offset, len(raw)]
            lines.append(raw)
            offset += len(raw) + 2  # ",\n" after every answer but the last (which has "\n")
        index[key] = seen[raw]
    head = {"format": FORMAT, "latest_handshake": latest_handshake, "latest_modern": latest_modern, "index": index}
    first = json.dumps(head, separators=(",", ":")).encode()[:-1] + OPEN
    return first + b"\n" + b",\n".join(lines) + b"\n]}\n"


class Table:
    """The table as the front reads it: the header parsed, each answer sliced out as bytes."""

    def __init__(self, data: bytes) -> None:
        first, _, self.body = data.partition(b"\n")
        if not first.endswith(OPEN):
            raise ValueError("not a cargo-scheduler handshake table (regenerate: python -m scheduler.server._toollist)")
        head = json.loads(first[: -len(OPEN)] + b"}")
        if head.get("format") != FORMAT:
            raise ValueError(f"handshake table format {head.get('format')!r}, expected {FORMAT}")
        self.latest_handshake: str = head["latest_handshake"]
        self.latest_modern: str = head["latest_modern"]
        self.index: dict[str, list[int]] = head["index"]
        self.versions: dict[str, set[str]] = {}
        for key in self.index:
            era, version, _ = key.split("/", 2)
            self.versions.setdefault(era, set()).add(version)

    def raw(self, era: str, version: str, method: str) -> bytes | None:
        """The wire `result` bytes the full server answers `method` with at `version`, or None."""
        where = self.index.get(f"{era}/{version}/{method}")
        if where is None:
            return None
        return self.body[where[0] : where[0] + where[1]]

    def has(self, era: str, version: object) -> bool:
        """Whether the table answers `era` ("handshake" or "modern") at `version`."""
        return isinstance(version, str) and version in self.versions.get(era, ())


def decode(data: bytes) -> dict[str, object]:
    """The table as nested answers, {era: {version: {method: result}}} plus the latest versions,
    read through the index (so the test that compares it with the full server checks the offsets)."""
    json.loads(data)  # the file is one JSON document
    table = Table(data)
    nested: dict[str, dict[str, dict[str, object]]] = {}
    for key in table.index:
        era, version, method = key.split("/", 2)
        nested.setdefault(era, {}).setdefault(version, {})[method] = json.loads(table.raw(era, version, method) or b"")
    return {"latest_handshake": table.latest_handshake, "latest_modern": table.latest_modern, **nested}
