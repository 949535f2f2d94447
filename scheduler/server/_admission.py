"""Admission control for tool calls on one workspace: who may run together, and in what order.

Why this exists (Codex's scheduling, measured with the real Codex CLI and a scripted model):

- Codex dispatches all calls of one model response at once. Reads (hover, cached diagnostics, a
  check answered from the cache) are safe together and must not queue behind each other.
- A mutation (edit, `cargo add`, `cargo clean`) changes what every other call would see. It waits for
  the calls that arrived before it, runs alone, and every call that arrives after it waits for it:
  an agent that edits and then reads must read its own edit, and a stream of reads must never
  starve an edit. This is the order Codex itself keeps between read-only and other calls.

"One cargo per target dir" is not decided here: every cargo run, foreground or background, queues
on the engine's `TargetGate` for the directory it writes (engine/_targets.py), which knows the
directory from cargo's metadata. A call that runs cargo is a READ here.

Every admission is decided synchronously in `_pump()` from the queue in arrival order, so there is
no window where two decisions race, and cancellation of a waiter is just "remove it and pump again".
"""

from __future__ import annotations

import enum
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, TypedDict

import anyio


class CallClass(enum.Enum):
    """How a call touches the workspace; decides what it may run alongside."""

    READ = "read"  # leaves sources and manifests alone (its cargo runs queue on their target dir's gate)
    MUTATION = "mutation"  # changes sources, manifests or artifacts: runs alone, in arrival order


EventKind = Literal["start", "end"]


class SlotEvent(NamedTuple):
    """One admission record. `seq` is the call's arrival number (shared by its start and end);
    the order of `events()` is the order things happened. A call always ends with `end`, however
    it left its slot."""

    seq: int
    label: str
    cls: CallClass
    kind: EventKind
    at: float


class CallStatus(TypedDict):
    seq: int
    label: str
    age_s: float


class WorkspaceStatus(TypedDict):
    root: str
    running: dict[str, list[CallStatus]]
    queued: dict[str, list[CallStatus]]


@dataclass(eq=False)
class _Ticket:
    seq: int
    cls: CallClass
    label: str
    arrived: float
    admitted: anyio.Event = field(default_factory=anyio.Event)
    running: bool = False
    started: float = 0.0


class WorkspaceScheduler:
    """Admission for one workspace root. Get it from `Scheduler.for_workspace`.

    Do not nest slots in one task: a call holding a READ that asks for a MUTATION waits for itself.
    """

    def __init__(self, root: Path, *, max_events: int = 10_000) -> None:
        self.root = root
        self._seq = itertools.count(1)
        self._queue: list[_Ticket] = []  # waiting calls, in arrival order
        self._running: list[_Ticket] = []
        self._events: deque[SlotEvent] = deque(maxlen=max_events)

    @asynccontextmanager
    async def slot(self, cls: CallClass, *, label: str = "") -> AsyncIterator[None]:
        """Hold an admission for the body of the `async with`. Cancelling a waiter removes it from
        the queue; leaving the body (normally, by exception or cancellation) releases it."""
        ticket = _Ticket(next(self._seq), cls, label or cls.value, time.monotonic())
        self._queue.append(ticket)
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

    def _release(self, ticket: _Ticket) -> None:
        self._running.remove(ticket)
        self._record(ticket, "end")
        self._pump()

    def _admit(self, ticket: _Ticket) -> None:
        self._queue.remove(ticket)
        self._running.append(ticket)
        ticket.running = True
        ticket.started = time.monotonic()
        self._record(ticket, "start")
        ticket.admitted.set()

    def _pump(self) -> None:
        """Admit everything the rules allow now, in arrival order."""
        if any(t.cls is CallClass.MUTATION for t in self._running):
            return
        for ticket in list(self._queue):
            if ticket.cls is CallClass.MUTATION:
                if self._queue[0] is ticket and not self._running:
                    self._admit(ticket)
                return  # nothing that arrived after a mutation may pass it
            self._admit(ticket)

    # -- observation --------------------------------------------------------------------------
    def _record(self, ticket: _Ticket, kind: EventKind) -> None:
        self._events.append(SlotEvent(ticket.seq, ticket.label, ticket.cls, kind, time.monotonic()))

    def events(self) -> list[SlotEvent]:
        """Admission records, oldest first (bounded: the oldest are dropped beyond `max_events`)."""
        return list(self._events)

    def status(self) -> WorkspaceStatus:
        """Running and queued calls by class, with labels and ages."""
        now = time.monotonic()

        def calls(tickets: list[_Ticket], since_start: bool) -> dict[str, list[CallStatus]]:
            out: dict[str, list[CallStatus]] = {c.value: [] for c in CallClass}
            for t in tickets:
                age = round(now - (t.started if since_start else t.arrived), 3)
                out[t.cls.value].append({"seq": t.seq, "label": t.label, "age_s": age})
            return out

        return {"root": str(self.root), "running": calls(self._running, True), "queued": calls(self._queue, False)}


class Scheduler:
    """The registry: one `WorkspaceScheduler` per workspace root."""

    def __init__(self, *, max_events: int = 10_000) -> None:
        self._max_events = max_events
        self._workspaces: dict[Path, WorkspaceScheduler] = {}

    def for_workspace(self, root: Path) -> WorkspaceScheduler:
        """The scheduler of `root` (the resolved workspace root), created on first use."""
        ws = self._workspaces.get(root)
        if ws is None:
            ws = self._workspaces[root] = WorkspaceScheduler(root, max_events=self._max_events)
        return ws

    def workspaces(self) -> list[WorkspaceScheduler]:
        return list(self._workspaces.values())

    def status(self) -> dict[str, list[WorkspaceStatus]]:
        return {"workspaces": [ws.status() for ws in self._workspaces.values()]}
