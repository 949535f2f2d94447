"""The walk's `.gitignore` verdicts equal pathspec's (git's semantics) for every path, with the fast
reject in front: checked on patterns of every kind gitignore has, over generated paths."""

from __future__ import annotations

import pathspec
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.engine._ignore import IgnoreFile, ignored

LINES = [
    "# a comment",
    "",
    "target/",
    "/tests/fixtures/repos",
    "$/tests/fixtures/repos/",
    "**/generated-do-not-edit/",
    "**/fuzz/Cargo.lock",
    "*.rs.bk",
    "!keep.rs.bk",
    "src/**/gen_*.rs",
    "a?c",
    "[ab]x/",
    "\\#literal",
    "spaces\\ here",
    "(?P<x>.*)",
    "name(1).txt",
    "!/target/keep/",
]
NAMES = ["target", "src", "tests", "fixtures", "repos", "fuzz", "Cargo.lock", "keep.rs.bk", "x.rs.bk"]
NAMES += ["gen_a.rs", "abc", "ax", "bx", "#literal", "spaces here", "(?P<x>.*)", "name(1).txt", "keep", "lib.rs"]


def test_an_empty_or_comment_only_file_has_no_opinion_on_anything() -> None:
    for lines in ([], ["# only a comment", ""]):
        assert IgnoreFile(lines).include("target/") is None


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(st.sampled_from(LINES), max_size=8),
    parts=st.lists(st.sampled_from(NAMES), min_size=1, max_size=5),
    is_dir=st.booleans(),
)
def test_the_verdict_with_the_fast_reject_is_pathspecs_verdict(
    lines: list[str], parts: list[str], is_dir: bool
) -> None:
    path = "/".join(parts) + ("/" if is_dir else "")
    expected = pathspec.GitIgnoreSpec.from_lines(lines).check_file(path).include
    assert IgnoreFile(lines).include(path) == expected


def test_a_nested_file_re_includes_what_the_root_file_ignored() -> None:
    specs = [("", IgnoreFile(["*.log"])), ("crates/a", IgnoreFile(["!keep.log"]))]
    assert ignored(specs, "crates/a/keep.log", False) is False
    assert ignored(specs, "crates/a/other.log", False) is True
    assert ignored(specs, "crates/a/src", True) is False


def test_the_fast_reject_is_built_for_patterns_of_every_kind_so_the_property_above_exercises_it() -> None:
    assert IgnoreFile(LINES)._any is not None
