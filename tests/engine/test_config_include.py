"""A cargo configuration's `include`d files are configuration too: their content is in every key,
wherever they lie (here, beside a config in the workspace's parent, outside every walk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler import CheckRequest, EnginePool, fresh_cargo_check
from scheduler.engine._keys import included_configs

pytestmark = pytest.mark.anyio


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def test_an_edit_of_an_included_config_file_changes_the_answer_as_cargo_sees_it(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _write(root / "Cargo.toml", '[workspace]\nmembers = ["a"]\nresolver = "2"\n')
    _write(root / "a/Cargo.toml", '[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n')
    _write(root / "a/src/lib.rs", '#[cfg(included)]\ncompile_error!("the included config says so");\n')
    _write(tmp_path / ".cargo/config.toml", 'include = ["extra.toml"]\n')
    extra = _write(tmp_path / ".cargo/extra.toml", "[build]\nrustflags = []\n")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        assert (await engine.check(CheckRequest(scope="workspace"))).success
        extra.write_text('[build]\nrustflags = ["--cfg", "included", "--check-cfg", "cfg(included)"]\n')
        after = await engine.check(CheckRequest(scope="workspace"))
    assert after.ran() == ["a"] and [d.message for d in after.diagnostics] == ["the included config says so"]
    assert not fresh_cargo_check(root, tmp_path / "fresh")[0]


def test_included_files_are_found_relative_to_the_including_file_and_through_each_other(tmp_path: Path) -> None:
    top = _write(tmp_path / ".cargo/config.toml", 'include = ["one.toml", { path = "sub/two.toml" }]\n')
    _write(tmp_path / ".cargo/one.toml", "")
    _write(tmp_path / ".cargo/sub/two.toml", 'include = "three.toml"\n')
    found = included_configs(str(top))
    assert found == [
        str(tmp_path / ".cargo/one.toml"),
        str(tmp_path / ".cargo/sub/two.toml"),
        str(tmp_path / ".cargo/sub/three.toml"),
    ]


def test_an_include_key_spelled_with_a_toml_escape_is_found(tmp_path: Path) -> None:
    config = _write(tmp_path / ".cargo/config.toml", '"incl\\u0075de" = ["other.toml"]\n')
    assert included_configs(str(config)) == [str(tmp_path / ".cargo/other.toml")]
