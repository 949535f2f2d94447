"""Micro-benchmarks of the engine's hot paths (no cargo involved).

    pytest bench/test_micro.py --benchmark-only

What a repeat check costs when nothing changed is, in order: a stat walk of the tree
(TreeHasher.snapshot), the Merkle keys (_keys.package_keys), one cache lookup per member
(DiagnosticsCache.get, memory first) and the plan (_plan.plan). After an edit, the changed files are
read and hashed. Sizes: 1,000 files for the tree (a 150-crate workspace has ~500-1,000), 400
members for the graph (the largest workspace in the field notes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler import generate_workspace
from scheduler.cargo import _graph
from scheduler.cargo._workspace import Package, Workspace
from scheduler.engine import _keys, _plan
from scheduler.engine._cache import DiagnosticsCache
from scheduler.engine._fingerprint import Snapshot, TreeHasher
from scheduler.engine._inputs import Manifest

PACKAGES, FILES_PER_PACKAGE = 50, 20  # 1,000 files under crates/
GRAPH_MEMBERS = 400


# -- trees ------------------------------------------------------------------------------------
def write_tree(root: Path) -> dict[str, str]:
    """PACKAGES crates of FILES_PER_PACKAGE files (~4 KB of Rust each, manifest included)."""
    (root / "crates").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/*"]\n')
    (root / ".gitignore").write_text("/target\n")
    line = "pub fn f_{i}_{j}_{k}(x: u32) -> u32 {{ x.wrapping_mul({k}).wrapping_add({j}) }}\n"
    roots = {}
    for i in range(PACKAGES):
        name = f"crate_{i:03d}"
        crate = root / "crates" / name
        (crate / "src").mkdir(parents=True)
        (crate / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\n')
        for j in range(FILES_PER_PACKAGE - 1):
            (crate / "src" / f"m{j:02d}.rs").write_text("".join(line.format(i=i, j=j, k=k) for k in range(64)))
        roots[f"crates/{name}"] = name
    return roots


def package_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "crates").rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("tree") / "ws"
    roots = write_tree(root)
    assert len(package_files(root)) == PACKAGES * FILES_PER_PACKAGE
    return root, roots


def test_snapshot_unchanged_tree_per_1000_files(benchmark: Any, tree: tuple[Path, dict[str, str]]) -> None:
    """The stat walk of a repeat question: nothing is read, every digest comes from the stat cache."""
    root, roots = tree
    hasher = TreeHasher(root)
    # Files written less than the racy margin (50 ms) before they were hashed are hashed again on
    # every walk until they settle: let them settle, as an agent's tree would have.
    time.sleep(0.1)
    hasher.snapshot(roots)
    snap = benchmark(hasher.snapshot, roots)
    assert snap.stats.hashed == 0 and snap.stats.files == PACKAGES * FILES_PER_PACKAGE + 2
    benchmark.extra_info["files"] = snap.stats.files


def test_hash_1000_changed_files(benchmark: Any, tree: tuple[Path, dict[str, str]]) -> None:
    """A walk after every file under crates/ changed (new mtime): all are read and hashed again."""
    root, roots = tree
    files = package_files(root)
    hasher = TreeHasher(root)
    hasher.snapshot(roots)
    rounds = iter(range(1, 10_000))
    base_ns = time.time_ns() - 3600 * 10**9

    def touch_all() -> tuple[tuple[Any, ...], dict[str, Any]]:
        stamp = base_ns + next(rounds) * 10**9  # distinct, and well in the past: never racy
        for path in files:
            os.utime(path, ns=(stamp, stamp))
        return (roots,), {}

    snap = benchmark.pedantic(hasher.snapshot, setup=touch_all, rounds=30, iterations=1)
    assert snap.stats.hashed == len(files)
    benchmark.extra_info.update(files=len(files), bytes=snap.stats.bytes_read)


# -- the diagnostics cache -------------------------------------------------------------------
def cache_entry(i: int) -> dict[str, Any]:
    """A realistic cached answer: a package with two warnings (rustc JSON as cargo gives it)."""

    def message(n: int) -> dict[str, Any]:
        return {
            "$message_type": "diagnostic",
            "message": f"unused variable: `x{n}`",
            "level": "warning",
            "code": {"code": "unused_variables", "explanation": None},
            "spans": [
                {
                    "file_name": f"crates/leaf_{i:03d}/src/lib.rs",
                    "byte_start": 100 + n,
                    "byte_end": 102 + n,
                    "line_start": 10 + n,
                    "line_end": 10 + n,
                    "column_start": 9,
                    "column_end": 11,
                    "is_primary": True,
                    "text": [{"text": f"    let x{n} = 3;", "highlight_start": 9, "highlight_end": 11}],
                    "label": None,
                    "suggested_replacement": None,
                    "suggestion_applicability": None,
                    "expansion": None,
                }
            ],
            "children": [
                {
                    "message": f"if this is intentional, prefix it with an underscore: `_x{n}`",
                    "code": None,
                    "level": "help",
                    "spans": [],
                    "children": [],
                    "rendered": None,
                }
            ],
            "rendered": f"warning: unused variable: `x{n}`\n  --> crates/leaf_{i:03d}/src/lib.rs:{10 + n}:9\n"
            f"   |\n{10 + n} |     let x{n} = 3;\n   |         ^^ help: prefix: `_x{n}`\n",
        }

    return {"success": True, "messages": [message(0), message(1)], "blocked_by": [], "duration_ms": 210.0, "at": 1.7e9}


@pytest.fixture
def filled_cache(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    keys = [f"{i:032x}" for i in range(GRAPH_MEMBERS)]
    cache = DiagnosticsCache(tmp_path / "cache")
    for i, key in enumerate(keys):
        cache.put(key, cache_entry(i))
    cache.close()
    yield tmp_path / "cache", keys


def test_cache_get_hit_memory(benchmark: Any, filled_cache: tuple[Path, list[str]]) -> None:
    directory, keys = filled_cache
    cache = DiagnosticsCache(directory)
    key = keys[7]
    assert cache.get(key) is not None
    assert benchmark(cache.get, key) == cache_entry(7)
    cache.close()


def test_cache_get_hit_disk(benchmark: Any, filled_cache: tuple[Path, list[str]]) -> None:
    """A hit SQLite has to serve (the memory front was emptied): what a restarted server pays."""
    directory, keys = filled_cache
    cache = DiagnosticsCache(directory)
    cache.get(keys[0])  # the connection is open, as in a running server

    def forget() -> tuple[tuple[Any, ...], dict[str, Any]]:
        cache._memory.clear()
        return (keys[7],), {}

    assert benchmark.pedantic(cache.get, setup=forget, rounds=300, iterations=1) == cache_entry(7)
    cache.close()


def test_cache_get_miss(benchmark: Any, filled_cache: tuple[Path, list[str]]) -> None:
    """A key nobody answered yet: after an edit, every stale member costs one of these (SQLite)."""
    directory, _ = filled_cache
    cache = DiagnosticsCache(directory)
    assert benchmark(cache.get, "f" * 32) is None
    cache.close()


def test_cache_get_hit_disk_fresh_instance(benchmark: Any, filled_cache: tuple[Path, list[str]]) -> None:
    """The first get of a brand-new instance (opened untimed): includes SQLite's first query."""
    directory, keys = filled_cache
    opened: list[DiagnosticsCache] = []

    def fresh() -> tuple[tuple[Any, ...], dict[str, Any]]:
        while opened:
            opened.pop().close()
        opened.append(DiagnosticsCache(directory))
        return (opened[-1], keys[7]), {}

    result = benchmark.pedantic(lambda c, k: c.get(k), setup=fresh, rounds=50, iterations=1)
    assert result == cache_entry(7)
    for cache in opened:
        cache.close()


# -- graph: plan and keys on 400 members ---------------------------------------------------------
@pytest.fixture(scope="module")
def big_workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Snapshot]:
    """The generator's 400-crate shape, as the engine sees it: Workspace and a real Snapshot."""
    root = tmp_path_factory.mktemp("big") / "ws"
    gen = generate_workspace(root, GRAPH_MEMBERS, seed=0)
    packages = {}
    for name in gen.members:
        crate = gen.crate_dir(name)
        packages[name] = Package(
            name=name,
            id=f"path+file://{crate}#0.1.0",
            root=crate,
            manifest=crate / "Cargo.toml",
            deps=frozenset(gen.deps[name]),
            dev_deps=frozenset(),
            target_kinds=frozenset({"lib"}),
        )
    ws = Workspace(root=root, target_dir=root / "target", packages=packages)
    snap = TreeHasher(root).snapshot({f"crates/{n}": n for n in gen.members}, {root / "target"})
    assert len(ws.packages) == GRAPH_MEMBERS
    return ws, snap


@pytest.mark.parametrize("situation", ["hub-edited-auto", "nothing-stale-workspace"])
def test_plan_400_members(benchmark: Any, big_workspace: tuple[Workspace, Snapshot], situation: str) -> None:
    ws, _ = big_workspace
    deps = ws.dep_edges(dev=False)
    order = ws.order()
    if situation == "hub-edited-auto":
        scope, stale, own = "auto", ws.dependents(["hub"]), ["hub"]
    else:
        scope, stale, own = "workspace", set(), []
    call: Callable[[], _plan.Plan] = lambda: _plan.plan(scope, ws.packages, [], stale, own, deps, order)  # noqa: E731
    result = benchmark(call)
    if scope == "auto":
        assert result.run == ["hub"] and len(result.pending) == len(stale) - 1
    else:
        assert result.run == [] and len(result.from_cache) == GRAPH_MEMBERS


def test_package_keys_400_members(benchmark: Any, big_workspace: tuple[Workspace, Snapshot]) -> None:
    ws, snap = big_workspace
    command = _keys.Command(kind="check")
    keys = benchmark(_keys.package_keys, ws, snap, b"\0" * 16, command)
    assert len(keys) == GRAPH_MEMBERS


def test_manifest_keys_400_members(benchmark: Any, big_workspace: tuple[Workspace, Snapshot]) -> None:
    """The hot path's keys with recorded inputs: two manifest lookups per member (a dict here, the
    cache's memory front in the engine), one recorded file outside the walk and one variable each."""
    ws, snap = big_workspace
    command = _keys.Command(kind="check")
    manifest = Manifest(files=("a:/outside/data.txt",), env=("MY_VAR",))
    recorded = {(kind, name): manifest for kind in ("lib", "answer") for name in ws.packages}

    def lookup(kind: str, name: str, base: str) -> Manifest | None:
        return recorded.get((kind, name))

    def digest(locator: str) -> bytes:
        return b"\1" * 16

    env = {"MY_VAR": "1", "PATH": "/usr/bin"}
    keys = benchmark(_keys.manifest_keys, ws, snap, b"\0" * 16, command, lookup, digest, env)
    assert all(keys.answer[name] is not None for name in ws.packages)


def test_graph_order_400_members(benchmark: Any, big_workspace: tuple[Workspace, Snapshot]) -> None:
    """Topological order (Tarjan): the engine computes it on every check, for the plan."""
    ws, _ = big_workspace
    deps = ws.dep_edges(dev=False)
    assert len(benchmark(_graph.topological_order, deps)) == GRAPH_MEMBERS


# -- the handshake ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def front_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("handshake")
    workspace = base / "ws"
    generate_workspace(workspace, 4)
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    env["XDG_STATE_HOME"] = str(base / "state")
    env["XDG_RUNTIME_DIR"] = str(base / "rt")
    (base / "rt").mkdir()
    return workspace, env


def test_handshake_spawn_to_tools_list(benchmark: Any, front_env: tuple[Path, dict[str, str]]) -> None:
    """Spawn `serve`, `initialize`, `tools/list`: what Codex waits for before its first model request.
    No tool call, so no daemon starts: every round is the cold front (the stdlib-only relay)."""
    from bench_handshake import one_session

    workspace, env = front_env
    times = benchmark.pedantic(one_session, args=(workspace, env, False), rounds=10, iterations=1)
    assert times["tools_list_ms"] > 0
