"""The boundaries of the known gaps docs/cache-keys.md lists: what is seen, and the one step beyond
it that is not. A fix that closes a gap makes its test fail: move the case to test_sound_inputs and
strike the gap from the docs."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from scheduler import CheckRequest, EnginePool, fresh_cargo_check

pytestmark = pytest.mark.anyio


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _workspace(base: Path, lib_rs: str, build_rs: str | None = None) -> Path:
    root = base / "ws"
    _write(root / "Cargo.toml", '[workspace]\nmembers = ["crates/a"]\nresolver = "2"\n')
    _write(
        root / "crates/a/Cargo.toml",
        '[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n',
    )
    _write(root / "crates/a/src/lib.rs", lib_rs)
    if build_rs is not None:
        _write(root / "crates/a/build.rs", build_rs)
    return root


async def test_a_created_file_the_compiler_missed_is_seen_inside_the_walk(tmp_path: Path) -> None:
    root = _workspace(tmp_path, 'pub const X: &str = include_str!("later.txt");\n')
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        assert not (await engine.check(CheckRequest(scope="workspace"))).success
        _write(root / "crates/a/src/later.txt", "now here")
        again = await engine.check(CheckRequest(scope="workspace"))
    assert again.ran() == ["a"] and again.success
    assert fresh_cargo_check(root, tmp_path / "fresh")[0]


async def test_a_created_file_the_compiler_missed_outside_the_walk_is_not_seen(tmp_path: Path) -> None:
    """rustc records only files it opened: a missing file outside the workspace is in no record."""
    root = _workspace(tmp_path, 'pub const X: &str = include_str!("../../../../outside/later.txt");\n')
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        assert not (await engine.check(CheckRequest(scope="workspace"))).success
        _write(tmp_path / "outside/later.txt", "now here")
        again = await engine.check(CheckRequest(scope="workspace"))
    assert again.ran() == [] and not again.success, "the documented gap"
    assert fresh_cargo_check(root, tmp_path / "fresh")[0], "a fresh cargo sees the new file"


async def test_what_a_build_script_reads_without_declaring_it_is_missed_as_by_cargo_itself(tmp_path: Path) -> None:
    """The engine answers as a warm `cargo check` does; only a fresh target dir differs."""
    conf = _write(tmp_path / "outside/flavour.txt", "plain\n")
    build_rs = (
        "fn main() {\n"
        '    println!("cargo:rerun-if-changed=build.rs");\n'
        '    println!("cargo::rustc-check-cfg=cfg(flavour)");\n'
        '    if std::fs::read_to_string("../../../outside/flavour.txt").unwrap().contains("spicy") {\n'
        '        println!("cargo:rustc-cfg=flavour");\n'
        "    }\n"
        "}\n"
    )
    root = _workspace(tmp_path, '#[cfg(flavour)]\ncompile_error!("spicy");\npub fn f() {}\n', build_rs)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        assert (await engine.check(CheckRequest(scope="workspace"))).success
        conf.write_text("spicy\n")
        again = await engine.check(CheckRequest(scope="workspace"))
    assert again.ran() == [] and again.success, "the documented gap"
    with anyio.fail_after(300):
        warm = await anyio.run_process(["cargo", "check", "--workspace", "-q"], cwd=root, check=False)
    assert warm.returncode == 0, "a warm cargo check says the same"
    assert not fresh_cargo_check(root, tmp_path / "fresh")[0], "only a fresh target dir runs the script again"
