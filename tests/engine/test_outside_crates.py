"""Path crates outside the workspace that are not members: cargo compiles them with no lint cap, so
their warnings and errors are part of what `cargo check` says; an error there is why the members on
top were not compiled. The answer carries them, named by that crate, from a run and from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler import CheckReport, CheckRequest, EnginePool, fresh_cargo_check

pytestmark = pytest.mark.anyio

WARNS = "pub fn o() -> u32 {\n    let unused_outside = 1;\n    0\n}\n"
FAILS = 'pub fn o() -> u32 {\n    "not a number"\n}\n'


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _workspace(base: Path, outside_lib: str) -> tuple[Path, Path]:
    root = base / "ws"
    _write(root / "Cargo.toml", '[workspace]\nmembers = ["crates/a", "crates/b"]\nresolver = "2"\n')
    _write(
        root / "crates/a/Cargo.toml",
        '[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[dependencies]\noutdep = { path = "../../../outdep" }\n',
    )
    _write(root / "crates/a/src/lib.rs", "pub fn f() -> u32 {\n    outdep::o()\n}\n")
    _write(
        root / "crates/b/Cargo.toml",
        '[package]\nname = "b"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\na = { path = "../a" }\n',
    )
    _write(root / "crates/b/src/lib.rs", "pub fn g() -> u32 {\n    a::f()\n}\n")
    _write(base / "outdep/Cargo.toml", '[package]\nname = "outdep"\nversion = "0.1.0"\nedition = "2021"\n')
    lib = _write(base / "outdep/src/lib.rs", outside_lib)
    return root, lib


def _identities(report: CheckReport) -> set[tuple[object, ...]]:
    return {d.identity() for d in report.diagnostics}


async def test_a_warning_in_an_outside_path_crate_is_in_the_answer_from_a_run_and_from_the_cache(
    tmp_path: Path,
) -> None:
    root, _ = _workspace(tmp_path, WARNS)
    truth = fresh_cargo_check(root, tmp_path / "fresh")
    assert any(i[0] == "outdep" for i in truth[1])  # cargo shows it
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        ran = await engine.check(CheckRequest(scope="workspace"))
        cached = await engine.check(CheckRequest(scope="workspace"))
    assert ran.ran() == ["a", "b"] and cached.cached() == ["a", "b"]
    assert (ran.success, _identities(ran)) == truth == (cached.success, _identities(cached))
    assert [d.package for d in cached.diagnostics] == ["outdep"]  # once, though two members build on it


async def test_an_error_in_an_outside_path_crate_is_shown_and_the_widening_ends(tmp_path: Path) -> None:
    root, lib = _workspace(tmp_path, WARNS)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        await engine.check(CheckRequest(scope="workspace"))
        lib.write_text(FAILS)
        first = await engine.check(CheckRequest(scope="auto"))
        # What `auto` leaves pending is checked in the background; `a`, blocked by outdep, is
        # never stored: the widening must still end, not run cargo for it again and again.
        assert "a" in first.pending
        await engine.wait_background(timeout_s=60)
        answer = await engine.check(CheckRequest(scope="workspace"))
    assert not answer.success and answer.results["a"].blocked_by == ["outdep"]
    assert [(d.package, d.level, d.code) for d in answer.diagnostics] == [("outdep", "error", "E0308")]
    assert (answer.success, _identities(answer)) == fresh_cargo_check(root, tmp_path / "fresh")


def _crate(directory: Path, name: str, lib: str, deps: str = "") -> None:
    _write(
        directory / "Cargo.toml",
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n{deps}',
    )
    _write(directory / "src/lib.rs", lib)


async def test_each_member_carries_only_the_outside_crates_it_builds_on(tmp_path: Path) -> None:
    """a -> o1 -> o2 (outside), b -> o3 (outside): o3's error is b's, never a's."""
    root = tmp_path / "ws"
    _write(root / "Cargo.toml", '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n')
    _crate(root / "a", "a", "pub fn f() -> u32 {\n    o1::o()\n}\n", 'o1 = { path = "../../o1" }\n')
    _crate(root / "b", "b", "pub fn g() -> u32 {\n    o3::o()\n}\n", 'o3 = { path = "../../o3" }\n')
    _crate(tmp_path / "o1", "o1", "pub fn o() -> u32 {\n    o2::o()\n}\n", 'o2 = { path = "../o2" }\n')
    _crate(tmp_path / "o2", "o2", WARNS)
    _crate(tmp_path / "o3", "o3", FAILS)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        everything = await engine.check(CheckRequest(scope="workspace"))
        only_a = await engine.check(CheckRequest(scope="workspace", packages=("a",)))
    assert (everything.success, _identities(everything)) == fresh_cargo_check(root, tmp_path / "fresh")
    assert only_a.cached() == ["a"] and only_a.success
    assert {d.package for d in only_a.diagnostics} == {"o2"}
    assert {d.package for d in everything.results["b"].diagnostics} == {"o3"}


async def test_an_outside_crate_asking_a_member_for_a_feature_changes_that_members_answer(tmp_path: Path) -> None:
    """a -> o (outside) -> b (member): o's manifest decides b's features as a member's would."""
    root = tmp_path / "ws"
    _write(root / "Cargo.toml", '[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n')
    _crate(root / "a", "a", "pub fn f() -> u32 {\n    o::o()\n}\n", 'o = { path = "../../o" }\n')
    _write(root / "b/Cargo.toml", '[package]\nname = "b"\nversion = "0.1.0"\nedition = "2021"\n[features]\nx = []\n')
    _write(root / "b/src/lib.rs", 'pub fn b() -> u32 {\n    0\n}\n#[cfg(feature = "x")]\nfn unused_x() {}\n')
    outside_deps = 'b = { path = "../ws/b" }\n'
    _crate(tmp_path / "o", "o", "pub fn o() -> u32 {\n    b::b()\n}\n", outside_deps)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        assert (await engine.check(CheckRequest(scope="workspace"))).success
        manifest = tmp_path / "o/Cargo.toml"
        manifest.write_text(manifest.read_text().replace(outside_deps, 'b = { path = "../ws/b", features = ["x"] }\n'))
        after = await engine.check(CheckRequest(scope="workspace"))
    assert (after.success, _identities(after)) == fresh_cargo_check(root, tmp_path / "fresh")
    assert [d.package for d in after.diagnostics] == ["b"]
