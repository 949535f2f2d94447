"""A new worktree's empty target dir is seeded from a sibling's by reflink where the filesystem can
(an XFS image mounted on a loop device, when this machine allows it), and skipped, saying why, where
it cannot (ext4)."""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler import CheckRequest, EnginePool, fresh_cargo_check, generate_workspace
from scheduler.engine._seed import git_worktrees, reflink_supported
from scheduler.engine._targets import MARKER

pytestmark = pytest.mark.anyio


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
    )


def _repository(base: Path) -> tuple[Path, Path]:
    """A generated workspace committed in a git repository at base/a, and a second worktree base/b."""
    a = base / "a"
    generate_workspace(a, 6)
    (a / ".gitignore").write_text("target/\n")
    _git(a, "init", "-q")
    _git(a, "add", "-A")
    _git(a, "commit", "-qm", "init")
    _git(a, "worktree", "add", "-q", str(base / "b"))
    return a, base / "b"


def _cp_can_reflink(directory: Path) -> bool:
    """The oracle: what `cp --reflink=always` itself says."""
    src = directory / "probe-src"
    src.write_bytes(b"x" * 4096)
    proc = subprocess.run(["cp", "--reflink=always", str(src), str(directory / "probe-dst")], capture_output=True)
    return proc.returncode == 0


def test_the_reflink_probe_agrees_with_cp(tmp_path: Path) -> None:
    source = tmp_path / "file"
    source.write_bytes(os.urandom(8192))
    assert reflink_supported(source, tmp_path) == _cp_can_reflink(tmp_path)
    assert list(tmp_path.glob(".reflink-*")) == [], "the probe leaves nothing behind"


def test_the_worktrees_of_a_repository_are_read_from_its_git_files(tmp_path: Path) -> None:
    a, b = _repository(tmp_path)
    assert git_worktrees(b / "crates") == (b.resolve(), [a.resolve(), b.resolve()])
    assert git_worktrees(a) == (a.resolve(), [a.resolve(), b.resolve()])
    (tmp_path / "plain").mkdir()
    assert git_worktrees(tmp_path / "plain") is None


async def test_where_the_filesystem_cannot_reflink_nothing_is_copied_and_the_status_says_why(tmp_path: Path) -> None:
    if _cp_can_reflink(tmp_path):
        pytest.skip("this filesystem reflinks: the seed itself is tested below")
    a, b = _repository(tmp_path)
    async with EnginePool(tmp_path / "cache-a") as pool:
        await (await pool.get(a)).check(CheckRequest(scope="workspace"))
    async with EnginePool(tmp_path / "cache-b") as pool:
        engine = await pool.get(b)
        report = await engine.check(CheckRequest(scope="workspace"))
        status = engine.status()["target_seed"]
    assert status["outcome"] == "skipped" and "cannot reflink" in status["reason"]
    assert not any("seeded" in n for n in report.notes) and report.ran()


async def test_the_seed_has_an_off_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARGO_SCHEDULER_SEED", "0")
    a, _ = _repository(tmp_path)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(a)
        await engine.check(CheckRequest(scope="workspace"))
        assert engine.status()["target_seed"] == {"enabled": False, "outcome": "off"}


@pytest.fixture
def reflink_dir() -> Iterator[Path]:
    """A fresh XFS (reflink=1) on a loop device, mounted for the test and unmounted after it."""
    if os.geteuid() != 0 or shutil.which("mkfs.xfs") is None:
        pytest.skip("needs root and mkfs.xfs (xfsprogs) to mount a reflinking filesystem on a loop device")
    work = Path(tempfile.mkdtemp(prefix="cs-xfs-"))
    image, mount = work / "fs.img", work / "mnt"
    mount.mkdir()
    with open(image, "wb") as f:
        f.truncate(512 * 1024 * 1024)
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, timeout=60)
    mounted = made.returncode == 0 and (
        subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True, timeout=60).returncode == 0
    )
    if not mounted:
        shutil.rmtree(work, ignore_errors=True)
        pytest.skip("could not mount an XFS image on a loop device here (no loop devices in this container?)")
    try:
        yield mount / uuid.uuid4().hex[:8]
    finally:
        gc.collect()  # diskcache's per-thread SQLite connections of the finished pools keep files open
        if subprocess.run(["umount", str(mount)], capture_output=True, timeout=60).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount)], capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)


async def test_a_new_worktree_is_seeded_from_its_siblings_target_dir_by_reflink(reflink_dir: Path) -> None:
    a, b = _repository(reflink_dir)
    async with EnginePool(reflink_dir / "cache-a") as pool:
        await (await pool.get(a)).check(CheckRequest(scope="workspace"))
    async with EnginePool(reflink_dir / "cache-b") as pool:
        engine = await pool.get(b)
        report = await engine.check(CheckRequest(scope="workspace"))
        status = engine.status()["target_seed"]
    assert status["outcome"] == "seeded" and status["source"] == str(a / "target"), status
    assert any("seeded from" in n for n in report.notes)
    assert (b / "target" / MARKER).read_text().strip() == str(b), "B's target dir is B's own"
    success, fresh = fresh_cargo_check(b, reflink_dir / "fresh")
    assert {d.identity() for d in report.diagnostics} == fresh and report.success == success
