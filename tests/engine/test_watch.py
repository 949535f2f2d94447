"""The watcher-backed refresh: what changed is found without walking, and nothing is missed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scheduler.engine._fingerprint import TreeHasher
from scheduler.engine._watch import TreeWatcher

pytestmark = pytest.mark.skipif(not TreeWatcher().active, reason="inotify is not available here")
ROOTS = {"a": "a", "b": "b"}


def tree(tmp_path: Path) -> Path:
    for name in ("a", "b"):
        (tmp_path / name / "src").mkdir(parents=True)
        (tmp_path / name / "Cargo.toml").write_text(f'[package]\nname = "{name}"\n')
        (tmp_path / name / "src" / "lib.rs").write_text("pub fn f() {}\n")
    (tmp_path / "target" / "debug").mkdir(parents=True)
    (tmp_path / "target" / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    return tmp_path


def test_an_unchanged_tree_returns_the_same_snapshot_without_a_walk(tmp_path: Path) -> None:
    hasher = TreeHasher(tree(tmp_path))
    first = hasher.snapshot(ROOTS)
    assert hasher.unchanged(ROOTS, set()) is first
    assert hasher.refresh(ROOTS) is first


def test_an_edit_is_seen_by_the_very_next_question_and_only_that_file_is_hashed(tmp_path: Path) -> None:
    root = tree(tmp_path)
    hasher = TreeHasher(root)
    first = hasher.snapshot(ROOTS)
    (root / "a" / "src" / "lib.rs").write_text("pub fn g() {}\n")
    assert hasher.unchanged(ROOTS, set()) is None
    second = hasher.refresh(ROOTS)
    assert second.generation != first.generation
    assert second.stats.hashed == 1
    assert second.owner_digest("a") != first.owner_digest("a")
    assert second.owner_digest("b") == first.owner_digest("b")


def test_an_edit_that_keeps_size_and_mtime_is_still_rehashed(tmp_path: Path) -> None:
    root = tree(tmp_path)
    lib = root / "b" / "src" / "lib.rs"
    os.utime(lib, ns=(1_000_000_000, 1_000_000_000))
    hasher = TreeHasher(root)
    first = hasher.snapshot(ROOTS)
    lib.write_text("pub fn h() {}\n")  # same length as before
    os.utime(lib, ns=(1_000_000_000, 1_000_000_000))
    assert hasher.refresh(ROOTS).owner_digest("b") != first.owner_digest("b")


def test_an_atomic_save_by_rename_and_a_deletion_are_seen(tmp_path: Path) -> None:
    root = tree(tmp_path)
    hasher = TreeHasher(root)
    hasher.snapshot(ROOTS)
    tmp = root / "a" / "src" / ".lib.rs.swp"
    tmp.write_text("pub fn saved() {}\n")
    os.replace(tmp, root / "a" / "src" / "lib.rs")
    (root / "b" / "src" / "lib.rs").unlink()
    snap = hasher.refresh(ROOTS)
    assert set(snap.by_owner["a"]) == {"a/Cargo.toml", "a/src/lib.rs"}
    assert set(snap.by_owner["b"]) == {"b/Cargo.toml"}
    assert snap.by_owner == hasher.snapshot(ROOTS).by_owner


def test_a_new_directory_falls_back_to_a_full_walk_that_includes_it(tmp_path: Path) -> None:
    root = tree(tmp_path)
    hasher = TreeHasher(root)
    hasher.snapshot(ROOTS)
    (root / "a" / "src" / "nested").mkdir()
    (root / "a" / "src" / "nested" / "mod.rs").write_text("pub fn n() {}\n")
    assert "a/src/nested/mod.rs" in hasher.refresh(ROOTS).by_owner["a"]


def test_cargo_writing_into_its_target_dir_changes_nothing(tmp_path: Path) -> None:
    root = tree(tmp_path)
    hasher = TreeHasher(root)
    first = hasher.snapshot(ROOTS)
    (root / "target" / ".rustc_info.json").write_text("{}")
    (root / "target" / "debug" / "out").write_text("x")
    assert hasher.unchanged(ROOTS, set()) is first


def test_without_a_watcher_every_refresh_walks(tmp_path: Path) -> None:
    root = tree(tmp_path)
    hasher = TreeHasher(root, watch=False)
    first = hasher.snapshot(ROOTS)
    assert hasher.unchanged(ROOTS, set()) is None
    (root / "a" / "src" / "lib.rs").write_text("pub fn w() {}\n")
    assert hasher.refresh(ROOTS).owner_digest("a") != first.owner_digest("a")
