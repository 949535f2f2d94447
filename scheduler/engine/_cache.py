"""The diagnostics cache: what cargo said for a package, keyed by the hash of everything it read.

diskcache (SQLite) gives atomic writes and safe concurrent use by several processes. Each value is
JSON with an xxh64 checksum of its own bytes, so a torn or corrupted value is detected on read and
treated as a miss, never served. An in-memory dict in front answers repeat questions without SQLite.
If the database becomes unusable (deleted, corrupted, disk full) the cache reopens it once, and
after that the engine keeps answering without a cache and says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import xxhash

from .. import _compat

try:
    from diskcache import Timeout as _LockTimeout
except ImportError:  # pragma: no cover
    _LockTimeout = TimeoutError

_DEFAULT_SIZE_LIMIT = 512 * 1024 * 1024
_MEMORY_ENTRIES = 20_000
_SQLITE_HEADER_BYTES = 100


def default_cache_dir() -> Path:
    """$CARGO_SCHEDULER_CACHE_DIR, else $XDG_CACHE_HOME/cargo-scheduler, else ~/.cache/cargo-scheduler."""
    from .. import _settings  # here: this module is being rewritten (keep the diff to this function)

    return Path(_settings.cache_dir())


class DiagnosticsCache:
    """Get and put JSON-able entries by key; never raises on I/O trouble, reports it instead."""

    def __init__(self, directory: Path | None = None, *, size_limit: int | None = None) -> None:
        self.directory = directory or default_cache_dir()
        self._db_path = self.directory / "diagnostics" / "cache.db"
        self.size_limit = _DEFAULT_SIZE_LIMIT if size_limit is None else size_limit
        self.persistent = self.size_limit > 0
        """False with a size limit of 0 (CARGO_SCHEDULER_CACHE_MB=0): answers live in memory only."""
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._disk: Any = None
        self._db_ino = -1
        self.available = True
        self.problem: str | None = None
        self.hits = 0
        self.misses = 0
        self._known_misses: set[str] = set()
        self._misses_version: int | None = None
        self._open()

    def _open(self, *, rebuild_if_corrupt: bool = True) -> None:
        if not self.persistent:
            return
        try:
            import diskcache

            self.directory.mkdir(parents=True, exist_ok=True)
            # Openers take turns (processes too), so a file still being created by another one is
            # never taken for an emptied one.
            with (self.directory / "open.lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                with contextlib.suppress(OSError):
                    if self._db_path.stat().st_size < _SQLITE_HEADER_BYTES:
                        # Emptied or cut before its header: not a database. Opened in place,
                        # diskcache would switch it to WAL under the connections still holding it,
                        # retrying "database is locked" for 60 s; a new file (new inode) has none.
                        shutil.rmtree(self.directory / "diagnostics", ignore_errors=True)
                self._disk = diskcache.Cache(
                    str(self.directory / "diagnostics"),
                    size_limit=self.size_limit,
                    eviction_policy="least-recently-stored",
                    # A database another process holds locked must not stall a tool call for
                    # diskcache's default 60 s: after 5 s the call goes on without the cache.
                    timeout=5,
                    # No memory map: a database file cut short under us (emptied, truncated) must be a
                    # read error to recover from, never a SIGBUS that kills the process.
                    sqlite_mmap_size=0,
                )
            self._db_ino = os.stat(self._db_path).st_ino
            self.available = True
            self.problem = None
        except Exception as exc:  # diskcache raises sqlite3 and OS errors of many kinds
            if rebuild_if_corrupt and _is_corruption(exc):
                # A database that is not one (torn by a crash, overwritten) is rebuilt, not kept.
                shutil.rmtree(self.directory / "diagnostics", ignore_errors=True)
                self._open(rebuild_if_corrupt=False)
                return
            self._give_up(exc)

    def _db_replaced(self) -> bool:
        """True when the database file we hold open is no longer the one at its path. Our open
        handle keeps the old inode alive, so a new file at the path cannot reuse its number."""
        try:
            return os.stat(self._db_path).st_ino != self._db_ino
        except OSError:
            return True

    def _give_up(self, exc: BaseException) -> None:
        self._disk = None
        self.available = False
        self.problem = f"{type(exc).__name__}: {exc}"

    def _with_disk(self, op: str, *args: Any) -> Any:
        """Run a diskcache operation; on failure reopen (rebuilding if corrupt) and retry once."""
        for attempt in (0, 1):
            if self._disk is None:
                return None
            try:
                if self._db_replaced():
                    # Deleted under us: SQLite would keep answering from the unlinked file and
                    # every later write would be lost to other processes and to restarts.
                    raise FileNotFoundError(f"{self._db_path} was deleted or replaced")
                if op == "_stored":
                    return _compat.stored_keys(self._disk, args[0])
                if op == "_set_many":
                    with self._disk.transact():
                        for key, raw in args[0]:
                            self._disk.set(key, raw)
                    return None
                return getattr(self._disk, op)(*args)
            except _LockTimeout:
                self.problem = "the cache database stayed locked by another process; answered without it"
                return None  # transient: the next call tries again
            except (sqlite3.DatabaseError, OSError) as exc:
                if attempt:
                    self._give_up(exc)
                    return None
                self._rebuild(exc)
        return None

    def _rebuild(self, exc: BaseException) -> None:
        with contextlib.suppress(Exception):
            self._disk.close()
        if _is_corruption(exc):
            shutil.rmtree(self.directory / "diagnostics", ignore_errors=True)
        self._open()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return value
        return self._get_disk(key)

    def in_memory(self, keys: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """(entries the memory front holds, the keys it does not): no SQLite, safe on the event loop."""
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        with self._lock:
            for key in keys:
                value = self._memory.get(key)
                if value is None:
                    missing.append(key)
                else:
                    self._memory.move_to_end(key)
                    found[key] = value
            self.hits += len(found)
        return found, missing

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Entries for the keys that have one. Keys that missed before are not asked of SQLite again
        while no other connection has written to it (`PRAGMA data_version`): a stale package's miss
        costs a set lookup, not a query."""
        found: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        with self._lock:
            for key in keys:
                value = self._memory.get(key)
                if value is None:
                    missing.append(key)
                else:
                    found[key] = value
            self.hits += len(found)
        if not missing:
            return found
        version = self._disk_version()
        if version is None or version != self._misses_version:
            self._known_misses.clear()
            self._misses_version = version
        for key in missing:
            if key in self._known_misses:
                self.misses += 1
                continue
            value = self._get_disk(key)
            if value is None:
                if version is not None:
                    self._known_misses.add(key)
            else:
                found[key] = value
        return found

    def stored(self, keys: list[str]) -> set[str]:
        """Which of `keys` are here (memory or disk), without reading their values: one query, not
        one per key. Blocking: call it from a worker thread."""
        with self._lock:
            here = {k for k in keys if k in self._memory}
        rest = [k for k in keys if k not in here]
        if rest:
            here.update(self._with_disk("_stored", rest) or ())
        return here

    def _disk_version(self) -> int | None:
        if self._disk is None:
            return None
        try:
            return _compat.sqlite_data_version(self._disk)
        except Exception:  # diskcache internals, or a broken database: no memo of misses then
            return None

    def _get_disk(self, key: str) -> dict[str, Any] | None:
        raw = self._with_disk("get", key)
        value = _decode(raw) if isinstance(raw, bytes) else None
        with self._lock:
            if value is None:
                self.misses += 1
                return None
            self.hits += 1
            self._remember(key, value)
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._known_misses.discard(key)
        with self._lock:
            self._remember(key, value)
        self._with_disk("set", key, _encode(value))

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
        """Store several entries in one SQLite transaction (a run's answers, manifests and unit
        records): one commit instead of one per row. The memory front has them at once."""
        if not entries:
            return
        self.remember_many(entries)
        encoded = [(key, _encode(value)) for key, value in entries.items()]
        self._with_disk("_set_many", encoded)

    def put_local_behind(self, entries: dict[str, dict[str, Any]]) -> None:
        """Store entries that never leave this machine (a checkout's `own:` records): here at once,
        in the calling thread. A tiered cache writes them behind the answer (`TieredCache`)."""
        self.put_many(entries)

    def remember_many(self, entries: dict[str, dict[str, Any]]) -> None:
        """Hold entries in the memory front only (cheap, safe on the event loop); the caller writes
        them to disk later with `put_many`, or not at all."""
        with self._lock:
            for key, value in entries.items():
                self._known_misses.discard(key)
                self._remember(key, value)

    def delete(self, key: str) -> None:
        with self._lock:
            self._memory.pop(key, None)
        self._with_disk("delete", key)

    def _remember(self, key: str, value: dict[str, Any]) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > _MEMORY_ENTRIES:
            self._memory.popitem(last=False)

    def clear(self) -> int:
        self._known_misses.clear()
        with self._lock:
            self._memory.clear()
        count = self._with_disk("clear")
        return int(count or 0)

    def stats(self) -> dict[str, Any]:
        volume = self._with_disk("volume")
        count = self._with_disk("__len__")
        total = self.hits + self.misses
        return {
            "directory": str(self.directory),
            "available": self.available,
            "persistent": self.persistent,
            **({"problem": self.problem} if self.problem else {}),
            "entries": count,
            "bytes": volume,
            "size_limit": self.size_limit,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / total, 3) if total else None,
        }

    def close(self) -> None:
        if self._disk is not None:
            with contextlib.suppress(Exception):
                self._disk.close()


def _is_corruption(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


def _encode(value: dict[str, Any]) -> bytes:
    body = json.dumps(value, separators=(",", ":")).encode()
    return xxhash.xxh64_hexdigest(body).encode() + b":" + body


def _decode(raw: bytes) -> dict[str, Any] | None:
    checksum, sep, body = raw.partition(b":")
    if not sep or xxhash.xxh64_hexdigest(body).encode() != checksum:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
