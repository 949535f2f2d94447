"""Remembered metadata: a new engine on unchanged inputs runs no `cargo metadata`, and what it
remembers is always what cargo itself prints for the tree as it is, in this checkout or another.

Every check compares the engine's workspace with `parse_metadata` of a real `cargo metadata` run
on the same tree at that moment (the contract), and counts the engine's own runs of cargo metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import anyio
import pytest
from remote_env import RedisServer

from scheduler import CheckRequest, EnginePool, _settings
from scheduler._exceptions import MetadataError
from scheduler.cargo._workspace import Workspace, load_metadata_json, parse_metadata
from scheduler.engine import _metadata
from scheduler.engine._cache import DiagnosticsCache
from scheduler.engine._engine import Engine
from scheduler.engine._toolchain import Toolchains

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
    _lock(root)
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


# Found by trying to break the cache (each failed before its fix).


def _lock(root: Path) -> None:
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=root, check=True, capture_output=True)


def _metadata_exit(root: Path) -> int:
    argv = ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"]
    return subprocess.run(argv, cwd=root, capture_output=True, check=False).returncode


def _pkg(d: Path, name: str, extra: str = "") -> None:
    (d / "src").mkdir(parents=True, exist_ok=True)
    (d / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n{extra}')
    (d / "src" / "lib.rs").write_text("pub fn f() {}\n")


async def test_a_member_outside_the_root_is_never_remembered(tmp_path: Path, runs: list[Path]) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["../x"]\n')
    _pkg(tmp_path / "x", "x", 'workspace = "../ws"\n')
    _lock(root)
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))
    _append(tmp_path / "x" / "Cargo.toml", "\n[features]\nextra = []\n")
    (tmp_path / "x" / "src" / "bin").mkdir()
    (tmp_path / "x" / "src" / "bin" / "b.rs").write_text("fn main() {}\n")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))


async def test_a_member_in_an_ignored_directory_is_never_remembered(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    (root / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["crates/*", "gen/*"]\n')
    (root / ".gitignore").write_text("/gen/\n")
    _pkg(root / "gen" / "g", "g")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))
    _append(root / "gen" / "g" / "Cargo.toml", "\n[features]\nextra = []\n")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))


async def test_a_member_behind_a_linked_directory_is_never_remembered(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    _pkg(tmp_path / "real" / "s", "s")
    os.symlink(tmp_path / "real" / "s", root / "crates" / "s")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))
    _append(tmp_path / "real" / "s" / "Cargo.toml", "\n[features]\nextra = []\n")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))


async def test_a_config_that_includes_other_files_is_never_remembered(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    (root / ".cargo").mkdir()
    (root / ".cargo" / "config.toml").write_text('include = ["extra.toml"]\n')
    (root / ".cargo" / "extra.toml").write_text('[build]\ntarget-dir = "one"\n')
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))
    (root / ".cargo" / "extra.toml").write_text('[build]\ntarget-dir = "two"\n')
    ours = await _workspace_of(tmp_path / "cache", root)
    assert ours.target_dir == _cargo_says(root).target_dir == root / "two", (ours.target_dir, runs)


async def test_a_variable_naming_the_checkouts_path_keeps_the_entry_local(
    tmp_path: Path, runs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _workspace(tmp_path / "a")
    monkeypatch.setenv("CARGO_TARGET_DIR", str(a / "target"))
    await _workspace_of(tmp_path / "cache", a)
    b = shutil.copytree(a, tmp_path / "b")
    ours = await _workspace_of(tmp_path / "cache", b)
    theirs = _cargo_says(b)
    assert theirs.target_dir == a / "target"
    assert ours.target_dir == theirs.target_dir, (ours.target_dir, runs)


async def test_a_config_naming_the_checkouts_path_keeps_the_entry_local(tmp_path: Path, runs: list[Path]) -> None:
    a = _workspace(tmp_path / "a")
    (a / ".cargo").mkdir()
    (a / ".cargo" / "config.toml").write_text(f'[build]\ntarget-dir = "{a}/target"\n')
    await _workspace_of(tmp_path / "cache", a)
    b = shutil.copytree(a, tmp_path / "b")
    ours = await _workspace_of(tmp_path / "cache", b)
    theirs = _cargo_says(b)
    assert ours.target_dir == theirs.target_dir, (ours.target_dir, theirs.target_dir, runs)


async def test_a_manifest_naming_the_checkouts_path_keeps_the_entry_local(tmp_path: Path, runs: list[Path]) -> None:
    a = _workspace(tmp_path / "a")
    _append(a / "crates/c2/Cargo.toml", f'\n[lib]\npath = "{a}/crates/c2/src/lib.rs"\n')
    await _workspace_of(tmp_path / "cache", a)
    b = shutil.copytree(a, tmp_path / "b")
    _same(await _workspace_of(tmp_path / "cache", b), _cargo_says(b))


async def test_the_same_config_above_another_root_name_is_another_key(tmp_path: Path, runs: list[Path]) -> None:
    # checkout A at p1/ws with p1/.cargo/config.toml; checkout B at p2/ws2 with the same file at p2
    for p in ("p1", "p2"):
        (tmp_path / p / ".cargo").mkdir(parents=True)
        (tmp_path / p / ".cargo" / "config.toml").write_text('[build]\ntarget-dir = "ws/tgt"\n')
    a = _workspace(tmp_path / "p1" / "ws")
    _same(await _workspace_of(tmp_path / "cache", a), _cargo_says(a))
    b = shutil.copytree(a, tmp_path / "p2" / "ws2")
    ours = await _workspace_of(tmp_path / "cache", b)
    theirs = _cargo_says(b)
    assert ours.target_dir == theirs.target_dir, (ours.target_dir, theirs.target_dir, runs)


async def test_a_root_reached_through_a_link_reads_the_config_above_its_real_path(
    tmp_path: Path, runs: list[Path]
) -> None:
    real = _workspace(tmp_path / "real" / "deep" / "ws")
    (tmp_path / "real" / "deep" / ".cargo").mkdir()
    cfg = tmp_path / "real" / "deep" / ".cargo" / "config.toml"
    cfg.write_text('[build]\ntarget-dir = "ws/one"\n')
    link = tmp_path / "link"
    os.symlink(real, link)
    _same(await _workspace_of(tmp_path / "cache", link), _cargo_says(link))
    cfg.write_text('[build]\ntarget-dir = "ws/two"\n')
    ours = await _workspace_of(tmp_path / "cache", link)
    theirs = _cargo_says(link)
    assert theirs.target_dir == real / "two"
    assert ours.target_dir == theirs.target_dir, (ours.target_dir, runs)


async def test_a_target_source_in_an_ignored_directory_is_never_remembered(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    (root / ".gitignore").write_text("/crates/c0/src/bin/\n")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))
    (root / "crates/c0/src/bin").mkdir()
    (root / "crates/c0/src/bin/gen.rs").write_text("fn main() {}\n")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))


async def test_a_path_holding_the_placeholder_text_is_never_remembered(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    d = root / "crates/c2/{{cargo-scheduler:workspace}}"
    d.mkdir()
    (d / "x.rs").write_text("pub fn f() {}\n")
    _append(root / "crates/c2/Cargo.toml", '\n[lib]\npath = "{{cargo-scheduler:workspace}}/x.rs"\n')
    await _workspace_of(tmp_path / "cache", root)
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))


async def test_a_directory_a_member_glob_matches_without_a_manifest_fails_as_cargo_does(
    tmp_path: Path, runs: list[Path]
) -> None:
    root = _workspace(tmp_path / "ws")
    await _workspace_of(tmp_path / "cache", root)
    (root / "crates" / "leftover").mkdir()  # say, a removed crate's untracked, ignored leftovers
    assert _metadata_exit(root) != 0  # cargo: failed to load manifest for workspace member
    with pytest.raises(MetadataError):
        await _workspace_of(tmp_path / "cache", root)


def _solo(root: Path) -> Path:
    """A single-package workspace whose directory has the package's name."""
    _pkg(root, "solo")
    _lock(root)
    return root


async def test_a_root_packages_id_names_the_checkouts_directory_so_it_stays_local(
    tmp_path: Path, runs: list[Path]
) -> None:
    # cargo leaves the name out of a package id when it is the directory's name: `file:///.../solo#0.1.0`
    a = _solo(tmp_path / "solo")
    _same(await _workspace_of(tmp_path / "cache", a), _cargo_says(a))
    b = shutil.copytree(a, tmp_path / "solo-2")
    ours, theirs = await _workspace_of(tmp_path / "cache", b), _cargo_says(b)
    assert ours.packages["solo"].id == theirs.packages["solo"].id, (
        ours.packages["solo"].id,
        theirs.packages["solo"].id,
        runs,
    )


async def test_a_root_package_in_a_renamed_checkout_keeps_its_diagnostics(tmp_path: Path, runs: list[Path]) -> None:
    a = _solo(tmp_path / "solo")
    await _workspace_of(tmp_path / "cache", a)  # remembers A's entry (for A only: a root package)
    b = shutil.copytree(a, tmp_path / "solo-2")
    (b / "src" / "lib.rs").write_text("pub fn f() { let unused = 1; }\n")
    async with EnginePool(tmp_path / "cache") as pool:
        report = await (await pool.get(b)).check(CheckRequest(scope="workspace"))
    assert runs == [a, b], "a root package's metadata is this checkout's only"
    result = report.results["solo"]
    assert result.diagnostics
    assert any(d.level == "warning" and "unused" in d.message for d in result.diagnostics), result


async def test_a_dangling_bin_link_whose_target_appears_is_seen(tmp_path: Path, runs: list[Path]) -> None:
    root = _workspace(tmp_path / "ws")
    (root / "crates/c0/src/bin").mkdir()
    outside = tmp_path / "generated" / "tool.rs"
    os.symlink(outside, root / "crates/c0/src/bin/tool.rs")  # cargo does not see a dangling link
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))
    outside.parent.mkdir()
    outside.write_text("fn main() {}\n")
    _same(await _workspace_of(tmp_path / "cache", root), _cargo_says(root))


async def test_a_rustc_upgraded_in_place_without_rustup_is_asked_again(tmp_path: Path) -> None:
    bin_dir = tmp_path / "usr-bin"
    bin_dir.mkdir()
    rustc = bin_dir / "rustc"
    rustc.write_text("#!/bin/sh\necho 'rustc 1.80.0 (distro)'\n")
    rustc.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}  # no rustup here
    root = tmp_path / "ws"
    root.mkdir()

    async def probe(argv: list[str], e: Mapping[str, str]) -> str:
        return (await anyio.run_process(argv, env=dict(e))).stdout.decode()

    cache = DiagnosticsCache(tmp_path / "cache")
    assert (await Toolchains(root, probe, cache).identity(env, None)).startswith("rustc 1.80.0")
    rustc.write_text("#!/bin/sh\necho 'rustc 1.81.0 (distro)'\n")  # apt/brew upgrade
    assert (await anyio.run_process(["rustc", "-vV"], env=env)).stdout.startswith(b"rustc 1.81.0")
    assert (await Toolchains(root, probe, cache).identity(env, None)).startswith("rustc 1.81.0")
