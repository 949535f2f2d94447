"""clippy's configuration, found where clippy looks for it (`_clippy_config`): a `clippy.toml` that
appears above the workspace, git-ignored in a member, or in `CLIPPY_CONF_DIR`, is in no dep-info and
fools cargo's fingerprint; clippy answers still equal a fresh `cargo clippy`'s."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from scheduler import CheckReport, CheckRequest, EnginePool
from scheduler.cargo._workspace import Package, Workspace
from scheduler.engine._clippy_config import clippy_config_digest, member_configs

pytestmark = pytest.mark.anyio

CONFIG = 'disallowed-names = ["bar"]\n'
LINT = "clippy::disallowed_names"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _workspace(root: Path) -> Path:
    _write(root / "Cargo.toml", '[workspace]\nmembers = ["crates/a"]\nresolver = "2"\n')
    _write(root / "crates/a/Cargo.toml", '[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n')
    _write(root / "crates/a/src/lib.rs", "pub fn f() -> i32 {\n    let bar = 1;\n    bar + 1\n}\n")
    return root


def _lints(report: CheckReport) -> set[str]:
    return {d.code or "" for r in report.results.values() for d in r.diagnostics}


def _fresh_clippy(root: Path, target: Path, env: dict[str, str] | None = None) -> set[str]:
    """The lint codes of a `cargo clippy --workspace` in a target dir of its own."""
    proc = subprocess.run(
        ["cargo", "clippy", "--workspace", "--message-format=json", "--target-dir", str(target)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        check=False,
    )
    codes = set()
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-message" and message["message"].get("code"):
            codes.add(message["message"]["code"]["code"])
    return codes


@pytest.mark.parametrize(
    ("where", "conf_dir"),
    [
        pytest.param("up/clippy.toml", None, id="above-the-workspace"),
        pytest.param("up/ws/crates/a/.clippy.toml", None, id="git-ignored-in-a-member"),
        pytest.param("conf/clippy.toml", "conf", id="in-clippy-conf-dir-outside-the-workspace"),
        pytest.param("conf/clippy.toml", "config", id="in-the-clippy-conf-dir-a-cargo-config-sets"),
    ],
)
async def test_a_clippy_configuration_that_appears_where_clippy_looks_changes_the_answer_as_a_fresh_clippy_sees_it(
    tmp_path: Path, where: str, conf_dir: str | None
) -> None:
    root = _workspace(tmp_path / "up" / "ws")
    _write(root / ".gitignore", "target/\n.clippy.toml\n")
    (tmp_path / "conf").mkdir()
    env = {} if conf_dir in (None, "config") else {"CLIPPY_CONF_DIR": str(tmp_path / str(conf_dir))}
    if conf_dir == "config":  # cargo sets it for clippy-driver from `[env]`
        _write(tmp_path / "up" / ".cargo" / "config.toml", f"[env]\nCLIPPY_CONF_DIR = {str(tmp_path / 'conf')!r}\n")
    request = CheckRequest(kind="clippy", scope="workspace", env=tuple({**os.environ, **env}.items()))
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        before = await engine.check(request)
        assert LINT not in _lints(before)
        config = _write(tmp_path / where, CONFIG)
        after = await engine.check(request)
        assert LINT in _lints(after), after.notes
        assert LINT in _fresh_clippy(root, tmp_path / "fresh", env)
        config.unlink()
        gone = await engine.check(request)
    assert LINT not in _lints(gone)


async def test_a_clippy_configuration_above_the_workspace_leaves_check_answers_cached(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "up" / "ws")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        await engine.check(CheckRequest(scope="workspace"))
        _write(tmp_path / "up" / "clippy.toml", CONFIG)
        again = await engine.check(CheckRequest(scope="workspace"))
    assert again.ran() == [] and again.cached() == ["a"]


def _ws(root: Path, *members: str) -> Workspace:
    packages = {
        name: Package(
            name=name,
            id=f"path+file://{root}/{name}#0.1.0",
            root=root / name,
            manifest=root / name / "Cargo.toml",
            deps=frozenset(),
            dev_deps=frozenset(),
        )
        for name in members
    }
    for package in packages.values():
        package.root.mkdir(parents=True, exist_ok=True)
    return Workspace(root=root, target_dir=root / "target", packages=packages)


def test_each_member_reads_the_nearest_configuration_upward_by_content(tmp_path: Path) -> None:
    ws = _ws(tmp_path / "ws", "a", "b")
    assert member_configs(ws, {})["a"] == member_configs(ws, {})["b"]
    _write(tmp_path / "clippy.toml", "msrv = '1.70'\n")
    above = member_configs(ws, {})
    _write(tmp_path / "ws" / "b" / "clippy.toml", "msrv = '1.80'\n")
    nearest = member_configs(ws, {})
    assert nearest["a"] == above["a"] and nearest["b"] != above["b"]


def test_a_directory_named_clippy_toml_is_not_a_configuration(tmp_path: Path) -> None:
    ws = _ws(tmp_path / "ws", "a")
    nothing = member_configs(ws, {})
    (tmp_path / "ws" / "a" / "clippy.toml").mkdir()
    assert member_configs(ws, {}) == nothing


def test_the_same_configuration_in_another_checkout_gives_the_same_digest(tmp_path: Path) -> None:
    one, two = _ws(tmp_path / "one" / "ws", "a"), _ws(tmp_path / "two" / "deeper" / "ws", "a")
    _write(tmp_path / "one" / "clippy.toml", CONFIG)
    _write(tmp_path / "two" / "clippy.toml", CONFIG)
    assert clippy_config_digest(one, {}) == clippy_config_digest(two, {})


def test_a_member_reached_through_a_link_looks_above_its_real_directory(tmp_path: Path) -> None:
    real = _ws(tmp_path / "real" / "ws", "a")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "ws").symlink_to(real.root)
    linked = _ws(tmp_path / "elsewhere" / "ws", "a")
    _write(tmp_path / "elsewhere" / "clippy.toml", CONFIG)  # clippy canonicalises: never reads this
    assert member_configs(linked, {}) == member_configs(real, {})
    _write(tmp_path / "real" / "clippy.toml", CONFIG)
    assert member_configs(linked, {}) == member_configs(real, {}) != {"a": b"none"}
