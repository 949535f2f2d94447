"""Long work as jobs: a call that runs past the host's patience answers with a handle instead.

Hosts give a tool call a bounded time: Claude Code moves a call over 2 minutes to a background task,
Codex cuts one at its tool timeout (300 s by default; progress notifications do not extend it), and
an agent that waits blind for a cold `cargo test` learns nothing meanwhile. So a test, build or
check call is answered in the foreground for `job_after_s` (CARGO_SCHEDULER_JOB_AFTER_S); if its
work is still running then, the work goes on as a *job* and the call answers with the job's id,
what it is running and how to go on: `scheduler_job` waits for (or polls) it and returns its answer
when done, `scheduler_job_cancel` cancels it. Cancelling a job cancels its task, and every cargo run
it made ends as any cancelled run does (`cargo/_process.py`: its whole process session is killed).

While the foreground call waits, a progress notification goes out every `PROGRESS_EVERY_S`
(with the client's `progressToken`; the SDK sends nothing without one), saying what runs. A
client that cancels the foreground call (`notifications/cancelled`) cancels the work with it.

Jobs run in the server state's task group, so they outlive the request that started them (and its
session: an id is an unguessable token, and whoever holds it may ask), never the daemon. Finished
jobs are kept `KEEP_S` for their answer to be fetched, at most `MAX_FINISHED`.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
import anyio.abc
from mcp_types import CallToolResult

from .._exceptions import InvalidArgument
from ..cargo._process import ACTIVITY, Activity

PROGRESS_EVERY_S = 5.0
KEEP_S = 30 * 60.0
MAX_FINISHED = 64
CANCEL_WAIT_S = 30.0
"""How long a cancel waits for the job's processes to be gone (terminate, a grace, kill: seconds)."""

State = Literal["running", "done", "cancelled"]


class Job:
    """One piece of long work: its task, what it runs, and its answer once done."""

    def __init__(self, tool: str) -> None:
        self.id = "job-" + secrets.token_hex(8)
        self.tool = tool
        self.started = time.monotonic()
        self.ended: float | None = None
        self.state: State = "running"
        self.result: CallToolResult | None = None
        self.activity = Activity()
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()

    def view(self) -> dict[str, Any]:
        """What a poll says (without the answer, which `scheduler_job` returns as the result)."""
        end = self.ended if self.ended is not None else time.monotonic()
        out: dict[str, Any] = {
            "job_id": self.id,
            "tool": self.tool,
            "state": self.state,
            "elapsed_s": round(end - self.started, 1),
        }
        if self.state == "running":
            out["progress"] = self.activity.describe()
        return out


class Jobs:
    """The jobs of one server state; use inside `async with` (it owns their task group)."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Jobs:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()  # the daemon is stopping: its jobs' cargo runs end with it
        await self._tg.__aexit__(None, None, None)

    def start(self, tool: str, work: Callable[[], Awaitable[CallToolResult]]) -> Job:
        """Start `work` (in the caller's context: its session's environment goes with it)."""
        if self._tg is None:
            raise RuntimeError("Jobs used outside `async with`")
        self._forget_old()
        job = Job(tool)
        self._jobs[job.id] = job

        async def run() -> None:
            ACTIVITY.set(job.activity)
            try:
                with job.scope:
                    job.result = await work()
            finally:
                job.state = "done" if job.result is not None else "cancelled"
                job.ended = time.monotonic()
                job.done.set()

        self._tg.start_soon(run)
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            known = ", ".join(self._jobs) or "none"
            raise InvalidArgument(
                "job_id", f"{job_id!r} is no job of this server (finished jobs are kept 30 minutes; known: {known})"
            )
        return job

    async def cancel(self, job: Job) -> None:
        job.scope.cancel()
        with anyio.move_on_after(CANCEL_WAIT_S):
            await job.done.wait()

    def listing(self) -> list[dict[str, Any]]:
        self._forget_old()
        return [job.view() for job in self._jobs.values()]

    def discard(self, job: Job) -> None:
        """Forget a job whose answer was delivered by the call that started it."""
        self._jobs.pop(job.id, None)

    def _forget_old(self) -> None:
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.ended is not None]  # oldest first
        excess = len(finished) - MAX_FINISHED
        for job in finished:
            assert job.ended is not None
            if excess > 0 or now - job.ended > KEEP_S:
                del self._jobs[job.id]
                excess -= 1


async def wait_for(job: Job, seconds: float, tick: Callable[[Job], Awaitable[None]]) -> bool:
    """Wait up to `seconds` for `job`, calling `tick` every PROGRESS_EVERY_S; True when it ended."""
    deadline = time.monotonic() + seconds
    while not job.done.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        with anyio.move_on_after(min(left, PROGRESS_EVERY_S)):
            await job.done.wait()
        if not job.done.is_set():
            await tick(job)
    return True
