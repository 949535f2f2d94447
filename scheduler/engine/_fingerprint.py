"""Content fingerprints of a workspace tree, at the cost of a stat walk when nothing changed.

Every file under the workspace that is not ignored counts (sources, and data pulled in with
`include_str!` or `#[path]`), not just `src/`. This walk is the key's first, conservative half: what
the compiler actually read (ignored files, other members' files, files outside the workspace) comes
from its own record after a run (`_inputs`, `_record`). A file's content hash (xxh3-128) is reused
while its (mtime_ns, size, inode, ctime_ns) are unchanged (an mtime put back by `touch -d` still moves
the ctime), except for "racily clean" files, modified so close to the moment we hashed them that a
later write could keep the same mtime: those are hashed again until they settle, as git does for its
index. A link is hashed as its target's content plus the link text, and links and files with other
hard links are stat-ed again at every question, since inotify on the tree does not see an edit made
through another name. Except a link to a file inside the walked tree (the `LICENSE-MIT ->
../LICENSE-MIT` of every member of a big workspace: 136 of them on gitoxide, 0.7 ms of stats per
question): an edit of that file is an event in its own watched directory, read as a change of every
link to it, and the links are stat-ed once after each walk or update that could have missed one.

Ignored: VCS directories, any directory holding a `CACHEDIR.TAG` (cargo marks every target dir so),
the workspace's own target dir, and what `.gitignore` files say. Names need not be UTF-8.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import time
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from ._ignore import IgnoreFile, ignored
from ._watch import FileChange, TreeWatcher

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
    ctime_ns: int = 0
    """Restoring an mtime (`touch -d`, `os.utime`) moves the ctime, which nobody can set back."""


@dataclass
class WalkStats:
    files: int = 0
    hashed: int = 0
    bytes_read: int = 0
    elapsed_ms: float = 0.0


@dataclass
class Snapshot:
    """File digests grouped by owning package (None: the file belongs to no package).

    Treat as immutable: a refresh makes a new snapshot sharing the unchanged owners' dicts.
    `generation` changes exactly when the content may have changed, so callers can memoise on it."""

    by_owner: dict[str | None, dict[str, bytes]] = field(default_factory=dict)
    stats: WalkStats = field(default_factory=WalkStats)
    dirs: frozenset[str] = frozenset()
    """Every directory walked (relative; '' is the root)."""
    skipped: frozenset[str] = frozenset()
    """What `.gitignore` made the walk leave out, by name (not their contents). Target dirs (the
    excluded one, any holding a `CACHEDIR.TAG`) and VCS directories are not sources: not listed."""
    generation: int = 0
    _digests: dict[str | None, bytes] = field(default_factory=dict, repr=False)

    def owner_digest(self, owner: str | None) -> bytes:
        """One digest for everything a package owns: paths and contents, order-independent."""
        cached = self._digests.get(owner)
        if cached is not None:
            return cached
        h = xxhash.xxh3_128()
        for rel, digest in sorted(self.by_owner.get(owner, {}).items()):
            h.update(rel.encode("utf-8", "surrogateescape"))
            h.update(b"\0")
            h.update(digest)
        self._digests[owner] = value = h.digest()
        return value


class TreeHasher:
    """Walks one workspace; keeps the stat cache between walks (one instance per workspace)."""

    def __init__(self, root: Path, *, watch: bool = True) -> None:
        self.root = root
        self._entries: dict[str, _Entry] = {}
        self._ignore_specs: dict[str, tuple[tuple[int, int], IgnoreFile]] = {}
        self._watcher = TreeWatcher() if watch else None
        self._last: Snapshot | None = None
        self._last_inputs: tuple[dict[str, str], frozenset[str]] | None = None
        self._dir_owner: dict[str, str | None] = {}
        self._dir_specs: dict[str, list[tuple[str, IgnoreFile]]] = {}
        self._pending: list[FileChange] = []
        self._skipping: set[str] = set()
        self._generation = 0
        self._fragile: dict[str, tuple[int, int, int, int]] = {}
        """Files whose changes inotify on the tree may not report: links (the target may lie
        elsewhere) and files with other hard links. Each question stats them again, except links
        in `_links_to` once `_fragile_checked` is the current generation."""
        self._link_target: dict[str, str] = {}
        """Link -> its target, a single-named regular file inside the tree reached without another
        link: an edit of the target is an inotify event (in its own directory) for the link too."""
        self._links_to: dict[str, set[str]] = {}
        self._fragile_checked = -1
        self._unwatched: list[tuple[str, tuple[int, int, int, int]]] = []
        """The fragile files a question stats once `_fragile_checked` is current."""

    def entries(self) -> dict[str, _Entry]:
        """The stat cache (a copy): what `_statcache` keeps on disk."""
        return dict(self._entries)

    def adopt(self, rel: str, entry: _Entry) -> bool:
        """Take a stat cache entry from disk unless one is known already; True if taken."""
        if rel in self._entries:
            return False
        self._entries[rel] = entry
        return True

    @property
    def watching(self) -> bool:
        return self._watcher is not None and self._watcher.active

    def unchanged(self, package_roots: dict[str, str], exclude: set[Path]) -> Snapshot | None:
        """The previous snapshot if the watcher saw nothing change since; None when `refresh` must
        run. Cheap and non-blocking (one read of the inotify queue): fine on the event loop."""
        if self._last is None or self._watcher is None or self._pending:
            return None
        if self._last_inputs != (package_roots, frozenset(str(p) for p in exclude)):
            return None
        changes = self._watcher.drain()
        if changes is None:
            self._last_inputs = None  # forces a full walk in refresh
            return None
        changes = self._with_links(changes)
        changes.extend(self._fragile_changes())
        if changes:
            self._pending.extend(changes)
            return None
        return self._last

    def _with_links(self, changes: list[FileChange]) -> list[FileChange]:
        """`changes` and, for a changed link target, a change of each link to it."""
        if not self._links_to:
            return changes
        out = list(changes)
        for change in changes:
            rel = f"{change.directory}/{change.name}" if change.directory else change.name
            for link in self._links_to.get(rel, ()):
                directory, _, name = link.rpartition("/")
                out.append(FileChange(directory, name))
        return out

    def _fragile_changes(self) -> list[FileChange]:
        # The first question after a walk or an update stats every link: a target edited between
        # the link's hashing and the watch on the target's directory left no event.
        if self._fragile_checked == self._generation:
            items = self._unwatched
        else:
            self._fragile_checked = self._generation
            items = list(self._fragile.items())
            self._unwatched = [
                (rel, sig)
                for rel, sig in items
                if (target := self._link_target.get(rel)) is None or target.rpartition("/")[0] not in self._dir_owner
            ]
        moved = []
        for rel, sig in items:
            path = os.path.join(self.root, rel)
            try:
                try:
                    st = os.stat(path)
                except OSError:  # dangling or looping: the link's own stat, as `_digest` took it
                    st = os.stat(path, follow_symlinks=False)
                now = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
            except OSError:
                now = (-1, -1, -1, -1)
            if now != sig:
                directory, _, name = rel.rpartition("/")
                moved.append(FileChange(directory, name))
        return moved

    def refresh(self, package_roots: dict[str, str], exclude: set[Path] = frozenset()) -> Snapshot:  # type: ignore[assignment]
        """The tree now: the previous snapshot updated with the files the watcher saw change, or a
        full walk when it cannot tell. Blocking: call it from a worker thread."""
        inputs = (package_roots, frozenset(str(p) for p in exclude))
        if self._last is not None and self._watcher is not None and self._last_inputs != inputs:
            self._reown(package_roots, inputs[1])
        if self._last is None or self._watcher is None or self._last_inputs != inputs:
            return self.snapshot(package_roots, exclude)
        drained = self._watcher.drain()
        if drained is None:
            return self.snapshot(package_roots, exclude)
        changes, self._pending = [*self._pending, *self._with_links(drained), *self._fragile_changes()], []
        if not changes:
            return self._last
        updated = self._apply(self._last, changes)
        return updated if updated is not None else self.snapshot(package_roots, exclude)

    def _reown(self, package_roots: dict[str, str], excluded: frozenset[str]) -> None:
        """The last walk's files under other package roots, without walking again: the first walk
        of a question runs before the members are known (`Engine._load_metadata`). Changes since
        that walk stay queued in the watcher for `refresh` to apply. Nothing is done (a full walk
        follows) if that walk entered a directory now excluded."""
        assert self._last is not None
        root = str(self.root)
        if any(os.path.join(root, d) in excluded for d in self._dir_owner if d):
            return
        owners: dict[str, str | None] = {}
        for directory in sorted(self._dir_owner, key=lambda d: d.count("/") if d else -1):
            parent = directory.rpartition("/")[0]
            inherited = owners.get(parent) if directory else None
            owners[directory] = package_roots.get(directory, inherited)
        by_owner: dict[str | None, dict[str, bytes]] = {}
        for files in self._last.by_owner.values():
            for rel, digest in files.items():
                by_owner.setdefault(owners[rel.rpartition("/")[0]], {})[rel] = digest
        self._dir_owner = owners
        self._generation += 1
        self._last = Snapshot(
            by_owner=by_owner,
            stats=self._last.stats,
            generation=self._generation,
            dirs=self._last.dirs,
            skipped=self._last.skipped,
        )
        self._last_inputs = (dict(package_roots), excluded)

    def _apply(self, last: Snapshot, changes: list[FileChange]) -> Snapshot | None:
        start = time.perf_counter()
        stats = WalkStats(files=last.stats.files)
        by_owner = dict(last.by_owner)
        skipped = set(last.skipped)
        touched: set[str | None] = set()
        for change in dict.fromkeys(changes):  # a save is several events (truncate, write, close)
            if change.name in (".gitignore", "CACHEDIR.TAG") or change.directory not in self._dir_owner:
                return None
            owner = self._dir_owner[change.directory]
            rel = f"{change.directory}/{change.name}" if change.directory else change.name
            if owner not in touched:
                by_owner[owner] = dict(by_owner.get(owner, {}))
                touched.add(owner)
            files = by_owner[owner]
            path = os.path.join(self.root, rel)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                files.pop(rel, None)
                self._entries.pop(rel, None)
                self._fragile.pop(rel, None)
                self._unlink_target(rel)
                continue
            if stat_mod.S_ISDIR(st.st_mode):
                return None
            if (
                not (stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISLNK(st.st_mode))
                or change.name in _VCS_DIRS
                or ignored(self._dir_specs[change.directory], rel, False)
            ):
                files.pop(rel, None)
                if change.name not in _VCS_DIRS:
                    skipped.add(rel)
                continue
            files[rel] = self._digest(rel, path, st, stats, force=True)
        self._generation += 1
        snap = Snapshot(
            by_owner=by_owner,
            stats=stats,
            generation=self._generation,
            dirs=last.dirs,
            skipped=frozenset(skipped),
            _digests={o: d for o, d in last._digests.items() if o not in touched},
        )
        stats.files = sum(len(f) for f in by_owner.values())
        stats.elapsed_ms = (time.perf_counter() - start) * 1000
        self._last = snap
        return snap

    def _unlink_target(self, rel: str) -> None:
        target = self._link_target.pop(rel, None)
        if target is not None:
            links = self._links_to.get(target)
            if links is not None:
                links.discard(rel)
                if not links:
                    del self._links_to[target]

    def _inside_target(self, rel: str, path: str) -> str | None:
        """The target of the link `rel`, relative to the root, when it is a file inside the tree
        named by the link text alone: no component of that text is itself a link (retargeting one
        would change what the link reads with no event for the target). The directories the walk
        entered are real, so the text then leads where the kernel resolves it, and one lstat per
        named component says so (a full `realpath` cost 3.3 ms per walk of gitoxide's 136 links).
        None otherwise (the link stays stat-ed at every question)."""
        try:
            text = os.readlink(path)
        except OSError:
            return None
        if os.path.isabs(text):
            return None
        inside = os.path.normpath(os.path.join(os.path.dirname(rel), text))
        if inside in (".", "..") or inside.startswith(".." + os.sep):
            return None
        parent = os.path.dirname(path)
        parts = text.split("/")
        for i, part in enumerate(parts, 1):
            if part not in ("", ".", "..") and os.path.islink(os.path.join(parent, *parts[:i])):
                return None
        return inside

    def snapshot(self, package_roots: dict[str, str], exclude: set[Path] = frozenset()) -> Snapshot:  # type: ignore[assignment]
        """Walk the tree. `package_roots` maps a root's path relative to the workspace ('' for the
        workspace root itself) to its package name. Blocking: call it from a worker thread."""
        start = time.perf_counter()
        self._generation += 1
        snap = Snapshot(generation=self._generation)
        excluded = {str(p) for p in exclude}
        seen: set[str] = set()
        if self._watcher is not None:
            self._watcher.reset()
        self._pending = []
        self._fragile = {}
        self._link_target, self._links_to = {}, {}
        self._dir_owner.clear()
        self._dir_specs.clear()
        self._skipping = set()
        self._walk("", package_roots.get(""), package_roots, [], snap, excluded, seen)
        snap.dirs = frozenset(self._dir_owner)
        snap.skipped = frozenset(self._skipping)
        for gone in self._entries.keys() - seen:
            del self._entries[gone]
        snap.stats.files = len(seen)
        snap.stats.elapsed_ms = (time.perf_counter() - start) * 1000
        self._last = snap
        self._last_inputs = (dict(package_roots), frozenset(excluded))
        return snap

    def _walk(
        self,
        rel_dir: str,
        owner: str | None,
        roots: dict[str, str],
        specs: list[tuple[str, IgnoreFile]],
        snap: Snapshot,
        excluded: set[str],
        seen: set[str],
    ) -> None:
        abs_dir = os.path.join(self.root, rel_dir) if rel_dir else str(self.root)
        wd = self._watcher.watch(abs_dir, rel_dir) if self._watcher is not None else None
        # (watched before listing: no change after the listing goes unseen)
        try:
            entries = list(os.scandir(abs_dir))
        except OSError:
            return
        names = {e.name for e in entries}
        if rel_dir and "CACHEDIR.TAG" in names:
            if self._watcher is not None:
                self._watcher.drop(wd)
            return
        if ".gitignore" in names:
            spec = self._ignore_spec(os.path.join(abs_dir, ".gitignore"))
            if spec is not None:
                specs = [*specs, (rel_dir, spec)]
        self._dir_owner[rel_dir] = owner
        self._dir_specs[rel_dir] = specs
        files = snap.by_owner.setdefault(owner, {})
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat_mod.S_ISDIR(st.st_mode):
                if entry.name in _VCS_DIRS:
                    continue
                if entry.path in excluded:
                    continue
                if ignored(specs, rel, True):
                    self._skipping.add(rel)
                    continue
                child_owner = roots.get(rel, owner)
                self._walk(rel, child_owner, roots, specs, snap, excluded, seen)
            elif stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISLNK(st.st_mode):
                # A linked git worktree's `.git` is a file naming its own git dir: hashed, it would
                # give every worktree of one repository other keys for the same sources.
                if entry.name in _VCS_DIRS:
                    continue
                if ignored(specs, rel, False):
                    self._skipping.add(rel)
                    continue
                seen.add(rel)
                files[rel] = self._digest(rel, entry.path, st, snap.stats)

    def _digest(self, rel: str, path: str, st: os.stat_result, stats: WalkStats, force: bool = False) -> bytes:
        link = stat_mod.S_ISLNK(st.st_mode)
        if link:
            # What the compiler reads through a link is its target: hash the target's content (and
            # the link text, so retargeting counts), and stat the target at every question.
            with contextlib.suppress(OSError):  # dangling or looping: the link's own stat stands
                st = os.stat(path)
        if link or st.st_nlink > 1:
            self._fragile[rel] = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
        else:
            self._fragile.pop(rel, None)
        self._unlink_target(rel)
        if link and st.st_nlink == 1 and stat_mod.S_ISREG(st.st_mode):
            inside = self._inside_target(rel, path)
            if inside is not None:
                self._link_target[rel] = inside
                self._links_to.setdefault(inside, set()).add(rel)
        cached = self._entries.get(rel)
        if (
            not force
            and cached is not None
            and cached.mtime_ns == st.st_mtime_ns
            and cached.size == st.st_size
            and cached.ino == st.st_ino
            and cached.ctime_ns == st.st_ctime_ns
            and cached.mtime_ns < cached.hashed_at_ns - _RACY_MARGIN_NS
        ):
            return cached.digest
        hashed_at = time.time_ns()
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            data = b""
        digest = xxhash.xxh3_128_digest(data)
        if link:
            target = os.readlink(path).encode("utf-8", "surrogateescape")
            digest = b"L" + xxhash.xxh3_128_digest(target + b"\0" + digest)[1:]
        stats.hashed += 1
        stats.bytes_read += len(data)
        self._entries[rel] = _Entry(st.st_mtime_ns, st.st_size, st.st_ino, digest, hashed_at, st.st_ctime_ns)
        return digest

    def _ignore_spec(self, path: str) -> IgnoreFile | None:
        try:
            st = os.stat(path)
            key = (st.st_mtime_ns, st.st_size)
            cached = self._ignore_specs.get(path)
            if cached and cached[0] == key:
                return cached[1]
            with open(path, encoding="utf-8", errors="replace") as fh:
                spec = IgnoreFile(fh.read().splitlines())
        except OSError:
            return None
        self._ignore_specs[path] = (key, spec)
        return spec
