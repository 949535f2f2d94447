"""`scheduler._both`: two independent parts of one answer run at once, failures as alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from scheduler._both import both

pytestmark = pytest.mark.anyio


async def test_two_parts_of_one_answer_are_asked_at_once() -> None:
    """rust-analyzer's load and cargo's check of the file's package overlap: each waits here for the
    other to have started, which a one-after-the-other answer never lets happen (and times out)."""
    events: list[str] = []
    started = {"rust-analyzer": anyio.Event(), "cargo": anyio.Event()}

    def source(name: str, other: str) -> Callable[[], Awaitable[str]]:
        async def ask() -> str:
            events.append(f"start {name}")
            started[name].set()
            await started[other].wait()
            events.append(f"end {name}")
            return name

        return ask

    with anyio.fail_after(5):
        answer = await both(source("rust-analyzer", "cargo"), source("cargo", "rust-analyzer"))
    assert answer == ("rust-analyzer", "cargo")
    assert events[:2] == ["start rust-analyzer", "start cargo"], events


async def test_a_failing_part_cancels_the_other_and_its_own_error_propagates_unwrapped() -> None:
    cancelled = anyio.Event()

    async def slow() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def broken() -> None:
        raise ValueError("the part that failed")

    with anyio.fail_after(5), pytest.raises(ValueError, match="the part that failed"):
        await both(slow, broken)
    assert cancelled.is_set()
