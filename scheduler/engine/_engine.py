"""The engine: answer cargo's question for the current sources, running as little cargo as possible.

A request flows: observe (metadata if a manifest changed, then a stat walk) -> keys (Merkle hash per
package) -> plan (what is stale, what the scope runs, what comes from the cache, what is pending) ->
run (`cargo <kind> -p ...` on the target dir's gate, shared with identical concurrent requests) ->
verify (sources unchanged during the run, else the answer is not stored) -> store -> report. In
`auto` scope the stale dependents are then checked in the background, yielding to foreground work,
so the next question finds them in the cache.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import xxhash

from .. import _settings
from .._both import both
from .._exceptions import InvalidArgument, MetadataError
from .._settings import Scope
from ..cargo import _outside
from ..cargo._config import cargo_home, config_files
from ..cargo._process import run_bounded
from ..cargo._run import CargoOutcome, run_cargo, stable_environment
from ..cargo._sccache import Wrapping
from ..cargo._workspace import Workspace, load_metadata_json, parse_metadata, with_lockfile
from . import _early, _keys, _metadata, _plan, _runs, _statcache
from ._cache import DiagnosticsCache
from ._fingerprint import Snapshot, TreeHasher
from ._remote._open import open_cache
from ._remote._tiered import (
    TieredCache,
    current_trace,
    hint_key,
    hint_limit,
    question,
    settle_in_thread,
    trace,
)
from ._report import KINDS, SCOPES, CheckReport, Kind, PackageResult
from ._seed import Seeder
from ._singleflight import SingleFlight
from ._store import AnswerStore
from ._targets import Lease, TargetGate, agent_target_base, choose_target_dir
from ._toolchain import Toolchains

_BACKGROUND_BATCH = 24
_METADATA_S = 120.0
_RUSTC_S = 60.0


@dataclass(frozen=True)
class CheckRequest:
    kind: Kind = "check"
    scope: Scope = "auto"
    packages: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    all_features: bool = False
    no_default_features: bool = False
    release: bool = False
    all_targets: bool = False
    extra_env: tuple[tuple[str, str], ...] = ()
    """Variables the call adds (`cargo_env`), over the environment of the question."""
    toolchain: str | None = None
    timeout_s: float | None = None
    deny_warnings: bool = False
    env: tuple[tuple[str, str], ...] | None = None
    """The environment of the question: the CLI's caller's, or that of the MCP client that spawned
    the front. cargo runs in it and keys read what the compiler read of it. None: the engine's own
    (the environment its process started with)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidArgument("kind", f"{self.kind!r} is not one of {', '.join(KINDS)}")
        if self.scope not in SCOPES:
            raise InvalidArgument("scope", f"{self.scope!r} is not one of {', '.join(SCOPES)}")
        if self.timeout_s is not None and not (0 < self.timeout_s <= 24 * 3600):
            raise InvalidArgument("timeout_s", f"{self.timeout_s!r} is not a number of seconds in (0, 86400]")

    def spec(self) -> _runs.RunSpec:
        command = _keys.Command(
            kind=self.kind,
            features=tuple(sorted(self.features)),
            all_features=self.all_features,
            no_default_features=self.no_default_features,
            release=self.release,
            all_targets=self.all_targets,
            toolchain=self.toolchain,
            extra_env=tuple(sorted(self.extra_env)),
        )
        return _runs.RunSpec(command=command, deny_warnings=self.deny_warnings)


@dataclass
class _Observed:
    ws: Workspace
    snap: Snapshot


@dataclass
class _Keys:
    obs: _Observed
    keys: _keys.Keys
    own: dict[str, str]
    """Digest of each member's own files: where an edit happened."""
    context: str
    """Digest of the inputs every member shares."""
    global_key: bytes
    env: dict[str, str]
    """The question's environment: what cargo runs with."""

    @property
    def packages(self) -> dict[str, str | None]:
        """The cache key of each member's answer (None: none can be sound yet)."""
        return self.keys.answer


@dataclass
class _RunResult:
    argv: list[str]
    results: dict[str, PackageResult]
    moved: set[str]
    """Packages whose sources changed while cargo ran: their answers were dropped."""
    error: str | None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Tail:
    """A run that goes on after its early answer: what it will answer, for which sources."""

    flight: tuple[Any, ...]
    """(spec, timeout, environment digest) of the run: a question must match it to share it."""
    checked: frozenset[str]
    walk: dict[str, str]
    done: anyio.Event = field(default_factory=anyio.Event)
    ended: list[_RunResult | BaseException] = field(default_factory=list)

    def covers(self, flight: tuple[Any, ...], names: list[str], walk: dict[str, str]) -> bool:
        return flight == self.flight and all(n in self.checked and self.walk.get(n) == walk.get(n) for n in names)


@dataclass
class _Widening:
    scope: anyio.CancelScope
    names: set[str]
    """What is left to check; a later `auto` answer adds its pending members here."""
    running: bool = False
    """True while its cargo holds the target dir (`status` says "running"), False while it waits
    for a foreground call to leave it ("waiting")."""


class Engine:
    """One workspace root. Create through `EnginePool.get`, which owns the background task group."""

    def __init__(
        self,
        root: Path,
        cache: DiagnosticsCache,
        task_group: anyio.abc.TaskGroup,
        flight: SingleFlight[Any],
        *,
        private_target: bool = False,
        wrapping: Wrapping | None = None,
        seed: bool = True,
    ) -> None:
        self.root = root
        self._real_root = os.path.realpath(root)
        """As cargo names it (its working directory, links resolved)."""
        self.cache = cache
        self.decisions = _runs.LocalDecisions(cache)
        """Where feature-unification decisions outlive this process (the local tier only)."""
        self.private_target = private_target
        self.env = stable_environment()
        self._tg = task_group
        self._hasher = TreeHasher(root)
        self._stat_loaded = False
        self._stat_path = _statcache.stat_cache_path(cache.directory, self._real_root) if cache.persistent else None
        self._observe_lock = anyio.Lock()
        self._ws: Workspace | None = None
        self._last_ws: Workspace | None = None
        self._meta_signature: str | None = None
        """The tree signature (`_metadata.tree_signature`) the metadata holds for."""
        self._signature_of = -1
        self._unsaved: tuple[str, dict[str, Any], str] | None = None
        self._walk_inputs_of: Workspace | None = None
        self._roots: dict[str, str] = {}
        self._keys_memo: dict[Any, _Keys] = {}
        self._own_keys: dict[_runs.RunSpec, dict[str, str]] = {}
        self._results: dict[str, tuple[dict[str, Any], _runs.Roots, PackageResult]] = {}
        self._toolchains = Toolchains(root, self._probe, cache)
        self.store = AnswerStore(root, cache)
        self._gates: dict[Path, TargetGate] = {}
        self._flight = flight
        self._background: dict[tuple[_runs.RunSpec, bytes], _Widening] = {}
        self._tails: list[_Tail] = []
        self._background_idle = anyio.Event()
        self._background_idle.set()
        self.last_walk_ms = 0.0
        self.wrapping = wrapping or Wrapping(None, None)
        """sccache for cargo's compilations (CARGO_SCHEDULER_SCCACHE, or the caller's RUSTC_WRAPPER)."""
        self.seeder = Seeder(seed)
        self.seed_notes: list[str] = []
        """What the seed did, said in the next answer (then forgotten)."""

    def environment(self, request: CheckRequest) -> dict[str, str]:
        """What cargo runs with for `request`: the question's environment (minus per-session noise)
        or the engine's own, then the call's extra variables."""
        base = self.env if request.env is None else stable_environment(dict(request.env))
        return {**base, **dict(request.extra_env)} if request.extra_env else base

    async def compile_environment(self, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        """`env` for a cargo run that compiles: through sccache where configured (outside the keys:
        the wrapper does not change an answer), and what the answer should say about it."""
        wrapped, notes = await self.wrapping.environment(env)
        return dict(wrapped), notes

    # -- observing the workspace -------------------------------------------------------------
    async def observe(self) -> _Observed:
        """Metadata (reloaded only when what it read changed) and a snapshot of the tree as it is now:
        the previous one if the watcher saw no change, else updated (or walked) in a worker thread."""
        async with self._observe_lock:
            for _ in range(3):
                ws = self._ws or await self._load_metadata()
                roots, exclude = self._walk_inputs(ws)
                snap = self._hasher.unchanged(roots, exclude)
                if snap is None:
                    snap = await anyio.to_thread.run_sync(self._walk, roots, exclude)
                    self.last_walk_ms = snap.stats.elapsed_ms
                if self._signature_of == snap.generation:
                    return _Observed(ws, snap)
                signature = self._tree_signature(snap)
                if signature == self._meta_signature:
                    self._signature_of = snap.generation
                    if self._unsaved is not None:  # the walks before and after cargo's run agree
                        tree = _metadata.Tree(snap, tuple(config_files(self.root, self.env)), self._read_values())
                        await _metadata.remember(self.cache, *self._unsaved, tree)
                        self._unsaved = None
                    return _Observed(ws, snap)
                # A manifest, a file name or the configuration changed (or did while cargo ran).
                self._ws = None
                self._unsaved = None
            raise MetadataError("the workspace manifests keep changing; try again when edits settle")

    def _walk(self, roots: dict[str, str], exclude: set[Path]) -> Snapshot:
        """`TreeHasher.refresh` with its stat cache kept on disk (`_statcache`): loaded before this
        engine's first walk, written after a walk that had to read a file. Blocking (a thread)."""
        path = self._stat_path
        if path is not None and not self._stat_loaded:
            self._stat_loaded = True
            _statcache.load(path, self._real_root, self._hasher)
        snap = self._hasher.refresh(roots, exclude)
        if path is not None and snap.stats.hashed:
            _statcache.save(path, self._real_root, self._hasher)
        return snap

    def _tree_signature(self, snap: Snapshot) -> str:
        files = config_files(self.root, self.env)
        places = _metadata.config_places(str(self.root), files, str(cargo_home(self.env)))
        return _metadata.tree_signature(snap, _keys.config_digest(self.root, self.env) + places)

    def _read_values(self) -> tuple[str, ...]:
        """The values of the variables cargo metadata reads (`_metadata.metadata_key`)."""
        return tuple(v for k, v in sorted(self.env.items()) if k.startswith(_metadata.ENV_PREFIXES))

    def _walk_inputs(self, ws: Workspace | None) -> tuple[dict[str, str], set[Path]]:
        if ws is None:  # before any metadata: every file unowned (cargo marks its target dirs)
            return {}, set()
        if self._walk_inputs_of is not ws:
            self._roots = {
                ("" if p.root == ws.root else str(p.root.relative_to(ws.root))): n
                for n, p in ws.packages.items()
                if p.root.is_relative_to(ws.root)
            }
            self._walk_inputs_of = ws
        return self._roots, {ws.target_dir}

    async def workspace(self) -> Workspace:
        return (await self.observe()).ws

    async def _load_metadata(self) -> Workspace:
        """The metadata for the tree as it is: remembered (`_metadata`) or from cargo. Sets the tree
        signature it holds for; what cargo printed waits in `_unsaved` until a walk after the run
        agrees with the one before it."""
        if not (self.root / "Cargo.lock").exists():
            # Cargo writes the lockfile on its first build anyway; writing it now keeps it from
            # changing every key in the middle of that first run. Failure (say, registry
            # dependencies not downloaded yet) leaves it to cargo, as before.
            with contextlib.suppress(OSError):
                await run_bounded(
                    ["cargo", "generate-lockfile", "--offline"], cwd=self.root, env=self.env, timeout_s=_METADATA_S
                )
        roots, exclude = self._walk_inputs(self._last_ws)
        before, identity = await both(
            lambda: anyio.to_thread.run_sync(self._walk, roots, exclude),
            lambda: self._toolchains.identity(self.env, None),
        )
        self._meta_signature = self._tree_signature(before)
        self._signature_of = -1
        key = _metadata.metadata_key(identity, self._meta_signature, self.env)
        real_root = self._real_root
        data = await _metadata.lookup(self.cache, key, real_root)
        if data is None:
            data = await self._run_metadata()
            self._unsaved = (key, data, real_root)
        try:
            lockfile = await anyio.Path(self.root / "Cargo.lock").read_text(errors="replace")
        except OSError:
            lockfile = ""
        self._ws = self._last_ws = with_lockfile(parse_metadata(data), lockfile)
        return self._ws

    async def _run_metadata(self) -> dict[str, Any]:
        argv = ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"]
        try:
            result = await run_bounded(argv, cwd=self.root, env=self.env, timeout_s=_METADATA_S)
        except OSError as exc:
            raise MetadataError(f"could not run cargo metadata: {exc}") from exc
        if result.timed_out:
            raise MetadataError(
                f"cargo metadata did not finish within {_METADATA_S:.0f} s in {self.root} (a held package-cache lock?)"
            )
        if not result.ok:
            stderr = result.stderr.decode(errors="replace").strip()
            raise MetadataError(f"cargo metadata failed in {self.root}: {stderr[-2000:]}")
        return load_metadata_json(result.stdout.decode())

    async def _probe(self, argv: list[str], env: Mapping[str, str]) -> str:
        try:
            result = await run_bounded(argv, cwd=self.root, env=dict(env), timeout_s=_RUSTC_S)
        except OSError as exc:
            raise InvalidArgument("toolchain", f"could not run rustc: {exc}") from exc
        if not result.ok:
            why = "timed out" if result.timed_out else result.stderr.decode(errors="replace").strip()[-500:]
            raise InvalidArgument("toolchain", f"`{' '.join(argv)}` failed: {why}")
        return result.stdout.decode(errors="replace")

    async def keys(self, request: CheckRequest, observed: _Observed | None = None) -> _Keys:
        spec = request.spec()
        env = self.environment(request)
        if observed is not None:
            obs, rustc = observed, await self._toolchains.identity(env, request.toolchain)
        else:
            # Independent: cargo metadata and the walk, and `rustc -vV` (a first question pays
            # the slower of them, not their sum).
            obs, rustc = await both(self.observe, lambda: self._toolchains.identity(env, request.toolchain))
        gkey = _keys.global_digest(obs.ws, obs.snap, rustc, env, spec.command)
        # The memo holds while every variable the keys read is unchanged: those in `gkey`, where
        # cargo's home is, and each one a recorded manifest reads (the names are part of the key:
        # a computation that learns a new name is never found under the names it started with).
        # The rest may differ (a shell's PWD, OLDPWD, `_`; hyperfine's per-run variable).
        watched = sorted(tuple(self.store.watched_env))
        read = (str(cargo_home(env)), *((n, env.get(n)) for n in watched))
        env_digest = xxhash.xxh3_64_digest(repr(read).encode("utf-8", "surrogateescape"))
        external = self.store.external.refresh()
        fills = self.cache.remote_fills if isinstance(self.cache, TieredCache) else 0
        memo_key = (id(obs.ws), obs.snap.generation, gkey, env_digest, self.store.version, external, fills)
        cached = self._keys_memo.get(memo_key)
        if cached is not None:
            return replace(cached, obs=obs, env=env)
        own = {n: obs.snap.owner_digest(n).hex() for n in obs.ws.packages}
        # With a shared tier, manifests missing here are fetched (within the question's budget) and
        # the keys computed again, one dependency level per round; the hint for these sources, when
        # some checkout wrote one, brings every level in one more round trip.
        hint = (hint_key(gkey, own), hint_limit(len(own))) if isinstance(self.cache, TieredCache) else None
        traced = current_trace()
        if traced is not None:
            traced.computed = True
        keys = await settle_in_thread(
            self.cache, lambda: self.store.keys(obs.ws, obs.snap, gkey, spec.command, env), hint
        )
        k = _Keys(obs, keys, own, gkey.hex(), gkey, env)
        if len(self._keys_memo) > 32:
            self._keys_memo.clear()
        self._keys_memo[memo_key] = k
        return k

    def _own_keys_for(self, spec: _runs.RunSpec) -> dict[str, str]:
        """Where the record of each member's last answer lives (per checkout: it says where edits
        are), by member; memoised per command (hashing the spec once per question, not per member)."""
        keys = self._own_keys.get(spec)
        if keys is None:
            keys = self._own_keys[spec] = {}
        return keys

    def _own_key(self, spec: _runs.RunSpec, name: str, keys: dict[str, str] | None = None) -> str:
        keys = self._own_keys_for(spec) if keys is None else keys
        key = keys.get(name)
        if key is None:
            prefix = repr((str(self.root), spec)).encode()
            key = keys[name] = "own:" + xxhash.xxh3_64_hexdigest(prefix + name.encode())
        return key

    def _from_cache(self, name: str, entry: dict[str, Any], roots: _runs.Roots) -> PackageResult:
        """`_runs.from_entry`, memoised per member on the very entry object (held, so its identity
        cannot be reused) and roots: a daemon answering an unchanged question rebuilt every member's
        diagnostics, 71 of them on gitoxide, at each one. A copy: its lists are the caller's."""
        held = self._results.get(name)
        if held is not None and held[0] is entry and held[1] == roots:
            result = held[2]
        else:
            result = _runs.from_entry(name, entry, roots)
            self._results[name] = (entry, roots, result)
        # The constructor, not dataclasses.replace: 4x cheaper, at every member.
        return PackageResult(
            name, result.success, list(result.diagnostics), result.source, result.duration_ms, list(result.blocked_by)
        )

    # -- answering --------------------------------------------------------------------------
    async def check(
        self, request: CheckRequest, on_message: Callable[[dict[str, Any]], None] | None = None
    ) -> CheckReport:
        # Every shared key the check reads or writes, from its keys to the run's stores: its hint.
        with trace(self.cache) as traced:
            report, k = await self._check(request, on_message)
            if traced is not None and traced.computed and isinstance(self.cache, TieredCache):
                self.cache.offer_hint_behind(hint_key(k.global_key, k.own), traced.close(), hint_limit(len(k.own)))
        if request.scope == "auto" and report.pending:
            self._start_background(request, set(report.pending))
        return report

    async def _check(
        self, request: CheckRequest, on_message: Callable[[dict[str, Any]], None] | None
    ) -> tuple[CheckReport, _Keys]:
        started = time.perf_counter()
        spec = request.spec()
        with question(self.cache) as remote:
            k = await self.keys(request)
            answer_keys = k.packages
            wanted = [key for key in answer_keys.values() if key is not None]
            found, missing = self.cache.in_memory(wanted)
            if missing:  # SQLite (and the shared tier) off the event loop
                found.update(await settle_in_thread(self.cache, lambda: self.cache.get_many(missing)))
        ws = k.obs.ws
        selected = ws.require(request.packages)
        observed_ms = (time.perf_counter() - started) * 1000
        hits = {n: found[key] for n, key in answer_keys.items() if key is not None and key in found}
        stale = set(ws.packages) - hits.keys()
        memo = self._own_keys_for(spec)
        own_keys = {n: memo.get(n) or self._own_key(spec, n, memo) for n in ws.packages}
        stored, unseen = self.cache.in_memory(list(own_keys.values()))
        if unseen:
            stored.update(await anyio.to_thread.run_sync(self.cache.get_many, unseen))
        records = {n: stored.get(own_keys[n], {}) for n in ws.packages}
        moved_records = {
            own_keys[name]: {"d": k.own[name], "g": k.context}
            for name in hits  # answered for these sources: the record of its last answer moves here
            if records[name] != {"d": k.own[name], "g": k.context}
        }
        if moved_records:
            await anyio.to_thread.run_sync(self.cache.put_local_behind, moved_records)
        own_changed = [n for n in stale if records[n].get("d") != k.own[n]]
        context_changed = [n for n in stale if records[n].get("g") != k.context]
        dev = spec.command.includes_tests
        plan = _plan.plan(
            request.scope,
            ws.packages,
            selected,
            stale,
            own_changed,
            ws.dep_edges(dev=dev),
            ws.order(dev=dev),
            context_changed,
        )
        report = CheckReport(
            kind=request.kind, scope=request.scope, pending=list(plan.pending), cache_available=self.cache.available
        )
        roots = _runs.roots_of(self.root, cargo_home(k.env))
        skipped = dict(plan.skipped)
        if not selected:
            # `success` is about the whole answer: an error known for these very sources is shown
            # and fails it, whatever the scope left out.
            for name in [n for n in skipped if n in hits and not hits[n].get("success")]:
                del skipped[name]
                report.results[name] = self._from_cache(name, hits[name], roots)
                report.notes.append(f"{name} is not in this scope but fails for these sources (from the cache)")
        report.skipped = _summarise_skipped(skipped)
        if remote is not None:
            status = remote.status.to_json()
            status["members"] = sorted(n for n in hits if remote.status.origin(answer_keys[n] or "") == "remote")
            report.remote = status
        for name in plan.from_cache:
            report.results[name] = self._from_cache(name, hits[name], roots)
        planned_ms = (time.perf_counter() - started) * 1000
        to_run = list(plan.run)
        for attempt in range(2):
            if not to_run:
                break
            run = await self._run(k, request, to_run, on_message)
            # What the run answered besides `to_run` (members it selected to unify features) is
            # reported where the scope wanted it later (pending), and no longer pending.
            answered = {n: r for n, r in run.results.items() if n in to_run or n in report.pending}
            report.results.update(answered)
            report.pending = [n for n in report.pending if n not in answered]
            report.command = run.argv
            report.error = run.error
            report.notes.extend(run.notes)
            if not run.moved or run.error:
                break
            # The sources moved under cargo (an agent's edit, or cargo writing Cargo.lock): the
            # answer is not for the current sources. Run once more against what is there now.
            for name in run.moved:
                report.results.pop(name, None)
            k = await self.keys(request)
            to_run = [n for n in to_run if n in run.moved]
            if attempt == 1:
                report.pending.extend(sorted(run.moved))
                report.notes.append(f"sources kept changing during the run: {', '.join(sorted(run.moved))}")
        if self.seed_notes:
            report.notes.extend(self.seed_notes)
            self.seed_notes.clear()
        # Read after the runs: a store that failed just now (disk full) must show in this answer.
        report.cache_available = self.cache.available
        report.timings_ms = {
            "observe": observed_ms,
            "plan": planned_ms - observed_ms,
            "total": (time.perf_counter() - started) * 1000,
        }
        return report, k

    async def _run(
        self,
        k: _Keys,
        request: CheckRequest,
        names: list[str],
        on_message: Callable[[dict[str, Any]], None] | None,
    ) -> _RunResult:
        """Run cargo for `names`, sharing the run with identical concurrent requests."""
        spec = request.spec()
        # Runs in different environments are different runs, even where the keys cannot tell yet
        # (before cargo has said which variables a package reads).
        env_digest = xxhash.xxh3_64_hexdigest(repr(sorted(self.environment(request).items())).encode())
        flight_key = (spec, request.timeout_s, env_digest, tuple((n, k.keys.walk[n]) for n in names))
        # A run that went on after an early answer and is answering these very sources: wait for
        # it rather than pre-empt it (a question right after the early answer must not kill it).
        for tail in list(self._tails):
            if tail.covers(flight_key[:3], names, k.keys.walk):
                await tail.done.wait()
                ended = tail.ended[0] if tail.ended else None
                if isinstance(ended, _RunResult) and not ended.error and all(n in ended.results for n in names):
                    results = {n: ended.results[n] for n in names}
                    return _RunResult(ended.argv, results, ended.moved & set(names), None, list(ended.notes))

        async def run() -> _RunResult:
            target_dir = await self.target_dir_for(k.obs.ws, request)
            async with self.gate(target_dir).foreground(f"{spec.command.kind} {' '.join(names[:5])}") as lease:
                return await self._run_locked(k, request, names, target_dir, on_message, lease)

        result: _RunResult = await self._flight.run(flight_key, run)
        return result

    async def _run_locked(
        self,
        k: _Keys,
        request: CheckRequest,
        names: list[str],
        target_dir: Path,
        on_message: Callable[[dict[str, Any]], None] | None,
        lease: Lease | None = None,
    ) -> _RunResult:
        """Run cargo for `names` (and the members that unify features with them) and store what it
        answered. With `lease` (a foreground call's hold on the directory), a run that selects more
        than `names` answers them as soon as their own units are done (`_early`) and goes on."""
        spec = request.spec()
        unified = await _runs.unified_run_for(k.obs.ws, names, spec.command, env=k.env, store=self.decisions)
        expected = None
        if lease is not None and unified[0]:
            expected = _early.expected_units(k.obs.ws, names, spec.command)
        if expected is None:
            return await self._run_and_store(k, request, names, target_dir, unified, on_message)
        assert lease is not None
        return await self._run_answering_early(k, request, names, target_dir, unified, expected, on_message, lease)

    async def _run_answering_early(
        self,
        k: _Keys,
        request: CheckRequest,
        names: list[str],
        target_dir: Path,
        unified: tuple[list[str], list[str]],
        expected: frozenset[_early.UnitId],
        on_message: Callable[[dict[str, Any]], None] | None,
        lease: Lease,
    ) -> _RunResult:
        """The run goes on in the engine's task group; this call returns at the early answer (or
        the run's end, whichever comes first) and hands the directory to the run."""
        watch = _early.EarlyWatch(expected, on_message)
        tail = _Widening(anyio.CancelScope(), set(unified[0]) - set(names), running=True)
        key = (request.spec(), b"run-" + str(id(tail)).encode())
        env_digest = xxhash.xxh3_64_hexdigest(repr(sorted(self.environment(request).items())).encode())
        shared = _Tail((request.spec(), request.timeout_s, env_digest), frozenset([*names, *unified[0]]), k.keys.walk)
        ended, done = shared.ended, shared.done
        started_ns = time.time_ns()

        async def run_to_end() -> None:
            try:
                with tail.scope:
                    ended.append(
                        await self._run_and_store(
                            k, request, names, target_dir, unified, watch.message, on_outcome=watch.outcome
                        )
                    )
            except Exception as exc:  # the caller re-raises it, unless it has already answered
                ended.append(exc)
            finally:
                done.set()
                watch.ready.set()
                lease.finish()
                self._end_background(key, tail)
                if shared in self._tails:
                    self._tails.remove(shared)

        self._background[key] = tail
        self._background_idle = anyio.Event()
        self._tg.start_soon(run_to_end)
        try:
            await watch.ready.wait()
            early = (
                None
                if done.is_set()
                else await self._early_answer(k, request, names, target_dir, watch, tail, started_ns)
            )
            if early is not None and not done.is_set():
                watch.detach()
                self._tails.append(shared)
                lease.hand_off(tail.scope, f"{request.kind} (after the answer for {', '.join(names[:5])})")
                return early
            await done.wait()
        except BaseException:
            tail.scope.cancel()  # the caller is gone before any answer: so is its run
            with anyio.CancelScope(shield=True), anyio.move_on_after(30):
                await done.wait()
            raise
        result = ended[0] if ended else anyio.get_cancelled_exc_class()()
        if isinstance(result, BaseException):
            raise result
        return result

    async def _early_answer(
        self,
        k: _Keys,
        request: CheckRequest,
        names: list[str],
        target_dir: Path,
        watch: _early.EarlyWatch,
        tail: _Widening,
        started_ns: int,
    ) -> _RunResult | None:
        """The answer for `names` from the run so far, stored as a finished run's would be; None
        where it cannot be given yet (sources moved, cargo replayed a stale unit): then the caller
        waits for the run's end, which handles both."""
        if watch.current is None:
            return None
        partial = _early.snapshot(watch.current, duration_ms=(time.time_ns() - started_ns) / 1e6)
        results = _runs.results_from_outcome(k.obs.ws, partial, names, dev=False)
        if set(results) != set(names) or not all(r.success for r in results.values()):
            return None
        notes: list[str] = []
        kept = await self._store_results(k, request, partial, results, target_dir, started_ns, notes, retry=True)
        if kept is None or set(kept.results) != set(names):
            return None
        kept.notes.append(
            f"answered when the units of {', '.join(names)} were done; the same cargo run goes on in the background"
            f" for the {len(tail.names)} other members it selected so that every unit is built as --workspace builds it"
        )
        return kept

    async def _run_and_store(
        self,
        k: _Keys,
        request: CheckRequest,
        names: list[str],
        target_dir: Path,
        unified: tuple[list[str], list[str]],
        on_message: Callable[[dict[str, Any]], None] | None,
        on_outcome: Callable[[CargoOutcome], None] | None = None,
    ) -> _RunResult:
        spec = request.spec()
        ws = k.obs.ws
        explicit_dir = None if target_dir == ws.target_dir else target_dir
        run_env, notes = await self.compile_environment(k.env)
        for attempt in range(2):
            started_ns = time.time_ns()
            outcome = await run_cargo(
                spec.args(names, explicit_dir, unified, ws.spec),
                cwd=self.root,
                env=run_env,
                toolchain=request.toolchain,
                timeout_s=request.timeout_s,
                on_message=on_message,
                on_outcome=on_outcome,
            )
            error = None
            if outcome.timed_out:
                error = _timeout_error(request.timeout_s, names, outcome)
            elif outcome.finished_success is None:
                error = "cargo failed before building: " + outcome.stderr.strip()[-1500:]
            # Members selected only to unify features were checked too, with `--workspace`'s units:
            # their answers are kept (a widening that follows finds them in the cache).
            checked = [*names, *(n for n in unified[0] if n not in names)]
            results = _runs.results_from_outcome(ws, outcome, checked, dev=spec.command.includes_tests)
            kept = await self._store_results(
                k, request, outcome, results, target_dir, started_ns, notes, retry=attempt == 0
            )
            if kept is None:
                continue
            kept.error = error
            return kept
        raise AssertionError("unreachable")  # pragma: no cover

    async def _store_results(
        self,
        k: _Keys,
        request: CheckRequest,
        outcome: CargoOutcome,
        results: dict[str, PackageResult],
        target_dir: Path,
        started_ns: int,
        notes: list[str],
        *,
        retry: bool,
    ) -> _RunResult | None:
        """Keep and store the answers whose sources did not move during the run; None when cargo
        was fooled by an mtime and `retry` allows running again (its fingerprints are gone now)."""
        spec = request.spec()
        ws = k.obs.ws
        now = await self.keys(request)
        moved = {n for n in results if now.keys.walk.get(n) != k.keys.walk[n]}
        kept = {n: r for n, r in results.items() if n not in moved}
        if not kept:
            return _RunResult(outcome.argv, kept, moved, None, notes)
        record = functools.partial(
            self.store.record,
            now.obs.ws,
            now.obs.snap,
            k.env,
            outcome,
            kept,
            target_dir=target_dir,
            started_ns=started_ns,
            blocked=[n for n, r in kept.items() if r.blocked_by and set(r.blocked_by) <= ws.packages.keys()],
            failed=[n for n, r in kept.items() if not r.success and not r.blocked_by],
            kind=spec.command.kind,
        )
        recorded = await anyio.to_thread.run_sync(record)
        if recorded.fooled and retry:
            # cargo judged units fresh whose inputs are not what they were compiled from (an
            # mtime kept; a clippy configuration that appeared where clippy found none): their
            # fingerprints are gone now, so this run compiles them again.
            notes.append(
                "cargo replayed stale results for "
                + ", ".join(sorted(recorded.fooled_packages) or ["a dependency"])
                + " (an input changed that cargo's fingerprint does not see); ran again"
            )
            return None
        for name in recorded.fooled_packages:
            recorded.answer.pop(name, None)
        # Read while it changed: neither they nor what was built on them may be stored (an older
        # manifest for the same base key would pair the new digest with what the compiler read).
        unsound = ws.dependents(recorded.changed_during_run, dev=spec.command.includes_tests) & kept.keys()
        if unsound:
            notes.append(
                "not cached (a file outside the workspace they read, or built on, changed while cargo ran): "
                + ", ".join(sorted(unsound))
            )
        stored_keys = await anyio.to_thread.run_sync(
            functools.partial(self.store.keys, now.obs.ws, now.obs.snap, now.global_key, spec.command, k.env, recorded)
        )
        roots = _runs.roots_of(self.root, cargo_home(k.env), _outside.directories(ws))
        entries = {n: _runs.to_entry(r, roots) for n, r in kept.items() if n not in unsound}
        unstored = await anyio.to_thread.run_sync(self.store.store, stored_keys, recorded, entries)
        unstored = [*unstored, *unsound]
        records = {
            self._own_key(spec, name): {"d": now.own[name], "g": now.context} for name in kept if name not in unstored
        }
        await anyio.to_thread.run_sync(self.cache.put_many, records)
        unrecorded = sorted(n for n in unstored if n not in unsound)
        if unrecorded:
            notes.append(f"not cached (cargo recorded no inputs for them): {', '.join(unrecorded)}")
        return _RunResult(outcome.argv, kept, moved, None, notes)

    async def target_dir_for(self, ws: Workspace, request: CheckRequest) -> Path:
        """The request's own extra variables, and every variable a recorded input manifest reads
        whose value in the question differs from the engine's own environment, decide whether the
        run needs a directory of its own (alternating them would rebuild units every time). An empty
        target dir is first seeded from a sibling worktree's, where the filesystem can reflink."""
        self.seed_notes.extend(await self.seeder.seed(ws))
        extra = dict(request.extra_env)
        if request.env is not None:
            env = self.environment(request)
            for name in sorted(self.store.watched_env - extra.keys()):
                if env.get(name) != self.env.get(name):
                    extra[name] = env.get(name, "\0unset")
        path: Path = await anyio.to_thread.run_sync(
            lambda: choose_target_dir(ws.root, ws.target_dir, extra, private=self.private_target)
        )
        return path

    def agent_target_dir(self, ws: Workspace) -> Path:
        """Where this engine's plain cargo runs (run, bench, clean...) build: target/ itself, or the
        private directory under it (CARGO_SCHEDULER_TARGET_DIR=private)."""
        return agent_target_base(ws.target_dir, private=self.private_target)

    def gate(self, target_dir: Path) -> TargetGate:
        return self._gates.setdefault(target_dir, TargetGate())

    # -- background widening ------------------------------------------------------------------
    def _start_background(self, request: CheckRequest, names: set[str]) -> None:
        """Check `names` in the background. A widening already running for the same command and
        environment takes the new names instead of starting over: an agent that asks every few
        seconds must not restart it each time (the gate still lets a foreground call pre-empt it)."""
        background_request = replace(request, scope="workspace", packages=(), timeout_s=None)
        env = self.environment(background_request)
        key = (
            background_request.spec(),
            xxhash.xxh3_64_digest(repr(sorted(env.items())).encode("utf-8", "surrogateescape")),
        )
        running = self._background.get(key)
        if running is not None and not running.scope.cancel_called:
            running.names.update(names)
            return
        widening = _Widening(anyio.CancelScope(), set(names))
        self._background[key] = widening
        self._background_idle = anyio.Event()
        self._tg.start_soon(self._widen, background_request, widening, key)

    async def _widen(self, request: CheckRequest, widening: _Widening, key: tuple[_runs.RunSpec, bytes]) -> None:
        spec = request.spec()
        names = widening.names
        scope = widening.scope

        async def batch() -> bool:
            widening.running = True
            try:
                return await checked()
            finally:
                widening.running = False

        async def checked() -> bool:
            k = await self.keys(request)
            keys = k.packages
            wanted = [key for n in names if (key := keys.get(n)) is not None]
            found = await anyio.to_thread.run_sync(self.cache.get_many, wanted)
            todo = [
                n for n in k.obs.ws.order(dev=spec.command.includes_tests) if n in names and keys.get(n) not in found
            ]
            if not todo:
                return True
            target_dir = await self.target_dir_for(k.obs.ws, request)
            run = await self._run_locked(k, request, todo[:_BACKGROUND_BATCH], target_dir, None)
            # Answered for these sources, stored or not: a member blocked by a failing crate from
            # outside the workspace is never stored (cargo recorded nothing for it), and asking
            # again would run cargo for it forever; a foreground call runs it again, as cargo would.
            names.difference_update(set(run.results) - run.moved)
            # Give up on what cargo cannot answer (it failed before building); a foreground call
            # will show the error. Otherwise loop: the next batch, or this one again if it moved.
            return run.error is not None

        try:
            with scope:
                obs = await self.observe()
                target_dir = await self.target_dir_for(obs.ws, request)
                await self.gate(target_dir).background(batch, label=f"background {spec.command.kind}")
        finally:
            self._end_background(key, widening)

    def _end_background(self, key: tuple[_runs.RunSpec, bytes], widening: _Widening) -> None:
        if self._background.get(key) is widening:
            del self._background[key]
        if not self._background:
            self._background_idle.set()

    async def wait_background(self, timeout_s: float) -> None:
        """Wait until no background work is left (tests and benchmarks)."""
        with anyio.fail_after(timeout_s):
            while self._background:
                await self._background_idle.wait()

    async def prefill(self, request: CheckRequest | None = None) -> None:
        """Fill the cache for every member in the background (CARGO_SCHEDULER_PREWARM=check): the
        same yielding widening an `auto` answer starts, so any call preempts it."""
        ws = await self.workspace()
        self._start_background(request or CheckRequest(), set(ws.packages))

    def cancel_background(self) -> None:
        """Drop background work: a mutation is about to make it stale."""
        for widening in list(self._background.values()):
            widening.scope.cancel()

    def background_status(self) -> list[dict[str, Any]]:
        """The background checks of this workspace, the one account of them `scheduler_status` shows
        (in its engine and its scheduler sections alike): command, whether its cargo runs now or
        waits for the target dir, and how many packages it was asked to check."""
        return sorted(
            (
                {
                    "kind": spec.command.kind,
                    "state": "running" if w.running else "waiting",
                    "packages": len(w.names),
                }
                for (spec, _), w in self._background.items()
            ),
            key=lambda b: (b["kind"], b["state"]),
        )

    def members(self) -> list[str]:
        return self._ws.members if self._ws else []

    # -- questions about the graph ----------------------------------------------------------------
    async def affected(self, files: Iterable[Path]) -> dict[str, Any]:
        ws = await self.workspace()
        owners: dict[str, str | None] = {}
        for path in files:
            owners[str(path.relative_to(ws.root)) if path.is_relative_to(ws.root) else str(path)] = ws.owner(path)
        whole = any(o is None for o in owners.values())
        direct = sorted({o for o in owners.values() if o is not None})
        everything = set(ws.packages) if whole else ws.dependents(direct)
        order = [n for n in ws.order() if n in everything]
        return {
            "files": owners,
            "owners": direct,
            "whole_workspace": whole,
            "dependents": [n for n in order if n not in direct],
            "check_order": order,
        }

    def status(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "members": len(self._ws.packages) if self._ws else None,
            "last_walk_ms": round(self.last_walk_ms, 2),
            "target_dirs": {str(p): g.holder or "idle" for p, g in self._gates.items()},
            "background": self.background_status(),
            "in_flight": self._flight.in_flight(),
            "sccache": self.wrapping.status,
            "target_seed": self.seeder.status,
        }


def _summarise_skipped(skipped: dict[str, str]) -> dict[str, str]:
    """Name skipped packages when few; otherwise count them per reason (answers stay small)."""
    if len(skipped) <= 12:
        return dict(skipped)
    counts: dict[str, int] = {}
    for reason in skipped.values():
        counts[reason] = counts.get(reason, 0) + 1
    return {f"{count} packages": reason for reason, count in counts.items()}


class EnginePool:
    """Engines by workspace root, sharing one cache and one task group for background work."""

    def __init__(
        self, cache_dir: Path | None = None, *, cache_mb: int | None = None, private_target: bool = False
    ) -> None:
        # Read (and refused, if wrong) before anything starts: ConfigError names the variable.
        self._seed = _settings.seed()
        self.wrapping = Wrapping(_settings.sccache(), None)
        self._cache_dir = cache_dir
        self._cache_mb = cache_mb
        self._private_target = private_target
        self._engines: dict[Path, Engine] = {}
        self._asked: set[Path] = set()
        self._tg: anyio.abc.TaskGroup | None = None
        self._flight: SingleFlight[Any] | None = None
        self._stack = AsyncExitStack()
        self.cache: DiagnosticsCache | None = None

    async def __aenter__(self) -> EnginePool:
        limit = None if self._cache_mb is None else self._cache_mb * 1024 * 1024
        remote = self.wrapping.remote = _settings.remote()
        self.cache = await anyio.to_thread.run_sync(
            lambda: open_cache(self._cache_dir, size_limit=limit, settings=remote)
        )
        self._stack.callback(self.cache.close)
        if isinstance(self.cache, TieredCache):
            # Pending writes reach the remote (bounded) before the local cache closes.
            await self._stack.enter_async_context(self.cache.running())
        self._flight = await self._stack.enter_async_context(SingleFlight())
        self._tg = await self._stack.enter_async_context(anyio.create_task_group())
        # Background work ends with the pool: cancel it before the task group waits for it.
        self._stack.push_async_callback(self._cancel_background)
        # Before that: our sccache server finishes its cache writes and stops.
        self.wrapping.bind(self._tg)
        self._stack.push_async_callback(self.wrapping.server.stop)
        return self

    async def _cancel_background(self) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(None, None, None)

    async def get(self, root: Path) -> Engine:
        assert self._tg is not None and self.cache is not None, "use EnginePool as an async context manager"
        from ..cargo._workspace import find_root

        if root in self._asked:
            # Asked before: every manifest on the way up is in `_root`'s stat cache, so finding the
            # root again is a few stats (~20 us), less than a worker thread's round trip (~200 us
            # on 2 cores, at every cli-check the daemon answers). Still found again, not
            # remembered: a `[workspace]` added above it moves the root.
            resolved = find_root(root)
        else:
            resolved = await anyio.to_thread.run_sync(find_root, root)
            if len(self._asked) > 256:  # directories callers name: bounded
                self._asked.clear()
            self._asked.add(root)
        engine = self._engines.get(resolved)
        if engine is None:
            assert self._flight is not None
            engine = self._engines[resolved] = Engine(
                resolved,
                self.cache,
                self._tg,
                self._flight,
                private_target=self._private_target,
                wrapping=self.wrapping,
                seed=self._seed,
            )
        return engine

    def engines(self) -> list[Engine]:
        return list(self._engines.values())


def _timeout_error(timeout_s: float | None, names: list[str], outcome: CargoOutcome) -> str:
    """Which packages got no answer, and the steps cargo had started and not finished."""
    started = [m.group(0).strip() for m in _STEP.finditer(outcome.stderr)]
    steps = f"; cargo was still at: {'; '.join(started[-3:])}" if started else ""
    return (
        f"cargo timed out after {timeout_s}s and was killed with its process group; "
        f"no answer for {', '.join(names)}{steps}"
    )


_STEP = re.compile(r"^\s*(?:Compiling|Checking|Building|Running|Documenting|Fresh) \S.*$", re.M)
