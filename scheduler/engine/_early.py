"""An answer for the asked members as soon as their own units are done, while the run goes on.

To build every unit as `cargo check --workspace` builds it (one set of units: `unified_run_for`), a
narrowed run may have to select most of a real workspace: only the dependents of a hub ask its
registry dependencies for the features `--workspace` enables. The question was about the hub, and
cargo reports each unit as it finishes, dependencies first: once every unit that `cargo check -p`
would build of each asked member's own targets has reported its artifact, nothing later in the run
can say anything about them. Their answer is complete then, at about `-p`'s speed, and the run
finishes behind it (answering the extra members for the widening that follows).

Where the units of a member cannot be told from its manifest the answer waits for the run's end:
`--all-targets` (which targets cargo checks twice, as tests, depends on rules we would have to copy),
bins with `required-features`, and members that are also built for the host (a build dependency,
or under a proc macro): those compile twice, and each compilation prints its own messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import anyio

from ..cargo import _graph
from ..cargo._run import CargoOutcome
from ..cargo._workspace import Package, Workspace
from ._keys import Command

UnitId = tuple[str, str, tuple[str, ...], bool]
"""(package id, target name, target kinds, test profile): one unit as `compiler-artifact` names it."""

_LIB_KINDS = frozenset({"lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro"})


def own_units(package: Package) -> frozenset[UnitId] | None:
    """The units `cargo check -p` builds of `package`'s own code (its lib and bins, not its build
    script: that finishes before them); None where a target's presence depends on features."""
    if package.gated_targets:
        return None
    units: set[UnitId] = set()
    for target in package.targets:
        kinds = tuple(str(k) for k in target.get("kind") or ())
        if _LIB_KINDS.intersection(kinds) or "bin" in kinds:
            units.add((package.id, str(target.get("name", "")), kinds, False))
    return frozenset(units) or None


def built_for_host(ws: Workspace) -> set[str]:
    """Members compiled for build scripts or proc macros as well: a build dependency of a member, a
    proc-macro member, and everything those build against."""
    roots = {n for n, p in ws.packages.items() if "proc-macro" in p.target_kinds}
    for name, package in ws.packages.items():
        if any("build" in kinds for kinds in package.requested_by.values()):
            roots.add(name)
    return _graph.reachable(roots, ws.dep_edges(dev=False))


def expected_units(ws: Workspace, names: Sequence[str], command: Command) -> frozenset[UnitId] | None:
    """Every unit whose artifact completes the answer for `names`; None: wait for the run's end."""
    if command.all_targets or command.kind not in ("check", "clippy"):
        return None
    host = built_for_host(ws)
    units: set[UnitId] = set()
    for name in names:
        own = own_units(ws.packages[name])
        if own is None or name in host:
            return None
        units |= own
    return frozenset(units)


class EarlyWatch:
    """Watches a run's outcome as it streams; `ready` is set once every expected unit reported its
    artifact. A unit that fails reports none (rustc 1.95 prints no closing JSON message for it
    either): a failed member is answered at the run's end.

    `on_message` (a caller's progress stream) is forwarded until `detach`: after the early answer
    the caller is gone, and the rest of the run is background work."""

    def __init__(self, expected: Iterable[UnitId], on_message: Callable[[dict[str, Any]], None] | None) -> None:
        self.waiting = set(expected)
        self.ready = anyio.Event()
        self.current: CargoOutcome | None = None
        """The run's outcome so far (the one `run_cargo` fills)."""
        self._forward = on_message

    def message(self, msg: dict[str, Any]) -> None:
        if self._forward is not None:
            self._forward(msg)

    def outcome(self, outcome: CargoOutcome) -> None:
        self.current = outcome
        if outcome.units:
            unit = outcome.units[-1]
            self.waiting.discard((unit.package_id, unit.target, unit.kinds, unit.test))
        if not self.waiting:
            self.ready.set()

    def detach(self) -> None:
        self._forward = None


def snapshot(outcome: CargoOutcome, *, duration_ms: float) -> CargoOutcome:
    """The outcome so far, copied (the run goes on filling the original), as a finished run that
    built these units successfully would report it."""
    return CargoOutcome(
        argv=list(outcome.argv),
        exit_code=0,
        finished_success=True,
        messages={k: list(v) for k, v in outcome.messages.items()},
        artifacts=set(outcome.artifacts),
        units=list(outcome.units),
        build_scripts=dict(outcome.build_scripts),
        stdout_text=[],
        stderr="",
        duration_ms=duration_ms,
    )
