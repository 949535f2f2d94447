"""Share one execution of an async function among concurrent callers with an equal key.

Agents fire the same request several times at once (parallel tool calls, two sessions on one
workspace). Running cargo twice for the same question costs a full build and fights for the
target dir's lock, so identical concurrent requests share one run and all get its answer.

The run lives in a task group owned by the `SingleFlight`, not in the first caller's task. That
is what makes cancellation honest: a caller that gives up (its MCP call was cancelled) only stops
waiting; the run goes on for the callers still waiting, and when the last one leaves nobody wants
the answer any more, so the run is cancelled (its cargo process killed by whoever owns it).

Nothing is cached: the key is forgotten as soon as the run finishes (caching is the diagnostics
cache's job, which knows when an answer is still valid).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.abc
import anyio.lowlevel

from .._exceptions import FlightAborted

T = TypeVar("T")


class _Flight(Generic[T]):
    """One shared execution: its waiters, its cancel scope and, once done, its outcome."""

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.callers = 0
        self.started_at = time.monotonic()
        # Created before the task enters it, so the last caller can cancel a run that has not
        # started yet (a scope cancelled before it is entered cancels at its first checkpoint).
        self.scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.traceback: TracebackType | None = None


class SingleFlight(Generic[T]):
    """`await sf.run(key, fn)`: equal keys in flight at the same time share one call of `fn`.

    Use as an async context manager; leaving it cancels the runs still going (their callers get
    `FlightAborted`).
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight[T]] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> SingleFlight[T]:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        tg, self._tg = self._tg, None
        tg.cancel_scope.cancel()
        return await tg.__aexit__(exc_type, exc, tb)

    async def run(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """Return `fn()`'s result (or raise its exception), sharing a run already in flight for `key`.

        `fn` of a joining caller is ignored: an equal key promises an equal computation.
        """
        if self._tg is None:
            raise RuntimeError("SingleFlight used outside `async with`")
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = _Flight(key)
            self._tg.start_soon(self._execute, flight, fn, name=f"singleflight {key!r}")
        flight.callers += 1
        try:
            await flight.done.wait()
        finally:
            flight.callers -= 1
            if flight.callers == 0 and not flight.done.is_set():
                # Every caller gave up: nobody wants the answer. Forget the key at once so a new
                # caller starts a fresh run instead of joining one that is being torn down.
                flight.scope.cancel()
                self._forget(flight)
        if flight.error is not None:
            raise flight.error.with_traceback(flight.traceback)
        return cast(T, flight.result)  # set whenever the run finished without an error

    async def _execute(self, flight: _Flight[T], fn: Callable[[], Awaitable[T]]) -> None:
        try:
            with flight.scope:
                await anyio.lowlevel.checkpoint()  # a run every caller left before it began does not begin
                try:
                    flight.result = await fn()
                except Exception as exc:  # handed to every caller; must not crash the task group
                    flight.error = exc
                    flight.traceback = exc.__traceback__
                return
            # The scope swallowed a cancellation: either all callers left (nobody reads this) or
            # the owner is shutting down with callers still waiting.
            flight.error = FlightAborted(f"shared run for {flight.key!r} was cancelled")
        except BaseException:
            flight.error = FlightAborted(f"shared run for {flight.key!r} was cancelled by shutdown")
            raise
        finally:
            self._forget(flight)
            flight.done.set()

    def _forget(self, flight: _Flight[T]) -> None:
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]

    def in_flight(self) -> list[dict[str, Any]]:
        """The runs going now: key (repr), how many callers wait on it, and its age in seconds."""
        now = time.monotonic()
        return [
            {"key": repr(f.key), "callers": f.callers, "age_s": round(now - f.started_at, 3)}
            for f in self._flights.values()
        ]
