"""Admission control for tool calls on one workspace: who may run together, and in what order.

Why this exists (see FIELD-NOTES "Parallelism" and "One writer per build directory"):

- Codex dispatches all calls of one model response at once. Reads (hover, cached diagnostics)
  are safe together and must not queue behind a cargo run.
- Cargo takes `<target>/<profile>/.cargo-lock` for every run, so two builds on one target dir only
  serialise inside cargo, invisibly ("Blocking waiting for file lock"). We serialise them here, in
  FIFO order, where the wait is visible in `status()`; builds on different target dirs run together.
- A mutation (edit, `cargo add`, `cargo clean`) changes what every other call would see. It waits for
  the calls that arrived before it, runs alone, and every call that arrives after it waits for it:
  an agent that edits and then reads must read its own edit, and a stream of reads must never
  starve an edit. This is the order Codex itself keeps between read-only and other calls.
- Background work (widening a check to the whole workspace) must never delay an agent: it runs at
  lowest priority, is cancelled the moment a foreground call needs its target dir, and re-runs once
  the dir is free. A mutation makes it stale, so a mutation drops it.

Every admission is decided synchronously in `_pump()` from the queue in arrival order, so there is
no window where two decisions race, and cancellation of a waiter is just "remove it and pump again".
"""

from __future__ import annotations

import enum
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NamedTuple

import anyio
import anyio.abc
import anyio.lowlevel

log = logging.getLogger("cargo_scheduler.schedule")


class CallClass(enum.Enum):
    """How a call touches the workspace; decides what it may run alongside."""

    READ = "read"  # reads sources or cached state: runs with reads and builds
    BUILD = "build"  # runs cargo: one at a time per target dir, alongside reads
    MUTATION = "mutation"  # changes sources, manifests or artifacts: runs alone, in arrival order


EventKind = Literal["start", "end", "cancelled"]


class SlotEvent(NamedTuple):
    """One admission record. `seq` is the call's arrival number (shared by its start and end);
    the order of `events()` is the order things happened. `cancelled` ends a background job that
    was pre-empted; foreground calls always end with `end`, however they left."""

    seq: int
    label: str
    cls: CallClass
    kind: EventKind
    at: float
    target_dir: Path | None = None  # for builds: the dir they hold
    background: bool = False


@dataclass(eq=False)
class _Ticket:
    seq: int
    cls: CallClass
    target_dir: Path | None
    label: str
    arrived: float
    admitted: anyio.Event = field(default_factory=anyio.Event)
    running: bool = False
    started: float = 0.0


@dataclass(eq=False)
class _Job:
    seq: int
    key: Hashable
    fn: Callable[[], Awaitable[object]]
    target_dir: Path | None
    label: str
    submitted: float
    # Made up front so a job can be cancelled before its task has entered the scope.
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    requeue: bool = False  # run again after a pre-emption (a foreground build took the dir)
    started: float = 0.0


class WorkspaceScheduler:
    """Admission for one workspace root. Get it from `Scheduler.for_workspace`.

    `target_dir=None` on a BUILD means the workspace's default target dir; pass the same path
    spelling for the same dir (no filesystem access happens here). Do not nest slots in one task:
    a call holding a READ that asks for a MUTATION waits for itself.
    """

    def __init__(self, root: Path, task_group: anyio.abc.TaskGroup | None = None, *, max_events: int = 10_000) -> None:
        self.root = root
        self._tg = task_group
        self._seq = itertools.count(1)
        self._queue: list[_Ticket] = []  # waiting foreground calls, in arrival order
        self._running: list[_Ticket] = []
        self._pending: dict[Hashable, _Job] = {}  # background jobs waiting, in submission order
        self._active: dict[Hashable, _Job] = {}  # background jobs whose task is running
        self._events: deque[SlotEvent] = deque(maxlen=max_events)
        self._idle = anyio.Event()
        self._idle.set()
        self._closed = False
        self.last_background_error: str | None = None

    # -- foreground ---------------------------------------------------------------------------
    @asynccontextmanager
    async def slot(self, cls: CallClass, *, target_dir: Path | None = None, label: str = "") -> AsyncIterator[None]:
        """Hold an admission for the body of the `async with`. Cancelling a waiter removes it from
        the queue; leaving the body (normally, by exception or cancellation) releases it."""
        ticket = _Ticket(
            next(self._seq), cls, target_dir if cls is CallClass.BUILD else None, label or cls.value, time.monotonic()
        )
        self._queue.append(ticket)
        self._preempt_background(ticket)
        self._pump()
        try:
            await ticket.admitted.wait()
        except BaseException:
            if ticket.running:  # admitted in the same instant the waiter was cancelled
                self._release(ticket)
            else:
                self._queue.remove(ticket)
                self._pump()  # it may have been what blocked the calls behind it
            raise
        try:
            yield
        finally:
            self._release(ticket)

    def _preempt_background(self, ticket: _Ticket) -> None:
        if ticket.cls is CallClass.MUTATION:
            # Whatever background work computed is about to be stale: cancel it and forget it.
            self._pending.clear()
            for job in self._active.values():
                job.requeue = False
                job.scope.cancel()
        elif ticket.cls is CallClass.BUILD:
            for job in self._active.values():
                if job.target_dir == ticket.target_dir and not job.scope.cancel_called:
                    job.requeue = True
                    job.scope.cancel()

    def _release(self, ticket: _Ticket) -> None:
        self._running.remove(ticket)
        self._record(ticket.seq, ticket.label, ticket.cls, "end", ticket.target_dir)
        self._pump()

    def _admit(self, ticket: _Ticket) -> None:
        self._queue.remove(ticket)
        self._running.append(ticket)
        ticket.running = True
        ticket.started = time.monotonic()
        self._record(ticket.seq, ticket.label, ticket.cls, "start", ticket.target_dir)
        ticket.admitted.set()

    def _pump(self) -> None:
        """Admit everything the rules allow now, foreground first, in arrival order."""
        blocked = any(t.cls is CallClass.MUTATION for t in self._running)
        # Dirs held by a running build (foreground or background) or claimed by an earlier waiter.
        claimed = {t.target_dir for t in self._running if t.cls is CallClass.BUILD}
        claimed |= {j.target_dir for j in self._active.values()}
        for ticket in list(self._queue):
            if blocked:
                break
            if ticket.cls is CallClass.MUTATION:
                if self._queue[0] is ticket and not self._running and not self._active:
                    self._admit(ticket)
                blocked = True  # nothing that arrived after a mutation may pass it
            elif ticket.cls is CallClass.READ:
                self._admit(ticket)
            elif ticket.target_dir not in claimed:
                claimed.add(ticket.target_dir)
                self._admit(ticket)
        if not blocked and not self._closed:
            foreground_dirs = {t.target_dir for t in (*self._running, *self._queue) if t.cls is CallClass.BUILD}
            busy = foreground_dirs | {j.target_dir for j in self._active.values()}
            for job in list(self._pending.values()):
                if job.key not in self._active and job.target_dir not in busy:
                    busy.add(job.target_dir)
                    self._start_job(job)
        if not self._pending and not self._active:
            self._idle.set()
        elif self._idle.is_set():
            self._idle = anyio.Event()

    # -- background ---------------------------------------------------------------------------
    def submit_background(
        self, key: Hashable, fn: Callable[[], Awaitable[object]], *, target_dir: Path | None, label: str = ""
    ) -> None:
        """Queue `fn` as lowest-priority build work on `target_dir`; replaces (and cancels) any
        job with an equal key. Its result is dropped; an exception is logged and kept in status."""
        if self._tg is None or self._closed:
            raise RuntimeError("background work needs a WorkspaceScheduler from an open Scheduler")
        job = _Job(next(self._seq), key, fn, target_dir, label or f"background:{key}", time.monotonic())
        self._pending.pop(key, None)
        older = self._active.get(key)
        if older is not None:
            older.requeue = False
            older.scope.cancel()
        self._pending[key] = job
        self._pump()

    async def start_background(
        self, key: Hashable, fn: Callable[[], Awaitable[object]], *, target_dir: Path | None, label: str = ""
    ) -> None:
        """`submit_background`, then a checkpoint so the job can start before the caller goes on."""
        self.submit_background(key, fn, target_dir=target_dir, label=label)
        await anyio.lowlevel.checkpoint()

    def _start_job(self, job: _Job) -> None:
        assert self._tg is not None
        del self._pending[job.key]
        self._active[job.key] = job
        job.started = time.monotonic()
        self._record(job.seq, job.label, CallClass.BUILD, "start", job.target_dir, background=True)
        self._tg.start_soon(self._run_job, job, name=f"background {job.label}")

    async def _run_job(self, job: _Job) -> None:
        outcome: EventKind = "cancelled"
        try:
            with job.scope:
                await anyio.lowlevel.checkpoint()  # a job pre-empted before it began does not begin
                try:
                    await job.fn()
                except Exception as exc:
                    log.warning("background job %s failed: %r", job.label, exc)
                    self.last_background_error = f"{job.label}: {exc!r}"
                outcome = "end"
        finally:
            del self._active[job.key]
            self._record(job.seq, job.label, CallClass.BUILD, outcome, job.target_dir, background=True)
            if outcome == "cancelled" and job.requeue and not self._closed and job.key not in self._pending:
                self._pending[job.key] = _Job(
                    next(self._seq), job.key, job.fn, job.target_dir, job.label, job.submitted
                )
            self._pump()

    # A built-in bound (not only the caller's `fail_after`): a forgotten foreground holder would
    # otherwise hang a test or benchmark forever instead of failing it.
    async def wait_idle(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109
        """Return once no background job is running or waiting; raise TimeoutError after `timeout`."""
        with anyio.fail_after(timeout):
            while self._pending or self._active:
                await self._idle.wait()

    def _close(self) -> None:
        """The owning task group is ending: stop starting work and cancel what runs."""
        self._closed = True
        self._pending.clear()
        for job in self._active.values():
            job.requeue = False
            job.scope.cancel()
        self._pump()

    # -- observation --------------------------------------------------------------------------
    def _record(
        self,
        seq: int,
        label: str,
        cls: CallClass,
        kind: EventKind,
        target_dir: Path | None,
        *,
        background: bool = False,
    ) -> None:
        self._events.append(SlotEvent(seq, label, cls, kind, time.monotonic(), target_dir, background))

    def events(self) -> list[SlotEvent]:
        """Admission records, oldest first (bounded: the oldest are dropped beyond `max_events`)."""
        return list(self._events)

    def status(self) -> dict[str, Any]:
        """Running and queued calls by class, with labels and ages, and the background jobs."""
        now = time.monotonic()

        def calls(tickets: list[_Ticket], since_start: bool) -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {c.value: [] for c in CallClass}
            for t in tickets:
                out[t.cls.value].append(
                    {
                        "seq": t.seq,
                        "label": t.label,
                        "target_dir": None if t.target_dir is None else str(t.target_dir),
                        "age_s": round(now - (t.started if since_start else t.arrived), 3),
                    }
                )
            return out

        def jobs(items: list[_Job], since_start: bool) -> list[dict[str, Any]]:
            return [
                {
                    "key": str(j.key),
                    "label": j.label,
                    "target_dir": None if j.target_dir is None else str(j.target_dir),
                    "age_s": round(now - (j.started if since_start else j.submitted), 3),
                    **({"cancelling": j.scope.cancel_called} if since_start else {}),
                }
                for j in items
            ]

        return {
            "root": str(self.root),
            "running": calls(self._running, True),
            "queued": calls(self._queue, False),
            "background": {
                "running": jobs(list(self._active.values()), True),
                "pending": jobs(list(self._pending.values()), False),
                "last_error": self.last_background_error,
            },
        }


class Scheduler:
    """The registry: one `WorkspaceScheduler` per workspace root, and the task group that runs
    their background jobs. Use as an async context manager; leaving it cancels background work."""

    def __init__(self, *, max_events: int = 10_000) -> None:
        self._max_events = max_events
        self._workspaces: dict[Path, WorkspaceScheduler] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Scheduler:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        tg, self._tg = self._tg, None
        for ws in self._workspaces.values():
            ws._close()
        tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc, tb)

    def for_workspace(self, root: Path) -> WorkspaceScheduler:
        """The scheduler of `root` (the resolved workspace root), created on first use."""
        ws = self._workspaces.get(root)
        if ws is None:
            if self._tg is None:
                raise RuntimeError("Scheduler used outside `async with`")
            ws = self._workspaces[root] = WorkspaceScheduler(root, self._tg, max_events=self._max_events)
        return ws

    def workspaces(self) -> list[WorkspaceScheduler]:
        return list(self._workspaces.values())

    async def wait_idle(self, timeout: float | None = 30.0) -> None:  # noqa: ASYNC109 (see WorkspaceScheduler)
        """Return once no workspace has background work; raise TimeoutError after `timeout`."""
        with anyio.fail_after(timeout):
            while not all(not ws._pending and not ws._active for ws in self._workspaces.values()):
                for ws in list(self._workspaces.values()):
                    await ws.wait_idle(None)

    def status(self) -> dict[str, Any]:
        return {"workspaces": [ws.status() for ws in self._workspaces.values()]}
