"""The job tools: wait for, poll and cancel a call that outlived the host's patience (`_jobs`)."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from .._exceptions import SchedulerError
from ._answer import answer, failure_for
from ._jobs import wait_for
from ._state import Ctx, ServerState, Toolbox, progress
from ._tools_cargo import READ_ONLY, Answer

JobId = Annotated[str, Field(description="The job_id a long cargo_test/cargo_build/cargo_check call answered with")]
MAX_WAIT_S = 280.0
"""Below Codex's default tool timeout (300 s): a wait that long is still answered."""
STOPS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
"""Cancelling kills the job's processes; it never touches files (builds may leave target/ partial)."""


def _jobs(box: Toolbox, ctx: Ctx) -> tuple[ServerState, Any]:
    state = box.state(ctx)
    if state.jobs is None:
        raise RuntimeError("ServerState used outside `async with`")
    return state, state.jobs


def register(server: MCPServer[ServerState], box: Toolbox) -> None:
    """Add the job tools to `server`."""

    @server.tool(annotations=READ_ONLY)
    async def scheduler_job(
        ctx: Ctx,
        job_id: JobId,
        wait_s: Annotated[
            float, Field(ge=0, le=MAX_WAIT_S, description="Wait up to this long for it to finish; 0 polls")
        ] = 60.0,
    ) -> Answer:
        """Wait for a long-running cargo test/build/check job (or poll it): its answer when done,
        else its state and what it is running. Progress notifications are sent while waiting."""
        try:
            _, jobs = _jobs(box, ctx)
            job = jobs.get(job_id)
            await wait_for(job, wait_s, lambda j: progress(ctx, j))
            if job.state == "done" and job.result is not None:
                return _with_job(job.result, job.view())
            return answer({"job": job.view()})
        except SchedulerError as exc:
            return failure_for(exc, "scheduler_job")

    @server.tool(annotations=STOPS)
    async def scheduler_job_cancel(ctx: Ctx, job_id: JobId) -> Answer:
        """Cancel a running job: its cargo and every process cargo started (tests, build scripts) are
        killed. Answers the job's final state and whether anything is still running."""
        try:
            _, jobs = _jobs(box, ctx)
            job = jobs.get(job_id)
            await jobs.cancel(job)
            view = job.view()
            view["processes_running"] = len(job.activity.running)
            return answer({"job": view})
        except SchedulerError as exc:
            return failure_for(exc, "scheduler_job_cancel")


def _with_job(result: CallToolResult, view: dict[str, Any]) -> CallToolResult:
    """The job's own answer, saying which job it was."""
    data = result.structured_content
    if isinstance(data, dict) and not result.is_error:
        return answer({"job": view, **data})
    return result
