"""bench/peer_suites.py's own parts: only the published suite runs, and each failure gets its verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _peer_sources  # noqa: E402
import _peer_suite  # noqa: E402
import _render_peer_suites  # noqa: E402


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    """A repository and the crate cargo would have unpacked from its HEAD."""
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "Cargo.toml").write_text('[package]\nname = "peer"\n')
    (repo / "tests" / "a.rs").write_text("#[test] fn a() {}\n")
    (repo / "test-support").mkdir()
    (repo / "test-support" / "lib.rs").write_text("// not packaged\n")
    _git(repo, "init", "-q")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "x", "--allow-empty")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "y")
    crate = tmp_path / "peer-0.1.0"
    (crate / "tests").mkdir(parents=True)
    (crate / "tests" / "a.rs").write_text("#[test] fn a() {}\n")
    (crate / "Cargo.toml").write_text("# normalised by cargo\n")
    (crate / "Cargo.toml.orig").write_text('[package]\nname = "peer"\n')
    (crate / ".cargo-ok").write_text('{"v":1}')
    sha = _git(repo, "rev-parse", "HEAD").strip()
    (crate / ".cargo_vcs_info.json").write_text(json.dumps({"git": {"sha1": sha}, "path_in_vcs": ""}))
    return crate, repo


def test_a_checkout_at_the_published_commit_with_the_published_files_is_copied_whole(
    published: tuple[Path, Path], tmp_path: Path
) -> None:
    crate, repo = published
    copy = _peer_sources.suite_checkout(crate, repo, tmp_path / "suite")
    assert (copy / "test-support" / "lib.rs").is_file()  # what the crate leaves out comes from the checkout
    assert not (copy / ".git").exists()


def test_a_checkout_at_another_commit_is_refused(published: tuple[Path, Path], tmp_path: Path) -> None:
    crate, repo = published
    _git(repo, "checkout", "-q", "HEAD~1")
    with pytest.raises(_peer_sources.SourceError, match="packaged from"):
        _peer_sources.suite_checkout(crate, repo, tmp_path / "suite")


def test_a_checkout_whose_tests_differ_from_the_crate_is_refused(published: tuple[Path, Path], tmp_path: Path) -> None:
    crate, repo = published
    (repo / "tests" / "a.rs").write_text("#[test] fn a() { assert!(true) }\n")  # uncommitted edit
    with pytest.raises(_peer_sources.SourceError, match=r"tests/a\.rs"):
        _peer_sources.suite_checkout(crate, repo, tmp_path / "suite")


def test_the_stand_in_execs_the_subject_with_the_peers_arguments(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    (suite / "target" / "release").mkdir(parents=True)
    (suite / "target" / "debug").mkdir()
    (suite / "target" / "release" / "rust-analyzer-mcp").write_text("the peer, preferred by its tests")
    subject = _peer_suite.Subject(
        "here", [sys.executable, "-c", "import os,sys; print(os.environ['K'], sys.argv[1:])"], {"K": "it's"}
    )
    _peer_suite.install_stand_in(suite, subject)
    assert not (suite / "target" / "release" / "rust-analyzer-mcp").exists()
    out = subprocess.run(
        [str(suite / "target" / "debug" / "rust-analyzer-mcp"), "WORKSPACE dir"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "it's ['WORKSPACE dir']"


def test_only_integration_and_stress_tests_count_as_driving_a_server() -> None:
    assert _peer_suite.drives_a_server("integration_tests", "integration::rename::renaming_nothing_at_all_says_so")
    assert _peer_suite.drives_a_server("stress_tests", "stress::concurrent_requests::test_connection_reuse")
    assert not _peer_suite.drives_a_server("integration_tests", "unit::protocol::tool_tests::test_error_response_codes")
    assert not _peer_suite.drives_a_server("property_tests", "property::protocol_fuzzing::test_unicode_in_parameters")


@pytest.mark.parametrize(
    ("peer", "here", "shapes", "documented", "verdict"),
    [
        ("passed", "passed", "passed", False, "passes"),
        ("passed", "failed", "passed", True, "asserts the peer's answer shape"),
        ("passed", "failed", "passed", False, "shape difference, not yet documented"),
        ("passed", "failed", "failed", True, "real failure"),
        ("passed", "timed out", "timed out", False, "real failure"),
        ("failed", "failed", "failed", False, "fails on the peer too"),
    ],
)
def test_a_failure_here_is_a_shape_difference_only_if_the_peers_shapes_pass_and_it_is_documented(
    peer: str, here: str, shapes: str, documented: bool, verdict: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_render_peer_suites, "SHAPES", {"t": "why"} if documented else {})
    by_subject = {"peer": {"t": peer}, "here": {"t": here}, "here-peer-shapes": {"t": shapes}}
    assert _render_peer_suites.classify("t", by_subject) == verdict


def test_every_documented_shape_names_a_test_of_the_committed_run() -> None:
    data = json.loads((BENCH.parent / "docs" / "benchmarks" / "peer-suites.json").read_text())
    ran = {_render_peer_suites.short(r["test"]) for rs in data["rust-analyzer-mcp"]["subjects"].values() for r in rs}
    assert set(_render_peer_suites.SHAPES) <= ran
    page = (BENCH.parent / "docs" / "benchmarks" / "peer-suites.md").read_text()
    assert page == _render_peer_suites.render(data), "re-render: python bench/peer_suites.py --render-only"
