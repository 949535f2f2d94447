"""Which target directory a run uses, and the gate that orders cargo runs on one directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.engine._targets import POOL_SIZE, TargetGate, choose_target_dir, needs_private_dir

WAIT_S = 5


@pytest.mark.parametrize(
    ("extra_env", "private"),
    [
        ({}, False),
        ({"RUST_BACKTRACE": "1", "RUST_LOG": "debug", "RUST_TEST_THREADS": "1", "NO_COLOR": "1"}, False),
        ({"RUSTFLAGS": "-Dwarnings", "CARGO_INCREMENTAL": "0"}, False),
        ({"CARGO_PROFILE_DEV_OPT_LEVEL": "1", "CARGO_TERM_VERBOSE": "true"}, False),
        ({"MY_BUILD_SCRIPT_INPUT": "x"}, True),
        ({"RUST_BACKTRACE": "1", "OPENSSL_DIR": "/opt/ssl"}, True),
    ],
    ids=["none", "runtime-only", "cargo-read", "unit-hashed", "fingerprint-only", "mixed"],
)
def test_only_environment_that_cargo_merely_fingerprints_needs_a_private_dir(
    extra_env: dict[str, str], private: bool
) -> None:
    assert needs_private_dir(extra_env) is private


def test_a_run_without_fingerprint_only_environment_uses_the_workspace_target_dir(tmp_path: Path) -> None:
    root, default = _root(tmp_path, "ws"), tmp_path / "ws" / "target"
    assert choose_target_dir(root, default, {}) == default
    assert choose_target_dir(root, default, {"RUST_BACKTRACE": "1"}) == default


def test_fingerprint_only_environment_gets_a_stable_pooled_dir_per_value(tmp_path: Path) -> None:
    root, default = _root(tmp_path, "ws"), tmp_path / "ws" / "target"
    a = choose_target_dir(root, default, {"BUILD_MODE": "a"})
    assert a.parent == default / "cargo-scheduler"
    assert a.name.startswith("env-")
    assert choose_target_dir(root, default, {"BUILD_MODE": "a"}) == a
    assert choose_target_dir(root, default, {"BUILD_MODE": "a", "RUST_BACKTRACE": "1"}) == a, (
        "runtime-only variables do not split the pool"
    )
    assert choose_target_dir(root, default, {"BUILD_MODE": "b"}) != a


def test_the_pool_is_bounded_and_evicts_the_least_recently_used_dir(tmp_path: Path) -> None:
    root, default = _root(tmp_path, "ws"), tmp_path / "ws" / "target"

    def use(i: int) -> Path:
        d = choose_target_dir(root, default, {"BUILD_MODE": str(i)})
        (d / "debug").mkdir(parents=True, exist_ok=True)  # what cargo would do
        return d

    dirs = [use(i) for i in range(POOL_SIZE)]
    assert all(d.is_dir() for d in dirs)
    use(0)  # the first becomes the most recently used
    newest = use(POOL_SIZE)
    assert not dirs[1].exists(), "the least recently used dir was evicted"
    assert dirs[0].is_dir() and newest.is_dir()
    pooled = [p for p in (default / "cargo-scheduler").iterdir() if p.name.startswith("env-")]
    assert len(pooled) == POOL_SIZE


def test_a_second_workspace_root_sharing_a_target_dir_gets_its_own_subdirectory(tmp_path: Path) -> None:
    shared = tmp_path / "shared-target"
    first, second = _root(tmp_path, "main"), _root(tmp_path, "worktree")
    assert choose_target_dir(first, shared, {}) == shared
    other = choose_target_dir(second, shared, {})
    assert other != shared and other.is_relative_to(shared)
    assert choose_target_dir(second, shared, {}) == other, "stable"
    assert choose_target_dir(first, shared, {}) == shared, "the first root keeps the directory"
    assert choose_target_dir(_root(tmp_path, "third"), shared, {}) not in (shared, other)
    private = choose_target_dir(second, shared, {"BUILD_MODE": "x"})
    assert private.is_relative_to(other)


def test_a_target_dir_whose_owner_root_is_gone_is_taken_over(tmp_path: Path) -> None:
    shared = tmp_path / "shared-target"
    first, second = _root(tmp_path, "main"), _root(tmp_path, "worktree")
    choose_target_dir(first, shared, {})
    (first / "Cargo.toml").unlink()  # the worktree was removed
    assert choose_target_dir(second, shared, {}) == shared
    (first / "Cargo.toml").write_text("[workspace]\n")
    assert choose_target_dir(first, shared, {}) != shared


def _root(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    root.mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text("[workspace]\n")
    return root


@pytest.mark.anyio
async def test_a_foreground_call_cancels_a_running_background_job_which_runs_again_afterwards() -> None:
    gate = TargetGate()
    events: list[str] = []
    started = [anyio.Event(), anyio.Event()]

    async def job() -> bool:
        attempt = len([e for e in events if e.startswith("bg-start")])
        events.append(f"bg-start-{attempt}")
        started[attempt].set()
        try:
            if attempt == 0:
                await anyio.sleep_forever()
            return True
        except anyio.get_cancelled_exc_class():
            events.append(f"bg-cancelled-{attempt}")
            raise
        finally:
            events.append(f"bg-end-{attempt}")

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(gate.background, job, "bg")
            await started[0].wait()
            assert gate.holder == "bg" and gate.busy
            async with gate.foreground("fg"):
                events.append("fg")
                assert gate.holder == "fg"
            await started[1].wait()
    assert events == ["bg-start-0", "bg-cancelled-0", "bg-end-0", "fg", "bg-start-1", "bg-end-1"]
    assert not gate.busy and gate.holder is None


@pytest.mark.anyio
async def test_two_foreground_calls_never_overlap() -> None:
    gate = TargetGate()
    events: list[str] = []
    inside = 0
    most_inside = 0
    release = {name: anyio.Event() for name in ("a", "b", "c")}
    entered = {name: anyio.Event() for name in ("a", "b", "c")}

    async def call(name: str) -> None:
        nonlocal inside, most_inside
        async with gate.foreground(name):
            inside += 1
            most_inside = max(most_inside, inside)
            events.append(f"{name}-in")
            entered[name].set()
            await release[name].wait()
            events.append(f"{name}-out")
            inside -= 1

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "a")
            await entered["a"].wait()
            tg.start_soon(call, "b")
            tg.start_soon(call, "c")
            await anyio.wait_all_tasks_blocked()
            assert events == ["a-in"], "b and c wait for the directory"
            assert gate.holder == "a"
            release["a"].set()
            await entered["b"].wait()
            await anyio.wait_all_tasks_blocked()
            assert events == ["a-in", "a-out", "b-in"]
            release["b"].set()
            release["c"].set()
    assert events == ["a-in", "a-out", "b-in", "b-out", "c-in", "c-out"]
    assert most_inside == 1


@pytest.mark.anyio
async def test_a_background_job_waits_for_every_foreground_call_to_finish() -> None:
    gate = TargetGate()
    events: list[str] = []
    release = anyio.Event()
    ran = anyio.Event()

    async def job() -> bool:
        events.append("bg")
        ran.set()
        return True

    async def hold() -> None:
        async with gate.foreground("fg"):
            events.append("fg-in")
            await release.wait()
            events.append("fg-out")

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(gate.background, job)
            await anyio.wait_all_tasks_blocked()
            assert events == ["fg-in"], "no background run while a foreground call holds the directory"
            release.set()
            await ran.wait()
    assert events == ["fg-in", "fg-out", "bg"]


@pytest.mark.anyio
async def test_a_background_job_that_is_not_done_runs_again_until_it_is() -> None:
    gate = TargetGate()
    runs = 0

    async def job() -> bool:
        nonlocal runs
        runs += 1
        await anyio.lowlevel.checkpoint()
        return runs == 3

    with anyio.fail_after(WAIT_S):
        await gate.background(job)
    assert runs == 3


@pytest.mark.anyio
async def test_a_foreground_call_cancelled_while_waiting_lets_background_work_resume() -> None:
    gate = TargetGate()
    release = anyio.Event()
    ran = anyio.Event()

    async def job() -> bool:
        ran.set()
        return True

    async def hold() -> None:
        async with gate.foreground("holder"):
            await release.wait()

    async def impatient() -> None:
        with anyio.move_on_after(0):
            async with gate.foreground("impatient"):
                pytest.fail("never gets the directory")

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(hold)
            await anyio.wait_all_tasks_blocked()
            await impatient()
            tg.start_soon(gate.background, job)
            release.set()
            await ran.wait()
    assert not gate.busy


# -- moved from the workspace scheduler's tests, which owned "one cargo per target dir" before ----------
async def settle() -> None:
    """Let every task run until it blocks (checkpoints spare `wait_all_tasks_blocked`'s re-poll)."""
    for _ in range(8):
        await anyio.lowlevel.checkpoint()
    await anyio.wait_all_tasks_blocked()


@dataclass
class Held:
    """One foreground cargo run: it takes the directory, then holds it until released."""

    label: str
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    release: anyio.Event = field(default_factory=anyio.Event)
    state: str = "waiting"  # waiting -> running -> done, or waiting -> cancelled


class Runs:
    """Starts held foreground runs in a known arrival order; records who holds the directory."""

    def __init__(self, gate: TargetGate, tg: anyio.abc.TaskGroup) -> None:
        self.gate, self.tg = gate, tg
        self.calls: dict[str, Held] = {}
        self.log: list[tuple[str, str]] = []  # (label, "in" | "out"), in the order it happened
        self.inside: set[str] = set()
        self.most_inside = 0

    def enter(self, label: str) -> None:
        self.inside.add(label)
        self.most_inside = max(self.most_inside, len(self.inside))
        self.log.append((label, "in"))

    def leave(self, label: str) -> None:
        self.inside.discard(label)
        self.log.append((label, "out"))

    async def arrive(self, label: str) -> Held:
        call = self.calls[label] = Held(label)
        self.tg.start_soon(self._run, call)
        await settle()
        return call

    async def _run(self, call: Held) -> None:
        with call.scope:
            async with self.gate.foreground(call.label):
                call.state = "running"
                self.enter(call.label)
                try:
                    await call.release.wait()
                finally:
                    self.leave(call.label)
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

    def started(self) -> list[str]:
        return [label for label, kind in self.log if kind == "in"]


@pytest.mark.anyio
async def test_a_foreground_call_cancelled_while_waiting_lets_the_next_one_on_its_dir_take_its_turn() -> None:
    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            runs = Runs(TargetGate(), tg)
            for name in ("b1", "b2", "b3"):
                await runs.arrive(name)
            await runs.cancel("b2")
            await runs.release("b1")
            assert runs.running() == {"b3"}
            await runs.release("b3")
    assert runs.started() == ["b1", "b3"]
    assert runs.calls["b2"].state == "cancelled"


@pytest.mark.anyio
async def test_cancelling_a_foreground_call_that_holds_the_dir_releases_it() -> None:
    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            runs = Runs(TargetGate(), tg)
            await runs.arrive("b1")
            await runs.arrive("b2")
            await runs.cancel("b1")
            assert runs.running() == {"b2"}
            await runs.release("b2")
    assert runs.log == [("b1", "in"), ("b1", "out"), ("b2", "in"), ("b2", "out")]


@pytest.mark.anyio
async def test_an_exception_inside_a_foreground_call_releases_the_dir() -> None:
    gate = TargetGate()
    with anyio.fail_after(WAIT_S):
        with pytest.raises(ValueError):
            async with gate.foreground("boom"):
                raise ValueError("cargo crashed")
        assert not gate.busy and gate.holder is None
        async with gate.foreground("after"):
            assert gate.holder == "after"


@pytest.mark.anyio
async def test_a_background_job_cancelled_by_its_caller_stops_and_does_not_run_again() -> None:
    """How a mutation drops background work as stale: the engine cancels the scope around it."""
    gate = TargetGate()
    runs = 0
    started = anyio.Event()

    async def job() -> bool:
        nonlocal runs
        runs += 1
        started.set()
        await anyio.sleep_forever()
        return True

    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(gate.background, job)
            await started.wait()
            tg.cancel_scope.cancel()
        assert not gate.busy
        async with gate.foreground("after"):
            await settle()
    assert runs == 1


arrive = st.tuples(st.just("arrive"), st.just(0))
background = st.tuples(st.just("background"), st.just(0))
poke = st.tuples(st.sampled_from(["release", "cancel"]), st.integers(0, 40))


async def gate_scenario(ops: list[tuple[str, int]]) -> Runs:
    gate = TargetGate()
    with anyio.fail_after(WAIT_S):
        async with anyio.create_task_group() as tg:
            runs = Runs(gate, tg)
            done = anyio.Event()  # ends the background job's current run
            jobs = 0

            async def job() -> bool:
                runs.enter("bg")
                try:
                    await done.wait()
                finally:
                    runs.leave("bg")
                return True

            def check() -> None:
                waiting = [c for c in runs.calls.values() if c.state == "waiting"]
                assert runs.most_inside <= 1, "two runs held the directory at once"
                if waiting:
                    assert runs.running(), "foreground calls wait, yet none holds the directory"
                    assert "bg" not in runs.inside, "background work holds the directory while a call waits"

            for n, (op, a) in enumerate(ops):
                if op == "arrive":
                    await runs.arrive(f"c{n}")
                elif op == "background":
                    if jobs == 0:
                        jobs += 1
                        tg.start_soon(gate.background, job, "bg")
                        await settle()
                else:
                    pool = sorted(
                        c.label for c in runs.calls.values() if c.state == ("running" if op == "release" else "waiting")
                    )
                    if pool:
                        pick = pool[a % len(pool)]
                        await (runs.release(pick) if op == "release" else runs.cancel(pick))
                check()
            while runs.running():
                await runs.release(*runs.running())
                check()
            done.set()
    return runs


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(arrive, arrive, background, poke, poke), max_size=30))
def test_random_foreground_calls_and_background_work_never_share_the_dir_and_keep_arrival_order(
    ops: list[tuple[str, int]],
) -> None:
    runs = anyio.run(gate_scenario, ops)
    arrival = [label for label, c in runs.calls.items() if c.state == "done"]  # dicts keep arrival order
    assert all(c.state in ("done", "cancelled") for c in runs.calls.values())
    assert [label for label in runs.started() if label != "bg"] == arrival, "FIFO per target dir"
    assert runs.most_inside <= 1
