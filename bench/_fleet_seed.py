"""The reflink seed, measured where it can work: a new worktree's first check on a loop-mounted XFS.

Why apart from `_fleet.worktree`: the bench's own directory is usually on ext4 or tmpfs, where the
seed is skipped (it never byte-copies), so that measurement only shows the verdict. Here checkout A
and two new worktrees of it live on a fresh XFS (`mkfs.xfs -m reflink=1`, as tests/engine/test_seed.py
mounts it); each worktree's first `workspace` check starts from an empty local cache and an empty
target dir, one with CARGO_SCHEDULER_SEED=0 and one with the seed on. The workspace is the one with
registry crates (what the seed is for: they stay fresh in the clone). Needs root, mkfs.xfs and a
loop device; otherwise the result says which one is missing.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _fleet import Log, environment, first_answer, git_repository
from _fleet_sccache import registry_workspace

IMAGE_BYTES = 8 * 1024**3
"""Sparse: only what is written uses disk. A's target dir and the unseeded worktree's, with room."""


@contextlib.contextmanager
def xfs_mount(directory: Path) -> Iterator[Path | str]:
    """A fresh reflinking XFS mounted under `directory` (its mount point), or why there is none."""
    if os.geteuid() != 0:
        yield "needs root to mount a loop device"
        return
    if shutil.which("mkfs.xfs") is None:
        yield "mkfs.xfs (xfsprogs) is not installed"
        return
    directory.mkdir(parents=True, exist_ok=True)
    image, mount = directory / "fs.img", directory / "mnt"
    mount.mkdir(exist_ok=True)
    with open(image, "wb") as f:
        f.truncate(IMAGE_BYTES)
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], capture_output=True, timeout=120)
    if made.returncode != 0:
        yield f"mkfs.xfs failed: {made.stderr.decode(errors='replace').strip()[-200:]}"
        return
    mounted = subprocess.run(["mount", "-o", "loop", str(image), str(mount)], capture_output=True, timeout=120)
    if mounted.returncode != 0:
        yield f"could not mount an XFS image on a loop device: {mounted.stderr.decode(errors='replace').strip()[-200:]}"
        return
    try:
        yield mount
    finally:
        gc.collect()  # diskcache's per-thread SQLite connections of finished pools keep files open
        if subprocess.run(["umount", str(mount)], capture_output=True, timeout=120).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount)], capture_output=True, timeout=120)
        image.unlink(missing_ok=True)


async def seed_on_xfs(base: Path, source: Path | None, log: Log) -> dict[str, Any]:
    """A new worktree's first check on XFS without the seed and with it (both with empty caches)."""
    with xfs_mount(base / "xfs") as mount:
        if isinstance(mount, str):
            return {"skipped": mount}
        a = mount / "a"
        out: dict[str, Any] = {"workspace": registry_workspace(a, source)}
        git_repository(a, [mount / "wt-off", mount / "wt-on"])
        with environment(CARGO_SCHEDULER_REMOTE=None, CARGO_SCHEDULER_SCCACHE=None, CARGO_SCHEDULER_SEED=None):
            log("  fleet: seed on XFS: checkout A's cold check fills its target dir")
            out["a_cold_s"], _, _ = await first_answer(a, base / "cache-xfs-a")
            log("  fleet: seed on XFS: a new worktree's first check, seed off")
            with environment(CARGO_SCHEDULER_SEED="0"):
                out["off_s"], report, status = await first_answer(mount / "wt-off", base / "cache-xfs-off")
            out["off_ran"], out["off_seed"] = len(report.ran()), status["target_seed"]
            log("  fleet: seed on XFS: another new worktree's first check, seed on")
            out["on_s"], report, status = await first_answer(mount / "wt-on", base / "cache-xfs-on")
            out["on_ran"], out["seed"] = len(report.ran()), status["target_seed"]
        return out
