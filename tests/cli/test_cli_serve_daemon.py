"""`cargo-scheduler serve --help` and `cargo-scheduler daemon ...` as a user runs them, from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_env import REPO, Env, isolated_env

from scheduler.daemon import _serve_args


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli._main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


def test_serve_help_documents_every_flag_serve_takes(tmp_path: Path) -> None:
    shown = cli("serve", "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == _serve_args.SERVE_HELP
    for flag in ("--workspace", *_serve_args.VALUED, "--allow-unsafe-env", "--http"):
        assert f"\n  {flag} " in shown.stdout, flag
    assert "\n  -h, --help " in shown.stdout


def test_the_mcp_docs_print_serves_help_as_it_is() -> None:
    assert _serve_args.SERVE_HELP in (REPO / "docs" / "mcp.md").read_text()


def test_serve_refuses_an_unknown_flag_pointing_to_its_help(tmp_path: Path) -> None:
    refused = cli("serve", "--wokspace", str(tmp_path), cwd=tmp_path)
    assert refused.returncode == 1
    assert "unknown argument '--wokspace'" in refused.stderr and "serve --help" in refused.stderr
    missing = cli("serve", "--idle-timeout", cwd=tmp_path)
    assert "--idle-timeout needs a value" in missing.stderr


def _start_daemon(env: Env) -> int:
    front = env.front()
    front.initialize()
    assert front.call("scheduler_status")["result"]["isError"] is False
    pid = int(env.wait_status()["pid"])
    front.close()
    return pid


def test_daemon_stop_outside_the_workspace_names_the_running_daemons(env: Env, tmp_path: Path) -> None:
    _start_daemon(env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = cli("daemon", "stop", cwd=elsewhere)
    assert json.loads(result.stdout)["running"] is False
    assert f"daemons are running for: {env.workspace.resolve()}" in result.stderr
    assert env.status() is not None, "a daemon of another workspace was stopped"


def test_daemon_stop_takes_the_workspace_as_an_argument(env: Env, tmp_path: Path) -> None:
    _start_daemon(env)
    member = next(p for p in (env.workspace / "crates").iterdir() if (p / "Cargo.toml").is_file())
    result = cli("daemon", "stop", str(member), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["workspace"] == str(env.workspace.resolve())
    assert env.status() is None


def test_daemon_stop_all_stops_every_daemon_of_the_user(env: Env, tmp_path: Path) -> None:
    _start_daemon(env)
    listed = cli("daemon", "list", cwd=tmp_path)
    assert json.loads(listed.stdout) == [str(env.workspace.resolve())]
    result = cli("daemon", "stop", "--all", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"stopped": [str(env.workspace.resolve())]}
    assert env.status() is None
    assert json.loads(cli("daemon", "list", cwd=tmp_path).stdout) == []


def test_daemon_with_a_path_that_is_not_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    result = cli("daemon", "stop", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
