"""A hung rust-analyzer is killed and replaced; the query is retried once, then fails clearly."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from scheduler import GeneratedWorkspace
from scheduler._exceptions import AnalyzerError, AnalyzerNotFound
from scheduler.analyzer._pool import AnalyzerPool
from scheduler.analyzer._setup import find_rust_analyzer

pytestmark = [pytest.mark.anyio, pytest.mark.analyzer]


async def have_analyzer() -> bool:
    try:
        await find_rust_analyzer(None)
    except AnalyzerNotFound:
        return False
    return True


async def test_a_hung_rust_analyzer_is_replaced_and_the_query_answered(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    if not await have_analyzer():
        pytest.skip("rust-analyzer is not installed")
    ws = make_workspace(crates=4)
    hub = ws.lib_rs("hub")
    async with AnalyzerPool() as pool:
        analyzer = await pool.get(ws.root)
        analyzer.request_timeout = 3
        with anyio.fail_after(120):
            await analyzer.wait_until_ready(60)
            first_pid = analyzer.pid
            assert first_pid is not None
            os.kill(first_pid, signal.SIGSTOP)  # alive, but silent: hung
            hover = await analyzer.hover(hub, 5, 8, wait=60)
        assert "hub_value" in str(hover)
        assert analyzer.pid != first_pid
        assert analyzer.restarts >= 1


async def test_a_rust_analyzer_that_hangs_again_gives_a_clear_error(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not await have_analyzer():
        pytest.skip("rust-analyzer is not installed")
    ws = make_workspace(crates=4)
    hub = ws.lib_rs("hub")
    async with AnalyzerPool() as pool:
        analyzer = await pool.get(ws.root)
        with anyio.fail_after(120):
            await analyzer.wait_until_ready(60)
        analyzer.request_timeout = 0.001  # no server answers that fast: every attempt "hangs"
        with anyio.fail_after(180), pytest.raises(AnalyzerError, match=r"did not answer .* twice"):
            await analyzer.hover(hub, 5, 8, wait=60)
