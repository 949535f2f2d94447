"""Feature unification with crates from outside the workspace, decided by cargo's own resolve.

A narrowed run (`-p B`) builds every crate it reaches with the features the selected members ask
for; `--workspace` builds it with what every member asks for. For members `Workspace.unification`
closes the gap from the manifests. For registry crates (and path crates that are not members) the
manifests are not ours to re-resolve, so the gap is measured: `cargo tree -e features` for
`--workspace` and for the selection, compared unit by unit (a package *and* whether it is built for
the host: resolver 2 gives a build script's copy other features than the target's), then closed by
`dep?/feature` flags (when a selected member depends on that crate directly) or by selecting the
members that request the missing feature, and measured again until equal. Anything that does not
converge selects every member: that is `--workspace`, always right.

`cargo metadata`'s resolve is not used: it unions host and target features and always includes
dev-dependencies, so it does not say what resolver 2 builds. `cargo tree` does, and takes the same
`-p`/`--features` flags as the build, so the check of a decision is cargo's word, not ours.

The decision is cached by its inputs (manifests, Cargo.lock, cargo config, path crates' manifests,
toolchain, cargo's variables, selection, whether tests are built), in memory and, given a
`DecisionStore`, on disk: each round is a `cargo tree` (0.3-0.4 s on a 71-member workspace with
~400 registry crates, 2 cores) and a decision takes up to four, while source edits, the common
case, change none of its inputs, so a new process (the CLI, a restarted daemon) should not pay
them again. A lockfile that names no package outside the workspace costs one small read and
nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import xxhash

from . import _tree
from ._config import config_files
from ._run import run_cargo
from ._tree import Resolve, compare, parse_tree, plan_step
from ._workspace import Workspace, locked_names

__all__ = ["DecisionStore", "Unified", "compare", "outside_packages", "parse_tree", "plan_step", "unify"]

_V = TypeVar("_V")
_MAX_ROUNDS = 4
_TREE_TIMEOUT_S = 120.0
_CACHE_LIMIT = 256


@dataclass(frozen=True)
class Unified:
    extra: tuple[str, ...]
    """Members to select besides the requested ones."""
    flags: tuple[str, ...]
    """`--features` values: `member/feature` and `dep?/feature`."""
    verified: bool
    """cargo tree confirmed every unit of the run equals `--workspace`'s."""


class DecisionStore(Protocol):
    """Where decisions outlive the process: JSON-able values by string key; blocking (SQLite)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any]) -> None: ...


_STORED = "unify/v1/"
"""Namespace and format of the persisted entries: `outside/<base digest>` (the path crates
outside the workspace that the resolve reached, so a new process keys on their manifests before
it runs cargo) and `decision/<key digest>`."""


def _stored_key(kind: str, parts: tuple[object, ...]) -> str:
    return _STORED + kind + "/" + xxhash.xxh3_128_hexdigest(repr(parts).encode())


def _load_decision(store: DecisionStore, key: tuple[object, ...]) -> Unified | None:
    value = store.get(_stored_key("decision", key))
    try:
        if value is not None:
            extra, flags, verified = value["extra"], value["flags"], value["verified"]
            if all(isinstance(x, str) for x in [*extra, *flags]) and isinstance(verified, bool):
                return Unified(tuple(extra), tuple(flags), verified)
    except (KeyError, TypeError):
        pass
    return None  # absent, or not a value this format wrote: decide again


def _save_decision(store: DecisionStore, key: tuple[object, ...], decision: Unified) -> None:
    value = {"extra": list(decision.extra), "flags": list(decision.flags), "verified": decision.verified}
    store.put(_stored_key("decision", key), value)


def outside_packages(lock_text: str, members: Mapping[str, object]) -> bool:
    """Whether Cargo.lock names a package that is not a workspace member (registry, git, or a path
    crate outside the workspace): only then can a narrowed run build a crate unlike `--workspace`.
    Read by line (`locked_names`)."""
    if "[[package]]" not in lock_text:
        return True  # not a lockfile we can read: measure
    names = locked_names(lock_text)
    return len(names) > len(members) or any(n not in members for n in names)


_free: dict[bytes, bool] = {}
_free_ws: dict[str, Workspace] = {}
"""Workspaces whose lockfile names only members, by root. Only a manifest edit can add a package
from outside (and it reloads the Workspace), so the same object needs no second look."""
_decisions: dict[tuple[object, ...], Unified] = {}
_trees: dict[tuple[object, ...], Resolve] = {}
_outside_manifests: dict[bytes, tuple[Path, ...]] = {}


def _remember(store: dict[tuple[object, ...], _V], key: tuple[object, ...], value: _V) -> None:
    if len(store) >= _CACHE_LIMIT:
        store.pop(next(iter(store)))
    store[key] = value


def _digest(paths: Sequence[Path]) -> bytes:
    h = xxhash.xxh3_128()
    for path in paths:
        h.update(str(path).encode() + b"\0")
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"\0absent")
        h.update(b"\0")
    return h.digest()


def _inputs(
    ws: Workspace, env: Mapping[str, str], toolchain: str | None, store: DecisionStore | None = None
) -> tuple[bool, bytes]:
    """(outside packages exist, digest of everything the resolve depends on). Blocking: run in a thread."""
    try:
        lock = (ws.root / "Cargo.lock").read_bytes()
    except OSError:
        lock = b""
    lock_digest = xxhash.xxh3_128_digest(lock)
    free = _free.get(lock_digest)
    if free is None:
        free = _free[lock_digest] = bool(lock) and not outside_packages(lock.decode(errors="replace"), ws.packages)
        if len(_free) > _CACHE_LIMIT:
            _free.clear()
    if free:
        return False, b""
    manifests = sorted({ws.root / "Cargo.toml", *(p.manifest for p in ws.packages.values())})
    cargo_vars = sorted((k, v) for k, v in env.items() if k.startswith(("CARGO", "RUSTUP")))
    base = xxhash.xxh3_128(lock)
    base.update(_digest([*manifests, *(Path(p) for p in config_files(ws.root, env))]))
    base.update(repr((toolchain, cargo_vars)).encode())
    base_digest = base.digest()
    outside = _outside_manifests.get(base_digest)
    if outside is None and store is not None:
        value = store.get(_stored_key("outside", (base_digest,)))
        paths = value.get("paths") if value is not None else None
        if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
            outside = _outside_manifests[base_digest] = tuple(Path(p) for p in paths)
    return True, base_digest + _digest(list(outside or ()))


async def _tree_of(
    root: Path,
    key: tuple[object, ...],
    selection: Sequence[str] | None,
    flags: Sequence[str],
    *,
    dev: bool,
    env: Mapping[str, str],
    toolchain: str | None,
) -> Resolve | None:
    """cargo's resolve for `--workspace` (selection None) or `-p selection --features flags`."""
    memo = (*key, dev, None if selection is None else tuple(selection), tuple(flags))
    found = _trees.get(memo)
    if found is not None:
        return found
    edges = "features,normal,build,dev" if dev else "features,normal,build"
    args = ["tree", "-e", edges, "--prefix", "indent", "--charset", "ascii", "--format", _tree.FORMAT, "--offline"]
    if selection is None:
        args.append("--workspace")
    else:
        for name in selection:
            args += ["-p", name]
        if flags:
            args += ["--features", ",".join(flags)]
    outcome = await run_cargo(args, cwd=root, env=env, toolchain=toolchain, timeout_s=_TREE_TIMEOUT_S)
    if outcome.exit_code != 0:
        return None
    resolve = parse_tree(outcome.stdout_text)
    _remember(_trees, memo, resolve)
    return resolve


async def unify(
    ws: Workspace,
    names: Sequence[str],
    *,
    dev: bool,
    select_members: bool,
    root: Path,
    env: Mapping[str, str],
    toolchain: str | None = None,
    store: DecisionStore | None = None,
) -> Unified:
    """What to add to a run of `names` so that every unit it builds is `--workspace`'s unit.

    `select_members=False` (test runs: an extra member would run its tests) uses flags only and
    leaves what flags cannot reach as `-p` builds it. Without a package outside the workspace this
    is `Workspace.unification` and runs nothing. `store` keeps decisions for the next process."""
    member_flags, undirect = ws.unification(names, dev=dev)
    if select_members:
        base = Unified(tuple(undirect), tuple(member_flags), False)
    else:
        base = Unified((), tuple(f for f in member_flags if f.split("/", 1)[0] not in undirect), False)
    if _free_ws.get(str(ws.root)) is ws:
        return base
    measured, digest = await anyio.to_thread.run_sync(_inputs, ws, env, toolchain, store)
    if not measured:
        _free_ws[str(ws.root)] = ws
        return base
    decision_key = (str(ws.root), digest, dev, select_members, tuple(sorted(names)))
    cached = _decisions.get(decision_key)
    if cached is None and store is not None:
        cached = await anyio.to_thread.run_sync(_load_decision, store, decision_key)
        if cached is not None:
            _remember(_decisions, decision_key, cached)
    if cached is not None:
        return cached
    key = (str(ws.root), digest)
    # The first selection's tree does not depend on --workspace's: on a first question, both at once.
    first = _selection(ws, names, set(base.extra), set(), dev=dev, select_members=select_members)
    trees: dict[str, Resolve | None] = {}

    async def tree(slot: str, selection: Sequence[str] | None, flags: Sequence[str]) -> None:
        named = None if selection is None else [ws.spec(n) for n in selection]
        trees[slot] = await _tree_of(root, key, named, flags, dev=dev, env=env, toolchain=toolchain)

    async with anyio.create_task_group() as tg:
        tg.start_soon(tree, "whole", None, ())
        tg.start_soon(tree, "first", *first)
    whole = trees["whole"]
    if whole is None:
        return base  # cargo cannot resolve offline: the build itself will say why
    learned = whole.outside_manifests(ws)
    base_digest = digest[:16]
    if _outside_manifests.get(base_digest) != learned:
        # First sight of the path crates outside the workspace: key on their manifests too.
        _outside_manifests[base_digest] = learned
        digest = base_digest + await anyio.to_thread.run_sync(_digest, list(learned))
        decision_key = (str(ws.root), digest, dev, select_members, tuple(sorted(names)))
        if store is not None:
            value = {"paths": [str(p) for p in learned]}
            await anyio.to_thread.run_sync(store.put, _stored_key("outside", (base_digest,)), value)
    decision = await _converge(
        ws, names, base, whole, key, dev=dev, select_members=select_members, env=env, toolchain=toolchain, root=root
    )
    _remember(_decisions, decision_key, decision)
    if store is not None:
        await anyio.to_thread.run_sync(_save_decision, store, decision_key, decision)
    return decision


def _selection(
    ws: Workspace, names: Sequence[str], extra: set[str], dep_flags: set[str], *, dev: bool, select_members: bool
) -> tuple[list[str], list[str]]:
    """A round's `-p` list and `--features` flags: `names`, the chosen members and those whose
    member flags need selecting (added to `extra`), then member and dependency flags."""
    selection = [*names, *sorted(extra - set(names))]
    member_flags, undirect = ws.unification(selection, dev=dev)
    if select_members:
        extra.update(undirect)
        selection = [*names, *sorted(extra - set(names))]
        member_flags, _ = ws.unification(selection, dev=dev)
    else:
        member_flags = [f for f in member_flags if f.split("/", 1)[0] not in undirect]
    return selection, [*member_flags, *sorted(dep_flags)]


async def _converge(
    ws: Workspace,
    names: Sequence[str],
    base: Unified,
    whole: Resolve,
    key: tuple[object, ...],
    *,
    dev: bool,
    select_members: bool,
    env: Mapping[str, str],
    toolchain: str | None,
    root: Path,
) -> Unified:
    extra = set(base.extra)
    dep_flags: set[str] = set()
    flags_ok = True
    best = base
    for _ in range(_MAX_ROUNDS):
        selection, flags = _selection(ws, names, extra, dep_flags, dev=dev, select_members=select_members)
        named = [ws.spec(n) for n in selection]
        narrowed = await _tree_of(root, key, named, flags, dev=dev, env=env, toolchain=toolchain)
        if narrowed is None:
            if dep_flags and flags_ok:  # cargo refused a dependency flag (a renamed dependency)
                flags_ok, dep_flags = False, set()
                continue
            break
        diff = compare(whole, narrowed)
        if diff.equal:
            return Unified(tuple(sorted(extra - set(names))), tuple(flags), True)
        if diff.over and dep_flags and flags_ok:
            flags_ok, dep_flags = False, set()  # a flag also reached a unit --workspace leaves alone
            continue
        if not diff.over:
            best = Unified(tuple(sorted(extra - set(names))), tuple(flags), False)
        step = plan_step(whole, narrowed, diff, set(selection), ws.packages, flags=flags_ok, members=select_members)
        if step is None or not (step.flags - dep_flags or step.members - extra):
            break
        dep_flags |= step.flags
        extra |= step.members
    if not select_members:
        return best
    return Unified(tuple(sorted(set(ws.packages) - set(names))), (), False)


def forget() -> None:
    """Drop every cached resolve and decision (tests that measure a first selection's cost)."""
    _free.clear()
    _free_ws.clear()
    _decisions.clear()
    _trees.clear()
    _outside_manifests.clear()
