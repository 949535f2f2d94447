"""The `cargo-scheduler` command as a user runs it: a real process, a generated workspace."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scheduler import GeneratedWorkspace


def cli(
    *args: str, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FOO"}
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli._main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, **(extra_env or {})},
        check=False,
    )


def reads_foo(root: Path) -> Path:
    """A one-crate workspace whose only diagnostic spells out the FOO it was compiled with."""
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "reads_foo"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "src" / "lib.rs").write_text('compile_error!(concat!("FOO is ", env!("FOO")));\n')
    return root


def test_check_json_says_what_ran_and_a_repeat_comes_from_the_cache(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    first = cli("check", str(ws.root), "--scope", "workspace", "--json")
    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    assert answer["success"] is True
    assert sorted(answer["packages"]["ran"]) == sorted(ws.members)
    again = json.loads(cli("check", str(ws.root), "--scope", "workspace", "--json").stdout)
    assert again["packages"]["ran"] == []
    assert sorted(again["packages"]["cached"]) == sorted(ws.members)


def test_check_exits_nonzero_and_renders_errors_as_cargo_does(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "no" }\n')
    result = cli("check", "--scope", "workspace", cwd=ws.crate_dir(ws.leaves[0]))
    assert result.returncode == 101  # cargo's code for a failed compilation
    assert "error[E0308]: mismatched types" in result.stderr and result.stdout == ""
    assert "FAILED" in result.stderr


def test_auto_prints_the_edited_crate_then_its_dependents(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    assert cli("check", str(ws.root), "--scope", "workspace").returncode == 0
    lib = ws.lib_rs("hub")
    lib.write_text(lib.read_text() + "\npub fn more() -> u32 { 1 }\n")
    result = cli("check", str(ws.root))
    assert result.returncode == 0, result.stderr
    first, _, rest = result.stderr.partition("dependents:")
    assert "ran 1: hub" in first
    assert "pending" in first and rest, result.stderr


def test_graph_affected_maps_files_to_owners_and_dependents(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace()
    result = cli("graph", str(ws.root), "--affected", str(ws.lib_rs("hub")), str(ws.root / "Cargo.toml"))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["owners"] == ["hub"]
    assert answer["whole_workspace"] is True
    assert set(answer["check_order"]) == set(ws.members)


def test_a_path_that_is_not_a_workspace_is_a_clear_error(tmp_path: Path) -> None:
    result = cli("check", str(tmp_path))
    assert result.returncode == 2
    assert "no Cargo.toml" in result.stderr


def test_cargo_subcommand_form_is_accepted(make_workspace: Callable[..., GeneratedWorkspace]) -> None:
    ws = make_workspace()
    result = cli("scheduler", "graph", str(ws.root))
    assert result.returncode == 0
    assert "hub" in json.loads(result.stdout)["packages"]


def test_bench_runs_the_checkouts_report_and_passes_its_arguments(tmp_path: Path) -> None:
    shown = cli("bench", "--help", cwd=tmp_path)  # found beside the package, from any directory
    assert shown.returncode == 0, shown.stderr
    assert "usage: cargo-scheduler bench" in shown.stdout and "--workspace" in shown.stdout
    refused = cli("bench", "--scenarios", "nonsense", "--no-traces", "--no-micro", cwd=tmp_path)
    assert refused.returncode == 2 and "unknown scenario(s) nonsense" in refused.stderr


def test_a_bad_setting_is_refused_naming_the_variable(make_workspace: Callable[..., GeneratedWorkspace]) -> None:
    ws = make_workspace()
    env = {**os.environ, "CARGO_SCHEDULER_SCOPE": "everything"}
    done = subprocess.run(
        [sys.executable, "-m", "scheduler.cli._main", "check", str(ws.root)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 2 and "CARGO_SCHEDULER_SCOPE='everything'" in done.stderr
    assert not (ws.root / "target").exists()  # refused before any cargo ran


def test_a_check_runs_in_the_callers_environment(tmp_path: Path) -> None:
    root = reads_foo(tmp_path / "probe")
    result = cli("check", str(root), "--scope", "workspace", "--json", extra_env={"FOO": "1"})
    assert result.returncode == 1, result.stderr
    assert "FOO is 1" in result.stdout


def test_a_check_in_another_environment_is_not_answered_from_the_first_ones_cache(tmp_path: Path) -> None:
    root = reads_foo(tmp_path / "probe")
    assert "FOO is 1" in cli("check", str(root), "--scope", "workspace", "--json", extra_env={"FOO": "1"}).stdout
    second = cli("check", str(root), "--scope", "workspace", "--json", extra_env={"FOO": "2"})
    assert "FOO is 2" in second.stdout and "FOO is 1" not in second.stdout


def test_test_build_builds_the_test_binaries_with_real_cargo(make_workspace: Callable[..., GeneratedWorkspace]) -> None:
    ws = make_workspace()
    result = cli("test-build", str(ws.root), "--scope", "workspace")
    assert result.returncode == 0, result.stderr
    assert "unexpected argument" not in result.stderr
    assert f"ran {len(ws.members)}" in result.stderr
    built = [
        p for p in (ws.root / "target" / "debug" / "deps").iterdir() if p.name.startswith("hub-") and p.suffix == ""
    ]
    assert built, "no test binary of hub was built"


def test_graph_affected_reads_files_relative_to_the_workspace_from_any_directory(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    relative = str(ws.lib_rs("hub").relative_to(ws.root))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("graph", str(ws.root), "--affected", relative, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["owners"] == ["hub"]


def test_graph_affected_refuses_a_file_outside_the_workspace_naming_it(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    outside = tmp_path / "outside.rs"
    outside.write_text("fn main() {}\n")
    for spelled in (str(outside), "../outside.rs"):
        result = cli("graph", str(ws.root), "--affected", spelled)
        assert result.returncode == 2, result.stdout
        assert f"--affected {spelled!r} is outside the workspace {ws.root.resolve()}" in result.stderr
        assert result.stdout == ""


def test_the_summary_reports_the_whole_commands_time(make_workspace: Callable[..., GeneratedWorkspace]) -> None:
    ws = make_workspace()
    assert cli("check", str(ws.root), "--scope", "workspace").returncode == 0
    started = time.monotonic()
    result = cli("check", str(ws.root), "--scope", "workspace")  # answered from the cache: startup dominates
    waited = time.monotonic() - started
    match = re.search(r"ok in (\d+\.\d+)s", result.stderr)
    assert match, result.stderr
    reported = float(match.group(1))
    assert 0.8 * waited - 0.02 <= reported <= waited + 0.01, (reported, waited)


def test_importing_the_cli_loads_neither_argparse_nor_pathlib() -> None:
    """`cargo-scheduler serve` goes through this module before the front answers the handshake."""
    code = (
        "import sys, scheduler.cli._main\n"
        "print(sorted(m for m in sys.modules if m in {'argparse', 'pathlib', 'anyio', 'mcp', 'typing'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == "[]"
