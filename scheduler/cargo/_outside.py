"""Path crates outside the workspace that are not members: which members build on which.

`cargo metadata --no-deps` names a member's own path dependencies; the crates those depend on by
path are in their manifests only. Both the answer (a member shows the warnings and errors of the
outside crates it builds on, and of no other) and the key (an outside crate's manifest can ask a
member for a feature, which changes that member's build) need the whole reach, so the manifests
are read here: small files, parsed again only when their stat changes.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

import xxhash

from ._workspace import Workspace

_PARSED: dict[str, tuple[tuple[int, int, int, int], list[str], bytes]] = {}
"""Manifest path -> (its stat, the directories of its path dependencies, its content digest)."""


def _read(directory: str) -> tuple[list[str], bytes]:
    """The path dependencies (normal and build, every target's) of the crate in `directory`, and
    its manifest's digest; ([], b"-") when it cannot be read (cargo then fails and says why)."""
    path = os.path.join(directory, "Cargo.toml")
    try:
        st = os.stat(path)
    except OSError:
        return [], b"-"
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
    known = _PARSED.get(path)
    if known is not None and known[0] == stamp:
        return known[1], known[2]
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        manifest = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return [], b"!"
    tables: list[Any] = [manifest.get("dependencies"), manifest.get("build-dependencies")]
    for target in (manifest.get("target") or {}).values():
        if isinstance(target, dict):
            tables += [target.get("dependencies"), target.get("build-dependencies")]
    deps = []
    for table in tables:
        for spec in (table or {}).values() if isinstance(table, dict) else ():
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                deps.append(os.path.normpath(os.path.join(directory, spec["path"])))
    digest = xxhash.xxh3_64_digest(raw)
    if len(_PARSED) > 1024:
        _PARSED.clear()
    _PARSED[path] = (stamp, deps, digest)
    return deps, digest


def reach(ws: Workspace) -> dict[str, frozenset[str]]:
    """Member -> the directories of the outside path crates it builds on, directly or through
    other outside crates (not through members: their own reach says that). Empty, at no cost
    beyond a look at each member, for the usual workspace: every key asks."""
    if not any(p.outside_dirs for p in ws.packages.values()):
        return {}
    members = {str(p.root) for p in ws.packages.values()}
    memo: dict[str, frozenset[str]] = {}

    def closure(start: frozenset[str]) -> frozenset[str]:
        seen: set[str] = set()
        todo = [os.path.normpath(d) for d in start]
        while todo:
            directory = todo.pop()
            if directory in seen or directory in members:
                continue
            seen.add(directory)
            todo += _read(directory)[0]
        return frozenset(seen)

    out: dict[str, frozenset[str]] = {}
    for name, package in ws.packages.items():
        if package.outside_dirs:
            out[name] = memo.setdefault(",".join(sorted(package.outside_dirs)), closure(package.outside_dirs))
    return out


def directories(ws: Workspace) -> set[str]:
    """Every outside path crate some member builds on."""
    return {d for dirs in reach(ws).values() for d in dirs}


def manifests_digest(ws: Workspace) -> bytes:
    """The manifests of every outside path crate any member builds on, by place relative to the
    root: one can ask a member for a feature (or change what it builds on) without any member's
    manifest changing. Empty for the usual workspace (no outside path crate)."""
    found = sorted(directories(ws))
    if not found:
        return b""
    h = xxhash.xxh3_128()
    for directory in found:
        h.update(os.path.relpath(directory, ws.root).encode("utf-8", "surrogateescape") + b"\0" + _read(directory)[1])
    return h.digest()
