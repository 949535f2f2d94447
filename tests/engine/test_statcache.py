"""The stat cache on disk: a new process reads no file of an unchanged tree, and sees every edit
made between processes, the ones that keep size and mtime included."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler import CheckRequest, EnginePool, GeneratedWorkspace, fresh_cargo_check
from scheduler.engine import _statcache
from scheduler.engine._fingerprint import TreeHasher

pytestmark = pytest.mark.anyio
HOUR_NS = 3600 * 10**9


def _aged(root: Path) -> None:
    """Every file modified an hour ago: no entry is racily clean."""
    past = os.stat(root).st_mtime_ns - HOUR_NS
    for directory, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(directory, name), ns=(past, past))


def _sources(root: Path, files: int) -> Path:
    """`files` small sources under `root/src`, aged."""
    (root / "src").mkdir(parents=True)
    for i in range(files):
        (root / "src" / f"m{i}.rs").write_text(f"pub fn f{i}() {{}}\n")
    _aged(root)
    return root


def _process(cache: Path, root: Path) -> TreeHasher:
    """What a new process starts with: an empty hasher filled from the file on disk."""
    hasher = TreeHasher(root, watch=False)
    _statcache.load(_statcache.stat_cache_path(cache, str(root)), str(root), hasher)
    return hasher


def test_a_new_process_walks_an_unchanged_tree_without_reading_a_file(tmp_path: Path) -> None:
    root = _sources(tmp_path / "ws", 20)
    first = _process(tmp_path, root)
    before = first.snapshot({})
    assert before.stats.hashed == 20
    _statcache.save(_statcache.stat_cache_path(tmp_path, str(root)), str(root), first)
    again = _process(tmp_path, root).snapshot({})
    assert again.stats.hashed == 0 and again.by_owner == before.by_owner


EDITS: dict[str, Callable[[Path], None]] = {
    "same size, mtime put back": lambda f: _same_size_restored(f),
    "replaced by a copy with the old mtime": lambda f: _replaced(f),
}


def _same_size_restored(path: Path) -> None:
    st = os.stat(path)
    path.write_text(path.read_text().replace("f3", "g3"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _replaced(path: Path) -> None:
    st = os.stat(path)
    tmp = path.with_suffix(".new")
    tmp.write_text(path.read_text().replace("f3", "g3"))
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, path)


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_an_edit_between_processes_is_seen_even_with_size_and_mtime_unchanged(tmp_path: Path, edit: str) -> None:
    root = _sources(tmp_path / "ws", 5)
    first = _process(tmp_path, root)
    before = first.snapshot({})
    _statcache.save(_statcache.stat_cache_path(tmp_path, str(root)), str(root), first)
    EDITS[edit](root / "src" / "m3.rs")
    after = _process(tmp_path, root).snapshot({})
    assert after.stats.hashed == 1
    assert after.by_owner[None]["src/m3.rs"] != before.by_owner[None]["src/m3.rs"]


def test_a_garbled_or_foreign_stat_file_is_ignored(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.rs").write_text("fn a() {}\n")
    path = _statcache.stat_cache_path(tmp_path, str(root))
    path.parent.mkdir(parents=True)
    for garbage in (b"not json", b'{"format": 1, "root": "/elsewhere", "entries": {}}', b'{"format": 1}'):
        path.write_bytes(garbage)
        assert _statcache.load(path, str(root), TreeHasher(root, watch=False)) == 0


async def test_a_cli_question_after_another_reads_no_source_and_answers_as_cargo(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    _aged(ws.root)
    # Three processes' worth of engines on one cache dir: the second hashes again what the first
    # wrote just before hashing it (racily clean: Cargo.lock), the third reads nothing.
    for _ in range(3):
        async with EnginePool(tmp_path / "cache") as pool:
            engine = await pool.get(ws.root)
            report = await engine.check(CheckRequest(scope="workspace"))
            hashed = (await engine.observe()).snap.stats.hashed
    assert report.ran() == [] and hashed == 0
    assert (report.success, {d.identity() for d in report.diagnostics}) == fresh_cargo_check(ws.root, tmp_path / "t")


def test_only_the_most_recently_written_checkouts_files_are_kept(tmp_path: Path) -> None:
    roots = []
    for i in range(_statcache._KEEP + 3):
        root = tmp_path / f"checkout-{i}"
        root.mkdir()
        (root / "a.rs").write_text("fn a() {}\n")
        hasher = TreeHasher(root, watch=False)
        hasher.snapshot({})
        path = _statcache.stat_cache_path(tmp_path / "cache", str(root))
        _statcache.save(path, str(root), hasher)
        os.utime(path, ns=(i * 10**9, i * 10**9))  # written in this order
        roots.append(path)
    kept = set((tmp_path / "cache" / "stat").glob("*.json"))
    assert kept == set(roots[3:])
