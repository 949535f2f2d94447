"""The files outside the workspace that the read-only analyzer tools may open, and nothing else.

rust-analyzer answers a definition of `String::from` with a file of the standard library's sources,
and one of a dependency's item with a file under `$CARGO_HOME/registry/src`. An agent's next call is
a hover or a symbols query on that very file, so refusing it as "outside the workspace" would break
the chain the answer invited. What rust-analyzer itself reads is allowed, read-only:

- the standard library's sources it was pointed at (`Sysroot.library`, found by `_setup`);
- `$CARGO_HOME/registry/src` and `$CARGO_HOME/git/checkouts`, where cargo unpacks dependencies;
- the workspace's path dependencies outside its root (from its manifests, followed transitively,
  and `[patch]` entries), since rust-analyzer loads them as part of the crate graph.

Besides, a file of any other workspace this session has set (rust_analyzer_set_workspace,
set_working_directory) or started in is a file of the session's own: an absolute path an earlier
answer gave keeps working after a switch, and is asked of that workspace's analyzer.

Nothing else: `/etc/passwd` or a sibling checkout stays refused. Every root is resolved (symlinks
too) before a path is compared with it, as inside the workspace. The roots are only gathered when a
path already fell outside the workspace, so the common call pays nothing; and tools that produce
edits (format, rename, code actions) never accept these files (`writable=False` at the call site).
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from .._exceptions import InvalidArgument, PathOutsideWorkspace, SchedulerError
from ..analyzer._setup import Sysroot, find_sysroot_src
from ..cargo import _config
from . import _paths
from ._state import ServerState

_MAX_MANIFESTS = 256
"""Bound on the path-dependency walk: a pathological chain cannot stall a call."""


def cargo_home() -> Path:
    """Where cargo keeps registry and git sources (`$CARGO_HOME`, default `~/.cargo`), for the
    daemon's own environment, where rust-analyzer runs."""
    return _config.cargo_home(os.environ)


def _dependency_paths(manifest: Path) -> set[Path]:
    """The `path = ...` directories of one manifest's dependency tables (all kinds, target-specific,
    `[workspace.dependencies]` and `[patch.*]`), resolved against the manifest's directory."""
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return set()
    tables: list[Any] = []

    def collect(table: Any) -> None:
        if not isinstance(table, dict):
            return
        for key, value in table.items():
            if key.endswith("dependencies"):
                tables.append(value)
            elif key in ("target", "workspace"):
                for inner in value.values() if key == "target" and isinstance(value, dict) else [value]:
                    collect(inner)

    collect(data)
    patch = data.get("patch")
    if isinstance(patch, dict):
        tables.extend(patch.values())
    out: set[Path] = set()
    for table in tables:
        for spec in table.values() if isinstance(table, dict) else ():
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                out.add((manifest.parent / spec["path"]).resolve())
    return out


def path_dependencies(manifests: list[Path], root: Path) -> list[Path]:
    """Directories of path dependencies outside `root`, following their own manifests too."""
    seen: set[Path] = set()
    queue = list(manifests)
    outside: set[Path] = set()
    while queue and len(seen) < _MAX_MANIFESTS:
        manifest = queue.pop()
        if manifest in seen:
            continue
        seen.add(manifest)
        for directory in _dependency_paths(manifest):
            if not directory.is_relative_to(root) and directory not in outside:
                outside.add(directory)
            if (directory / "Cargo.toml").is_file():
                queue.append(directory / "Cargo.toml")
    return sorted(outside)


async def readable_roots(state: ServerState, root: Path) -> list[tuple[str, Path]]:
    """(what it is, resolved directory) for every root outside `root` the read tools may open."""
    # The running analyzer's sources if there is one (never start one just to refuse a path).
    running: list[Any] = getattr(state.analyzers, "analyzers", list)()
    sysroot = next((a.sysroot for a in running if getattr(a, "root", None) == root), None)
    if not isinstance(sysroot, Sysroot):
        sysroot = await find_sysroot_src(root)
    home = cargo_home()
    found: list[tuple[str, Path]] = []
    if sysroot.library is not None:
        found.append(("standard library", sysroot.library))
    found += [("registry source", home / "registry" / "src"), ("git checkout", home / "git" / "checkouts")]
    manifests = [root / "Cargo.toml"]
    with contextlib.suppress(SchedulerError):  # no metadata: the root manifest's path deps only
        manifests += [p.manifest for p in (await (await state.engine(root)).workspace()).packages.values()]
    found += [("path dependency", d) for d in await anyio.to_thread.run_sync(path_dependencies, manifests, root)]
    return await anyio.to_thread.run_sync(_resolved_roots, found)


def _resolved_roots(found: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    out = []
    for kind, path in found:
        try:
            out.append((kind, path.resolve()))
        except (OSError, RuntimeError):
            continue
    return out


async def resolve_source(
    state: ServerState, value: str, root: Path, *, tool: str, writable: bool, workspaces: Sequence[Path] = ()
) -> tuple[Path, str | None, Path]:
    """The file an analyzer tool names, as (path, kind, workspace): inside `root` (kind None,
    workspace `root`); inside another of the session's `workspaces` (kind None, that workspace:
    any tool, since it is a workspace of the session's own choosing); or in one of
    `readable_roots` when the tool only reads (kind says which). Anything else is refused naming
    the argument, the workspace and the session's other workspaces."""
    try:
        return _paths.resolve_file(value, root), None, root
    except PathOutsideWorkspace as refused:
        path = _paths.as_local_path(value, "file_path")
        try:
            full = (path if path.is_absolute() else root / path).resolve()
        except (OSError, RuntimeError):
            raise refused from None
        others = [w for w in dict.fromkeys(workspaces) if w != root]
        for other in sorted(others, key=lambda w: len(w.parts), reverse=True):  # the innermost owns it
            if full.is_relative_to(other):
                if not full.is_file():
                    raise InvalidArgument("file_path", f"{value!r} was not found; check the path") from None
                return full, None, other
        for kind, base in await readable_roots(state, root):
            if full.is_relative_to(base):
                if writable:
                    raise InvalidArgument(
                        "file_path",
                        f"{value!r} is {_article(kind)} {kind} file outside the workspace {root}: {tool} "
                        "produces edits, and no tool edits files outside the workspace; read it with "
                        "rust_analyzer_hover, _symbols or _definition instead",
                    ) from None
                if not full.is_file():
                    raise InvalidArgument("file_path", f"{value!r} was not found; check the path") from None
                return full, kind, root
        raise PathOutsideWorkspace("file_path", value, refused.root, tuple(map(str, others))) from None


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"
