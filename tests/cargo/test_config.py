"""`read_from_elsewhere`: which command lines typed in a directory read other configuration files
than cargo run at the workspace root (cargo and rustup look from where they run)."""

from __future__ import annotations

from pathlib import Path

from scheduler.cargo._config import read_from_elsewhere


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")
    return path


def test_at_the_root_and_below_it_without_configuration_the_files_are_the_same(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    _touch(root / ".cargo" / "config.toml")
    _touch(tmp_path / "rust-toolchain.toml")
    (root / "crates" / "a" / "src").mkdir(parents=True)
    assert read_from_elsewhere(root, str(root)) is None
    assert read_from_elsewhere(root, str(root / "crates" / "a" / "src")) is None


def test_a_members_own_cargo_config_or_toolchain_file_is_named(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    config = _touch(root / "crates" / "a" / ".cargo" / "config")
    toolchain = _touch(root / "crates" / "b" / "rust-toolchain")
    assert read_from_elsewhere(root, str(root / "crates" / "a" / "src")) == str(config)
    assert read_from_elsewhere(root, str(root / "crates" / "b")) == str(toolchain)


def test_typed_outside_the_workspace_the_roots_own_configuration_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    config = _touch(root / ".cargo" / "config.toml")
    (tmp_path / "elsewhere").mkdir()
    assert read_from_elsewhere(root, str(tmp_path / "elsewhere")) == str(config)
    assert read_from_elsewhere(root, str(tmp_path)) == str(config)  # a parent: `--manifest-path ws/Cargo.toml`
    config.unlink()
    assert read_from_elsewhere(root, str(tmp_path / "elsewhere")) is None


def test_a_directory_named_like_a_config_file_is_not_one(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "crates" / "a" / "rust-toolchain.toml").mkdir(parents=True)
    assert read_from_elsewhere(root, str(root / "crates" / "a")) is None
