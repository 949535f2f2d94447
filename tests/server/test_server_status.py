"""`scheduler_status` tells one story: a background check shows the same in every section that
mentions it (the engine's, its target dir's holder, the scheduler's workspace), waiting or running."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from scheduler import GeneratedWorkspace, ServerState
from scheduler._settings import Settings
from scheduler.engine._engine import CheckRequest

pytestmark = pytest.mark.anyio
BACKGROUND = 240.0  # a background check of a few crates, with room for a slow CI machine


def _sections(status: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
    (engine,) = status["engines"]
    (workspace,) = status["scheduler"]["workspaces"]
    return engine["background"], workspace["background"], set(engine["target_dirs"].values())


async def test_a_background_check_shows_the_same_in_the_engine_and_the_scheduler_sections(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace(crates=6)
    async with ServerState(ws.root, settings=Settings(prewarm="none")) as state:
        engine = await state.engine(ws.root)
        assert state.scheduler is not None
        state.scheduler.for_workspace(engine.root)
        target = await engine.target_dir_for(await engine.workspace(), CheckRequest())
        async with engine.gate(target).foreground("cargo_check #1"):
            await engine.prefill()
            in_engine, in_scheduler, holders = _sections(state.status())
            waiting = [{"kind": "check", "state": "waiting", "packages": len(ws.members)}]
            assert in_engine == in_scheduler == waiting
            assert holders == {"cargo_check #1"}
        with anyio.fail_after(BACKGROUND):
            while True:  # polled: the run takes seconds, each snapshot is taken in one step
                in_engine, in_scheduler, holders = _sections(state.status())
                if in_engine and in_engine[0]["state"] == "running":
                    break
                await anyio.sleep(0.005)
        assert in_scheduler == in_engine and holders == {"background check"}
        await engine.wait_background(BACKGROUND)
        in_engine, in_scheduler, holders = _sections(state.status())
        assert in_engine == in_scheduler == [] and holders == {"idle"}
