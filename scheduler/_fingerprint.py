"""Content fingerprints of a workspace tree, at the cost of a stat walk when nothing changed.

Every file under the workspace that is not ignored counts (sources, and data pulled in with
`include_str!` or `#[path]`), not just `src/`. A file's content hash (xxh3-128) is reused while its
(mtime_ns, size, inode) are unchanged, except for "racily clean" files, modified so close to the
moment we hashed them that a later write could keep the same mtime: those are hashed again until
they settle, as git does for its index.

Ignored: VCS directories, any directory holding a `CACHEDIR.TAG` (cargo marks every target dir so),
the workspace's own target dir, and what `.gitignore` files say.
"""

from __future__ import annotations

import os
import stat as stat_mod
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pathspec
import xxhash

_VCS_DIRS = frozenset({".git", ".hg", ".jj", ".svn", ".pijul"})
# Timestamps come from a coarse kernel clock: a write just after we hashed may keep the old mtime
# if it lands within one tick. Entries this close to their hashing time are not trusted.
_RACY_MARGIN_NS = 50_000_000


@dataclass
class _Entry:
    mtime_ns: int
    size: int
    ino: int
    digest: bytes
    hashed_at_ns: int


@dataclass
class WalkStats:
    files: int = 0
    hashed: int = 0
    bytes_read: int = 0
    elapsed_ms: float = 0.0


@dataclass
class Snapshot:
    """File digests grouped by owning package (None: the file belongs to no package)."""

    by_owner: dict[str | None, dict[str, bytes]] = field(default_factory=dict)
    stats: WalkStats = field(default_factory=WalkStats)

    def owner_digest(self, owner: str | None) -> bytes:
        """One digest for everything a package owns: paths and contents, order-independent."""
        h = xxhash.xxh3_128()
        for rel, digest in sorted(self.by_owner.get(owner, {}).items()):
            h.update(rel.encode())
            h.update(b"\0")
            h.update(digest)
        return h.digest()


class TreeHasher:
    """Walks one workspace; keeps the stat cache between walks (one instance per workspace)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._entries: dict[str, _Entry] = {}
        self._ignore_specs: dict[str, tuple[tuple[int, int], pathspec.PathSpec[Any]]] = {}

    def snapshot(self, package_roots: dict[str, str], exclude: set[Path] = frozenset()) -> Snapshot:  # type: ignore[assignment]
        """Walk the tree. `package_roots` maps a root's path relative to the workspace ('' for the
        workspace root itself) to its package name. Blocking: call it from a worker thread."""
        start = time.perf_counter()
        snap = Snapshot()
        excluded = {str(p) for p in exclude}
        seen: set[str] = set()
        self._walk("", package_roots.get(""), package_roots, [], snap, excluded, seen)
        for gone in self._entries.keys() - seen:
            del self._entries[gone]
        snap.stats.files = len(seen)
        snap.stats.elapsed_ms = (time.perf_counter() - start) * 1000
        return snap

    def _walk(
        self,
        rel_dir: str,
        owner: str | None,
        roots: dict[str, str],
        specs: list[tuple[str, pathspec.PathSpec[Any]]],
        snap: Snapshot,
        excluded: set[str],
        seen: set[str],
    ) -> None:
        abs_dir = os.path.join(self.root, rel_dir) if rel_dir else str(self.root)
        try:
            entries = list(os.scandir(abs_dir))
        except OSError:
            return
        names = {e.name for e in entries}
        if rel_dir and "CACHEDIR.TAG" in names:
            return
        if ".gitignore" in names:
            spec = self._ignore_spec(os.path.join(abs_dir, ".gitignore"))
            if spec is not None:
                specs = [*specs, (rel_dir, spec)]
        files = snap.by_owner.setdefault(owner, {})
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat_mod.S_ISDIR(st.st_mode):
                if entry.name in _VCS_DIRS or entry.path in excluded or _ignored(specs, rel, True):
                    continue
                child_owner = roots.get(rel, owner)
                self._walk(rel, child_owner, roots, specs, snap, excluded, seen)
            elif stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISLNK(st.st_mode):
                if _ignored(specs, rel, False):
                    continue
                seen.add(rel)
                files[rel] = self._digest(rel, entry.path, st, snap.stats)

    def _digest(self, rel: str, path: str, st: os.stat_result, stats: WalkStats) -> bytes:
        cached = self._entries.get(rel)
        if (
            cached is not None
            and cached.mtime_ns == st.st_mtime_ns
            and cached.size == st.st_size
            and cached.ino == st.st_ino
            and cached.mtime_ns < cached.hashed_at_ns - _RACY_MARGIN_NS
        ):
            return cached.digest
        hashed_at = time.time_ns()
        if stat_mod.S_ISLNK(st.st_mode):
            # A symlink's identity is its target text; we never follow it out of the workspace.
            data = os.readlink(path).encode(errors="surrogateescape")
            digest = b"L" + xxhash.xxh3_128_digest(data)[1:]
        else:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                data = b""
            digest = xxhash.xxh3_128_digest(data)
        stats.hashed += 1
        stats.bytes_read += len(data)
        self._entries[rel] = _Entry(st.st_mtime_ns, st.st_size, st.st_ino, digest, hashed_at)
        return digest

    def _ignore_spec(self, path: str) -> pathspec.PathSpec[Any] | None:
        try:
            st = os.stat(path)
            key = (st.st_mtime_ns, st.st_size)
            cached = self._ignore_specs.get(path)
            if cached and cached[0] == key:
                return cached[1]
            with open(path, encoding="utf-8", errors="replace") as fh:
                spec = pathspec.GitIgnoreSpec.from_lines(fh.read().splitlines())
        except OSError:
            return None
        self._ignore_specs[path] = (key, spec)
        return spec


def _ignored(specs: list[tuple[str, pathspec.PathSpec[Any]]], rel: str, is_dir: bool) -> bool:
    """As git decides: the deepest `.gitignore` with a matching pattern has the last word, so a
    nested `!pattern` re-includes what a parent's pattern excluded."""
    for base, spec in reversed(specs):
        sub = rel[len(base) + 1 :] if base else rel
        include = spec.check_file(sub + "/" if is_dir else sub).include
        if include is not None:
            return bool(include)
    return False
