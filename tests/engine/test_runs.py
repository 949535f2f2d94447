"""Command lines for cargo, and per-package answers from synthetic cargo outcomes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scheduler.cargo._run import _FAILED_UNIT, CargoOutcome
from scheduler.cargo._workspace import Package, Workspace
from scheduler.engine._cache import _decode, _encode
from scheduler.engine._keys import Command
from scheduler.engine._report import PackageResult
from scheduler.engine._runs import RunSpec, diagnostics_of, from_entry, results_from_outcome, to_entry

ROOT = Path("/w")
MESSAGE_FORMAT = "--message-format=json-diagnostic-rendered-ansi"


def _pkg(name: str, deps: set[str] = frozenset(), dev: set[str] = frozenset()) -> Package:  # type: ignore[assignment]
    return Package(
        name=name,
        id=_id(name),
        root=ROOT / name,
        manifest=ROOT / name / "Cargo.toml",
        deps=frozenset(deps),
        dev_deps=frozenset(dev),
    )


def _id(name: str) -> str:
    return f"path+file:///w/{name}#0.1.0"


# hub <- mid <- leaf;  buildinfo <- stamped;  solo;  a <-dev- b (b's tests use a)
WS = Workspace(
    root=ROOT,
    target_dir=ROOT / "target",
    packages={
        p.name: p
        for p in [
            _pkg("hub"),
            _pkg("mid", {"hub"}),
            _pkg("leaf", {"mid"}),
            _pkg("buildinfo"),
            _pkg("stamped", {"buildinfo"}),
            _pkg("solo"),
            _pkg("a"),
            _pkg("b", dev={"a"}),
        ]
    },
)


def _msg(level: str, text: str, *, file: str = "src/lib.rs", line: int = 3, code: str | None = None) -> dict[str, Any]:
    return {
        "level": level,
        "message": text,
        "code": {"code": code, "explanation": None} if code else None,
        "spans": [{"file_name": file, "line_start": line, "column_start": 9, "is_primary": True}],
        "children": [],
        "rendered": f"\x1b[1m{level}\x1b[0m: {text}\n",
    }


def _summary(text: str, level: str = "error") -> dict[str, Any]:
    return {"level": level, "message": text, "code": None, "spans": [], "children": [], "rendered": text + "\n"}


def _outcome(**kw: Any) -> CargoOutcome:
    stderr = kw.pop("stderr", "")
    base: dict[str, Any] = {
        "argv": ["cargo", "check"],
        "exit_code": 101,
        "finished_success": False,
        "duration_ms": 900.0,
        "stderr": stderr,
        "failed_units": set(_FAILED_UNIT.findall(stderr)),
    }
    return CargoOutcome(**{**base, **kw})


@pytest.mark.parametrize(
    ("command", "deny", "expected"),
    [
        (Command("check"), False, ["check", MESSAGE_FORMAT, "--keep-going"]),
        (Command("clippy"), False, ["clippy", MESSAGE_FORMAT, "--keep-going"]),
        (Command("clippy"), True, ["clippy", MESSAGE_FORMAT, "--keep-going", "--", "-D", "warnings"]),
        (Command("check"), True, ["check", MESSAGE_FORMAT, "--keep-going"]),
        (Command("test"), False, ["test", "--no-run", MESSAGE_FORMAT, "--no-fail-fast"]),
        (Command("build"), False, ["build", MESSAGE_FORMAT, "--keep-going"]),
        (Command("check", features=("a", "b")), False, ["check", MESSAGE_FORMAT, "--keep-going", "--features", "a,b"]),
        (Command("check", all_features=True), False, ["check", MESSAGE_FORMAT, "--keep-going", "--all-features"]),
        (
            Command("check", no_default_features=True),
            False,
            ["check", MESSAGE_FORMAT, "--keep-going", "--no-default-features"],
        ),
        (Command("build", release=True), False, ["build", MESSAGE_FORMAT, "--keep-going", "--release"]),
        (Command("clippy", all_targets=True), False, ["clippy", MESSAGE_FORMAT, "--keep-going", "--all-targets"]),
        (
            Command("check", toolchain="nightly", extra_env=(("X", "1"),)),
            False,
            ["check", MESSAGE_FORMAT, "--keep-going"],
        ),
    ],
    ids=[
        "check",
        "clippy",
        "clippy-deny",
        "check-deny-ignored",
        "test",
        "build",
        "features",
        "all-features",
        "no-default-features",
        "release",
        "all-targets",
        "toolchain-and-env-not-in-args",
    ],
)
def test_run_spec_args_for_each_kind_and_flag(command: Command, deny: bool, expected: list[str]) -> None:
    assert RunSpec(command, deny_warnings=deny).args([], None) == expected


def test_run_spec_args_select_packages_and_a_target_dir_before_clippy_lint_flags() -> None:
    spec = RunSpec(Command("clippy", features=("x",), release=True, all_targets=True), deny_warnings=True)
    assert spec.args(["hub", "mid"], Path("/t/env-1")) == [
        "clippy",
        MESSAGE_FORMAT,
        "--keep-going",
        "-p",
        "hub",
        "-p",
        "mid",
        "--features",
        "x",
        "--release",
        "--all-targets",
        "--target-dir",
        "/t/env-1",
        "--",
        "-D",
        "warnings",
    ]


def test_a_dependent_of_a_failed_package_is_blocked_by_it() -> None:
    outcome = _outcome(
        messages={
            _id("hub"): [_msg("error", "mismatched types", code="E0308"), _summary("aborting due to 1 previous error")]
        },
        stderr="error: could not compile `hub` (lib) due to 1 previous error\n",
        artifacts={_id("solo")},
    )
    results = results_from_outcome(WS, outcome, ["hub", "mid", "leaf", "solo"], dev=False)
    assert not results["hub"].success and results["hub"].blocked_by == []
    assert [d.message for d in results["hub"].diagnostics] == ["mismatched types"], "summaries dropped"
    assert (results["mid"].success, results["mid"].blocked_by, results["mid"].diagnostics) == (False, ["hub"], [])
    assert (results["leaf"].success, results["leaf"].blocked_by) == (False, ["hub"])
    assert results["solo"].success and results["solo"].blocked_by == []
    assert all(r.source == "run" for r in results.values())
    assert results["hub"].duration_ms == pytest.approx(900.0 / 4)


def test_a_failed_dependency_that_was_not_selected_still_blocks_and_is_not_answered() -> None:
    outcome = _outcome(messages={_id("hub"): [_msg("error", "boom")]})
    results = results_from_outcome(WS, outcome, ["leaf"], dev=False)
    assert set(results) == {"leaf"}
    assert results["leaf"].blocked_by == ["hub"]


def test_warnings_alone_are_a_success_with_diagnostics() -> None:
    outcome = _outcome(
        finished_success=True,
        exit_code=0,
        messages={_id("mid"): [_msg("warning", "unused variable: `x`"), _summary("1 warning emitted", "warning")]},
    )
    results = results_from_outcome(WS, outcome, ["mid"], dev=False)
    assert results["mid"].success
    assert [d.level for d in results["mid"].diagnostics] == ["warning"]


def test_a_dev_dependency_failure_blocks_only_when_tests_are_built() -> None:
    # With tests built, b is not compiled (no artifact); without, it is.
    tests_built = _outcome(messages={_id("a"): [_msg("error", "boom")]})
    assert results_from_outcome(WS, tests_built, ["b"], dev=True)["b"].blocked_by == ["a"]
    lib_only = _outcome(messages={_id("a"): [_msg("error", "boom")]}, artifacts={_id("b")})
    assert results_from_outcome(WS, lib_only, ["b"], dev=False)["b"].success


@pytest.mark.parametrize(
    "outcome",
    [
        pytest.param(_outcome(timed_out=True, exit_code=None, finished_success=None), id="timed-out"),
        pytest.param(
            _outcome(timed_out=True, exit_code=-9, messages={_id("hub"): [_msg("error", "partial")]}),
            id="timed-out-with-partial-messages",
        ),
        pytest.param(_outcome(cancelled=True, exit_code=-15), id="cancelled"),
        pytest.param(
            _outcome(finished_success=None, stderr="error: failed to parse manifest at `/w/Cargo.toml`"),
            id="failed-before-building",
        ),
    ],
)
def test_a_run_that_did_not_finish_gives_no_results(outcome: CargoOutcome) -> None:
    assert results_from_outcome(WS, outcome, ["hub", "mid"], dev=False) == {}


BUILD_SCRIPT_STDERR = """\
   Compiling buildinfo v0.1.0 (/w/buildinfo)
error: failed to run custom build command for `buildinfo v0.1.0 (/w/buildinfo)`

Caused by:
  process didn't exit successfully: `/w/target/debug/build/buildinfo-1/build-script-build` (exit status: 101)
  --- stderr
  thread 'main' panicked at build.rs:4:5:
  OUT_DIR is not writable
warning: build failed, waiting for other jobs to finish...
"""


def test_a_build_script_failure_reported_only_in_stderr_gives_a_synthetic_error() -> None:
    outcome = _outcome(stderr=BUILD_SCRIPT_STDERR, artifacts={_id("solo")})
    assert outcome.failed_units == {"buildinfo"}
    results = results_from_outcome(WS, outcome, ["buildinfo", "stamped", "solo"], dev=False)
    failed = results["buildinfo"]
    assert not failed.success
    [diag] = failed.diagnostics
    assert (diag.level, diag.message, diag.file) == ("error", "cargo could not build `buildinfo`", None)
    assert "OUT_DIR is not writable" in diag.rendered
    assert "panicked at build.rs:4:5" in diag.rendered
    assert "waiting for other jobs" not in diag.rendered
    assert results["stamped"].blocked_by == ["buildinfo"]
    assert results["solo"].success


def test_a_text_failure_is_not_added_when_rustc_already_reported_an_error() -> None:
    outcome = _outcome(
        messages={_id("hub"): [_msg("error", "boom")]},
        stderr="error: could not compile `hub` (lib) due to 1 previous error\n",
    )
    assert [d.message for d in results_from_outcome(WS, outcome, ["hub"], dev=False)["hub"].diagnostics] == ["boom"]


def test_a_failed_unit_with_a_hyphenated_name_and_a_version_is_recognised() -> None:
    stderr = (
        "error: could not compile `my-crate` (lib test) due to 2 previous errors\n"
        "error: failed to run custom build command for `openssl-sys v0.9.100`\n"
    )
    assert set(_FAILED_UNIT.findall(stderr)) == {"my-crate", "openssl-sys"}


def test_a_member_whose_registry_dependency_failed_is_not_answered_as_a_success() -> None:
    stderr = (
        "error: failed to run custom build command for `openssl-sys v0.9.100`\n"
        "  Could not find directory of OpenSSL installation\n"
    )
    # leaf needs openssl-sys (metadata --no-deps does not say so): cargo never built it. solo was built.
    outcome = _outcome(stderr=stderr, artifacts={_id("hub"), _id("mid"), _id("solo")})
    assert outcome.failed_units == {"openssl-sys"}
    results = results_from_outcome(WS, outcome, ["solo", "leaf"], dev=False)
    assert results["solo"].success
    assert not results["leaf"].success


def test_messages_of_packages_outside_the_workspace_are_ignored() -> None:
    outcome = _outcome(
        finished_success=True,
        exit_code=0,
        messages={
            "registry+https://github.com/rust-lang/crates.io-index#serde@1.0.0": [_msg("warning", "from a dependency")]
        },
    )
    assert results_from_outcome(WS, outcome, ["solo"], dev=False)["solo"].diagnostics == []


def _round_trip(result: PackageResult) -> PackageResult:
    stored = _decode(_encode(to_entry(result)))  # the bytes the cache keeps
    assert stored is not None
    return from_entry(result.name, json.loads(json.dumps(stored)))


def test_to_entry_and_from_entry_round_trip_gives_equal_diagnostic_identities() -> None:
    outcome = _outcome(
        messages={
            _id("hub"): [
                _msg("error", "mismatched types", code="E0308"),
                _msg("warning", "unused import", file="src/a.rs", line=1),
                _summary("aborting due to 1 previous error"),
                _summary("1 warning emitted", "warning"),
            ]
        },
        stderr=BUILD_SCRIPT_STDERR,
    )
    fresh = results_from_outcome(WS, outcome, ["hub", "leaf", "buildinfo"], dev=False)
    for name, result in fresh.items():
        cached = _round_trip(result)
        assert [d.identity() for d in cached.diagnostics] == [d.identity() for d in result.diagnostics], name
        assert [d.rendered for d in cached.diagnostics] == [d.rendered for d in result.diagnostics]
        assert (cached.success, cached.blocked_by, cached.duration_ms) == (
            result.success,
            result.blocked_by,
            result.duration_ms,
        )
        assert cached.source == "cache"
    assert len(fresh["hub"].diagnostics) == 2
    assert fresh["buildinfo"].diagnostics[0].raw["synthetic"] is True


def test_from_entry_tolerates_a_minimal_entry() -> None:
    result = from_entry("x", {})
    assert (result.success, result.diagnostics, result.blocked_by, result.duration_ms) == (False, [], [], 0.0)


def test_diagnostics_of_drops_only_span_less_summaries() -> None:
    kept = _msg("error", "aborting due to a bad thing")  # has a span: a real diagnostic
    messages = [
        kept,
        _summary("aborting due to 2 previous errors"),
        _summary("3 warnings emitted", "warning"),
        _summary("`hub` (lib) generated 3 warnings", "warning"),
        _summary("some note", "failure-note"),
        _summary("linking with `cc` failed"),
    ]
    assert [d.message for d in diagnostics_of("hub", messages)] == [
        "aborting due to a bad thing",
        "linking with `cc` failed",
    ]
