"""The tiered cache: the local `DiagnosticsCache` in front, a `RemoteStore` behind it.

A drop-in for the local cache (a subclass: every synchronous call the engine makes works unchanged
and stays local, at local speed). What it adds:

- **Misses are remembered per question.** Inside `question()` (a context variable, so concurrent
  questions on one cache do not mix), a shared key that missed locally is noted; `await pull()`
  asks the remote for the noted keys within what is left of the question's budget, and fills the
  local cache with what it finds. `settle(cache, compute)` runs a synchronous computation (the
  engine's keys: a member's manifest names the keys of its dependents' manifests), pulls what it
  missed, and computes again until the remote has nothing new: one round trip per level of the
  dependency graph that the local cache lacks, none when it lacks nothing.
- **Writes go local at once, remote in the background.** `put`/`put_many` write the local cache,
  then queue the shared entries for a writer task started by `running()`; a full queue drops
  entries (counted), never blocks. Thread-safe: the engine stores from a worker thread.
- **What is shared.** Answers, `ml:`/`ma:` manifests and what is derived from an answer key are
  facts about sources, and so is shareable metadata (`mx:`); `unit:` records (the state of one
  target dir), `own:` records (this checkout's last answer), `mxl:` metadata (naming this checkout's
  path) and `tc:` compiler identities (keyed by this machine's rustup state) are not, and stay local.
- **A prefetch hint per tree state.** Settling costs one round trip per dependency level missing
  here. After a question that computed its keys, the shared keys it read or wrote are written
  (background, writable tiers only) under `h:<digest of the format, the question's global key and
  every member's own digest>`: a path-free name for "this command on these sources". A question
  that misses something asks for its hint in its first round trip and for every key the hint lists
  that is missing here in a second, then settles as before (with nothing left to ask, normally).
  A hint only decides what is fetched: every value it brings is checked like any other (checksum,
  signature) and is served only if the keys, computed as always, ask for it; a stale, foreign or
  garbled hint costs wasted fetches, never a wrong answer. It never lists `unit:`/`own:`/`h:` keys.

The answer can tell where each entry came from (`Question.status`): the store, the outcome (`hit`,
`miss`, `skipped` with why, or `local` when nothing had to be asked), counts, time spent.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
import xxhash

from .._cache import DiagnosticsCache
from . import _codec
from ._store import Fetched, RemoteStore

_T = TypeVar("_T")
_LOCAL_ONLY = ("unit:", "own:", "mxl:", "tc:")
_HINT = "h:"
_MAX_ROUNDS = 64
_YIELD_S = 1.0
"""The longest the writer's SQLite work waits for an answer in progress (one running cargo)."""


def is_shared(key: str) -> bool:
    return not key.startswith(_LOCAL_ONLY)


def hint_key(global_key: bytes, own: Mapping[str, str]) -> str:
    """Where the hint for a question lives: the tier's format, the question's global key (toolchain,
    lockfile, configuration, environment, command) and each member's own digest (its walked files,
    by relative path and content). No path: every checkout of the same sources names the same hint."""
    h = xxhash.xxh3_128(_codec.FORMAT.encode() + b"\0" + global_key)
    for name, digest in sorted(own.items()):
        h.update(b"\0" + name.encode() + b"=" + digest.encode())
    return _HINT + h.hexdigest()


def hint_limit(members: int) -> int:
    """How many keys a hint lists, at most (about three entries per member, with room to spare)."""
    return 8 * members + 64


def _listed(value: dict[str, Any] | None) -> list[str] | None:
    """The keys a hint entry lists, or None when it is not a hint (not a list of strings)."""
    keys = value.get("keys") if value is not None else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return None
    return keys


def _hintable(key: str) -> bool:
    return is_shared(key) and not key.startswith(_HINT)


@dataclass
class RemoteStatus:
    """What one question's answer says about the remote tier."""

    store: str
    outcome: str = "local"
    """`local` (nothing had to be asked), `hit`, `miss`, or `skipped` (then `reason` says why)."""
    reason: str | None = None
    asked: int = 0
    found: int = 0
    rejected: int = 0
    ms: float = 0.0
    rounds: int = 0
    """Round trips to the store (one `get_many` each)."""
    hint: dict[str, Any] | None = None
    """What the prefetch hint did: `listed` keys, `fetched` (missing here, asked), or `ignored`."""
    keys: set[str] = field(default_factory=set)
    """The keys whose entries came from the remote in this question."""

    def origin(self, key: str) -> str:
        return "remote" if key in self.keys else "local"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"store": self.store, "outcome": self.outcome}
        if self.reason:
            out["reason"] = self.reason
        if self.asked:
            out.update(
                asked=self.asked, found=self.found, rejected=self.rejected, ms=round(self.ms, 2), rounds=self.rounds
            )
        if self.hint is not None:
            out["hint"] = dict(self.hint)
        return out


class Question:
    """One question's reads of the tier. Its budget is what the tier may add to the question: the
    time spent waiting on the store, summed over its round trips. The question's own local work
    (observing the workspace, hashing sources, computing keys between rounds) is not counted: on a
    fresh checkout of 150 members it alone outlasts a 200 ms budget, which then skipped a healthy
    tier after its first round (measured by bench/_fleet.py)."""

    def __init__(self, store: str, budget_s: float) -> None:
        self.budget_s = budget_s
        self.status = RemoteStatus(store)
        self._wanted: set[str] = set()
        self._asked: set[str] = set()
        self._lock = threading.Lock()

    def want(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._wanted.update(k for k in keys if k not in self._asked)

    def left_s(self) -> float:
        """What is left of the budget: the budget less the time the store's answers took."""
        return self.budget_s - self.status.ms / 1000

    def take(self) -> list[str]:
        with self._lock:
            keys, self._wanted = sorted(self._wanted), set()
            self._asked.update(keys)
            return keys

    def pending(self) -> bool:
        with self._lock:
            return bool(self._wanted)

    def asked(self, key: str) -> bool:
        with self._lock:
            return key in self._asked


class Trace:
    """The shared keys one check read (found) or wrote, from its first key to its last store: what
    its hint lists. `computed` is set when the check computed its keys (not all from the memo): only
    then did it read every manifest, so only then is the trace a whole hint."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.computed = False
        self.closed = False
        self._lock = threading.Lock()

    def add(self, keys: Iterable[str]) -> None:
        with self._lock:
            if not self.closed:  # a background task started by the check inherits it: not its work
                self.keys.update(k for k in keys if _hintable(k))

    def close(self) -> list[str]:
        with self._lock:
            self.closed = True
            return sorted(self.keys)


_QUESTION: ContextVar[Question | None] = ContextVar("cargo_scheduler_remote_question", default=None)
_TRACE: ContextVar[Trace | None] = ContextVar("cargo_scheduler_remote_trace", default=None)


class TieredCache(DiagnosticsCache):
    def __init__(
        self,
        directory: Path | None = None,
        *,
        size_limit: int | None = None,
        remote: RemoteStore,
        budget_s: float = 0.2,
        max_pending: int = 50_000,
        flush_timeout_s: float = 2.0,
    ) -> None:
        super().__init__(directory, size_limit=size_limit)
        self.remote = remote
        self.budget_s = budget_s
        self.remote_fills = 0
        """Bumped at every fill from the remote: keys memoised before it may be missing a manifest."""
        self.dropped_writes = 0
        self._max_pending = max_pending
        self._flush_timeout = flush_timeout_s
        self._pending: dict[str, dict[str, Any]] = {}
        self._fills: dict[str, dict[str, Any]] = {}
        """Entries from the remote, in memory already, waiting for the writer to put them in SQLite."""
        self._pending_lock = threading.Lock()
        self._writing = False
        self._token: Any = None
        self._loop_thread: int | None = None
        self._wake: anyio.Event | None = None
        self._round_done: anyio.Event | None = None
        self._hints: dict[str, tuple[list[str], int]] = {}
        """Hints offered behind an answer (`offer_hint_behind`), for the writer."""
        self._answering = 0
        """Answers being computed (open outer traces): the writer's SQLite work waits for none."""
        self._answered: anyio.Event | None = None
        self._flushing = False

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def question(self) -> Iterator[Question]:
        """One budget and one status for everything read until the block ends; nested: the outer."""
        current = _QUESTION.get()
        if current is not None:
            yield current
            return
        q = Question(self.remote.name, self.budget_s)
        token = _QUESTION.set(q)
        try:
            yield q
        finally:
            _QUESTION.reset(token)

    @contextlib.contextmanager
    def trace(self) -> Iterator[Trace]:
        """Record the shared keys read (found) or written until the block ends; nested: the outer."""
        current = _TRACE.get()
        if current is not None:
            yield current
            return
        t = Trace()
        token = _TRACE.set(t)
        self._answering += 1
        try:
            yield t
        finally:
            _TRACE.reset(token)
            t.close()
            self._answering -= 1
            if not self._answering and self._answered is not None:
                self._answered.set()

    def get(self, key: str) -> dict[str, Any] | None:
        value = super().get(key)
        if value is None:
            self._note([key])
        else:
            self._traced([key])
        return value

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found = super().get_many(keys)
        if len(found) < len(keys):
            self._note(k for k in keys if k not in found)
        self._traced(found)
        return found

    def in_memory(self, keys: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
        found, missing = super().in_memory(keys)
        self._traced(found)
        return found, missing

    def _traced(self, keys: Iterable[str]) -> None:
        t = _TRACE.get()
        if t is not None:
            t.add(keys)

    def _note(self, keys: Iterable[str]) -> None:
        q = _QUESTION.get()
        if q is not None:
            q.want(k for k in keys if is_shared(k))

    async def pull(self) -> int:
        """Ask the remote for the current question's noted misses; how many it had (0 outside a question)."""
        q = _QUESTION.get()
        if q is None:
            return 0
        keys = q.take()
        if not keys:
            return 0
        fetched = await self._fetch(q, keys)
        return len(fetched.values) if fetched is not None else 0

    async def _fetch(self, q: Question, keys: list[str]) -> Fetched | None:
        """One round trip for `keys`, counted in the question; what it found is put in the local
        cache (only there). None when the question already skipped the tier."""
        status = q.status
        if status.outcome == "skipped":  # one skip per question: the rest goes on without the tier
            return None
        fetched = await self.remote.get_many(keys, q.left_s())
        status.rounds += 1
        status.asked += len(keys)
        status.found += len(fetched.values)
        status.rejected += len(fetched.rejected)
        status.ms += fetched.ms
        if fetched.outcome == "skipped" or status.outcome != "hit":
            status.outcome = fetched.outcome
        if fetched.reason:
            status.reason = fetched.reason
        if fetched.values:
            status.keys.update(fetched.values)
            self.put_local_behind(fetched.values)
            self.remote_fills += 1
        return fetched

    def put_local_behind(self, entries: dict[str, dict[str, Any]]) -> None:
        """The memory front now, SQLite from the background writer: entries fetched from the tier
        (writing ~450 of them took ~30 ms of a fresh checkout's first answer) and `own:` records
        (that answer moved 150 and waited 34 ms for their write, queued behind the fills'). A
        fetched entry is fetched again if lost with the process; a record only steers planning
        (which member's sources changed since its last answer), so a lost one plans conservatively."""
        if not entries:
            return
        self.remember_many(entries)
        with self._pending_lock:
            self._fills.update(entries)
        self._notify()

    async def prefetch(self, hint: str, limit: int) -> int:
        """With misses noted: the hint and those misses in one round trip, then every key the hint
        lists that is missing here (at most `limit`) in a second; how many entries came. Nothing
        when nothing was missed (a question the local cache answers asks nothing). The hint names
        what to fetch, nothing more: what comes is checked as any read (`RemoteStore.get_many`) and
        served only where the keys, computed as always, ask for it."""
        q = _QUESTION.get()
        if q is None or not q.pending() or q.asked(hint):
            return 0
        value = await anyio.to_thread.run_sync(DiagnosticsCache.get, self, hint)  # not a miss to note
        keys = q.take()
        filled = 0
        if value is None:
            fetched = await self._fetch(q, [*keys, hint])
            if fetched is None:
                return 0
            value = fetched.values.pop(hint, None)
            filled += len(fetched.values)
            keys = []
        listed = _listed(value)
        if listed is None:
            q.status.hint = {"found": value is not None}
            if value is not None:
                q.status.hint["ignored"] = "not a list of keys"
            if keys:  # the local hint was no hint: the noted misses still go
                fetched = await self._fetch(q, keys)
                filled += len(fetched.values) if fetched is not None else 0
            return filled
        candidates = [k for k in dict.fromkeys(listed) if _hintable(k) and not q.asked(k)][:limit]
        missing = await anyio.to_thread.run_sync(self._missing_here, candidates)
        q.status.hint = {"found": True, "listed": len(listed), "fetched": len(missing)}
        ask = sorted(set(keys) | set(missing))
        if ask:
            q.want(ask)
            fetched = await self._fetch(q, q.take())
            filled += len(fetched.values) if fetched is not None else 0
        return filled

    def offer_hint_behind(self, key: str, keys: list[str], limit: int) -> None:
        """`offer_hint` from the background writer: comparing with the stored hint reads SQLite,
        which an answer need not wait for (a later offer for the same key replaces this one)."""
        if self.remote.readonly:
            return
        with self._pending_lock:
            self._hints[key] = (keys, limit)
        self._notify()

    def _missing_here(self, keys: list[str]) -> list[str]:
        here = self.stored(keys)
        return [k for k in keys if k not in here]

    # -- writing -----------------------------------------------------------------------------
    def put(self, key: str, value: dict[str, Any]) -> None:
        super().put(key, value)
        self._traced([key])
        self._enqueue({key: value})

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
        super().put_many(entries)
        self._traced(entries)
        self._enqueue(entries)

    def offer_hint(self, key: str, keys: list[str], limit: int) -> bool:
        """Store `keys` (sorted, at most `limit`) as the hint under `key`, here and (queued) in the
        tier, unless the tier is read-only or the hint read for it (or last written) says the same.
        True when written. Call from a worker thread (it may read SQLite)."""
        listed = sorted({k for k in keys if _hintable(k)})[:limit]
        if self.remote.readonly or not listed:
            return False
        value = {"keys": listed}
        if DiagnosticsCache.get(self, key) == value:
            return False
        DiagnosticsCache.put(self, key, value)
        self._enqueue({key: value})
        return True

    def _enqueue(self, entries: dict[str, dict[str, Any]]) -> None:
        if self.remote.readonly:
            return
        with self._pending_lock:
            for key, value in entries.items():
                if not is_shared(key):
                    continue
                if len(self._pending) >= self._max_pending and key not in self._pending:
                    self.dropped_writes += 1
                    continue
                self._pending[key] = value
        self._notify()

    def _notify(self) -> None:
        if self._wake is None:
            return  # not running: written once `running()` starts
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop is gone: nothing will write them
            anyio.from_thread.run_sync(self._wake.set, token=self._token)

    async def _writer(self) -> None:
        while True:
            assert self._wake is not None and self._round_done is not None
            await self._wake.wait()
            self._wake = anyio.Event()
            self._writing = True
            try:
                while True:
                    await self._between_answers()
                    with self._pending_lock:
                        batch, self._pending = self._pending, {}
                        fills, self._fills = self._fills, {}
                        hints, self._hints = self._hints, {}
                    if not batch and not fills and not hints:
                        break
                    if fills:
                        await anyio.to_thread.run_sync(DiagnosticsCache.put_many, self, fills)  # local only
                    for key, (keys, limit) in hints.items():  # queues its entry for the next round
                        await anyio.to_thread.run_sync(self.offer_hint, key, keys, limit)
                    if batch:
                        await self.remote.put_many(batch)  # bounded, never raises: its problem is in stats
            finally:
                self._writing = False
                self._round_done.set()
                self._round_done = anyio.Event()

    async def _between_answers(self) -> None:
        """Wait (at most `_YIELD_S`) until no answer is being computed: the writer's work is
        Python under the GIL (encoding, diskcache's bookkeeping), and a fresh checkout's first
        answer waited 14 ms for its own records' read and 35 ms for the hint's while the writer put
        the ~450 entries it had just fetched. A flush does not wait (`_flushing`)."""
        if self._flushing:
            return
        with anyio.move_on_after(_YIELD_S):
            while self._answering and not self._flushing:
                self._answered = anyio.Event()
                await self._answered.wait()
        self._answered = None

    async def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued write was tried (True), or `timeout_s` passed (False)."""
        self._flushing = True
        if self._answered is not None:
            self._answered.set()  # a writer waiting for the answer in progress goes now
        try:
            with anyio.move_on_after(timeout_s):
                while self._pending or self._fills or self._hints or self._writing:
                    if self._round_done is None or self._wake is None:
                        return False
                    done = self._round_done
                    self._wake.set()
                    await done.wait()
                return True
            return False
        finally:
            self._flushing = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TieredCache]:
        """The background writer and a first connection; on exit, queued writes get a bounded flush."""
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._wake, self._round_done = anyio.Event(), anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer)
                tg.start_soon(self.remote.warm)
                if self._pending or self._fills:
                    self._wake.set()
                try:
                    yield self
                finally:
                    with anyio.CancelScope(shield=True):
                        await self.flush(self._flush_timeout)
                    tg.cancel_scope.cancel()
        finally:
            self._wake = self._round_done = None
            with anyio.CancelScope(shield=True):
                await self.remote.aclose()

    def stats(self) -> dict[str, Any]:
        with self._pending_lock:
            queued = len(self._pending)
        return {**super().stats(), "remote": {**self.remote.stats(), "queued": queued, "dropped": self.dropped_writes}}


def question(cache: DiagnosticsCache) -> contextlib.AbstractContextManager[Question | None]:
    """`cache.question()` for a tiered cache, else a block with no question (None)."""
    return cache.question() if isinstance(cache, TieredCache) else contextlib.nullcontext()


def current_trace() -> Trace | None:
    return _TRACE.get()


def trace(cache: DiagnosticsCache) -> contextlib.AbstractContextManager[Trace | None]:
    """`cache.trace()` for a tiered cache, else a block with no trace (None)."""
    return cache.trace() if isinstance(cache, TieredCache) else contextlib.nullcontext()


async def settle_in_thread(
    cache: DiagnosticsCache, compute: Callable[[], _T], hint: tuple[str, int] | None = None
) -> _T:
    """`settle`, with each `compute()` in a worker thread: what it reads of the local cache's disk
    (SQLite) never blocks the event loop. `hint` (its key, the most keys to take from it): after the
    first computation, if it missed anything, prefetch what the hint lists (`TieredCache.prefetch`)."""
    if not isinstance(cache, TieredCache):
        return await anyio.to_thread.run_sync(compute)
    with cache.question():
        value = await anyio.to_thread.run_sync(compute)
        if hint is not None and await cache.prefetch(*hint):
            value = await anyio.to_thread.run_sync(compute)
        for _ in range(_MAX_ROUNDS):
            if not await cache.pull():
                break
            value = await anyio.to_thread.run_sync(compute)
        return value


async def settle(cache: DiagnosticsCache, compute: Callable[[], _T]) -> _T:
    """`compute()`, again after each pull that brought something from the remote, until none does.
    A plain `DiagnosticsCache` computes once. Opens a question when none is open."""
    if not isinstance(cache, TieredCache):
        return compute()
    with cache.question():
        value = compute()
        for _ in range(_MAX_ROUNDS):
            if not await cache.pull():
                break
            value = compute()
        return value
