"""A member whose name another locked package has too (on real workspaces: a member published to
crates.io that a dependency pulls in again) is selected by package id: cargo refuses `-p name`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scheduler import CheckRequest, EnginePool, fresh_cargo_check

pytestmark = pytest.mark.anyio


def _crate(directory: Path, name: str, version: str, deps: str = "", body: str = "pub fn f() {}\n") -> None:
    (directory / "src").mkdir(parents=True)
    (directory / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n\n[dependencies]\n{deps}'
    )
    (directory / "src" / "lib.rs").write_text(body)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """Members `arena` (0.2.0) and `user`; `user` depends on an outside `arena` 0.1.0 (standing in for
    the registry copy), so Cargo.lock holds two packages named `arena`."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["arena", "user"]\n')
    _crate(root / "arena", "arena", "0.2.0", body="pub fn f() { let unused = 1; }\n")
    _crate(tmp_path / "vendored" / "arena", "arena", "0.1.0")
    _crate(root / "user", "user", "0.1.0", 'arena = { path = "../../vendored/arena" }\n', "pub use arena::f;\n")
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=root, check=True, capture_output=True)
    assert (root / "Cargo.lock").read_text().count('name = "arena"') == 2
    return root


async def test_a_member_sharing_its_name_with_another_locked_package_is_checked_by_package_id(
    workspace: Path, tmp_path: Path
) -> None:
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(workspace)
        report = await engine.check(CheckRequest(packages=("arena",), scope="changed"))
        assert report.error is None and report.ran() == ["arena"], report.error
        assert any(a.startswith("path+file://") and a.endswith("arena#0.2.0") for a in report.command)
        assert [d.code for d in report.diagnostics] == ["unused_variables"]
        whole = await engine.check(CheckRequest(scope="workspace"))
    assert (whole.success, {d.identity() for d in whole.diagnostics}) == fresh_cargo_check(workspace, tmp_path / "t")
