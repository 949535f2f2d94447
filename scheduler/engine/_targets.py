"""Which target directory a cargo run uses, and who may use it when.

Agent runs use the workspace's own target dir, so the user's incremental artifacts serve the agent
and the other way round (CARGO_SCHEDULER_TARGET_DIR=private moves them all to
target/cargo-scheduler/agent instead: no contention with the user's cargo, at the price of building
everything once more). Two exceptions get a directory of their own:
- extra environment that cargo only fingerprints (a variable a build script watches) would make the
  user's next build and ours rebuild each other's units forever: such calls get a pooled directory
  keyed by that environment (bounded, least recently used evicted);
- a target dir already used by another workspace root (git worktrees sharing CARGO_TARGET_DIR) would
  let one root's fresh units answer for the other's sources: the second root gets its own.

`TargetGate` serialises cargo runs on one directory (cargo would block on its lock anyway) and lets
background work use the directory only while no foreground call wants it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import xxhash

from ._keys import CARGO_ENV_EXACT

# Extra variables that never change what is compiled: runtime knobs of tests and cargo's terminal.
RUNTIME_ONLY_ENV = frozenset(
    {
        "RUST_BACKTRACE",
        "RUST_LIB_BACKTRACE",
        "RUST_LOG",
        "RUST_TEST_THREADS",
        "RUST_MIN_STACK",
        "RUST_TEST_NOCAPTURE",
        "NO_COLOR",
        "TERM",
    }
)
# Variables cargo puts in the unit hash: variants coexist in one directory.
HASHED_ENV_PREFIXES = ("CARGO_PROFILE_", "CARGO_TERM_")
POOL_SIZE = 3
MARKER = ".cargo-scheduler-root"


def needs_private_dir(extra_env: Mapping[str, str]) -> bool:
    return any(
        k not in RUNTIME_ONLY_ENV and k not in CARGO_ENV_EXACT and not k.startswith(HASHED_ENV_PREFIXES)
        for k in extra_env
    )


PRIVATE_DIR = ("cargo-scheduler", "agent")


def agent_target_base(default: Path, *, private: bool) -> Path:
    """The agent's own directory under the workspace's target dir, or that dir itself (shared)."""
    return default.joinpath(*PRIVATE_DIR) if private else default


def choose_target_dir(
    workspace_root: Path, default: Path, extra_env: Mapping[str, str], *, private: bool = False
) -> Path:
    """The directory for a run. Blocking (touches the disk): call it from a worker thread."""
    base = agent_target_base(_owned_base(workspace_root, default), private=private)
    if not needs_private_dir(extra_env):
        return base
    fingerprint_only = sorted((k, v) for k, v in extra_env.items() if k not in RUNTIME_ONLY_ENV)
    name = "env-" + xxhash.xxh3_64_hexdigest(repr(fingerprint_only).encode())[:12]
    pool = base / "cargo-scheduler"
    pool.mkdir(parents=True, exist_ok=True)
    order_file = pool / "pool.json"
    try:
        order: list[str] = json.loads(order_file.read_text())
    except (OSError, ValueError):
        order = []
    order = [n for n in order if n != name] + [name]
    while len(order) > POOL_SIZE:
        shutil.rmtree(pool / order.pop(0), ignore_errors=True)
    order_file.write_text(json.dumps(order))
    return pool / name


def _owned_base(workspace_root: Path, default: Path) -> Path:
    marker = default / MARKER
    try:
        owner = marker.read_text().strip()
    except OSError:
        owner = ""
    if owner and owner != str(workspace_root) and (Path(owner) / "Cargo.toml").exists():
        return default / "cargo-scheduler" / ("root-" + xxhash.xxh3_64_hexdigest(str(workspace_root).encode())[:12])
    if owner != str(workspace_root):
        try:
            default.mkdir(parents=True, exist_ok=True)
            marker.write_text(str(workspace_root) + "\n")
        except OSError:
            pass
    return default


class Lease:
    """The directory, held by one foreground call. `hand_off` passes it to a run that outlives the
    call (an early answer's run going on): the call's exit then leaves it held, the run's `finish`
    releases it, and until then any new foreground call pre-empts that run like background work."""

    def __init__(self, gate: TargetGate) -> None:
        self._gate = gate
        self.handed = False
        self._released = False

    def hand_off(self, scope: anyio.CancelScope, label: str) -> None:
        self.handed = True
        self._gate._background_scope = scope
        self._gate.holder = label

    def finish(self) -> None:
        """The handed-off run ended (or never was handed off: then the call's exit releases)."""
        if self.handed:
            self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._gate._background_scope = None
            self._gate.holder = None
            self._gate._slot.release()


class TargetGate:
    """One cargo at a time per target dir; foreground first, background only when nobody waits.

    A foreground request cancels a running background job (cargo's own freshness makes the restart
    cheap: finished units are not rebuilt) and the job runs again once the directory is free. The
    slot is a semaphore, not a lock: a foreground call may hand it to a task that outlives it.
    """

    def __init__(self) -> None:
        self._slot = anyio.Semaphore(1)
        self._foreground = 0
        self._drained = anyio.Event()
        self._background_scope: anyio.CancelScope | None = None
        self.holder: str | None = None

    @property
    def busy(self) -> bool:
        return self._slot.value == 0

    @asynccontextmanager
    async def foreground(self, label: str = "foreground") -> AsyncIterator[Lease]:
        self._foreground += 1
        if self._background_scope is not None:
            self._background_scope.cancel()
        try:
            await self._slot.acquire()
            lease = Lease(self)
            self.holder = label
            try:
                yield lease
            finally:
                if not lease.handed:
                    lease._release()
        finally:
            self._foreground -= 1
            if self._foreground == 0:
                self._drained.set()
                self._drained = anyio.Event()

    async def background(self, job: Callable[[], Awaitable[bool]], label: str = "background") -> None:
        """Run `job` whenever no foreground call wants the directory, until it returns True.

        A pre-empted run is simply run again: it is the caller's job to make that cheap."""
        while True:
            while self._foreground:
                await self._drained.wait()
            async with self._slot:
                if self._foreground:
                    continue
                self.holder = label
                with anyio.CancelScope() as scope:
                    self._background_scope = scope
                    try:
                        done = await job()
                    finally:
                        self._background_scope = None
                        self.holder = None
            if not scope.cancelled_caught and done:
                return
