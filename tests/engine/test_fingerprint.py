"""Tree fingerprints on real files: stat-only re-walks, racy files, ignores and ownership."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from scheduler.engine import _fingerprint
from scheduler.engine._fingerprint import Snapshot, TreeHasher

HOUR_NS = 3600 * 10**9
ROOTS = {"": "root", "crates/a": "a", "crates/a/nested": "nested", "crates/b": "b"}


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _age(root: Path, ago_ns: int = HOUR_NS) -> None:
    """Move every mtime into the past, so no entry is racily clean after the next walk."""
    when = time.time_ns() - ago_ns
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(dirpath, name), ns=(when, when), follow_symlinks=False)


def _files(snap: Snapshot) -> dict[str, str | None]:
    return {rel: owner for owner, files in snap.by_owner.items() for rel in files}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    _write(root / "Cargo.toml", "[workspace]\n")
    _write(root / "Cargo.lock", "# lock\n")
    _write(root / "crates/a/Cargo.toml", "[package]\nname = 'a'\n")
    _write(root / "crates/a/src/lib.rs", "pub fn a() {}\n")
    _write(root / "crates/a/data/greeting.txt", "hello\n")
    _write(root / "crates/a/nested/Cargo.toml", "[package]\nname = 'nested'\n")
    _write(root / "crates/a/nested/src/lib.rs", "pub fn n() {}\n")
    _write(root / "crates/b/Cargo.toml", "[package]\nname = 'b'\n")
    _write(root / "crates/b/src/lib.rs", "pub fn b() {}\n")
    _age(root)
    return root


def test_an_unchanged_tree_is_walked_again_without_reading_any_file(tree: Path) -> None:
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    assert first.stats.hashed == first.stats.files == 9
    second = hasher.snapshot(ROOTS)
    assert second.stats.hashed == 0
    assert second.stats.bytes_read == 0
    assert second.by_owner == first.by_owner


def test_an_edit_is_seen_and_only_the_edited_file_is_read_again(tree: Path) -> None:
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    _write(tree / "crates/b/src/lib.rs", "pub fn b() -> u32 { 1 }\n")
    second = hasher.snapshot(ROOTS)
    assert second.stats.hashed == 1
    assert first.owner_digest("b") != second.owner_digest("b")
    assert first.owner_digest("a") == second.owner_digest("a")
    assert first.owner_digest(None) == second.owner_digest(None)


def test_a_rewrite_with_equal_size_and_restored_mtime_is_caught_when_the_inode_changes(tree: Path) -> None:
    """How editors and agents save (write a temporary file, rename it over): a new inode."""
    target = tree / "crates/b/src/lib.rs"
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    st = target.stat()
    new = _write(tree / "crates/b/src/.lib.rs.tmp", target.read_text().replace("b()", "c()"))
    assert new.stat().st_size == st.st_size
    os.replace(new, target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert after.st_ino != st.st_ino
    second = hasher.snapshot(ROOTS)
    assert second.stats.hashed == 1
    assert second.owner_digest("b") != first.owner_digest("b")


def test_an_in_place_rewrite_with_equal_size_and_restored_mtime_is_seen_through_the_ctime(tree: Path) -> None:
    """Same inode, size and mtime, new bytes: what cargo's mtime check misses. Putting the mtime back
    moves the ctime, which no tool can set, so a full walk (no watcher) sees it too."""
    target = tree / "crates/b/src/lib.rs"
    hasher = TreeHasher(tree, watch=False)
    first = hasher.snapshot(ROOTS)
    st = target.stat()
    with open(target, "r+b") as fh:
        fh.write(b"PUB")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_mtime_ns == st.st_mtime_ns and target.stat().st_size == st.st_size
    assert hasher.snapshot(ROOTS).owner_digest("b") != first.owner_digest("b")
    assert TreeHasher(tree).snapshot(ROOTS).owner_digest("b") != first.owner_digest("b")


@pytest.fixture
def wide_racy_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A minute instead of 50 ms, so a slow machine cannot let an entry settle between two walks."""
    monkeypatch.setattr(_fingerprint, "_RACY_MARGIN_NS", 60 * 10**9)


@pytest.mark.usefixtures("wide_racy_margin")
def test_a_racily_clean_file_is_hashed_again_until_it_settles(tree: Path) -> None:
    target = tree / "crates/a/src/lib.rs"
    hasher = TreeHasher(tree)
    hasher.snapshot(ROOTS)
    now = time.time_ns()
    os.utime(target, ns=(now, now))
    assert hasher.snapshot(ROOTS).stats.hashed == 1
    # Still within the racy margin of its last hashing: a same-size write now could keep this
    # mtime, so the file is read again instead of trusted.
    assert hasher.snapshot(ROOTS).stats.hashed == 1
    _age(tree)
    hasher.snapshot(ROOTS)
    assert hasher.snapshot(ROOTS).stats.hashed == 0


@pytest.mark.usefixtures("wide_racy_margin")
def test_a_same_size_write_within_the_racy_window_is_caught(tree: Path) -> None:
    target = tree / "crates/a/src/lib.rs"
    hasher = TreeHasher(tree)
    now = time.time_ns()
    os.utime(target, ns=(now, now))
    first = hasher.snapshot(ROOTS)
    with open(target, "r+b") as fh:
        fh.write(b"PUB")
    os.utime(target, ns=(now, now))  # the same clock tick
    assert hasher.snapshot(ROOTS).owner_digest("a") != first.owner_digest("a")


def test_files_belong_to_the_closest_package_root(tree: Path) -> None:
    _write(tree / "README.md", "docs\n")
    _write(tree / "crates/a/nested/data/x.txt", "x\n")
    owners = _files(TreeHasher(tree).snapshot({"crates/a": "a", "crates/a/nested": "nested", "crates/b": "b"}))
    assert owners["crates/a/src/lib.rs"] == "a"
    assert owners["crates/a/data/greeting.txt"] == "a"
    assert owners["crates/a/nested/src/lib.rs"] == "nested"
    assert owners["crates/a/nested/data/x.txt"] == "nested"
    assert owners["crates/b/Cargo.toml"] == "b"
    assert owners["Cargo.lock"] is None
    assert owners["README.md"] is None


def test_a_root_package_owns_the_files_no_member_claims(tree: Path) -> None:
    owners = _files(TreeHasher(tree).snapshot(ROOTS))
    assert owners["Cargo.toml"] == "root"
    assert owners["crates/a/src/lib.rs"] == "a"


def test_gitignore_at_the_root_and_nested_excludes_files_and_directories(tree: Path) -> None:
    _write(tree / ".gitignore", "/target\n*.log\nscratch/\n")
    _write(tree / "target/debug/out.rlib", "binary")
    _write(tree / "crates/a/target/kept.txt", "anchored /target only matches at the root")
    _write(tree / "debug.log", "log")
    _write(tree / "crates/b/deep/trace.log", "log")
    _write(tree / "crates/b/scratch/notes.md", "notes")
    _write(tree / "crates/b/scratch.md", "a file named like the directory pattern is kept")
    _write(tree / "crates/a/.gitignore", "generated/\n*.tmp\n")
    _write(tree / "crates/a/generated/out.rs", "gen")
    _write(tree / "crates/a/src/x.tmp", "tmp")
    _write(tree / "crates/b/y.tmp", "nested patterns do not apply to siblings")
    files = set(_files(TreeHasher(tree).snapshot(ROOTS)))
    assert "crates/a/src/lib.rs" in files
    assert ".gitignore" in files and "crates/a/.gitignore" in files
    assert "crates/a/target/kept.txt" in files
    assert "crates/b/scratch.md" in files
    assert "crates/b/y.tmp" in files
    for ignored in [
        "target/debug/out.rlib",
        "debug.log",
        "crates/b/deep/trace.log",
        "crates/b/scratch/notes.md",
        "crates/a/generated/out.rs",
        "crates/a/src/x.tmp",
    ]:
        assert ignored not in files, ignored


def test_a_nested_gitignore_can_re_include_what_the_root_ignores(tree: Path) -> None:
    """git gives the deeper .gitignore the last word: `!keep.log` there re-includes the file."""
    _write(tree / ".gitignore", "*.log\n")
    _write(tree / "crates/a/.gitignore", "!keep.log\n")
    _write(tree / "crates/a/keep.log", "read with include_str!")
    _write(tree / "crates/a/other.log", "ignored")
    files = set(_files(TreeHasher(tree).snapshot(ROOTS)))
    assert "crates/a/keep.log" in files
    assert "crates/a/other.log" not in files


def test_an_edit_to_a_gitignore_takes_effect_on_the_next_walk(tree: Path) -> None:
    hasher = TreeHasher(tree)
    _write(tree / "crates/b/notes.txt", "n")
    assert "crates/b/notes.txt" in _files(hasher.snapshot(ROOTS))
    _write(tree / ".gitignore", "notes.txt\n")
    assert "crates/b/notes.txt" not in _files(hasher.snapshot(ROOTS))


def test_a_directory_with_a_cachedir_tag_is_skipped(tree: Path) -> None:
    _write(tree / "custom-target/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")
    _write(tree / "custom-target/debug/deps/a.d", "dep-info")
    _write(tree / "crates/b/build-out/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")
    _write(tree / "crates/b/build-out/x.o", "obj")
    files = set(_files(TreeHasher(tree).snapshot(ROOTS)))
    assert not any(f.startswith(("custom-target/", "crates/b/build-out/")) for f in files)


def test_vcs_directories_and_the_excluded_target_dir_are_skipped(tree: Path) -> None:
    _write(tree / ".git/HEAD", "ref: refs/heads/main\n")
    _write(tree / ".jj/repo/store", "x")
    _write(tree / "out/debug/a", "artifact without a tag")
    files = set(_files(TreeHasher(tree).snapshot(ROOTS, exclude={tree / "out"})))
    assert not any(f.startswith((".git/", ".jj/", "out/")) for f in files)


def test_a_deleted_file_leaves_the_snapshot_and_a_new_file_enters_it(tree: Path) -> None:
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    (tree / "crates/a/data/greeting.txt").unlink()
    _write(tree / "crates/a/data/new.txt", "new")
    second = _files(hasher.snapshot(ROOTS))
    assert "crates/a/data/greeting.txt" not in second
    assert second["crates/a/data/new.txt"] == "a"
    assert len(second) == first.stats.files


def test_a_symlinked_file_is_fingerprinted_by_its_target_content_and_its_link_text(tree: Path, tmp_path: Path) -> None:
    """The compiler reads through the link: an edit of the target (outside the tree, where inotify on
    the tree sees nothing) changes the digest at the next question, and so does retargeting."""
    outside = _write(tmp_path / "outside/secret.txt", "outside the workspace")
    link = tree / "crates/a/link.txt"
    link.symlink_to(outside)
    (tree / "crates/a/linkdir").symlink_to(outside.parent, target_is_directory=True)
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    files = _files(first)
    assert files["crates/a/link.txt"] == "a"
    assert "crates/a/linkdir" in files and not any(f.startswith("crates/a/linkdir/") for f in files)
    assert hasher.unchanged(ROOTS, set()) is first
    outside.write_text("changed outside, longer")
    assert hasher.unchanged(ROOTS, set()) is None, "the link's target is stat-ed at every question"
    second = hasher.refresh(ROOTS)
    assert second.owner_digest("a") != first.owner_digest("a")
    link.unlink()
    link.symlink_to(tmp_path / "elsewhere.txt")
    assert hasher.snapshot(ROOTS).owner_digest("a") != second.owner_digest("a")


def _stats_of(monkeypatch: pytest.MonkeyPatch, hasher: TreeHasher) -> list[str]:
    """The paths `os.stat` is asked about inside the hasher from now on."""
    seen: list[str] = []
    real = os.stat

    def recording(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        seen.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", recording)
    return seen


def _licensed(tree: Path) -> tuple[Path, TreeHasher]:
    """`crates/b/LICENSE -> ../../LICENSE` and a watching hasher (skips where inotify is missing)."""
    license_file = _write(tree / "LICENSE", "MIT\n")
    (tree / "crates/b/LICENSE").symlink_to("../../LICENSE")
    hasher = TreeHasher(tree)
    if not hasher.watching:
        pytest.skip("no inotify here")
    return license_file, hasher


def test_a_link_to_a_file_in_the_tree_is_seen_through_its_targets_events_without_a_stat_per_question(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`crates/b/LICENSE -> ../../LICENSE`, as every member of a big workspace has: an edit of the
    target changes the link's package at the next question, and questions in between stat nothing."""
    license_file, hasher = _licensed(tree)
    first = hasher.snapshot(ROOTS)
    assert hasher.unchanged(ROOTS, set()) is first  # the first question after a walk stats the links
    stats = _stats_of(monkeypatch, hasher)
    assert hasher.unchanged(ROOTS, set()) is first
    assert not [p for p in stats if p.endswith("LICENSE")], stats
    license_file.write_text("MIT, edited\n")
    assert hasher.unchanged(ROOTS, set()) is None
    second = hasher.refresh(ROOTS)
    assert second.owner_digest("b") != first.owner_digest("b")
    assert second.owner_digest("root") != first.owner_digest("root")
    assert hasher.unchanged(ROOTS, set()) is second


def test_a_target_edited_before_its_directory_was_watched_is_caught_by_the_first_question(tree: Path) -> None:
    license_file, hasher = _licensed(tree)
    first = hasher.snapshot(ROOTS)
    license_file.write_text("MIT, edited in the window\n")
    assert hasher._watcher is not None
    hasher._watcher.drain()  # the event the window would have lost
    assert hasher.unchanged(ROOTS, set()) is None
    assert hasher.refresh(ROOTS).owner_digest("b") != first.owner_digest("b")


def test_a_link_whose_text_passes_through_another_link_is_stat_ed_at_every_question(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`crates/b/notes.txt -> ../via/notes.txt` where `crates/via` is a link to a directory:
    retargeting `via` changes what the link reads with no event for the file it read before."""
    _write(tree / "docs/one/notes.txt", "one\n")
    _write(tree / "docs/two/notes.txt", "two\n")
    via = tree / "crates/via"
    via.symlink_to(tree / "docs/one", target_is_directory=True)
    (tree / "crates/b/notes.txt").symlink_to("../via/notes.txt")
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    assert hasher.unchanged(ROOTS, set()) is first
    assert hasher.unchanged(ROOTS, set()) is first
    stats = _stats_of(monkeypatch, hasher)
    hasher.unchanged(ROOTS, set())
    assert any(p.endswith("crates/b/notes.txt") for p in stats)
    tmp = tree / "crates/via.new"
    tmp.symlink_to(tree / "docs/two", target_is_directory=True)
    os.replace(tmp, via)
    assert hasher.unchanged(ROOTS, set()) is None
    assert hasher.refresh(ROOTS).owner_digest("b") != first.owner_digest("b")


def test_a_file_with_another_hard_link_is_seen_when_edited_through_the_other_name(tree: Path, tmp_path: Path) -> None:
    source = tree / "crates/b/src/lib.rs"
    other = tmp_path / "other-name.rs"
    os.link(source, other)
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    assert hasher.unchanged(ROOTS, set()) is first
    other.write_text("pub fn edited_through_the_other_name() {}\n")
    assert hasher.unchanged(ROOTS, set()) is None
    assert hasher.refresh(ROOTS).owner_digest("b") != first.owner_digest("b")


def test_a_file_name_that_is_not_utf8_is_walked_without_crashing(tree: Path) -> None:
    name = os.fsencode(str(tree / "crates/a")) + b"/caf\xe9.txt"
    with open(name, "wb") as fh:
        fh.write(b"latin-1 name")
    snap = TreeHasher(tree).snapshot(ROOTS)
    assert any(rel.startswith("crates/a/caf") for rel in snap.by_owner["a"])
    assert snap.owner_digest("a")


def test_an_owner_digest_covers_paths_as_well_as_contents() -> None:
    a = Snapshot(by_owner={"p": {"src/a.rs": b"1", "src/b.rs": b"2"}})
    renamed = Snapshot(by_owner={"p": {"src/a.rs": b"1", "src/c.rs": b"2"}})
    reordered = Snapshot(by_owner={"p": {"src/b.rs": b"2", "src/a.rs": b"1"}})
    assert a.owner_digest("p") != renamed.owner_digest("p")
    assert a.owner_digest("p") == reordered.owner_digest("p")
    assert Snapshot().owner_digest("p") == Snapshot().owner_digest(None)


def test_a_dangling_and_a_looping_link_are_walked_again_after_their_directory_changes(tree: Path) -> None:
    src = tree / "crates/a/src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "dangling.rs").symlink_to(src / "nowhere.rs")
    (src / "loop_a.rs").symlink_to(src / "loop_b.rs")
    (src / "loop_b.rs").symlink_to(src / "loop_a.rs")
    hasher = TreeHasher(tree)
    first = hasher.snapshot(ROOTS)
    os.utime(src)
    (src / "new.rs").write_text("pub fn new() {}\n")
    second = hasher.refresh(ROOTS)
    assert "crates/a/src/dangling.rs" in second.by_owner["a"]
    assert second.owner_digest("a") != first.owner_digest("a")
    assert TreeHasher(tree, watch=False).snapshot(ROOTS).owner_digest("a") == second.owner_digest("a")
    assert hasher.unchanged(ROOTS, set()) is second, "an unchanged dangling link is not a change"


def test_a_walk_made_before_the_members_were_known_is_reowned_without_walking_again(tree: Path) -> None:
    hasher = TreeHasher(tree)
    hasher.refresh({})  # the first walk of a question: the metadata is not known yet
    walks: list[str] = []
    walk = hasher._walk

    def counted(rel_dir: str, *args: Any) -> None:
        walks.append(rel_dir)
        walk(rel_dir, *args)

    hasher._walk = counted  # type: ignore[method-assign,assignment]
    _write(tree / "crates/b/src/lib.rs", "pub fn b() -> u32 { 1 }\n")  # an edit between the walks
    reowned = hasher.refresh(ROOTS)
    assert walks == [], "no directory was listed again"
    assert reowned.by_owner == TreeHasher(tree).snapshot(ROOTS).by_owner, "and the edit is in it"
    assert hasher.unchanged(ROOTS, set()) is reowned


def test_a_walk_that_entered_a_directory_now_excluded_is_walked_again(tree: Path) -> None:
    _write(tree / "out/artifact.txt", "not a source\n")  # a target dir cargo has not marked yet
    hasher = TreeHasher(tree)
    assert "out/artifact.txt" in _files(hasher.refresh({}))
    assert "out/artifact.txt" not in _files(hasher.refresh(ROOTS, {tree / "out"}))
