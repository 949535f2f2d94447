"""The remote store: one interface over every transport, with a latency budget, a breaker and a status.

`get_many(keys, budget_s)` never takes longer than the budget and never raises: a slow, down,
misconfigured or full store gives a `Fetched` whose outcome is `skipped` and whose reason says why,
and the question goes on with the local cache and cargo. After a failure the store is not asked
again for a cooldown (5 s, doubling to a minute while it keeps failing): a down Redis costs the
budget once, not at every question. `put_many` is meant for the background (`TieredCache` calls it
after a run, never on an answer's path), is bounded by its own timeout, and returns its problem
instead of raising. Values are checked on the way in (`_codec`): a bad checksum or signature is a
miss, counted in `rejected` with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from . import _codec
from ._transport import Rejected, RemoteError, Transport

Outcome = Literal["hit", "miss", "skipped"]
_WRITE_CHUNK = 256


@dataclass
class Fetched:
    """One read of the remote store."""

    values: dict[str, dict[str, Any]]
    outcome: Outcome
    reason: str | None = None
    rejected: dict[str, str] = field(default_factory=dict)
    """Keys whose entry was refused, and why (bad checksum, unsigned, bad signature...)."""
    ms: float = 0.0


class RemoteStore:
    def __init__(
        self,
        transport: Transport,
        *,
        readonly: bool = False,
        hmac_key: bytes | None = None,
        ttl_s: int = 7 * 24 * 3600,
        cooldown_s: float = 5.0,
        max_cooldown_s: float = 60.0,
        write_timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.name = transport.name
        self.readonly = readonly
        self.signed = hmac_key is not None
        self._hmac_key = hmac_key
        self.ttl_s = ttl_s
        self._base_cooldown = self._cooldown = cooldown_s
        self._max_cooldown = max_cooldown_s
        self._write_timeout = write_timeout_s
        self._clock = clock
        self._down_until = 0.0
        self._failing_since: float | None = None
        self.problem: str | None = None
        """The last failure, read or write (None after a success)."""
        self.counts = {"hits": 0, "misses": 0, "rejected": 0, "skipped": 0, "written": 0, "write_failures": 0}

    async def get_many(self, keys: list[str], budget_s: float) -> Fetched:
        started = self._clock()
        if not keys:
            return Fetched({}, "miss")
        if started < self._down_until:
            self.counts["skipped"] += 1
            since = started - (self._failing_since or started)
            reason = f"{self.problem} (failing for {since:.1f} s; asked again in {self._down_until - started:.1f} s)"
            return Fetched({}, "skipped", reason)
        if budget_s <= 0:
            self.counts["skipped"] += 1
            return Fetched({}, "skipped", "this question's remote budget is spent")
        rkeys = {_codec.remote_key(k): k for k in keys}
        raw: dict[str, bytes | Rejected] | None = None
        failure: str | None = None
        with anyio.move_on_after(budget_s):
            try:
                raw = await self.transport.get(list(rkeys))
            except Exception as exc:  # every client error (refused, auth, TLS, protocol) is a skip
                failure = _describe(exc)
        ms = (self._clock() - started) * 1000
        if raw is None:
            failure = failure or f"no answer within the {budget_s * 1000:.0f} ms budget"
            self._trip(failure)
            self.counts["skipped"] += 1
            return Fetched({}, "skipped", failure, ms=ms)
        self._recovered()
        values: dict[str, dict[str, Any]] = {}
        rejected: dict[str, str] = {}
        for rkey, found in raw.items():
            key = rkeys.get(rkey)
            if key is None:
                continue
            decoded = found.reason if isinstance(found, Rejected) else _codec.decode(rkey, found, self._hmac_key)
            if isinstance(decoded, str):
                rejected[key] = decoded
            else:
                values[key] = decoded
        self.counts["hits"] += len(values)
        self.counts["misses"] += len(keys) - len(values)
        self.counts["rejected"] += len(rejected)
        refused = f"{len(rejected)} entries refused: {', '.join(sorted(set(rejected.values())))}" if rejected else None
        return Fetched(values, "hit" if values else "miss", refused, rejected, ms)

    async def put_many(self, entries: Mapping[str, dict[str, Any]]) -> str | None:
        """Write entries (signed when a key is set); the problem, if any. Never raises."""
        if self.readonly:
            return "read-only: nothing is written"
        items = {}
        for key, value in entries.items():
            rkey = _codec.remote_key(key)
            items[rkey] = _codec.encode(rkey, value, self._hmac_key)
        pairs = list(items.items())
        problem: str | None = f"writing took longer than {self._write_timeout:.0f} s"
        with anyio.move_on_after(self._write_timeout):
            try:
                for start in range(0, len(pairs), _WRITE_CHUNK):
                    await self.transport.put(dict(pairs[start : start + _WRITE_CHUNK]), self.ttl_s)
                problem = None
            except Exception as exc:  # as for reads: a failed write is reported, never raised
                problem = _describe(exc)
        if problem is None:
            self.counts["written"] += len(items)
            self._recovered()
        else:
            self.counts["write_failures"] += 1
            self.problem = problem
        return problem

    async def warm(self) -> None:
        """Connect in the background; a store that cannot be reached trips the breaker at once."""
        try:
            with anyio.fail_after(self._write_timeout):
                await self.transport.ping()
        except Exception as exc:  # TimeoutError included
            self._trip(_describe(exc) if not isinstance(exc, TimeoutError) else "no answer to a ping")

    def _trip(self, reason: str) -> None:
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        self._down_until = now + self._cooldown
        self._cooldown = min(self._cooldown * 2, self._max_cooldown)
        self.problem = reason

    def _recovered(self) -> None:
        self._down_until = 0.0
        self._failing_since = None
        self._cooldown = self._base_cooldown
        self.problem = None

    def stats(self) -> dict[str, Any]:
        return {
            "store": self.name,
            "readonly": self.readonly,
            "signed": self.signed,
            **self.counts,
            **({"problem": self.problem} if self.problem else {}),
        }

    async def aclose(self) -> None:
        try:
            await self.transport.aclose()
        except Exception as exc:  # closing a broken connection must not fail a shutdown
            self.problem = _describe(exc)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # a transport's task group
        exc = exc.exceptions[0]
    if isinstance(exc, RemoteError):
        return str(exc)
    text = str(exc).strip() or "no detail"
    return f"{type(exc).__name__}: {text}"[:300]
