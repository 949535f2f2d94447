"""Reading `cargo tree -e features` and deciding what a narrowed selection misses (pure functions).

The tree is printed with `--prefix indent --charset ascii --format "{p} ;; {f}"`: the indentation
gives the parent of every line, `[build-dependencies]` headers and `(proc-macro)` packages tell a
host unit from a target one (resolver 2 resolves them apart), and a line ending in `(*)` is a node
printed in full earlier under the same key. A unit is (package label, host); its features are what
cargo prints after `;;`. Feature nodes (`serde feature "derive"`) are the requests: whoever is above
one in the tree asked for that feature.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._workspace import Workspace

FORMAT = "{p} ;; {f}"
_SEP = " ;; "
_FEATURE = re.compile(r'^(\S+) feature "([^"]*)"')
_PATH = re.compile(r"\((/[^()]*)\)$")
_TRIM = " |`-"

Node = tuple[str, str, str, bool]
"""("p", package label, "", host) or ("f", package name, feature, host)."""
Unit = tuple[str, bool]
"""(package label as cargo prints it, built for the host)."""


@dataclass
class Resolve:
    units: dict[Unit, set[frozenset[str]]] = field(default_factory=dict)
    edges: dict[Node, set[Node]] = field(default_factory=dict)
    roots: dict[str, Node] = field(default_factory=dict)
    """Member name -> its package node (each selected member's tree starts with one)."""
    _parents: dict[Node, set[Node]] | None = field(default=None, repr=False)

    def ancestors(self, node: Node) -> set[Node]:
        if self._parents is None:
            self._parents = {}
            for parent, children in self.edges.items():
                for child in children:
                    self._parents.setdefault(child, set()).add(parent)
        seen: set[Node] = set()
        todo = [node]
        while todo:
            for parent in self._parents.get(todo.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    def outside_manifests(self, ws: Workspace) -> tuple[Path, ...]:
        """Manifests of path crates that are not members: their features are in no member's key."""
        roots = {str(p.root) for p in ws.packages.values()}
        found = set()
        for label, _host in self.units:
            match = _PATH.search(label)
            if match and match.group(1) not in roots:
                found.add(Path(match.group(1)) / "Cargo.toml")
        return tuple(sorted(found))


def parse_tree(lines: Iterable[str]) -> Resolve:
    """The graph of `cargo tree` output in `FORMAT` (see the module docstring)."""
    out = Resolve()
    stack: list[Node] = []
    sections: dict[int, str] = {}  # depth of a node -> the header its next children are under
    for raw in lines:
        line = raw.rstrip()
        text = line.lstrip(_TRIM)
        if not text:
            continue
        depth = (len(line) - len(text)) // 4
        if text.startswith("["):
            sections[depth] = text
            continue
        text = text.removesuffix(" (*)").removesuffix(" (command-line)")
        parent = stack[depth - 1] if 0 < depth <= len(stack) else None
        host = parent is not None and (
            parent[3] or sections.get(depth - 1) == "[build-dependencies]" or "(proc-macro)" in parent[1]
        )
        if _SEP in text or text.endswith(_SEP.rstrip()):
            label, _, feats = text.partition(_SEP.rstrip())
            label = label.strip()
            host = host or "(proc-macro)" in label
            node: Node = ("p", label, "", host)
            out.units.setdefault((label, host), set()).add(frozenset(f for f in feats.strip().split(",") if f))
            if depth == 0:
                out.roots[label.split(" ", 1)[0]] = node
        elif match := _FEATURE.match(text):
            node = ("f", match.group(1), match.group(2), host)
        else:
            continue  # not a line of the tree (a note cargo printed)
        if parent is not None:
            out.edges.setdefault(parent, set()).add(node)
        del stack[depth:]
        stack.append(node)
        for d in [d for d in sections if d >= depth]:
            del sections[d]
    return out


@dataclass(frozen=True)
class Difference:
    missing: dict[Unit, frozenset[str]]
    """Units the narrowed run builds with fewer features than `--workspace`: the features missing."""
    over: bool
    """A unit the narrowed run builds that `--workspace` does not build that way: adding cannot fix it."""

    @property
    def equal(self) -> bool:
        return not self.missing and not self.over


def compare(whole: Resolve, narrowed: Resolve) -> Difference:
    """How the units of a narrowed resolve differ from the `--workspace` one."""
    missing: dict[Unit, frozenset[str]] = {}
    over = False
    for unit, sets in narrowed.units.items():
        expected = whole.units.get(unit)
        if expected == sets:
            continue
        if expected is None or len(expected) != 1 or len(sets) != 1:
            over = True
            continue
        (want,), (have,) = expected, sets
        over = over or bool(have - want)
        if want - have:
            missing[unit] = want - have
    return Difference(missing, over)


@dataclass(frozen=True)
class Step:
    flags: frozenset[str]
    members: frozenset[str]


def plan_step(
    whole: Resolve,
    narrowed: Resolve,
    diff: Difference,
    selected: set[str],
    packages: Mapping[str, object],
    *,
    flags: bool,
    members: bool,
) -> Step | None:
    """What to add so the missing features get requested; None when nothing can (select everything).

    A selected member that misses a feature gets `member/feature`: `--workspace` turned it on
    through another member's feature (`tracing = ["gix-trace/tracing"]`), which the manifests'
    dependency declarations alone do not show. A crate outside the workspace that a selected member
    depends on directly gets `name?/feature` (the `?` never turns an optional dependency on). Any
    other missing request is covered by selecting members that `--workspace`'s tree shows above
    that feature node, fewest first."""
    if diff.over:
        return None
    direct = {
        (n[1].split(" ", 1)[0], n[3])
        for s in selected
        if s in narrowed.roots
        for n in narrowed.edges.get(narrowed.roots[s], ())
    }
    wanted: list[tuple[str, str, bool]] = sorted(
        (label.split(" ", 1)[0], feature, host) for (label, host), feats in diff.missing.items() for feature in feats
    )
    new_flags = set()
    uncovered: dict[tuple[str, str, bool], set[str]] = {}
    for name, feature, host in wanted:
        if name in selected and name in packages:
            new_flags.add(f"{name}/{feature}")  # a selected member: ask it directly
            continue
        if flags and name not in packages and (name, host) in direct:
            new_flags.add(f"{name}?/{feature}")
            continue
        above = whole.ancestors(("f", name, feature, host))
        candidates = {m for m, node in whole.roots.items() if node in above} - selected
        if name in packages and name not in selected:
            candidates.add(name)
        uncovered[(name, feature, host)] = candidates
    if not members:
        return Step(frozenset(new_flags), frozenset())
    if any(not c for c in uncovered.values()):
        return None
    chosen: set[str] = set()
    todo = {r: c for r, c in uncovered.items()}
    while todo:
        counts: dict[str, int] = {}
        for candidates in todo.values():
            for m in candidates:
                counts[m] = counts.get(m, 0) + 1
        best = min(counts, key=lambda m: (-counts[m], m))
        chosen.add(best)
        todo = {r: c for r, c in todo.items() if best not in c}
    return Step(frozenset(new_flags), frozenset(chosen))
