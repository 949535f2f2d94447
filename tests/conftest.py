"""Shared fixtures: an isolated cache and state per test, and generated path-only workspaces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler import GeneratedWorkspace, _settings, generate_workspace


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's cache, state or runtime dirs."""
    monkeypatch.setenv("CARGO_SCHEDULER_CACHE_DIR", str(tmp_path / "_cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "_xdg_cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "_xdg_state"))
    monkeypatch.setenv("CARGO_TERM_COLOR", "never")
    monkeypatch.setenv("CARGO_SCHEDULER_START_DAEMON", "0")  # a test that wants the CLI's daemon says so
    for knob in _settings.fingerprint():  # a developer's own tuning must not change what tests see
        monkeypatch.delenv(knob)


@pytest.fixture
def make_workspace(tmp_path: Path) -> Callable[..., GeneratedWorkspace]:
    def make(crates: int = 6, name: str = "ws", seed: int = 0) -> GeneratedWorkspace:
        return generate_workspace(tmp_path / name, crates, seed=seed)

    return make
