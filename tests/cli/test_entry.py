"""The installed `cargo-scheduler` script: ours, not an installer's generated one, and as light."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

from scheduler import __version__

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scheduler" / "cli" / "cargo-scheduler"


def test_the_package_installs_our_script_as_cargo_scheduler_and_no_generated_one() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    shared = project["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-scripts"]
    assert shared == {"scheduler/cli/cargo-scheduler": "cargo-scheduler"}
    assert "cargo-scheduler" not in project["project"].get("scripts", {})  # the two would clash


def test_the_script_imports_only_sys_and_the_entry_module() -> None:
    tree = ast.parse(SCRIPT.read_text())
    imported = [
        alias.name if isinstance(node, ast.Import) else f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert imported == ["sys", "scheduler.cli._main.main"]
    assert SCRIPT.read_text().startswith("#!python\n")  # the installer writes the interpreter here


def test_the_script_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--version"], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cargo-scheduler {__version__}"
