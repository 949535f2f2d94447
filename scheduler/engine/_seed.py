"""A new worktree's target dir, seeded from a sibling worktree's by copy-on-write (reflink).

Why: answers come from the shared cache, but the first run that does need cargo in a new worktree
compiles every registry crate again, although a sibling checkout of the same repository has them.
A reflink copy shares the sibling's blocks (no bytes copied, no space used until one side writes),
so the registry crates are fresh there at once (their fingerprints hold no checkout path, and their
sources in `$CARGO_HOME` are older than the copied outputs), while the new worktree's own crates,
whose files git wrote after the sibling's build, are rebuilt by cargo's usual mtime check.

Only a reflink, never a byte copy: a full copy of a target dir costs gigabytes and minutes, more
than it saves. Where the filesystem cannot clone (ext4, tmpfs; two filesystems), nothing is copied
and the status says why. The sibling's cargo locks are held during the copy (a build in progress
there skips the seed rather than copying half-written units), and our own marker of which root owns
a target dir (`_targets.MARKER`) is not carried over. CARGO_SCHEDULER_SEED=0 turns it off.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

from ..cargo._process import run_bounded
from ..cargo._workspace import Workspace
from ._targets import MARKER

FICLONE = 0x40049409
"""ioctl(dst, FICLONE, src): Linux's whole-file clone, what `cp --reflink=always` uses."""
_COPY_S = 600.0


def reflink_supported(source_file: Path, directory: Path) -> bool:
    """Whether `source_file` can be cloned into `directory` (same filesystem, one that reflinks)."""
    try:
        with open(source_file, "rb") as src, tempfile.NamedTemporaryFile(dir=directory, prefix=".reflink-") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return True
    except OSError:
        return False


def git_worktrees(root: Path) -> tuple[Path, list[Path]] | None:
    """(the worktree that holds `root`, every worktree of its repository), read from the git files
    themselves (`.git`, `commondir`, `worktrees/*/gitdir`): no git process. None outside git."""
    for top in (root, *root.parents):
        dot_git = top / ".git"
        if dot_git.is_dir():
            common = dot_git
            break
        if dot_git.is_file():
            text = dot_git.read_text(errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            gitdir = (top / text.partition(":")[2].strip()).resolve()
            pointer = gitdir / "commondir"
            common = (gitdir / pointer.read_text().strip()).resolve() if pointer.is_file() else gitdir
            break
    else:
        return None
    trees = [common.parent] if common.name == ".git" else []
    with contextlib.suppress(OSError):
        for entry in sorted((common / "worktrees").iterdir()):
            with contextlib.suppress(OSError):
                trees.append(Path((entry / "gitdir").read_text().strip()).parent)
    return top.resolve(), [t.resolve() for t in trees if t.is_dir()]


def _is_empty(target: Path) -> bool:
    try:
        return all(p.name == MARKER for p in target.iterdir())
    except FileNotFoundError:
        return True
    except OSError:
        return False


def find_source(ws: Workspace) -> tuple[Path | None, str]:
    """The sibling target dir to seed `ws.target_dir` from, or None and why not. Blocking."""
    target = ws.target_dir
    if not target.is_relative_to(ws.root):
        return None, "the target dir is outside the workspace (set by configuration, so already shared)"
    if not _is_empty(target):
        return None, "the target dir is not empty"
    found = git_worktrees(ws.root)
    if found is None:
        return None, "the workspace is not in a git worktree"
    top, trees = found
    inside, rel_target = ws.root.relative_to(top), target.relative_to(ws.root)
    candidates = [t / inside / rel_target for t in trees if t != top]
    candidates = [c for c in candidates if (c / ".rustc_info.json").is_file()]
    if not candidates:
        return None, "no sibling worktree has a target dir"
    source = max(candidates, key=lambda c: (c / ".rustc_info.json").stat().st_mtime)
    parent = target if target.is_dir() else target.parent
    parent.mkdir(parents=True, exist_ok=True)
    if not reflink_supported(source / ".rustc_info.json", parent):
        return None, f"the filesystem cannot reflink {source} into {parent} (not supported, or two filesystems)"
    return source, ""


@contextlib.contextmanager
def _cargo_locks(target: Path) -> Iterator[bool]:
    """Hold every cargo build lock of `target` (True), or none if one is held by a build (False)."""
    held: list[int] = []
    try:
        for lock in sorted([*target.glob("*/.cargo-lock"), *target.glob("*/*/.cargo-lock")]):
            fd = os.open(lock, os.O_RDONLY)
            held.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
        yield True
    finally:
        for fd in held:
            os.close(fd)


class Seeder:
    """One engine's seed: tried once, before its first cargo run; the outcome kept for the status."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.status: dict[str, Any] = {"enabled": enabled, "outcome": "not tried" if enabled else "off"}
        self._tried = False
        self._lock = anyio.Lock()

    async def seed(self, ws: Workspace) -> list[str]:
        """Seed `ws.target_dir` if it is empty and a sibling's can be cloned; what the answer says."""
        if not self.enabled or self._tried:
            return []
        async with self._lock:
            if self._tried:
                return []
            self._tried = True
            source, why = await anyio.to_thread.run_sync(find_source, ws)
            if source is None:
                self.status = {"enabled": True, "outcome": "skipped", "reason": why}
                return []
            return await self._copy(source, ws.target_dir)

    async def _copy(self, source: Path, target: Path) -> list[str]:
        started = time.perf_counter()
        await anyio.to_thread.run_sync(lambda: target.mkdir(parents=True, exist_ok=True))
        with _cargo_locks(source) as free:
            if not free:
                self.status = {"enabled": True, "outcome": "skipped", "reason": f"cargo is building in {source}"}
                return []
            argv = ["cp", "-a", "--reflink=always", f"{source}/.", f"{target}/"]
            result = await run_bounded(argv, timeout_s=_COPY_S)
        if not result.ok:  # never leave half a copy: the directory was empty before
            shutil.rmtree(target, ignore_errors=True)
            why = "timed out" if result.timed_out else result.stderr.decode(errors="replace").strip()[-300:]
            self.status = {"enabled": True, "outcome": "failed", "source": str(source), "reason": why}
            return []
        with contextlib.suppress(FileNotFoundError):
            (target / MARKER).unlink()
        ms = (time.perf_counter() - started) * 1000
        self.status = {"enabled": True, "outcome": "seeded", "source": str(source), "ms": round(ms, 1)}
        return [f"target dir seeded from {source} by reflink in {ms:.0f} ms"]
