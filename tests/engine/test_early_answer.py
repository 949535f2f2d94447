"""A run that selects more members than asked (to build every unit as `--workspace` does) answers
the asked members when their own units are done, and goes on in the background (real cargo; a path
crate outside the workspace stands in for a registry crate). The member `slow` has a build script
that waits for a file the test creates: the run cannot end before the test says so, which is how
the tests prove that an answer came first."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from scheduler import CheckRequest, EnginePool
from scheduler.cargo import _run
from scheduler.cargo._workspace import load_metadata_json, parse_metadata
from scheduler.engine import _early, _engine
from scheduler.engine._keys import Command

pytestmark = pytest.mark.anyio

_WAIT_S = 240


def _crate(path: Path, name: str, deps: str, lib: str, extra: str = "") -> None:
    (path / "src").mkdir(parents=True, exist_ok=True)
    (path / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n{extra}\n[dependencies]\n{deps}'
    )
    (path / "src" / "lib.rs").write_text(lib)


def _workspace(base: Path) -> tuple[Path, Path]:
    """`hub` uses `extcrate` through the member `via`; only `slow` (a dependent of `hub`) asks it for
    `extra`, so a run of `hub` with `--workspace`'s units selects `slow` too (no `--features` flag
    of `hub` can reach a crate it does not depend on directly). Returns (root, release file)."""
    release = base / "release"
    _crate(
        base / "extcrate",
        "extcrate",
        "",
        '#[cfg(feature = "extra")]\npub fn extra() -> u32 { 1 }\npub fn plain() -> u32 { 2 }\n',
        "[features]\nextra = []\n",
    )
    ws = base / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["via", "hub", "slow", "other"]\nresolver = "2"\n')
    ext = 'extcrate = { path = "../../extcrate"%s }\n'
    _crate(ws / "via", "via", ext % "", "pub use extcrate;\n")
    _crate(
        ws / "hub",
        "hub",
        'via = { path = "../via" }\n',
        "pub fn hub() -> u32 { let unused = 1; via::extcrate::plain() }\n",
    )
    _crate(
        ws / "slow",
        "slow",
        ext % ', features = ["extra"]' + 'hub = { path = "../hub" }\n',
        "pub fn slow() -> u32 { hub::hub() + extcrate::extra() }\n",
        'build = "build.rs"\n',
    )
    (ws / "slow" / "build.rs").write_text(
        "fn main() {\n"
        f"    let release = std::path::Path::new({json.dumps(str(release))});\n"
        "    let start = std::time::Instant::now();\n"
        "    while !release.exists() && start.elapsed().as_secs() < 600 {\n"
        "        std::thread::sleep(std::time::Duration::from_millis(20));\n"
        "    }\n"
        '    println!("cargo:rerun-if-changed=build.rs");\n'
        "}\n"
    )
    _crate(ws / "other", "other", "", "pub fn other() -> u32 { 3 }\n")
    subprocess.run(["cargo", "generate-lockfile", "--offline", "-q"], cwd=ws, check=True, timeout=120)
    return ws, release


def _cargo(ws: Path, *args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        ["cargo", "check", "--message-format=json", *args], cwd=ws, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _warnings(messages: list[dict[str, Any]], package: str) -> list[str]:
    return [
        m["message"]["message"]
        for m in messages
        if m.get("reason") == "compiler-message"
        and f"/{package}#" in m["package_id"]
        and m["message"]["level"] == "warning"
        and m["message"]["spans"]
    ]


def _recording(monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str]]) -> None:
    """Record when each cargo run the engine makes starts and ends (the runs are real)."""
    real = _run.run_cargo

    async def recorded(args: list[str], **kwargs: Any) -> Any:
        label = " ".join(a for a in args if not a.startswith("-"))
        events.append(("start", label))
        try:
            outcome = await real(args, **kwargs)
        except BaseException:
            events.append(("killed", label))
            raise
        events.append(("end", label))
        return outcome

    monkeypatch.setattr(_engine, "run_cargo", recorded)


async def test_the_asked_member_is_answered_while_the_run_for_the_unifying_members_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, release = _workspace(tmp_path)
    events: list[tuple[str, str]] = []
    _recording(monkeypatch, events)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws)
        with anyio.fail_after(_WAIT_S):
            report = await engine.check(CheckRequest(packages=("hub",)))
        # `slow`'s build script is still waiting for the release file: the run has not ended.
        assert not release.exists() and [e for e, _ in events] == ["start"], events
        assert "-p slow" in " ".join(report.command or [])
        hub = report.results["hub"]
        assert report.success and hub.source == "run" and set(report.results) == {"hub"}, report.to_dict()
        assert [d.message for d in hub.diagnostics] == ["unused variable: `unused`"]
        assert report.pending == ["slow"]
        assert any("goes on in the background" in n for n in report.notes), report.notes
        assert [b["state"] for b in engine.background_status()] == ["running", "waiting"]
        release.write_text("go")
        await engine.wait_background(_WAIT_S)
        assert events == [("start", "check hub slow"), ("end", "check hub slow")], events
        again = await engine.check(CheckRequest(packages=("hub", "slow"), scope="changed"))
        assert {n: r.source for n, r in again.results.items()} == {"hub": "cache", "slow": "cache"}
        assert again.success and len(events) == 2  # the run that went on answered `slow` too
    # The same answer as plain cargo's own `-p hub`, and the user's --workspace rebuilds nothing.
    plain = _cargo(ws, "-p", "hub", "--target-dir", str(tmp_path / "plain"))
    assert _warnings(plain, "hub") == ["unused variable: `unused`"]
    whole = _cargo(ws, "--workspace")
    rebuilt = [m["target"]["name"] for m in whole if m.get("reason") == "compiler-artifact" and not m["fresh"]]
    # `other` was never asked about: its first build. Everything the engine built is fresh.
    assert rebuilt == ["other"], f"cargo check --workspace re-ran units after the engine: {rebuilt}"


async def test_a_foreground_call_pre_empts_the_run_that_goes_on_and_the_widening_then_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, release = _workspace(tmp_path)
    events: list[tuple[str, str]] = []
    _recording(monkeypatch, events)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws)
        with anyio.fail_after(_WAIT_S):
            first = await engine.check(CheckRequest(packages=("hub",)))
            assert first.success and first.pending == ["slow"], first.to_dict()
            other = await engine.check(CheckRequest(packages=("other",), scope="changed"))
        assert other.success and other.results["other"].source == "run"
        # The run that went on was killed before `other`'s cargo started (one cargo per target dir).
        assert events[:3] == [("start", "check hub slow"), ("killed", "check hub slow"), ("start", "check other")]
        release.write_text("go")
        await engine.wait_background(_WAIT_S)
        slow = await engine.check(CheckRequest(packages=("slow",), scope="changed"))
        assert slow.success and slow.results["slow"].source == "cache", slow.to_dict()
        assert events[-1][0] == "end"


def _package(base: Path, extra: str) -> Any:
    (base / "src" / "bin").mkdir(parents=True)
    (base / "Cargo.toml").write_text(
        f'[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\nbuild = "build.rs"\n{extra}'
    )
    for path in ("src/main.rs", "src/bin/tool.rs", "build.rs"):
        (base / path).write_text("fn main() {}\n")
    (base / "src" / "lib.rs").write_text("pub fn f() {}\n")
    return _metadata(base)


def _metadata(root: Path) -> Any:
    proc = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return parse_metadata(load_metadata_json(proc.stdout))


async def test_the_expected_units_are_the_units_cargo_check_builds_of_the_package(tmp_path: Path) -> None:
    ws = _package(tmp_path / "p", '[lib]\ncrate-type = ["rlib", "cdylib"]\n')
    expected = _early.expected_units(ws, ["p"], Command(kind="check"))
    reported = {
        (m["package_id"], m["target"]["name"], tuple(m["target"]["kind"]), m["profile"]["test"])
        for m in _cargo(tmp_path / "p")
        if m.get("reason") == "compiler-artifact" and "custom-build" not in m["target"]["kind"]
    }
    assert expected is not None and set(expected) == reported and len(reported) == 3
    assert _early.expected_units(ws, ["p"], Command(kind="check", all_targets=True)) is None
    assert _early.expected_units(ws, ["p"], Command(kind="test")) is None


async def test_no_early_answer_where_a_target_depends_on_features_or_the_member_is_built_for_the_host(
    tmp_path: Path,
) -> None:
    gated = _package(tmp_path / "gated", '[features]\nx = []\n[[bin]]\nname = "tool"\nrequired-features = ["x"]\n')
    assert _early.expected_units(gated, ["p"], Command(kind="check")) is None
    macro = _package(tmp_path / "macro", "[lib]\nproc-macro = true\n")
    assert _early.expected_units(macro, ["p"], Command(kind="check")) is None


async def test_no_early_answer_for_a_member_that_a_build_script_builds_against(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n')
    _crate(root / "a", "a", "", "pub fn a() {}\n")
    _crate(root / "b", "b", "", "pub fn b() {}\n", 'build = "build.rs"\n[build-dependencies]\na = { path = "../a" }\n')
    (root / "b" / "build.rs").write_text("fn main() { a::a() }\n")
    ws = _metadata(root)
    assert _early.built_for_host(ws) == {"a"}
    assert _early.expected_units(ws, ["a"], Command(kind="check")) is None
    assert _early.expected_units(ws, ["b"], Command(kind="check")) is not None
