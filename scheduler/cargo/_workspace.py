"""The workspace as cargo sees it: members, their roots, and the path dependencies between them.

It comes from `cargo metadata --no-deps` (offline), run again only when what that command read
changes (engine/_metadata.py says what that is and how it is remembered).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import xxhash

from .._exceptions import MetadataError, NotAWorkspace, UnknownPackage
from . import _graph
from ._root import find_workspace_root


@dataclass(frozen=True)
class Package:
    name: str
    id: str
    root: Path
    manifest: Path
    deps: frozenset[str]
    """Workspace members this package needs to build (normal and build dependencies)."""
    dev_deps: frozenset[str]
    """Workspace members only its tests, examples and benches need."""
    target_kinds: frozenset[str] = frozenset()
    declared_features: frozenset[str] = frozenset()
    requested_by: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict, compare=False)
    """Features other members ask of this one, per dependent member and dependency kind ("normal",
    "build", "dev"), "default" included when asked with default features on: what a build that
    reaches this one through that dependent enables."""
    renamed_by: frozenset[str] = frozenset()
    """Dependents that depend on this member under another name (`dep/feature` must use that name)."""
    outside_path_deps: bool = False
    """It depends on a path crate that is not a member: sources no lockfile pins."""
    outside_dirs: frozenset[str] = frozenset()
    """The directories of those path crates, as cargo metadata names them (`cargo/_outside.py`
    follows their own path dependencies)."""
    crate_names: frozenset[str] = frozenset()
    """Its targets' crate names (`-` as `_`), as rustc names their dep-info files."""
    targets: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)
    """cargo metadata's target objects, as cargo's JSON messages carry them."""
    gated_targets: frozenset[str] = frozenset()
    """Targets with `required-features`: whether cargo builds them depends on the features."""


@dataclass(frozen=True)
class Workspace:
    root: Path
    target_dir: Path
    packages: dict[str, Package]
    default_members: tuple[str, ...] = ()
    """What cargo selects at the root with no -p: `default-members`, else the root package, else
    every member (cargo metadata's `workspace_default_members`; empty from an older cargo)."""
    feature_requests: bytes = b""
    """A digest of what every member's manifest says about features and dependencies (paths made
    relative to the root): the `--workspace` build the engine's runs reproduce gives each crate the
    union of what every member asks of it, so one member's `b = { features = ["x"] }` (or
    `serde/derive`) changes another's build without touching its sources (`feature_digest`)."""
    ambiguous: frozenset[str] = frozenset()
    """Members whose name another package of the lockfile has too (a registry crate of that name):
    cargo refuses `-p name` for them ("is ambiguous"), so `spec` names them by package id."""
    _by_root: dict[Path, str] = field(default_factory=dict, compare=False, repr=False)
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_root.update({p.root: p.name for p in self.packages.values()})

    @property
    def members(self) -> list[str]:
        return sorted(self.packages)

    def spec(self, name: str) -> str:
        """What `-p` takes for member `name`: the name, or its package id where the name is ambiguous."""
        return self.packages[name].id if name in self.ambiguous else name

    def require(self, names: Iterable[str]) -> list[str]:
        """Validate package names; raise UnknownPackage naming the first that is not a member."""
        out = []
        for name in names:
            if name not in self.packages:
                raise UnknownPackage(name, self.members)
            out.append(name)
        return out

    def owner(self, path: Path) -> str | None:
        """The package whose root contains `path` most closely, or None (a workspace-wide file)."""
        current = path
        while True:
            name = self._by_root.get(current)
            if name is not None:
                return name
            if current == self.root or current.parent == current:
                return None
            current = current.parent

    def dep_edges(self, *, dev: bool) -> dict[str, set[str]]:
        """Member -> members it builds against. Shared and memoised: do not mutate the result."""
        edges: dict[str, set[str]] | None = self._memo.get(("edges", dev))
        if edges is None:
            edges = {n: set(p.deps) | (set(p.dev_deps) if dev else set()) for n, p in self.packages.items()}
            self._memo["edges", dev] = edges
        return edges

    def built_against(self, names: Iterable[str], *, dev: bool) -> list[str]:
        """`names` and every member they build against, sorted (with `dev`, the selected members'
        dev-dependencies too). Memoised: a shell's `cargo check` asks the same at every question."""
        selected = tuple(names)
        found: list[str] | None = self._memo.get(("built_against", selected, dev))
        if found is None:
            first = set(selected)
            if dev:
                for name in selected:
                    first |= self.packages[name].dev_deps
            found = self._memo["built_against", selected, dev] = sorted(
                _graph.reachable(first, self.dep_edges(dev=False))
            )
        return list(found)

    def dependents(self, names: Iterable[str], *, dev: bool = False) -> set[str]:
        """`names` plus every member that depends on them, transitively."""
        return _graph.reachable(names, _graph.reverse_edges(self.dep_edges(dev=dev)))

    def unification(self, names: Iterable[str], *, dev: bool) -> tuple[list[str], list[str]]:
        """What makes a `-p names` build enable the features a `--workspace` build enables in every
        member it builds: (`member/feature` flags, members whose flag cargo only takes if they are
        selected too).

        Selecting every member unifies what every member asks of another (resolver 2;
        dev-dependencies' requests only when tests are built) and turns on each member's defaults.
        A `-p` build enables, in the members it reaches, only what the members on the way ask for
        (and the selected ones' defaults), so its units can differ (an error under
        `#[cfg(feature)]` can vanish). Only the features that differ are named. Cargo accepts
        `M/feature` when M is selected or a direct dependency (by that name) of a selected package;
        any other M is returned in the second list, for the caller to select (check/build) or to
        leave as it is (tests: selecting M would run its tests)."""
        kinds = ("normal", "build", "dev") if dev else ("normal", "build")
        edges = self.dep_edges(dev=dev)
        selected = set(names)
        reach = _graph.reachable(selected, edges)
        flags: list[str] = []
        undirect: list[str] = []
        for name in sorted(reach):
            package = self.packages[name]
            own_default = {"default"} & package.declared_features
            everywhere = set(own_default).union(
                *(asked.get(k, frozenset()) for asked in package.requested_by.values() for k in kinds)
            )
            narrowed = set(own_default) if name in selected else set()
            for dependent, asked in package.requested_by.items():
                if dependent in reach and name in edges[dependent]:
                    narrowed.update(*(asked.get(k, frozenset()) for k in kinds))
            missing = sorted((everywhere - narrowed) & package.declared_features)
            if not missing:
                continue
            direct = name in selected or any(name in edges[s] and s not in package.renamed_by for s in selected)
            if not direct:
                undirect.append(name)
            flags.extend(f"{name}/{feature}" for feature in missing)
        return flags, undirect

    def order(self, *, dev: bool = False) -> list[str]:
        order: list[str] | None = self._memo.get(("order", dev))
        if order is None:
            order = self._memo["order", dev] = _graph.topological_order(self.dep_edges(dev=dev))
        return list(order)


def find_root(start: Path) -> Path:
    """The directory of the nearest Cargo.toml at or above `start` that declares a workspace (as
    cargo searches), else the nearest Cargo.toml's directory (a single-package workspace)."""
    root = find_workspace_root(str(start))
    if root is None:
        raise NotAWorkspace(f"no Cargo.toml at or above {str(start.resolve())!r}")
    return Path(root)


_LOCKED_NAME = re.compile(r'^name = "([^"]+)"$', re.MULTILINE)


def locked_names(lockfile: str) -> list[str]:
    """The name of every package in Cargo.lock, by line, not parsed: cargo writes one
    `name = "..."` per package, and a large lockfile must cost no more than a read."""
    return _LOCKED_NAME.findall(lockfile)


def with_lockfile(ws: Workspace, lockfile: str) -> Workspace:
    """`ws` knowing which members share their name with another locked package (`ambiguous`)."""
    counts = Counter(locked_names(lockfile))
    ambiguous = frozenset(n for n in ws.packages if counts[n] > 1)
    return replace(ws, ambiguous=ambiguous) if ambiguous != ws.ambiguous else ws


def parse_metadata(data: Mapping[str, Any]) -> Workspace:
    """Build the model from `cargo metadata --format-version 1 --no-deps` JSON."""
    try:
        root = Path(data["workspace_root"])
        member_ids = set(data["workspace_members"])
        pkgs = [p for p in data["packages"] if p["id"] in member_ids]
        # Directories as strings (cargo prints them normalised): a Path per dependency cost most of
        # the parse (13 ms on 150 members).
        by_dir = {os.path.dirname(p["manifest_path"]): p["name"] for p in pkgs}
        packages: dict[str, Package] = {}
        requested_by: dict[str, dict[str, dict[str, set[str]]]] = {}
        renamed_by: dict[str, set[str]] = {}
        for p in pkgs:
            for d in p.get("dependencies", []):
                target = by_dir.get(d["path"]) if d.get("path") else None
                if target is None or target == p["name"]:
                    continue
                kind = d.get("kind") or "normal"
                features = set(d.get("features") or [])
                if d.get("uses_default_features", True):
                    features.add("default")
                requested_by.setdefault(target, {}).setdefault(p["name"], {}).setdefault(kind, set()).update(features)
                if d.get("rename"):
                    renamed_by.setdefault(target, set()).add(p["name"])
        for p in pkgs:
            deps: set[str] = set()
            dev: set[str] = set()
            for d in p.get("dependencies", []):
                target = by_dir.get(d["path"]) if d.get("path") else None
                if target is None or target == p["name"]:
                    continue
                (dev if d.get("kind") == "dev" else deps).add(target)
            manifest = Path(p["manifest_path"])
            outside_dirs = frozenset(
                str(d["path"]) for d in p.get("dependencies", []) if d.get("path") and d["path"] not in by_dir
            )
            outside = bool(outside_dirs)
            kinds = frozenset(k for t in p.get("targets", []) for k in t.get("kind", []))
            packages[p["name"]] = Package(
                name=p["name"],
                id=p["id"],
                root=manifest.parent,
                manifest=manifest,
                deps=frozenset(deps),
                dev_deps=frozenset(dev - deps),
                target_kinds=kinds,
                declared_features=frozenset(p.get("features") or {}),
                requested_by={
                    d: {k: frozenset(v) for k, v in kinds_.items()}
                    for d, kinds_ in requested_by.get(p["name"], {}).items()
                },
                renamed_by=frozenset(renamed_by.get(p["name"], ())),
                outside_path_deps=outside,
                outside_dirs=outside_dirs,
                crate_names=frozenset(str(t["name"]).replace("-", "_") for t in p.get("targets", [])),
                targets=tuple(_target_object(t) for t in p.get("targets", [])),
                gated_targets=frozenset(str(t["name"]) for t in p.get("targets", []) if t.get("required-features")),
            )
        names = {p["id"]: p["name"] for p in pkgs}
        defaults = tuple(names[i] for i in data.get("workspace_default_members") or () if i in names)
        return Workspace(
            root=root,
            target_dir=Path(data["target_directory"]),
            packages=packages,
            default_members=defaults,
            feature_requests=feature_digest(pkgs, str(root)),
        )
    except (KeyError, TypeError) as exc:
        raise MetadataError(f"cargo metadata output is not understood: missing {exc}") from exc


def path_of_id(package_id: str) -> str:
    """`path+file:///abs/dir#name@1.0` -> `/abs/dir` (cargo's package id spec for path packages)."""
    from urllib.parse import unquote, urlparse

    url = package_id[len("path+") :].split("#", 1)[0]
    return unquote(urlparse(url).path)


def outside_name(package_id: str) -> str:
    """`path+file:///abs/dir#name@1.0` or `path+file:///abs/name#1.0` -> `name` (cargo's package
    id spec leaves the name out where it is the directory's)."""
    url, _, fragment = package_id.partition("#")
    if "@" in fragment:
        return fragment.split("@", 1)[0]
    return os.path.basename(path_of_id(url))


def feature_digest(members: list[dict[str, Any]], root: str) -> bytes:
    """Every member's `[features]` table and dependency entries, by name, without paths: what
    cargo's feature resolve reads from the members' manifests (Cargo.lock and `[patch]` are keyed
    as files). Any edit of them changes every key: such edits are rare beside source edits, and
    cargo itself decides what they change. One `repr` of tuples, not JSON per entry: this runs at
    every metadata load."""
    entries = []
    prefix = root.rstrip(os.sep) + os.sep
    for p in members:
        deps = sorted(
            (
                str(d.get("name")),
                str(d.get("rename")),
                str(d.get("kind")),
                str(d.get("target")),
                str(d.get("req")),
                str(d.get("source")),
                bool(d.get("optional")),
                bool(d.get("uses_default_features", True)),
                tuple(sorted(d.get("features") or ())),
                _relative(d["path"], prefix) if d.get("path") else "",
            )
            for d in p.get("dependencies", [])
        )
        features = sorted((k, tuple(v)) for k, v in (p.get("features") or {}).items())
        entries.append((str(p["name"]), features, deps))
    entries.sort()
    return xxhash.xxh3_128_digest(repr(entries).encode("utf-8", "surrogateescape"))


def _relative(path: str, prefix: str) -> str:
    """A path inside the root by its rest (a string cut: cargo prints normalised paths), else by
    `relpath` (outside path crates, few)."""
    return path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, prefix)


_TARGET_FIELDS = ("kind", "crate_types", "name", "src_path", "edition", "doc", "doctest", "test")


def _target_object(target: Mapping[str, Any]) -> dict[str, Any]:
    """A metadata target as a `compiler-message` names it (the same keys, in cargo's order)."""
    return {k: target[k] for k in _TARGET_FIELDS if k in target}


def load_metadata_json(text: str) -> dict[str, Any]:
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                value: dict[str, Any] = json.loads(line)
                return value
            except json.JSONDecodeError as exc:
                raise MetadataError(f"cargo metadata printed invalid JSON: {exc}") from exc
    raise MetadataError("cargo metadata printed no JSON")
