"""Two checkouts of the same sources at different paths share answers, never target dirs, and each
answer names its own checkout's files."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler import CheckRequest, EnginePool, GeneratedWorkspace, fresh_cargo_check

pytestmark = pytest.mark.anyio

# An error whose text holds the crate's absolute directory (as messages about files often do).
WHERE = '\ncompile_error!(concat!("moved from ", env!("CARGO_MANIFEST_DIR")));\n'


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("target"))
    return dst


async def test_a_second_checkout_is_answered_from_the_first_ones_answers_with_its_own_paths(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    leaf = ws.leaves[0]
    ws.lib_rs(leaf).write_text(ws.lib_rs(leaf).read_text() + WHERE)
    other = _copy(ws.root, tmp_path / "elsewhere" / "checkout-b")
    async with EnginePool(tmp_path / "shared-cache") as pool:
        first = await (await pool.get(ws.root)).check(CheckRequest(scope="workspace"))
        engine_b = await pool.get(other)
        second = await engine_b.check(CheckRequest(scope="workspace"))
        assert first.ran() and second.ran() == [], "every member of the copy comes from the cache"
        moved = [d for d in second.diagnostics if "moved from" in d.message]
        assert moved and all(str(other) in d.message and str(ws.root) not in d.message for d in moved)
        success, theirs = fresh_cargo_check(other, tmp_path / "fresh-b")
        assert {d.identity() for d in second.diagnostics} == theirs and second.success == success
        assert not (other / "target").exists() or not any((other / "target").iterdir()), "nothing was built in B"

        # An edit in B is B's alone: B runs it, A still answers from its own sources.
        path = other / "crates" / leaf / "src" / "lib.rs"
        path.write_text(path.read_text() + '\npub fn broken() -> u32 { "b only" }\n')
        edited = await engine_b.check(CheckRequest(scope="workspace"))
        again = await (await pool.get(ws.root)).check(CheckRequest(scope="workspace"))
    assert leaf in edited.ran() and not edited.success
    assert again.ran() == [] and again.success == first.success
    assert [d.message for d in again.diagnostics if "moved from" in d.message] == [
        d.message for d in first.diagnostics if "moved from" in d.message
    ]


def _git_worktree(root: Path, dest: Path) -> None:
    """Commit `root` in a new repository and add a linked worktree of it at `dest`."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    (root / ".gitignore").write_text("target/\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"], ["worktree", "add", "-q", str(dest)]):
        subprocess.run([*git, *args], cwd=root, check=True, capture_output=True, timeout=60)


async def test_a_new_git_worktree_is_answered_from_its_siblings_answers(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    """A linked worktree's `.git` is a file (naming its own git dir), the main checkout's a
    directory: neither is a build input, so neither enters a key."""
    ws = make_workspace()
    _git_worktree(ws.root, tmp_path / "wt")
    async with EnginePool(tmp_path / "shared-cache") as pool:
        first = await (await pool.get(ws.root)).check(CheckRequest(scope="workspace"))
        second = await (await pool.get(tmp_path / "wt")).check(CheckRequest(scope="workspace"))
    assert first.ran() == sorted(ws.members) and second.ran() == [] and second.cached() == sorted(ws.members)


async def test_a_file_outside_the_checkout_named_relatively_is_each_checkouts_own(tmp_path: Path) -> None:
    """`include!("../../../neighbour.rs")` reads the asking checkout's neighbour: the first
    checkout's answer (recorded with its absolute path) must not answer for a different one."""

    def checkout(top: Path, neighbour: str) -> Path:
        root = top / "ws"
        (root / "a" / "src").mkdir(parents=True)
        (root / "Cargo.toml").write_text('[workspace]\nmembers = ["a"]\nresolver = "2"\n')
        (root / "a" / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n')
        (root / "a" / "src" / "lib.rs").write_text('include!("../../../neighbour.rs");\n')
        (top / "neighbour.rs").write_text(neighbour)
        return root

    one = checkout(tmp_path / "one", "pub fn fine() {}\n")
    two = checkout(tmp_path / "two", 'compile_error!("the second neighbour");\n')
    three = checkout(tmp_path / "deeper" / "three", "pub fn fine() {}\n")
    async with EnginePool(tmp_path / "shared-cache") as pool:
        first = await (await pool.get(one)).check(CheckRequest(scope="workspace"))
        second = await (await pool.get(two)).check(CheckRequest(scope="workspace"))
        third = await (await pool.get(three)).check(CheckRequest(scope="workspace"))
    assert first.success and second.ran() == ["a"] and not second.success
    assert [d.message for d in second.diagnostics] == ["the second neighbour"]
    assert third.success and (third.success, set()) == fresh_cargo_check(three, tmp_path / "fresh")


async def test_a_hit_from_another_checkout_names_that_checkouts_own_outside_crate(tmp_path: Path) -> None:
    def checkout(top: Path) -> Path:
        root = top / "ws"
        (root / "a" / "src").mkdir(parents=True)
        (top / "o" / "src").mkdir(parents=True)
        (root / "Cargo.toml").write_text('[workspace]\nmembers = ["a"]\nresolver = "2"\n')
        (root / "a" / "Cargo.toml").write_text(
            '[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n[dependencies]\no = { path = "../../o" }\n'
        )
        (root / "a" / "src" / "lib.rs").write_text("pub fn f() -> u32 {\n    o::o()\n}\n")
        (top / "o" / "Cargo.toml").write_text('[package]\nname = "o"\nversion = "0.1.0"\nedition = "2021"\n')
        (top / "o" / "src" / "lib.rs").write_text("pub fn o() -> u32 {\n    let unused = 1;\n    0\n}\n")
        return root

    one, two = checkout(tmp_path / "one"), checkout(tmp_path / "deeper" / "two")
    async with EnginePool(tmp_path / "shared-cache") as pool:
        await (await pool.get(one)).check(CheckRequest(scope="workspace"))
        second = await (await pool.get(two)).check(CheckRequest(scope="workspace"))
    assert second.cached() == ["a"]
    assert [d.file for d in second.diagnostics] == [str(tmp_path / "deeper" / "two" / "o" / "src" / "lib.rs")]
