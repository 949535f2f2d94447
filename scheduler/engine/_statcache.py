"""The walk's stat cache, kept on disk: a process that starts for one question (the CLI, the shim
without a daemon) stats an unchanged tree instead of reading it.

On a real 45-member workspace (2,312 files, 21.6 MB, 2 cores) a first walk took 105 ms, and 42 ms
when every file's digest was already known from its stat. An entry is trusted exactly as it is
inside one process (`_fingerprint`): while the file's mtime, size, inode and ctime are all unchanged
and it was hashed well after its last modification, so reading it from disk adds no new way to be
wrong (a ctime cannot be put back). The file is per checkout (its real path, hashed, names it),
written whole to a temporary file and renamed over the old one, so a reader sees one writer's
complete file or the previous one; anything unreadable is ignored (a full walk follows).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import xxhash

from ._fingerprint import TreeHasher, _Entry

_FORMAT = 1
_KEEP = 64


def stat_cache_path(cache_dir: Path, root: str) -> Path:
    return cache_dir / "stat" / f"{xxhash.xxh3_64_hexdigest(root.encode('utf-8', 'surrogateescape'))}.json"


def load(path: Path, root: str, hasher: TreeHasher) -> int:
    """Fill `hasher`'s stat cache from `path` (entries it already has win); how many it took.
    Blocking: call it from a worker thread."""
    try:
        data: Any = json.loads(path.read_bytes())
        if data.get("format") != _FORMAT or data.get("root") != root:
            return 0
        entries = {
            rel: _Entry(int(m), int(s), int(i), bytes.fromhex(d), int(h), int(c))
            for rel, (m, s, i, d, h, c) in data["entries"].items()
        }
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return 0
    taken = 0
    for rel, entry in entries.items():
        if hasher.adopt(rel, entry):
            taken += 1
    return taken


def save(path: Path, root: str, hasher: TreeHasher) -> None:
    """Write `hasher`'s stat cache to `path` atomically. Blocking: call it from a worker thread."""
    entries = {
        rel: [e.mtime_ns, e.size, e.ino, e.digest.hex(), e.hashed_at_ns, e.ctime_ns]
        for rel, e in hasher.entries().items()
    }
    body = json.dumps({"format": _FORMAT, "root": root, "entries": entries}, separators=(",", ":")).encode()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stat-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _evict(path.parent)


def _evict(directory: Path) -> None:
    """Keep the `_KEEP` most recently written files: one per checkout, and checkouts come and go."""
    with contextlib.suppress(OSError):
        files = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in files[_KEEP:]:
            with contextlib.suppress(OSError):
                old.unlink()
