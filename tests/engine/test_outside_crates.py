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
