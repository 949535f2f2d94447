"""Deciding what a request runs, what it reads from the cache and what it leaves pending.

Pure functions over names and keys, so the scope rules can be tested without cargo:

- stale: members whose key has no cached answer;
- changed: stale members that are stale for their own reasons (their own files changed, or a shared
  input changed and no stale dependency explains it), i.e. where an edit happened;
- affected: changed members and everything that depends on them.

Scopes: `changed` runs the changed packages; `affected` runs every affected one; `workspace` runs
whatever is stale and reads the rest from the cache; `auto` runs the changed packages now, answers
the rest from the cache, and leaves the stale dependents pending for background work (packages
named explicitly are always run when stale: they are what the caller is waiting for).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..cargo import _graph


@dataclass(frozen=True)
class Plan:
    run: list[str]
    """Packages cargo must run now (dependencies first)."""
    from_cache: list[str]
    """Packages answered from the cache."""
    pending: list[str]
    """Stale packages this answer does not wait for; background work will check them."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Members left out of this answer, with the reason."""


def changed_packages(
    stale: set[str],
    deps: Mapping[str, set[str]],
    own_changed: Iterable[str],
    context_changed: Iterable[str] = (),
    within: set[str] | None = None,
) -> set[str]:
    """Where the edits are: stale members whose own files changed since their last answer, plus
    members stale because a shared input changed (toolchain, lockfile, config) that have no stale
    dependency to blame. A member stale only because a dependency's key changed is not changed."""
    pool = stale if within is None else stale & within
    shared = set(context_changed) & pool
    frontier = {n for n in shared if not (deps.get(n, set()) & pool)}
    return frontier | (set(own_changed) & pool)


def plan(
    scope: str,
    members: Iterable[str],
    selected: Iterable[str],
    stale: set[str],
    own_changed: Iterable[str],
    deps: Mapping[str, set[str]],
    order: list[str],
    context_changed: Iterable[str] = (),
) -> Plan:
    """Apply `scope` to a request for `selected` packages (all members when empty)."""
    all_members = set(members)
    chosen = set(selected) or set(all_members)
    changed = changed_packages(stale, deps, own_changed, context_changed, within=chosen)

    if scope == "changed":
        universe = changed
        run = changed
        pending: set[str] = set()
        reason = "not changed since its last answer"
    elif scope == "affected":
        universe = (_graph.reachable(changed, _graph.reverse_edges(deps)) & stale) | (chosen & stale)
        run = universe
        pending = set()
        reason = "not affected by the changes"
    elif scope == "workspace":
        universe = chosen
        run = chosen & stale
        pending = set()
        reason = "not selected"
    elif scope == "auto":
        run = changed
        dependents = _graph.reachable(changed, _graph.reverse_edges(deps))
        pending = (stale & (chosen | dependents)) - run
        universe = chosen | pending
        reason = "not selected"
    else:
        raise ValueError(f"unknown scope {scope!r}")

    if set(selected):
        # Packages named explicitly are what the caller waits for, in every scope: run when stale
        # (whatever made them stale), answered from the cache otherwise.
        run = run | (stale & chosen)
        universe = universe | chosen
        pending = pending - run
    from_cache = universe - run - pending
    skipped = {n: reason for n in all_members - universe}
    rank = {name: i for i, name in enumerate(order)}
    return Plan(
        run=sorted(run, key=lambda n: rank.get(n, 0)),
        from_cache=sorted(from_cache),
        pending=sorted(pending, key=lambda n: rank.get(n, 0)),
        skipped=skipped,
    )
