"""SingleFlight: equal concurrent requests share one run, and cancellation only kills unwanted work.

Every wait is bounded by `anyio.fail_after`; ordering is forced with events and
`wait_all_tasks_blocked`, never with sleeps.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from scheduler._exceptions import FlightAborted
from scheduler.engine._singleflight import SingleFlight

pytestmark = pytest.mark.anyio

LIMIT = 5.0


class Work:
    """A fake computation: counts its calls, reports start, waits for `release`, sees cancellation."""

    def __init__(self, result: Any = "answer", error: Exception | None = None) -> None:
        self.calls = 0
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.cancelled = anyio.Event()
        self.result = result
        self.error = error

    async def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.set()
            raise
        if self.error is not None:
            raise self.error
        return self.result


async def test_five_concurrent_callers_with_an_equal_key_share_one_execution_and_all_get_its_result() -> None:
    work = Work(result=42)
    results: list[int] = []

    async def caller(sf: SingleFlight[int]) -> None:
        results.append(await sf.run("key", work))

    with anyio.fail_after(LIMIT):
        async with SingleFlight[int]() as sf, anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(caller, sf)
            await anyio.wait_all_tasks_blocked()
            assert sf.in_flight()[0]["callers"] == 5
            work.release.set()
    assert work.calls == 1
    assert results == [42] * 5


async def test_callers_with_different_keys_get_separate_runs() -> None:
    works = {"a": Work("A"), "b": Work("B")}
    results: dict[str, str] = {}

    async def caller(sf: SingleFlight[str], key: str) -> None:
        results[key] = await sf.run(key, works[key])

    with anyio.fail_after(LIMIT):
        async with SingleFlight[str]() as sf, anyio.create_task_group() as tg:
            for key in works:
                tg.start_soon(caller, sf, key)
            await anyio.wait_all_tasks_blocked()
            assert sorted(f["key"] for f in sf.in_flight()) == ["'a'", "'b'"]
            for w in works.values():
                w.release.set()
    assert results == {"a": "A", "b": "B"}
    assert [w.calls for w in works.values()] == [1, 1]


async def test_an_exception_from_the_shared_run_is_raised_to_every_caller() -> None:
    work = Work(error=ValueError("cargo said no"))
    errors: list[BaseException] = []

    async def caller(sf: SingleFlight[str]) -> None:
        try:
            await sf.run("key", work)
        except ValueError as exc:
            errors.append(exc)

    with anyio.fail_after(LIMIT):
        async with SingleFlight[str]() as sf, anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(caller, sf)
            await anyio.wait_all_tasks_blocked()
            work.release.set()
    assert work.calls == 1
    assert [str(e) for e in errors] == ["cargo said no"] * 3


async def test_cancelling_one_of_two_callers_lets_the_run_finish_for_the_other() -> None:
    work = Work("done")
    outcome: dict[str, Any] = {}

    async def caller(sf: SingleFlight[str], name: str, scope: anyio.CancelScope) -> None:
        with scope:
            outcome[name] = await sf.run("key", work)
        if scope.cancelled_caught:
            outcome[name] = "cancelled"

    first, second = anyio.CancelScope(), anyio.CancelScope()
    with anyio.fail_after(LIMIT):
        async with SingleFlight[str]() as sf, anyio.create_task_group() as tg:
            tg.start_soon(caller, sf, "first", first)
            tg.start_soon(caller, sf, "second", second)
            await work.started.wait()
            await anyio.wait_all_tasks_blocked()
            first.cancel()
            await anyio.wait_all_tasks_blocked()
            assert not work.cancelled.is_set()
            assert sf.in_flight()[0]["callers"] == 1
            work.release.set()
    assert outcome == {"first": "cancelled", "second": "done"}
    assert work.calls == 1 and not work.cancelled.is_set()


async def test_cancelling_every_caller_cancels_the_run_and_the_function_observes_it() -> None:
    work = Work()
    scopes = [anyio.CancelScope(), anyio.CancelScope()]

    async def caller(sf: SingleFlight[str], scope: anyio.CancelScope) -> None:
        with scope:
            await sf.run("key", work)

    with anyio.fail_after(LIMIT):
        async with SingleFlight[str]() as sf, anyio.create_task_group() as tg:
            for scope in scopes:
                tg.start_soon(caller, sf, scope)
            await work.started.wait()
            for scope in scopes:
                scope.cancel()
            await work.cancelled.wait()
            assert sf.in_flight() == []
    assert work.calls == 1


async def test_a_run_whose_only_caller_is_cancelled_before_it_starts_never_calls_the_function() -> None:
    work = Work()
    with anyio.fail_after(LIMIT):
        async with SingleFlight[str]() as sf:
            with anyio.CancelScope() as scope:
                scope.cancel()
                await sf.run("key", work)
            await anyio.wait_all_tasks_blocked()
    assert work.calls == 0


async def test_a_caller_arriving_while_an_abandoned_run_tears_down_starts_a_fresh_run() -> None:
    """Killing cargo takes time; a new caller must not join (and inherit the cancellation of) a run
    that every caller already left."""
    tearing_down, finish_teardown = anyio.Event(), anyio.Event()
    dying_started = anyio.Event()

    async def dying() -> str:
        dying_started.set()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.move_on_after(LIMIT, shield=True):  # bounded, so a regression fails instead of hanging
                tearing_down.set()
                await finish_teardown.wait()
        return "never"

    fresh = Work("fresh")
    fresh.release.set()
    with anyio.fail_after(LIMIT):
        async with SingleFlight[str]() as sf, anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def leaver() -> None:
                with scope:
                    await sf.run("key", dying)

            tg.start_soon(leaver)
            await dying_started.wait()
            scope.cancel()
            await tearing_down.wait()
            assert await sf.run("key", fresh) == "fresh"
            finish_teardown.set()
    assert fresh.calls == 1


async def test_the_key_is_forgotten_after_completion_so_a_later_call_runs_again() -> None:
    work = Work("x")
    work.release.set()
    with anyio.fail_after(LIMIT):
        async with SingleFlight[str]() as sf:
            assert await sf.run("key", work) == "x"
            assert sf.in_flight() == []
            assert await sf.run("key", work) == "x"
    assert work.calls == 2


async def test_leaving_the_single_flight_aborts_runs_that_callers_still_wait_on() -> None:
    work = Work()
    errors: list[BaseException] = []

    async def caller(sf: SingleFlight[str]) -> None:
        try:
            await sf.run("key", work)
        except FlightAborted as exc:
            errors.append(exc)

    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            async with SingleFlight[str]() as sf:
                tg.start_soon(caller, sf)
                await work.started.wait()
            await work.cancelled.wait()
    assert len(errors) == 1


async def test_run_outside_the_context_manager_is_refused() -> None:
    with pytest.raises(RuntimeError):
        await SingleFlight[str]().run("key", Work())
