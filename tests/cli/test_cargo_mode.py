"""`cargo-scheduler check` as cargo: the same diagnostics, words, selection and exit codes as cargo
1.95 on generated workspaces (both run for real, side by side)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cargo_json import CargoMessages, lines, warn_everywhere

from scheduler import GeneratedWorkspace


def run(argv: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **(extra_env or {})}, check=False
    )


def ours(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """In a target directory of its own: cargo replays a fresh unit's messages as first rendered
    (short after a short run), so sharing one with the cargo runs would mix renderings."""
    env = {"CARGO_SCHEDULER_TARGET_DIR": "private", **(extra_env or {})}
    return run([sys.executable, "-m", "scheduler.cli._main", *args], cwd, env)


def cargo(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Short output in a target directory of its own: cargo replays a fresh unit's messages as they
    were first rendered (a human run's after a short one, and the other way round)."""
    short = any(a.startswith("--message-format=short") for a in args)
    return run(["cargo", *args], cwd, {"CARGO_TARGET_DIR": str(cwd / "target-short")} if short else None)


def test_diagnostics_words_and_exit_codes_are_cargos(make_workspace: Callable[..., GeneratedWorkspace]) -> None:
    ws = make_workspace()
    warn_everywhere(ws)
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "no" }\n')
    # --keep-going: without it, which other units cargo still finishes after the error is a race.
    for args in (["--message-format=short"], [], ["-q"], ["-p", ws.leaves[1]]):
        args = ["check", "--keep-going", *args]
        theirs = cargo(*args, cwd=ws.root)
        mine = ours(*args, cwd=ws.root)
        assert mine.returncode == theirs.returncode, (args, mine.stderr)
        assert lines(mine.stderr) == lines(theirs.stderr), args
    assert ours("check", cwd=ws.root).returncode == 101
    assert ours("check", cwd=ws.root).stdout == ""


def test_a_parser_of_cargos_json_reads_the_same_diagnostics_from_both(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    warn_everywhere(ws)
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "no" }\n')
    theirs = CargoMessages(cargo("check", "--message-format=json", cwd=ws.root).stdout)
    mine_run = ours("check", "--message-format=json", cwd=ws.root)
    again = CargoMessages(ours("check", "--message-format=json", cwd=ws.root).stdout)  # from the cache
    mine = CargoMessages(mine_run.stdout)
    assert mine_run.returncode == 101
    assert theirs.diagnostics and sorted(mine.diagnostics) == sorted(theirs.diagnostics)
    assert sorted(again.diagnostics) == sorted(theirs.diagnostics)
    assert mine.finished is theirs.finished is False


def test_the_default_selection_is_cargos_in_a_member_at_the_root_and_with_default_members(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    warn_everywhere(ws)

    def shown(result: subprocess.CompletedProcess[str]) -> set[str]:
        return {d[0] for d in CargoMessages(result.stdout).diagnostics}

    places = [ws.root, ws.crate_dir(ws.leaves[0]), ws.crate_dir(ws.leaves[0]) / "src", ws.crate_dir("hub")]
    for cwd in places:
        expected = shown(cargo("check", "--message-format=json", cwd=cwd))
        assert shown(ours("check", "--message-format=json", cwd=cwd)) == expected, cwd
    manifest = ws.root / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace("members = [", 'default-members = ["crates/hub"]\nmembers = [', 1))
    for args in (["check", "--message-format=json"], ["check", "--message-format=json", "--workspace"]):
        assert shown(ours(*args, cwd=ws.root)) == shown(cargo(*args, cwd=ws.root)), args


def test_usage_errors_exit_1_and_flags_it_cannot_honour_run_the_real_cargo(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    bogus = ours("check", "--bogus", cwd=ws.root)  # falls through: cargo's own usage error
    assert bogus.returncode == 1 and "unexpected argument '--bogus'" in bogus.stderr
    mixed = ours("check", ".", "--scope", "everything", cwd=ws.root)
    assert mixed.returncode == 1 and "--scope" in mixed.stderr
    assert ours("graph", "--nonsense", cwd=ws.root).returncode == 1
    tested = ours("test", "-q", cwd=ws.root)  # `test` runs the tests: that is the real cargo's job
    assert tested.returncode == 0 and "test result: ok" in tested.stdout


def test_colour_follows_the_flag_cargo_term_color_and_no_color(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    warn_everywhere(ws)
    assert "\x1b[" in ours("check", "--color", "always", cwd=ws.root).stderr
    assert "\x1b[" in ours("check", cwd=ws.root, extra_env={"CARGO_TERM_COLOR": "always"}).stderr
    assert "\x1b[" not in ours("check", cwd=ws.root, extra_env={"CARGO_TERM_COLOR": "auto", "NO_COLOR": "1"}).stderr


def test_test_build_builds_the_tests_without_keep_going(make_workspace: Callable[..., GeneratedWorkspace]) -> None:
    ws = make_workspace()
    for args in (["test-build"], ["test", "--no-run"]):
        result = ours(*args, cwd=ws.root)
        assert result.returncode == 0, result.stderr
        assert "Finished `test` profile" in result.stderr


def _with_an_outside_crate(tmp_path: Path) -> tuple[Path, Path]:
    """Member `a` of `ws/` depends on `outdep`, a path crate beside the workspace: (root, its lib.rs)."""
    root = tmp_path / "ws"
    (root / "a" / "src").mkdir(parents=True)
    (tmp_path / "outdep" / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["a"]\nresolver = "2"\n')
    (root / "a" / "Cargo.toml").write_text(
        '[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n'
        '[dependencies]\noutdep = { path = "../../outdep" }\n'
    )
    (root / "a" / "src" / "lib.rs").write_text("pub fn f() -> u32 {\n    outdep::o()\n}\n")
    (tmp_path / "outdep" / "Cargo.toml").write_text('[package]\nname = "outdep"\nversion = "0.1.0"\nedition = "2021"\n')
    return root, tmp_path / "outdep" / "src" / "lib.rs"


def test_a_path_crate_outside_the_workspace_is_shown_as_cargo_shows_it(tmp_path: Path) -> None:
    root, lib = _with_an_outside_crate(tmp_path)
    for text in ("pub fn o() -> u32 {\n    let unused_o = 1;\n    0\n}\n", 'pub fn o() -> u32 {\n    "no"\n}\n'):
        lib.write_text(text)
        for args in (["check"], ["check", "--message-format=short"]):
            theirs, mine = cargo(*args, cwd=root), ours(*args, cwd=root)
            assert mine.returncode == theirs.returncode, (args, mine.stderr)
            assert lines(mine.stderr) == lines(theirs.stderr), args
            assert "outdep" in mine.stderr


def test_a_selection_of_what_is_not_a_member_is_the_real_cargos_answer(tmp_path: Path) -> None:
    """`-p` of a dependency outside the workspace, a glob, a package that does not exist: cargo's."""
    root, lib = _with_an_outside_crate(tmp_path)
    lib.write_text("pub fn o() -> u32 {\n    let unused_o = 1;\n    0\n}\n")
    for args in (["-p", "outdep"], ["-p", "a*"], ["-p", "nothing-here"], ["--workspace", "--exclude", "a*"]):
        theirs, mine = cargo("check", *args, cwd=root), ours("check", *args, cwd=root)
        assert mine.returncode == theirs.returncode, (args, mine.stderr)
        assert lines(mine.stderr) == lines(theirs.stderr), args


@pytest.mark.anyio
async def test_the_daemon_calls_a_selection_of_what_is_not_a_member_unfit(tmp_path: Path) -> None:
    from scheduler import EnginePool, generate_workspace
    from scheduler._settings import fingerprint
    from scheduler._version import __version__
    from scheduler.shell import _served

    ws = generate_workspace(tmp_path / "ws", crates=4)
    request = {"kind": "check", "argv": ["-p", "serde"], "cwd": str(ws.root), "env": dict(os.environ)}
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)

        async def get() -> Any:
            return engine

        reply = await _served.serve({**request, "version": __version__}, ws.root, fingerprint(), get)
    assert "serde is not a member" in reply.get("unfit", ""), reply


def test_a_build_scripts_warnings_are_shown_as_cargo_shows_them(tmp_path: Path) -> None:
    """Its `cargo::warning=` lines (not under -q), and no `cargo fix` hint on its summary line."""
    root = tmp_path / "bw"
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "bw"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "build.rs").write_text(
        'fn main() {\n    let unused_b = 1;\n    println!("cargo::warning=from the script");\n}\n'
    )
    (root / "src" / "lib.rs").write_text("pub fn f() {}\n")
    for args in (["check"], ["check", "-q"]):
        theirs, mine = cargo(*args, cwd=root), ours(*args, cwd=root)
        assert mine.returncode == theirs.returncode == 0, (args, mine.stderr)
        assert lines(mine.stderr) == lines(theirs.stderr), args
    assert "warning: bw@0.1.0: from the script" in ours("check", cwd=root).stderr  # from the cache too
