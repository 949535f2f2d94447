"""Knowing what changed without walking the tree: inotify, drained at the moment of each question.

The kernel queues an inotify event inside the write (or rename, or unlink) system call, before it
returns to the editor or agent that made it. So an event for every change made before a question
is already queued when the question drains the queue without blocking: a question can never miss
an edit that preceded it. No event means the previous snapshot still describes the tree.

Anything this cannot account for makes `drain` answer None ("walk everything"): the queue
overflowed, a watch could not be added (limits), a directory appeared, moved or vanished, or inotify
is not available on this system at all. Correctness never depends on the watcher; speed does.

inotify_simple is a thin, well-kept ctypes wrapper over the three inotify system calls; it saves us
writing the struct parsing ourselves.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

try:
    import inotify_simple
    from inotify_simple import INotify
    from inotify_simple import flags as _flags
except ImportError:  # pragma: no cover - non-Linux or not installed: walk every time
    INotify = None


def _preload_libc() -> None:
    """inotify_simple finds libc with `ctypes.util.find_library`, which runs `ldconfig -p` in a
    subprocess: 22 ms (2 cores) that every one-question process (the CLI, the shim) paid. glibc's
    soname is fixed; where it does not load (musl), inotify_simple searches as before."""
    if INotify is None or getattr(inotify_simple, "_libc", None) is not None:
        return
    import ctypes

    with contextlib.suppress(OSError):
        inotify_simple._libc = ctypes.CDLL("libc.so.6", use_errno=True)


_WATCH_MASK = 0
_STRUCTURAL = 0
if INotify is not None:
    _WATCH_MASK = int(
        _flags.MODIFY
        | _flags.CLOSE_WRITE
        | _flags.CREATE
        | _flags.DELETE
        | _flags.MOVED_FROM
        | _flags.MOVED_TO
        | _flags.ATTRIB
        | _flags.DELETE_SELF
        | _flags.MOVE_SELF
        | _flags.DONT_FOLLOW
        | _flags.ONLYDIR
    )
    _STRUCTURAL = int(_flags.ISDIR | _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.Q_OVERFLOW | _flags.IGNORED)


@dataclass(frozen=True)
class FileChange:
    directory: str
    """The directory's path relative to the workspace root ('' for the root)."""
    name: str


class TreeWatcher:
    """Watches the directories a walk visited; one per workspace, used under the walker's lock."""

    def __init__(self) -> None:
        self._inotify = None
        self._dirs: dict[int, str] = {}
        self._dropped: set[int] = set()
        self._broken = True
        if INotify is not None:
            _preload_libc()
            try:
                self._inotify = INotify()
                self._broken = False
            except OSError:
                self._inotify = None

    @property
    def active(self) -> bool:
        return self._inotify is not None and not self._broken

    def reset(self) -> None:
        """Forget every watch before a full walk re-adds them."""
        if self._inotify is None:
            return
        for wd in list(self._dirs):
            with contextlib.suppress(OSError):
                self._inotify.rm_watch(wd)
        self._dirs.clear()
        self._dropped.clear()
        with contextlib.suppress(OSError):
            self._inotify.read(timeout=0)  # drop what the removals queued
        self._broken = False

    def watch(self, abs_dir: str, rel_dir: str) -> int | None:
        """Add a watch; call before listing the directory so no change after the listing is missed."""
        if self._inotify is None or self._broken:
            return None
        try:
            wd: int = self._inotify.add_watch(abs_dir, _WATCH_MASK)
        except OSError:
            self._broken = True  # out of watches, or the directory vanished: walk next time
            return None
        self._dirs[wd] = rel_dir
        self._dropped.discard(wd)
        return wd

    def drop(self, wd: int | None) -> None:
        """Stop watching a directory the walk decided to skip (a cargo target dir); its events,
        including the removal's own, are ignored from now on."""
        if wd is None or self._inotify is None:
            return
        self._dirs.pop(wd, None)
        self._dropped.add(wd)
        with contextlib.suppress(OSError):
            self._inotify.rm_watch(wd)

    def drain(self) -> list[FileChange] | None:
        """File changes since the last drain, or None when only a full walk can tell."""
        if self._inotify is None or self._broken:
            return None
        try:
            events = self._inotify.read(timeout=0)
        except OSError:
            self._broken = True
            return None
        changes: list[FileChange] = []
        for event in events:
            if event.wd in self._dropped:
                continue
            if event.mask & _STRUCTURAL or event.wd not in self._dirs or not event.name:
                self._broken = True
                return None
            changes.append(FileChange(self._dirs[event.wd], event.name))
        return changes

    def close(self) -> None:
        if self._inotify is not None:
            with contextlib.suppress(OSError):
                os.close(self._inotify.fileno())
            self._inotify = None
