"""Which crates a benchmark edits: the hub, a mid-layer crate and a leaf, from the dependency graph.

Chosen from `cargo metadata`, so the same scenarios run on a generated workspace and on any real
one given with `--workspace PATH`: the hub is the library most members depend on (transitively),
the leaf a library nothing depends on, the mid crate the library whose dependents are closest to
the median of those that have any. Each edit appends to the crate's `lib.rs` (its lib target's
source), which is restored byte for byte at the end.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Subject:
    name: str
    lib_rs: Path
    dependents: int
    """Members that depend on it, directly or not: what `cargo check --workspace` re-checks after an edit."""
    has_tests: bool


@dataclass(frozen=True)
class Subjects:
    hub: Subject
    mid: Subject
    leaf: Subject
    members: int

    def by_role(self, role: str) -> Subject:
        return {"hub": self.hub, "mid": self.mid, "leaf": self.leaf}[role]


def choose(root: Path) -> Subjects:
    """The hub, mid and leaf of the workspace at `root` (raises ValueError when it has no libraries)."""
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise ValueError(f"`cargo metadata` failed in {root}: {out.stderr.strip()[-500:]}")
    data = json.loads(out.stdout)
    members = set(data["workspace_members"])
    packages = [p for p in data["packages"] if p["id"] in members]
    names = {p["name"] for p in packages}
    direct: dict[str, set[str]] = {p["name"]: set() for p in packages}
    for p in packages:
        for dep in p["dependencies"]:
            if dep["name"] in names and dep.get("kind") in (None, "normal", "build"):
                direct[dep["name"]].add(p["name"])  # p depends on dep: p is a dependent of dep

    def dependents(name: str) -> int:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for d in direct[todo.pop()] - seen:
                seen.add(d)
                todo.append(d)
        return len(seen)

    libs: list[Subject] = []
    for p in packages:
        lib = next((t for t in p["targets"] if "lib" in t["kind"] or "rlib" in t["kind"]), None)
        if lib is None:
            continue
        has_tests = any("test" in t["kind"] for t in p["targets"]) or "#[test]" in Path(lib["src_path"]).read_text(
            errors="replace"
        )
        libs.append(Subject(p["name"], Path(lib["src_path"]), dependents(p["name"]), has_tests))
    if not libs:
        raise ValueError(f"no workspace member of {root} has a library target to edit")
    by_count = sorted(libs, key=lambda s: (s.dependents, s.name))
    hub = by_count[-1]
    leaf = next((s for s in by_count if s.dependents == 0 and s.has_tests), by_count[0])
    middle = [s for s in by_count if 0 < s.dependents < hub.dependents] or [hub]
    median = middle[len(middle) // 2].dependents
    mid = min(middle, key=lambda s: (abs(s.dependents - median), not s.has_tests, s.name))
    return Subjects(hub=hub, mid=mid, leaf=leaf, members=len(packages))
