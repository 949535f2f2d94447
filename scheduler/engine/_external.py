"""Content digests of inputs the tree walk does not cover, checked again at every question.

These are the files a package's recorded inputs name outside its walk: files in other members'
directories that the walk owns (they come from the snapshot, not from here), files `.gitignore` leaves
out, files outside the workspace, the sources of path dependencies that are not members, and the
targets of links. inotify does not watch them, so every question stats each one (a few µs) and reads
it again only when its stat changed, or when it was written so close to its last hashing that a later
write could keep the same mtime ("racily clean", as git's index treats it). Links are followed: the
content is what the compiler read.
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
import time
from dataclasses import dataclass

import xxhash

_RACY_MARGIN_NS = 50_000_000
MISSING = b"-"
_MAX_DIR_FILES = 20_000


@dataclass
class _Seen:
    sig: tuple[int, int, int, int]
    digest: bytes
    hashed_at_ns: int


class ExternalFiles:
    """Stat-cached digests by absolute path; one per engine, used from worker threads (a lock)."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self.generation = 0
        self._lock = threading.RLock()

    def digest(self, path: str) -> bytes:
        """The content digest of the file at `path` (following links), MISSING when there is none."""
        with self._lock:
            return self._digest(path)

    def _digest(self, path: str) -> bytes:
        try:
            st = os.stat(path)
        except OSError:
            self._seen.pop(path, None)
            return MISSING
        if stat_mod.S_ISDIR(st.st_mode):
            return self.directory_digest(path)
        sig = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
        seen = self._seen.get(path)
        if seen is not None and seen.sig == sig and seen.sig[0] < seen.hashed_at_ns - _RACY_MARGIN_NS:
            return seen.digest
        hashed_at = time.time_ns()
        try:
            with open(path, "rb") as fh:
                digest = xxhash.xxh3_128_digest(fh.read())
        except OSError:
            return MISSING
        self._seen[path] = _Seen(sig, digest, hashed_at)
        return digest

    def directory_digest(self, path: str) -> bytes:
        """Everything under a directory (a build script's `rerun-if-changed=DIR`): names and contents."""
        h = xxhash.xxh3_128(b"dir\0")
        count = 0
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                h.update(os.path.relpath(full, path).encode("utf-8", "surrogateescape") + b"\0")
                h.update(self.digest(full))
                count += 1
                if count > _MAX_DIR_FILES:
                    return MISSING + b"too-many"
        return h.digest()

    def refresh(self) -> int:
        """Stat every file seen so far; a generation that moves whenever one of them changed (so
        keys memoised for the previous generation are not reused)."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        for path, seen in list(self._seen.items()):
            try:
                st = os.stat(path)
                sig = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
            except OSError:
                sig = (-1, -1, -1, -1)
            if sig != seen.sig or seen.sig[0] >= seen.hashed_at_ns - _RACY_MARGIN_NS:
                del self._seen[path]
                self.generation += 1
        return self.generation
