"""A daemon whose installation is uninstalled (`pipx uninstall`, a deleted venv) stops by itself and
takes its rust-analyzer with it, instead of serving on from half-imported, deleted modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_env import REPO, Env, analyzer_pids, isolated_env, wait_dead
from processes import wait_for

from scheduler.daemon._installation import CHECK_S, Installation

START_TIMEOUT = 120.0
"""The daemon's start and its rust-analyzer's spawn (the default prewarm) on a busy machine."""
GONE_TIMEOUT = CHECK_S + 30.0
"""One look at the installation, then a clean stop (rust-analyzer is asked to shut down first)."""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


def test_a_daemon_stops_and_kills_its_rust_analyzer_once_its_installation_is_deleted(env: Env, tmp_path: Path) -> None:
    installed = tmp_path / "site"  # a copy of the package, as an installer would lay it out
    shutil.copytree(REPO / "scheduler", installed / "scheduler", ignore=shutil.ignore_patterns("__pycache__"))
    environ = {**os.environ, "PYTHONPATH": str(installed)}
    argv = [sys.executable, "-P", "-m", "scheduler.daemon._daemon", "--workspace", str(env.workspace)]
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen(argv, env=environ, cwd=tmp_path, stdout=log, stderr=log, start_new_session=True)
    try:
        assert int(env.wait_status(START_TIMEOUT)["pid"]) == daemon.pid
        analyzers = wait_for(lambda: analyzer_pids(env), START_TIMEOUT, "the daemon's rust-analyzer")

        shutil.rmtree(installed)
        daemon.wait(timeout=GONE_TIMEOUT)
        assert all(wait_dead(pid, 10.0) for pid in analyzers), "rust-analyzer outlived its daemon"
        assert daemon.returncode == 0
        assert "the installation is gone" in (tmp_path / "daemon.log").read_text()
        assert not os.path.exists(env.paths.socket), "the daemon left its socket behind"
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
        log.close()


def test_the_installation_is_whole_until_any_of_its_files_is_gone(tmp_path: Path) -> None:
    package, python = tmp_path / "scheduler", tmp_path / "python"
    package.mkdir()
    python.touch()
    installation = Installation((str(package), str(python)))
    assert installation.missing() is None
    python.unlink()
    assert installation.missing() == str(python)


def test_the_running_installation_is_this_package_and_its_interpreter() -> None:
    files = Installation().files
    assert str(REPO / "scheduler") in files and sys.executable in files
    assert Installation().missing() is None
