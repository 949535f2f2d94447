"""Dependency-graph algorithms over workspace members, kept pure so they can be property-tested.

Edges point from a package to the packages it depends on. Dev-dependencies can close a cycle among
members (a test of `a` uses `b`, which depends on `a`), so every function here accepts cycles:
topological order is computed over strongly connected components, and closures are plain
reachability.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def reverse_edges(deps: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Map each package to the packages that depend on it directly."""
    rdeps: dict[str, set[str]] = {name: set() for name in deps}
    for name, targets in deps.items():
        for target in targets:
            rdeps.setdefault(target, set()).add(name)
    return rdeps


def reachable(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Everything reachable from `start` (inclusive) following `edges`; terminates on cycles."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(t for t in edges.get(node, ()) if t not in seen)
    return seen


def strongly_connected(deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's SCCs, iteratively (no recursion limit on 400-crate chains).

    Components come out dependencies first: each component appears after every component it
    depends on, which is exactly a build order.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(deps):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(deps.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            if pending:
                child = pending.pop()
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(deps.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def topological_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependencies before dependents; members of a cycle are kept together, sorted by name."""
    return [name for component in strongly_connected(deps) for name in component]


def cycles(deps: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The dependency cycles (components of more than one package, or a self-loop)."""
    return [c for c in strongly_connected(deps) if len(c) > 1 or c[0] in set(deps.get(c[0], ()))]
