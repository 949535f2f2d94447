"""Remembered metadata: a new engine on unchanged inputs runs no `cargo metadata`, and what it
remembers is always what cargo itself prints for the tree as it is, in this checkout or another.

Every check compares the engine's workspace with `parse_metadata` of a real `cargo metadata` run
on the same tree at that moment (the contract), and counts the engine's own runs of cargo metadata.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from remote_env import RedisServer

from scheduler import CheckRequest, EnginePool, _settings
from scheduler.cargo._workspace import Workspace, load_metadata_json, parse_metadata
from scheduler.engine import _metadata
from scheduler.engine._cache import DiagnosticsCache
from scheduler.engine._engine import Engine

pytestmark = pytest.mark.anyio


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """The roots the engines ran `cargo metadata` in (a spy that calls through)."""
    seen: list[Path] = []
    real = Engine._run_metadata

    async def spy(self: Engine) -> dict[str, object]:
        seen.append(self.root)
        return await real(self)

    monkeypatch.setattr(Engine, "_run_metadata", spy)
    yield seen


def _workspace(root: Path, members: int = 3) -> Path:
    """Members matched by a glob, each a library; `c1` with a path dependency on `c0`."""
    root.mkdir(parents=True)
    (root / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["crates/*"]\n')
    for i in range(members):
        _crate(root, f"c{i}", '[dependencies]\nc0 = { path = "../c0" }\n' if i == 1 else "")
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=root, check=True, capture_output=True)
    return root


def _crate(root: Path, name: str, extra: str = "") -> None:
    crate = root / "crates" / name
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n{extra}')
    (crate / "src" / "lib.rs").write_text("pub fn f() {}\n")


def _cargo_says(root: Path, env: dict[str, str] | None = None) -> Workspace:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=root,
        check=True,
        capture_output=True,
        env=env,
    )
    return parse_metadata(load_metadata_json(out.stdout.decode()))


def _same(ours: Workspace, theirs: Workspace) -> None:
    assert ours == theirs
    assert {n: p.targets for n, p in ours.packages.items()} == {n: p.targets for n, p in theirs.packages.items()}


async def _workspace_of(cache_dir: Path, root: Path) -> Workspace:
    async with EnginePool(cache_dir) as pool:
        return await (await pool.get(root)).workspace()


async def test_a_new_engine_on_unchanged_sources_runs_no_cargo_metadata(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    first = await _workspace_of(tmp_path / "cache", root)
    second = await _workspace_of(tmp_path / "cache", root)
    assert runs == [root]
    _same(second, first)
    _same(second, _cargo_says(root))


async def test_another_checkout_reads_the_remembered_metadata_as_cargo_prints_it_there(
    tmp_path: Path, runs: list[Path]
) -> None:
    a = _workspace(tmp_path / "a")
    await _workspace_of(tmp_path / "cache", a)
    b = shutil.copytree(a, tmp_path / "elsewhere" / "checkout-b")
    ours = await _workspace_of(tmp_path / "cache", b)
    assert runs == [a], "B's metadata came from A's entry"
    _same(ours, _cargo_says(b))
    assert all(str(a) not in p.id and p.root.is_relative_to(b) for p in ours.packages.values())


async def test_a_checkout_on_another_machine_takes_its_metadata_from_the_shared_tier(
    tmp_path: Path, runs: list[Path], redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_settings.REMOTE, redis_server.url())
    a = _workspace(tmp_path / "a")
    async with EnginePool(tmp_path / "cache-a") as pool:
        assert (await (await pool.get(a)).check(CheckRequest(scope="workspace"))).success
    b = shutil.copytree(a, tmp_path / "elsewhere" / "b", ignore=shutil.ignore_patterns("target"))
    async with EnginePool(tmp_path / "cache-b") as pool:  # B: empty local cache and target dir
        engine = await pool.get(b)
        report = await engine.check(CheckRequest(scope="workspace"))
        _same(await engine.workspace(), _cargo_says(b))
    assert runs == [a] and report.ran() == [], report.remote


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


EDITS: dict[str, Callable[[Path], None]] = {
    "a new bin target": lambda root: _write(root / "crates/c0/src/bin/extra.rs", "fn main() {}\n"),
    "a new test target": lambda root: _write(root / "crates/c2/tests/t.rs", "#[test]\nfn t() {}\n"),
    "a new member matching the glob": lambda root: _crate(root, "c9"),
    "a member's manifest": lambda root: _append(root / "crates/c2/Cargo.toml", "\n[features]\nextra = []\n"),
    "a target dir in .cargo/config.toml": lambda root: _write(
        root / ".cargo/config.toml", '[build]\ntarget-dir = "elsewhere-target"\n'
    ),
    "a removed member": lambda root: shutil.rmtree(root / "crates/c2"),
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
async def test_an_edit_cargo_metadata_reads_runs_it_again_and_the_answer_is_cargos(
    tmp_path: Path, runs: list[Path], edit: str
) -> None:
    root = _workspace(tmp_path / "ws")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        await engine.workspace()
        EDITS[edit](root)
        _same(await engine.workspace(), _cargo_says(root))  # the running engine
    assert len(runs) == 2
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))  # a new one: remembered
    assert len(runs) == 2


async def test_a_source_edit_does_not_run_cargo_metadata(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        await engine.workspace()
        (root / "crates/c0/src/lib.rs").write_text("pub fn g() {}\n")
        (root / "README.md").write_text("a file of no member, edited\n")
        await engine.workspace()
    (root / "README.md").write_text("and edited again\n")
    await _workspace_of(tmp_path / "cache", root)
    assert runs == [root, root], "only the README's creation (a new name) ran it again"


async def test_cargos_target_dir_variable_is_part_of_the_key(
    tmp_path: Path, runs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _workspace(tmp_path / "ws")
    await _workspace_of(tmp_path / "cache", root)
    monkeypatch.setenv("CARGO_TARGET_DIR", str(root / "other-target"))
    ours = await _workspace_of(tmp_path / "cache", root)
    assert len(runs) == 2 and ours.target_dir == root / "other-target"


async def test_a_manifest_edited_while_cargo_runs_is_not_remembered(
    tmp_path: Path, runs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _workspace(tmp_path / "ws")
    manifest = root / "crates/c2/Cargo.toml"
    before = manifest.read_text()
    spied = Engine._run_metadata  # the `runs` spy, which calls cargo

    async def edited_just_before_cargo_reads_it(self: Engine) -> dict[str, object]:
        if not runs:  # after the walk that keyed this run, before cargo reads the manifests
            manifest.write_text(before + "\n[features]\nlate = []\n")
        return await spied(self)

    monkeypatch.setattr(Engine, "_run_metadata", edited_just_before_cargo_reads_it)
    ours = await _workspace_of(tmp_path / "cache", root)
    assert len(runs) == 2, "the walk after the run disagreed with the one before: run again"
    _same(ours, _cargo_says(root))
    # Had the first run been remembered under the tree it was keyed by, putting that tree back
    # would be answered with the edited manifest's metadata.
    manifest.write_text(before)
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))


def test_metadata_naming_a_path_outside_the_checkout_is_kept_for_this_checkout_only(tmp_path: Path) -> None:
    root = str(tmp_path / "ws")
    inside = {"workspace_root": root, "packages": [{"manifest_path": f"{root}/a/Cargo.toml"}]}
    outside = {**inside, "target_directory": str(tmp_path / "shared-target")}
    assert list(_metadata.entries("k", inside, root)) == ["mx:k"]
    assert [k[:4] for k in _metadata.entries("k", outside, root)] == ["mxl:"]
    assert _metadata.entries("k", inside, root + "-moved") == {}, "cargo saw another root"
    shared = _metadata.entries("k", inside, root)["mx:k"]
    assert root not in json.dumps(shared)


async def test_a_shareable_entry_is_rebased_to_the_reader_and_a_local_one_serves_only_its_checkout(
    tmp_path: Path,
) -> None:
    cache = DiagnosticsCache(tmp_path / "cache")
    root, other = str(tmp_path / "a"), str(tmp_path / "b")
    data = {"workspace_root": root, "packages": [{"id": f"path+file://{root}#a@0.1.0"}]}
    await _metadata.remember(cache, "k", data, root)
    assert await _metadata.lookup(cache, "k", other) == {
        "workspace_root": other,
        "packages": [{"id": f"path+file://{other}#a@0.1.0"}],
    }
    local = {**data, "target_directory": "/elsewhere/target"}
    await _metadata.remember(cache, "k2", local, root)
    assert await _metadata.lookup(cache, "k2", root) == local
    assert await _metadata.lookup(cache, "k2", other) is None
