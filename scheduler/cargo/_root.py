"""Which directory is the cargo workspace root for a path: the one finder, for both processes.

The stdio front (daemon/_front.py, through daemon/_socket.py) needs the root to find its daemon,
and the engine needs it to key everything by; two answers for one directory would send a session to
a daemon whose engine serves another root. So there is one rule, cargo's: the nearest Cargo.toml at
or above the path whose TOML has a top-level `workspace` table, else the nearest Cargo.toml.

Standard library only and cheap to import: the front imports this on its connector thread. A
manifest is parsed (tomllib, ~5 ms to import on first use) only when its text mentions
`workspace` at all, so a start inside a single-package crate never pays for the parser; a line scan
instead of the parse would disagree with cargo on `[workspace]  # comment`, `[ workspace ]` or a
`[workspace]` inside a multi-line string.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # `typing` costs the shim's client ~5 ms to import
if TYPE_CHECKING:
    from collections.abc import Iterator


def manifest_dirs(start: str) -> Iterator[str]:
    """Every directory at or above `start` (resolved) that holds a Cargo.toml, nearest first: the
    walk cargo makes, shared by the root finder, the shell's manifest lookup and the daemon client."""
    directory = os.path.realpath(start)
    while True:
        if os.path.isfile(os.path.join(directory, "Cargo.toml")):
            yield directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return
        directory = parent


def find_workspace_root(start: str) -> str | None:
    """The resolved workspace root at or above `start`, or None when no Cargo.toml is there.

    An unreadable or unparsable manifest declares no workspace (cargo would report it when run)."""
    nearest: str | None = None
    for directory in manifest_dirs(start):
        nearest = nearest or directory
        if declares_workspace(os.path.join(directory, "Cargo.toml")):
            return directory
    return nearest


_SEEN: dict[str, tuple[tuple[int, int, int], bool]] = {}
"""Manifests already parsed, by (inode, size, mtime): the daemon asks for its root at every `cli-check`
and a 400-member root manifest costs ~1 ms to parse; a changed manifest has another stat."""


def declares_workspace(manifest: str) -> bool:
    """True when the manifest's TOML has a top-level `workspace` key (`[workspace]`, `[workspace.*]`)."""
    try:
        st = os.stat(manifest)
    except OSError:
        return False
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    seen = _SEEN.get(manifest)
    if seen is not None and seen[0] == stamp:
        return seen[1]
    declares = _parse_declares(manifest)
    if len(_SEEN) > 256:
        _SEEN.clear()
    _SEEN[manifest] = (stamp, declares)
    return declares


def _parse_declares(manifest: str) -> bool:
    try:
        with open(manifest, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "workspace" not in text:
        return False
    import tomllib  # here, not at the top: most manifests a search passes never need it

    try:
        return "workspace" in tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
