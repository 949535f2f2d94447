"""WorkspaceScheduler: who runs together, and in what order.

Which cargo may use a target dir when is the engine's `TargetGate` (tests/engine/test_targets.py).

Every claim is proved from the scheduler's own start/end records (`events()`), whose list order
is the order things happened. Calls are fakes that hold their slot until the test releases them;
ordering is forced with events and `wait_all_tasks_blocked`, never with sleeps, and every wait is
bounded by `anyio.fail_after`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.server._admission import CallClass, Scheduler, SlotEvent, WorkspaceScheduler

READ, MUTATION = CallClass.READ, CallClass.MUTATION
LIMIT = 5.0
ROOT = Path("/ws")


# -- harness ----------------------------------------------------------------------------------
async def settle() -> None:
    """Let every task run until it blocks. The checkpoints only spare anyio's 0.1 s re-poll in
    `wait_all_tasks_blocked` when a task has just been woken; the guarantee comes from the latter."""
    for _ in range(8):
        await anyio.lowlevel.checkpoint()
    await anyio.wait_all_tasks_blocked()


@dataclass
class Held:
    """One foreground call: it enters its slot, then holds it until released."""

    label: str
    cls: CallClass
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    entered: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)
    state: str = "waiting"  # waiting -> running -> done, or waiting -> cancelled


class Calls:
    """Starts held calls in a known arrival order and releases or cancels them on demand."""

    def __init__(self, ws: WorkspaceScheduler, tg: anyio.abc.TaskGroup) -> None:
        self.ws, self.tg = ws, tg
        self.calls: dict[str, Held] = {}

    async def arrive(self, label: str, cls: CallClass) -> Held:
        call = self.calls[label] = Held(label, cls)
        self.tg.start_soon(self._run, call)
        await settle()  # it is queued (or running) before the next arrives
        return call

    async def _run(self, call: Held) -> None:
        with call.scope:
            try:
                async with self.ws.slot(call.cls, label=call.label):
                    call.state = "running"
                    call.entered.set()
                    await call.release.wait()
            finally:
                if call.state == "running":  # released, or cancelled while holding: it left its slot
                    call.state = "done"
        if call.state == "waiting":
            call.state = "cancelled"

    async def release(self, *labels: str) -> None:
        for label in labels:
            self.calls[label].release.set()
        await settle()

    async def cancel(self, label: str) -> None:
        self.calls[label].scope.cancel()
        await settle()

    def running(self) -> set[str]:
        return {c.label for c in self.calls.values() if c.state == "running"}


@asynccontextmanager
async def workspace(**kwargs: int) -> AsyncIterator[tuple[WorkspaceScheduler, Calls]]:
    with anyio.fail_after(LIMIT):
        ws = Scheduler(**kwargs).for_workspace(ROOT)
        async with anyio.create_task_group() as tg:
            yield ws, Calls(ws, tg)
            tg.cancel_scope.cancel()  # calls a test left holding their slot


def order(events: Iterable[SlotEvent]) -> list[tuple[str, str]]:
    return [(e.label, e.kind) for e in events]


def index(events: list[SlotEvent], label: str, kind: str, nth: int = 0) -> int:
    hits = [i for i, e in enumerate(events) if e.label == label and e.kind == kind]
    return hits[nth]


@pytest.mark.anyio
async def test_concurrent_reads_all_run_together() -> None:
    async with workspace() as (ws, calls):
        for i in range(5):
            await calls.arrive(f"r{i}", READ)
        assert calls.running() == {f"r{i}" for i in range(5)}
        await calls.release(*(f"r{i}" for i in range(5)))
    events = ws.events()
    last_start = max(index(events, f"r{i}", "start") for i in range(5))
    first_end = min(index(events, f"r{i}", "end") for i in range(5))
    assert last_start < first_end


@pytest.mark.anyio
async def test_a_mutation_among_reads_starts_after_the_earlier_reads_end_and_before_the_later_reads_begin() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("r1", READ)
        await calls.arrive("r2", READ)
        await calls.arrive("edit", MUTATION)
        await calls.arrive("r3", READ)
        await calls.arrive("r4", READ)
        assert calls.running() == {"r1", "r2"}
        await calls.release("r1")
        assert calls.running() == {"r2"}, "a mutation must not be passed by later reads"
        await calls.release("r2")
        assert calls.running() == {"edit"}
        await calls.release("edit")
        assert calls.running() == {"r3", "r4"}
        await calls.release("r3", "r4")
    e = ws.events()
    assert max(index(e, "r1", "end"), index(e, "r2", "end")) < index(e, "edit", "start")
    assert index(e, "edit", "end") < min(index(e, "r3", "start"), index(e, "r4", "start"))


@pytest.mark.anyio
async def test_a_cancelled_waiting_mutation_does_not_wedge_the_calls_queued_behind_it() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("r1", READ)
        await calls.arrive("edit", MUTATION)
        await calls.arrive("r2", READ)
        assert calls.running() == {"r1"}
        await calls.cancel("edit")
        assert calls.running() == {"r1", "r2"}
        assert calls.calls["edit"].state == "cancelled"
        await calls.release("r1", "r2")
    assert "edit" not in {e.label for e in ws.events()}
    assert ws.status()["queued"] == {"read": [], "mutation": []}


@pytest.mark.anyio
async def test_cancelling_a_call_that_holds_its_slot_releases_it() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("m1", MUTATION)
        await calls.arrive("m2", MUTATION)
        await calls.cancel("m1")
        assert calls.running() == {"m2"}
        await calls.release("m2")
    assert order(ws.events()) == [("m1", "start"), ("m1", "end"), ("m2", "start"), ("m2", "end")]


@pytest.mark.anyio
async def test_an_exception_inside_a_slot_releases_it() -> None:
    with anyio.fail_after(LIMIT):
        ws = Scheduler().for_workspace(ROOT)
        with pytest.raises(ValueError):
            async with ws.slot(MUTATION, label="boom"):
                raise ValueError("edit failed")
        async with ws.slot(READ, label="after"):
            pass
    assert order(ws.events()) == [("boom", "start"), ("boom", "end"), ("after", "start"), ("after", "end")]


@pytest.mark.anyio
async def test_workspaces_do_not_block_each_other() -> None:
    with anyio.fail_after(LIMIT):
        sched = Scheduler()
        a, b = sched.for_workspace(Path("/a")), sched.for_workspace(Path("/b"))
        assert sched.for_workspace(Path("/a")) is a
        async with a.slot(MUTATION, label="edit a"), b.slot(MUTATION, label="edit b"):
            pass
        assert [w["root"] for w in sched.status()["workspaces"]] == ["/a", "/b"]


@pytest.mark.anyio
async def test_status_lists_running_and_queued_calls_by_class_with_labels_and_ages() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("hover", READ)
        await calls.arrive("check", READ)
        await calls.arrive("edit", MUTATION)
        status = ws.status()
        assert [c["label"] for c in status["running"]["read"]] == ["hover", "check"]
        assert status["running"]["mutation"] == []
        assert [c["label"] for c in status["queued"]["mutation"]] == ["edit"]
        assert status["queued"]["mutation"][0]["age_s"] >= 0
        await calls.release("hover", "check", "edit")


@pytest.mark.anyio
async def test_the_event_record_keeps_only_the_newest_events() -> None:
    async with workspace(max_events=4) as (ws, _):
        for i in range(5):
            async with ws.slot(READ, label=f"r{i}"):
                pass
    assert order(ws.events()) == [("r3", "start"), ("r3", "end"), ("r4", "start"), ("r4", "end")]


# -- property: random arrivals ---------------------------------------------------------------
arrive = st.tuples(st.just("arrive"), st.sampled_from(list(CallClass)))
poke = st.tuples(st.sampled_from(["release", "cancel"]), st.integers(0, 40))


def check_nobody_waits_without_reason(d: Calls) -> None:
    """Admission is greedy: a waiting call has a mutation running or ahead of it, or is a mutation
    with an earlier call still live; a running mutation runs alone."""
    live = [c for c in d.calls.values() if c.state in ("waiting", "running")]
    running = [c for c in live if c.state == "running"]
    if any(c.cls is MUTATION for c in running):
        assert len(running) == 1
    for i, call in enumerate(live):
        if call.state != "waiting":
            continue
        before = live[:i]
        if any(c.cls is MUTATION for c in [*running, *before]):
            continue
        assert call.cls is not READ, f"{call.label} waits for nothing"
        assert before, f"{call.label} waits for nothing"


async def scenario(ops: list[tuple[str, object]]) -> tuple[Calls, list[SlotEvent]]:
    with anyio.fail_after(LIMIT):
        ws = Scheduler().for_workspace(ROOT)
        async with anyio.create_task_group() as tg:
            d = Calls(ws, tg)
            for n, (op, a) in enumerate(ops):
                if op == "arrive":
                    assert isinstance(a, CallClass)
                    await d.arrive(f"c{n}", a)
                else:
                    assert isinstance(a, int)
                    pool = (
                        sorted(d.running())
                        if op == "release"
                        else sorted(c.label for c in d.calls.values() if c.state == "waiting")
                    )
                    if pool:
                        pick = pool[a % len(pool)]
                        await (d.release(pick) if op == "release" else d.cancel(pick))
                check_nobody_waits_without_reason(d)
            # Drain: everything left must finish without a deadlock.
            while any(c.state in ("waiting", "running") for c in d.calls.values()):
                assert d.running(), "calls wait but nothing runs: the queue is wedged"
                for label in d.running():
                    d.calls[label].release.set()
                await settle()
                check_nobody_waits_without_reason(d)
    return d, ws.events()


def intervals(events: list[SlotEvent]) -> dict[int, tuple[SlotEvent, int, int]]:
    """seq -> (its start event, start index, end index) for every call."""
    out: dict[int, tuple[SlotEvent, int, int]] = {}
    starts: dict[int, tuple[SlotEvent, int]] = {}
    for i, e in enumerate(events):
        if e.kind == "start":
            starts[e.seq] = (e, i)
        else:
            first, s = starts.pop(e.seq)
            out[e.seq] = (first, s, i)
    assert not starts, "every admitted call ended"
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(arrive, arrive, poke, poke), max_size=30))
def test_random_arrivals_never_overlap_a_mutation_and_keep_fifo_order_around_it(
    ops: list[tuple[str, object]],
) -> None:
    driver, events = anyio.run(scenario, ops)
    spans = intervals(events)
    by_label = {e.label: (s, t) for e, s, t in spans.values()}
    arrival = [label for label, c in driver.calls.items() if c.state == "done"]  # dicts keep arrival order
    assert set(by_label) == set(arrival), "every call that was not cancelled ran exactly once"
    assert all(c.state in ("done", "cancelled") for c in driver.calls.values())

    def overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    runs = list(spans.values())
    for i, (e1, s1, t1) in enumerate(runs):
        for e2, s2, t2 in runs[i + 1 :]:
            if overlap((s1, t1), (s2, t2)):
                assert MUTATION not in (e1.cls, e2.cls), f"{e1.label} overlaps {e2.label}"
    for m, label in enumerate(arrival):
        if driver.calls[label].cls is not MUTATION:
            continue
        m_start, m_end = by_label[label]
        assert all(by_label[x][1] < m_start for x in arrival[:m]), f"{label} started before an earlier call ended"
        assert all(by_label[x][0] > m_end for x in arrival[m + 1 :]), f"a later call started before {label} ended"
