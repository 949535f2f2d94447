"""Two independent parts of one answer at once.

An answer that needs two things that do not depend on each other (rust-analyzer's diagnostics and
cargo's check of the same file; cargo metadata with the tree walk and `rustc -vV`) costs the slower
of them, not their sum. Structured: both run in one task group, and if either fails the other is
cancelled and the failure propagates as it would have alone (not wrapped in a group: callers
catch `MetadataError` and the like).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

A = TypeVar("A")
B = TypeVar("B")


async def both(first: Callable[[], Awaitable[A]], second: Callable[[], Awaitable[B]]) -> tuple[A, B]:
    """(first(), second()), run concurrently."""
    out: dict[int, Any] = {}

    async def run(i: int, fn: Callable[[], Awaitable[Any]]) -> None:
        out[i] = await fn()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, 0, first)
            tg.start_soon(run, 1, second)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:  # one part failed: its error, as the callers catch it alone
            raise group.exceptions[0] from None
        raise
    return out[0], out[1]
