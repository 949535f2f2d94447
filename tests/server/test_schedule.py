"""WorkspaceScheduler: who runs together, in what order, and how background work yields.

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

READ, BUILD, MUTATION = CallClass.READ, CallClass.BUILD, CallClass.MUTATION
LIMIT = 5.0
ROOT = Path("/ws")
DIR_A, DIR_B = Path("/ws/target"), Path("/ws/target/other")


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
    target_dir: Path | None
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    entered: anyio.Event = field(default_factory=anyio.Event)
    release: anyio.Event = field(default_factory=anyio.Event)
    state: str = "waiting"  # waiting -> running -> done, or waiting -> cancelled


class Calls:
    """Starts held calls in a known arrival order and releases or cancels them on demand."""

    def __init__(self, ws: WorkspaceScheduler, tg: anyio.abc.TaskGroup) -> None:
        self.ws, self.tg = ws, tg
        self.calls: dict[str, Held] = {}

    async def arrive(self, label: str, cls: CallClass, target_dir: Path | None = None) -> Held:
        call = self.calls[label] = Held(label, cls, target_dir)
        self.tg.start_soon(self._run, call)
        await settle()  # it is queued (or running) before the next arrives
        return call

    async def _run(self, call: Held) -> None:
        with call.scope:
            try:
                async with self.ws.slot(call.cls, target_dir=call.target_dir, label=call.label):
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
        async with Scheduler(**kwargs) as sched, anyio.create_task_group() as tg:
            ws = sched.for_workspace(ROOT)
            yield ws, Calls(ws, tg)
            tg.cancel_scope.cancel()  # calls a test left holding their slot


class Job:
    """A fake background build: counts runs, reports start and cancellation, ends when released."""

    def __init__(self) -> None:
        self.runs = 0
        self.started = anyio.Event()
        self.cancelled = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        self.started.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            self.started = anyio.Event()  # the next run signals afresh
            raise


def order(events: Iterable[SlotEvent]) -> list[tuple[str, str]]:
    return [(e.label, e.kind) for e in events]


def index(events: list[SlotEvent], label: str, kind: str, nth: int = 0) -> int:
    hits = [i for i, e in enumerate(events) if e.label == label and e.kind == kind]
    return hits[nth]


# -- foreground ---------------------------------------------------------------------------------
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
async def test_builds_on_the_same_target_dir_never_overlap_and_run_in_arrival_order() -> None:
    async with workspace() as (ws, calls):
        for name in ("b1", "b2", "b3"):
            await calls.arrive(name, BUILD, DIR_A)
        assert calls.running() == {"b1"}
        await calls.release("b1")
        assert calls.running() == {"b2"}
        await calls.release("b2")
        assert calls.running() == {"b3"}
        await calls.release("b3")
    assert order(ws.events()) == [
        ("b1", "start"),
        ("b1", "end"),
        ("b2", "start"),
        ("b2", "end"),
        ("b3", "start"),
        ("b3", "end"),
    ]


@pytest.mark.anyio
async def test_builds_on_different_target_dirs_run_together() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("a", BUILD, DIR_A)
        await calls.arrive("b", BUILD, DIR_B)
        await calls.arrive("default", BUILD, None)
        assert calls.running() == {"a", "b", "default"}
        await calls.release("a", "b", "default")
    assert [kind for _, kind in order(ws.events())[:3]] == ["start"] * 3


@pytest.mark.anyio
async def test_reads_run_beside_a_build_and_pass_a_build_queued_on_a_busy_dir() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("b1", BUILD, DIR_A)
        await calls.arrive("b2", BUILD, DIR_A)
        await calls.arrive("r", READ)
        assert calls.running() == {"b1", "r"}
        await calls.release("r", "b1", "b2")
    e = ws.events()
    assert index(e, "r", "start") < index(e, "b1", "end")


@pytest.mark.anyio
async def test_a_mutation_waits_for_a_build_that_arrived_before_it_even_while_that_build_is_queued() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("b1", BUILD, DIR_A)
        await calls.arrive("b2", BUILD, DIR_A)
        await calls.arrive("edit", MUTATION)
        await calls.arrive("b3", BUILD, DIR_B)
        assert calls.running() == {"b1"}
        await calls.release("b1")
        assert calls.running() == {"b2"}
        await calls.release("b2")
        assert calls.running() == {"edit"}
        await calls.release("edit")
        assert calls.running() == {"b3"}
        await calls.release("b3")
    assert [label for label, kind in order(ws.events()) if kind == "start"] == ["b1", "b2", "edit", "b3"]


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
    assert ws.status()["queued"] == {"read": [], "build": [], "mutation": []}


@pytest.mark.anyio
async def test_a_cancelled_waiting_build_lets_the_next_build_on_its_dir_take_its_turn() -> None:
    async with workspace() as (ws, calls):
        for name in ("b1", "b2", "b3"):
            await calls.arrive(name, BUILD, DIR_A)
        await calls.cancel("b2")
        await calls.release("b1")
        assert calls.running() == {"b3"}
        await calls.release("b3")
    assert [label for label, kind in order(ws.events()) if kind == "start"] == ["b1", "b3"]


@pytest.mark.anyio
async def test_cancelling_a_call_that_holds_its_slot_releases_it() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("b1", BUILD, DIR_A)
        await calls.arrive("b2", BUILD, DIR_A)
        await calls.cancel("b1")
        assert calls.running() == {"b2"}
        await calls.release("b2")
    assert order(ws.events()) == [("b1", "start"), ("b1", "end"), ("b2", "start"), ("b2", "end")]


@pytest.mark.anyio
async def test_an_exception_inside_a_slot_releases_it() -> None:
    with anyio.fail_after(LIMIT):
        async with Scheduler() as sched:
            ws = sched.for_workspace(ROOT)
            with pytest.raises(ValueError):
                async with ws.slot(MUTATION, label="boom"):
                    raise ValueError("edit failed")
            async with ws.slot(READ, label="after"):
                pass
    assert order(ws.events()) == [("boom", "start"), ("boom", "end"), ("after", "start"), ("after", "end")]


@pytest.mark.anyio
async def test_workspaces_do_not_block_each_other() -> None:
    with anyio.fail_after(LIMIT):
        async with Scheduler() as sched:
            a, b = sched.for_workspace(Path("/a")), sched.for_workspace(Path("/b"))
            assert sched.for_workspace(Path("/a")) is a
            async with a.slot(MUTATION, label="edit a"), b.slot(MUTATION, label="edit b"):
                pass
            assert [w["root"] for w in sched.status()["workspaces"]] == ["/a", "/b"]


@pytest.mark.anyio
async def test_status_lists_running_and_queued_calls_by_class_with_labels_and_ages() -> None:
    async with workspace() as (ws, calls):
        await calls.arrive("hover", READ)
        await calls.arrive("check", BUILD, DIR_A)
        await calls.arrive("edit", MUTATION)
        status = ws.status()
        assert [c["label"] for c in status["running"]["read"]] == ["hover"]
        assert [c["label"] for c in status["running"]["build"]] == ["check"]
        assert status["running"]["build"][0]["target_dir"] == str(DIR_A)
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


@pytest.mark.anyio
async def test_a_slot_outside_an_open_scheduler_still_admits_but_refuses_background_work() -> None:
    ws = WorkspaceScheduler(ROOT)
    async with ws.slot(READ, label="r"):
        pass
    with pytest.raises(RuntimeError):
        ws.submit_background("k", Job(), target_dir=None)


# -- background ---------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_a_background_build_is_cancelled_by_a_foreground_build_on_its_dir_and_runs_again_afterwards() -> None:
    job = Job()
    async with workspace() as (ws, calls):
        await ws.start_background("widen", job, target_dir=DIR_A, label="bg")
        await job.started.wait()
        await calls.arrive("check", BUILD, DIR_A)
        assert job.cancelled.is_set() and calls.running() == {"check"}
        assert ws.status()["background"]["pending"][0]["label"] == "bg", "pre-empted work is re-queued"
        await calls.release("check")
        await job.started.wait()
        job.release.set()
        await ws.wait_idle(LIMIT)
    assert job.runs == 2
    assert order(ws.events()) == [
        ("bg", "start"),
        ("bg", "cancelled"),
        ("check", "start"),
        ("check", "end"),
        ("bg", "start"),
        ("bg", "end"),
    ]


@pytest.mark.anyio
async def test_background_work_runs_beside_reads_and_builds_on_other_dirs() -> None:
    job = Job()
    async with workspace() as (ws, calls):
        await ws.start_background("widen", job, target_dir=DIR_A)
        await calls.arrive("r", READ)
        await calls.arrive("b", BUILD, DIR_B)
        assert job.started.is_set() and not job.cancelled.is_set()
        await calls.release("r", "b")
        job.release.set()
        await ws.wait_idle(LIMIT)
    assert job.runs == 1


@pytest.mark.anyio
async def test_background_work_waits_while_a_foreground_build_holds_its_dir() -> None:
    job = Job()
    async with workspace() as (ws, calls):
        await calls.arrive("check", BUILD, DIR_A)
        await ws.start_background("widen", job, target_dir=DIR_A, label="bg")
        await settle()
        assert job.runs == 0
        with pytest.raises(TimeoutError):
            await ws.wait_idle(0.05)
        await calls.release("check")
        await job.started.wait()
        job.release.set()
        await ws.wait_idle(LIMIT)
    assert order(ws.events()) == [("check", "start"), ("check", "end"), ("bg", "start"), ("bg", "end")]


@pytest.mark.anyio
async def test_a_mutation_cancels_background_work_and_drops_it_as_stale() -> None:
    running, queued = Job(), Job()
    async with workspace() as (ws, calls):
        await ws.start_background("one", running, target_dir=DIR_A, label="bg1")
        await ws.start_background("two", queued, target_dir=DIR_A, label="bg2")  # waits: one writer per dir
        await running.started.wait()
        await calls.arrive("edit", MUTATION)
        assert running.cancelled.is_set() and calls.running() == {"edit"}
        await calls.release("edit")
        await ws.wait_idle(LIMIT)
    assert (running.runs, queued.runs) == (1, 0)
    assert order(ws.events()) == [("bg1", "start"), ("bg1", "cancelled"), ("edit", "start"), ("edit", "end")]


@pytest.mark.anyio
async def test_background_jobs_with_the_same_key_replace_each_other_and_the_newest_wins() -> None:
    old_running, old_pending, newest = Job(), Job(), Job()
    async with workspace() as (ws, calls):
        await ws.start_background("widen", old_running, target_dir=DIR_A, label="old")
        await old_running.started.wait()
        await calls.arrive("check", BUILD, DIR_A)  # pre-empts `old`, which would re-run...
        await ws.start_background("widen", old_pending, target_dir=DIR_A, label="stale")
        await ws.start_background("widen", newest, target_dir=DIR_A, label="new")  # ...but is replaced
        await calls.release("check")
        await newest.started.wait()
        newest.release.set()
        await ws.wait_idle(LIMIT)
    assert (old_running.runs, old_pending.runs, newest.runs) == (1, 0, 1)


@pytest.mark.anyio
async def test_resubmitting_a_running_background_key_cancels_the_old_run_before_the_new_one_starts() -> None:
    old, new = Job(), Job()
    async with workspace() as (ws, _):
        await ws.start_background("widen", old, target_dir=DIR_A, label="old")
        await old.started.wait()
        await ws.start_background("widen", new, target_dir=DIR_A, label="new")
        await new.started.wait()
        new.release.set()
        await ws.wait_idle(LIMIT)
    assert old.runs == 1 and old.cancelled.is_set()
    assert order(ws.events()) == [("old", "start"), ("old", "cancelled"), ("new", "start"), ("new", "end")]


@pytest.mark.anyio
async def test_a_failing_background_job_is_reported_in_status_and_the_scheduler_carries_on() -> None:
    async def broken() -> None:
        raise OSError("cargo not found")

    async with workspace() as (ws, _):
        await ws.start_background("widen", broken, target_dir=None, label="bg")
        await ws.wait_idle(LIMIT)
        assert "cargo not found" in (ws.status()["background"]["last_error"] or "")
        async with ws.slot(BUILD, label="next"):
            pass


@pytest.mark.anyio
async def test_leaving_the_scheduler_cancels_running_background_work() -> None:
    job = Job()
    with anyio.fail_after(LIMIT):
        async with Scheduler() as sched:
            await sched.for_workspace(ROOT).start_background("widen", job, target_dir=None)
            await job.started.wait()
        assert job.cancelled.is_set()


@pytest.mark.anyio
async def test_the_registry_waits_until_every_workspace_is_idle() -> None:
    jobs = [Job(), Job()]
    with anyio.fail_after(LIMIT):
        async with Scheduler() as sched:
            for root, job in zip((Path("/a"), Path("/b")), jobs, strict=True):
                await sched.for_workspace(root).start_background("widen", job, target_dir=None)
            with pytest.raises(TimeoutError):
                await sched.wait_idle(0.05)
            for job in jobs:
                job.release.set()
            await sched.wait_idle(LIMIT)
            assert all(not w["background"]["running"] for w in sched.status()["workspaces"])


# -- property: random arrivals ---------------------------------------------------------------
DIRS = [None, DIR_A, DIR_B]
arrive = st.tuples(st.just("arrive"), st.sampled_from(list(CallClass)), st.sampled_from(DIRS))
background = st.tuples(st.just("background"), st.sampled_from(["k1", "k2"]), st.sampled_from(DIRS))
poke = st.tuples(st.sampled_from(["release", "cancel"]), st.integers(0, 40), st.just(None))


class Driver(Calls):
    """`Calls` plus background jobs whose runs are released like calls."""

    def __init__(self, ws: WorkspaceScheduler, tg: anyio.abc.TaskGroup) -> None:
        super().__init__(ws, tg)
        self.bg_release: dict[str, anyio.Event] = {}

    def background(self, key: str, target_dir: Path | None) -> None:
        async def job() -> None:
            gate = self.bg_release[key] = anyio.Event()
            try:
                await gate.wait()
            finally:
                if self.bg_release.get(key) is gate:
                    del self.bg_release[key]

        self.ws.submit_background(key, job, target_dir=target_dir, label=f"bg:{key}")

    def check_nobody_waits_without_reason(self) -> None:
        """Admission is greedy: a waiting call has a mutation running or ahead of it, or (a build)
        an earlier build on its dir; a running mutation runs alone."""
        live = [c for c in self.calls.values() if c.state in ("waiting", "running")]
        running = [c for c in live if c.state == "running"]
        if any(c.cls is MUTATION for c in running):
            assert len(running) == 1 and not self.bg_release
        for i, call in enumerate(live):
            if call.state != "waiting":
                continue
            before = live[:i]
            if any(c.cls is MUTATION for c in [*running, *before]):
                continue
            assert call.cls is not READ, f"{call.label} waits for nothing"
            if call.cls is BUILD:
                assert any(c.cls is BUILD and c.target_dir == call.target_dir for c in before) or any(
                    j.target_dir == call.target_dir for j in self.ws._active.values()
                ), f"{call.label} waits"
            else:
                assert before or self.ws._active, f"{call.label} waits for nothing"


async def scenario(ops: list[tuple[str, object, object]]) -> tuple[Driver, list[SlotEvent]]:
    with anyio.fail_after(LIMIT):
        async with Scheduler() as sched, anyio.create_task_group() as tg:
            ws = sched.for_workspace(ROOT)
            d = Driver(ws, tg)
            for n, (op, a, b) in enumerate(ops):
                if op == "arrive":
                    assert isinstance(a, CallClass)
                    await d.arrive(f"c{n}", a, b if isinstance(b, Path) else None)
                elif op == "background":
                    d.background(str(a), b if isinstance(b, Path) else None)
                    await settle()
                else:
                    assert isinstance(a, int)
                    pool = (
                        sorted(d.running() | set(d.bg_release))
                        if op == "release"
                        else sorted(c.label for c in d.calls.values() if c.state == "waiting")
                    )
                    if pool:
                        pick = pool[a % len(pool)]
                        if pick in d.calls:
                            await (d.release(pick) if op == "release" else d.cancel(pick))
                        elif op == "release":
                            d.bg_release[pick].set()
                            await settle()
                d.check_nobody_waits_without_reason()
            # Drain: everything left must finish without a deadlock.
            while any(c.state in ("waiting", "running") for c in d.calls.values()) or d.bg_release:
                progress = d.running() | set(d.bg_release)
                assert progress, "calls wait but nothing runs: the queue is wedged"
                for label in d.running():
                    d.calls[label].release.set()
                for gate in list(d.bg_release.values()):
                    gate.set()
                await settle()
                d.check_nobody_waits_without_reason()
            await ws.wait_idle(LIMIT)
    return d, ws.events()


def intervals(events: list[SlotEvent]) -> dict[int, tuple[SlotEvent, int, int]]:
    """seq -> (its start event, start index, end index) for every call or job run."""
    out: dict[int, tuple[SlotEvent, int, int]] = {}
    starts: dict[int, tuple[SlotEvent, int]] = {}
    for i, e in enumerate(events):
        if e.kind == "start":
            starts[e.seq] = (e, i)
        else:
            first, s = starts.pop(e.seq)
            out[e.seq] = (first, s, i)
    assert not starts, "every admitted call and job ended"
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(arrive, arrive, background, poke, poke), max_size=30))
def test_random_arrivals_never_overlap_a_mutation_and_keep_fifo_order_around_it(
    ops: list[tuple[str, object, object]],
) -> None:
    driver, events = anyio.run(scenario, ops)
    spans = intervals(events)
    by_label = {e.label: (s, t) for e, s, t in spans.values() if not e.background}
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
                if e1.cls is BUILD and e2.cls is BUILD:
                    assert e1.target_dir != e2.target_dir, f"{e1.label} and {e2.label} share a target dir"
    for m, label in enumerate(arrival):
        if driver.calls[label].cls is not MUTATION:
            continue
        m_start, m_end = by_label[label]
        assert all(by_label[x][1] < m_start for x in arrival[:m]), f"{label} started before an earlier call ended"
        assert all(by_label[x][0] > m_end for x in arrival[m + 1 :]), f"a later call started before {label} ended"
    for d in DIRS:
        builds = [x for x in arrival if driver.calls[x].cls is BUILD and driver.calls[x].target_dir == d]
        assert [by_label[x][0] for x in builds] == sorted(by_label[x][0] for x in builds), "FIFO per target dir"
