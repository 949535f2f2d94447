"""What the tools share: the engine and analyzer pools, the scheduler, and each session's workspace.

One `ServerState` serves every session of a process. The daemon creates it once and hands it to
`build_server(state=...)`, so parallel agent sessions share one engine (one diagnostics cache, one
set of target-dir gates) and one rust-analyzer per workspace. Without one, the server's lifespan
opens a private state per connection (tests, a plain stdio run).

The parallel pieces (engine, analyzer, scheduler) plug in here and only here: `engine()`,
`analyzer()` and `slot()` are the adapter points. A session's workspace, by contrast, is per MCP
connection: it lives in the SDK's per-connection `state` dict, so one session's
`set_working_directory` can never redirect another session's call.

The environment of a session's questions is per connection too: the stdio front hands the daemon the
environment of the MCP client that spawned it (and its `--allow-env`/`--allow-unsafe-env` policy)
when it opens the session, and the daemon serves that connection inside `CLIENT.set(...)`. The SDK
runs each request in the context of the task that read it, so every tool call of the session, and
nothing else, sees it: engine checks, test runs and plain cargo runs take their environment from
`ServerState.question_env()`. A connection with no client (HTTP, the in-memory `Client(server)`)
uses the server's own environment and flags. The values are secrets as often as not: only names
ever reach a log.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import itertools
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import anyio
from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .. import _compat
from .._analyzer_options import DEFAULT_OPTIONS, AnalyzerOptions
from .._exceptions import AnalyzerNotFound, NoSession, NotAWorkspace, SchedulerError
from .._settings import Scope, Settings
from ..analyzer._pool import AnalyzerPool
from ..engine._engine import CheckRequest, Engine, EnginePool
from ..engine._report import PAGING, Paging
from . import _paths
from ._admission import CallClass, Scheduler
from ._answer import answer, failure, failure_for
from ._hosts import Pages, host_cap
from ._jobs import Job, Jobs, wait_for
from ._ports import AnalyzerClient, AnalyzerSource

log = logging.getLogger("cargo_scheduler.server")
_SESSION_KEY = "cargo_scheduler.workspace"
_SESSION_WORKSPACES_KEY = "cargo_scheduler.workspaces"
_call_ids = itertools.count()
_MAX_META_SESSIONS = 1024


class ClientSession(NamedTuple):
    """What a stdio front said about its client when it opened a daemon session."""

    env: tuple[tuple[str, str], ...]
    """The client's environment: what the session's cargo runs get (minus per-session noise)."""
    allow_unsafe_env: bool = False
    allow_env: tuple[str, ...] = ()
    """The front's `--allow-unsafe-env` and `--allow-env` names: a session gets its own client's
    permissions, never those of whichever front happened to start the daemon."""
    analyzer: AnalyzerOptions = DEFAULT_OPTIONS
    """The front's rust-analyzer flags (`--features`, `--config`, ...): what this session's
    rust-analyzer analyses; sessions with equal options share one."""

    @classmethod
    def from_hello(cls, data: object) -> ClientSession:
        """From the `session` object of a hello line; ValueError names what is malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("session must be an object")
        env = data.get("env")
        if not isinstance(env, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and "\0" not in k + v for k, v in env.items()
        ):
            raise ValueError("session.env must map variable names to strings")
        unsafe = data.get("allow_unsafe_env", False)
        names = data.get("allow_env", [])
        if not isinstance(unsafe, bool):
            raise ValueError("session.allow_unsafe_env must be a boolean")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("session.allow_env must be a list of names")
        try:
            allowed = _paths.check_allow_names(names, "--allow-env")
        except SchedulerError as exc:
            raise ValueError(str(exc)) from None
        return cls(tuple(sorted(env.items())), unsafe, allowed, AnalyzerOptions.from_wire(data.get("analyzer")))


CLIENT: contextvars.ContextVar[ClientSession | None] = contextvars.ContextVar("cargo_scheduler.client", default=None)
"""The client of the connection being served; set by the daemon around each socket session."""

_BACKGROUND_STOP_S = 30.0
"""Bound on waiting for cancelled background cargo runs to exit (terminate, a grace, then kill)."""


Call = CallClass
"""How a call touches the workspace, judged from its actual arguments (not from the tool name)."""


class ServerState:
    """Pools shared by all sessions. Use as an async context manager (it owns background tasks)."""

    def __init__(
        self,
        workspace: Path | None = None,
        *,
        cache_dir: Path | None = None,
        analyzer_binary: str | None = None,
        allow_unsafe_env: bool = False,
        allow_env: tuple[str, ...] = (),
        settings: Settings | None = None,
    ) -> None:
        self.workspace = workspace
        self.allow_unsafe_env = allow_unsafe_env
        self.allow_env = _paths.check_allow_names(allow_env, "--allow-env")
        self.settings = settings if settings is not None else Settings.from_env()
        self._cache_dir = cache_dir
        self._analyzer_binary = analyzer_binary
        self._stack = AsyncExitStack()
        self.engines: EnginePool | None = None
        self.analyzers: AnalyzerSource | None = None
        self.scheduler: Scheduler | None = None
        self.jobs: Jobs | None = None
        self.pages = Pages()
        self.calls_in_flight: dict[int, str] = {}
        self._meta_sessions: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def meta_session(self, key: str) -> dict[str, Any]:
        """Scratch state for a session named by request `_meta` (bounded: least recent dropped)."""
        store = self._meta_sessions.pop(key, None) or {}
        self._meta_sessions[key] = store
        while len(self._meta_sessions) > _MAX_META_SESSIONS:
            self._meta_sessions.popitem(last=False)
        return store

    async def __aenter__(self) -> ServerState:
        s = self.settings
        self.engines = await self._stack.enter_async_context(
            EnginePool(self._cache_dir, cache_mb=s.cache_mb, private_target=s.target_dir == "private")
        )
        self.analyzers = await self._stack.enter_async_context(
            AnalyzerPool(
                self._analyzer_binary,
                wait=s.ra_wait_s,
                check_on_save=s.ra_check_on_save,
                separate_target_dir=s.ra_target_dir == "separate",
            )
        )
        self.scheduler = Scheduler()
        self.jobs = await self._stack.enter_async_context(Jobs())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(None, None, None)

    # -- the session's environment ------------------------------------------------------------
    @staticmethod
    def question_env() -> tuple[tuple[str, str], ...] | None:
        """The environment of this session's questions; None: the server's own (no client said)."""
        client = CLIENT.get()
        return None if client is None else client.env

    @staticmethod
    def analysed_features(request: CheckRequest) -> CheckRequest:
        """`request` (the cargo side of a rust-analyzer tool) with the session's analysis features
        (`serve --features ...`, as rust-analyzer-mcp takes them: they choose what is analysed *and*
        checked), unless the request names features of its own."""
        client = CLIENT.get()
        options = client.analyzer if client is not None else None
        if options is None or request.features or request.all_features or request.no_default_features:
            return request
        if not (options.features or options.all_features or options.no_default_features):
            return request
        return dataclasses.replace(
            request,
            features=options.features,
            all_features=options.all_features,
            no_default_features=options.no_default_features,
        )

    def check_env(self, cargo_env: Mapping[str, str] | None) -> dict[str, str]:
        """A call's `cargo_env`, under its session's policy (else the server's) and the settings'."""
        client = CLIENT.get()
        unsafe, names = (
            (self.allow_unsafe_env, self.allow_env) if client is None else (client.allow_unsafe_env, client.allow_env)
        )
        return _paths.check_env(cargo_env, allow_unsafe=unsafe, allow=(*self.settings.allow_env, *names))

    # -- adapter points --------------------------------------------------------------------------
    def scope(self, scope: Scope | None) -> Scope:
        """A call's scope, or the configured default (CARGO_SCHEDULER_SCOPE) when it names none."""
        return scope if scope is not None else self.settings.scope

    async def warm_up(self, root: Path, analysis: AnalyzerOptions = DEFAULT_OPTIONS, *, analyzer: bool = True) -> None:
        """Start what a first call would otherwise wait for, as CARGO_SCHEDULER_PREWARM says:
        `index` starts rust-analyzer's load (it runs in the background) and the engine's metadata and
        stat cache; `check` also fills the cache with a background check of every member (it yields
        to any call); `none` starts nothing. Failures are left for the first call to report. The
        rust-analyzer started is the one analysing `analysis` (the starting session's options); none
        when not `analyzer` (a daemon the shim started: a shell's cargo never asks rust-analyzer, whose
        load would take a core from the cargo runs it is there to speed up)."""
        if self.settings.prewarm == "none":
            return
        with contextlib.suppress(Exception):
            if self.analyzers is not None and analyzer:
                await self.analyzers.get(root, analysis)
        with contextlib.suppress(Exception):
            engine = await self.engine(root)
            await engine.observe()
            if self.settings.prewarm == "check":
                await engine.prefill()

    async def engine(self, root: Path) -> Engine:
        if self.engines is None:
            raise RuntimeError("ServerState used outside `async with`")
        return await self.engines.get(root)

    async def analyzer(self, root: Path) -> AnalyzerClient:
        """The workspace's rust-analyzer client (returns at once; it loads in the background)."""
        if self.analyzers is None:
            raise AnalyzerNotFound("rust-analyzer support (scheduler.analyzer._pool) is not available in this build")
        client = CLIENT.get()
        return await self.analyzers.get(root, client.analyzer if client is not None else DEFAULT_OPTIONS)

    @asynccontextmanager
    async def slot(self, root: Path, call: Call, *, label: str) -> AsyncIterator[None]:
        """Admission for one tool call: the one place the scheduler wraps every call. A MUTATION,
        once admitted, first drops the background work it would make stale (`before_mutation`)."""
        if self.scheduler is None:
            raise RuntimeError("ServerState used outside `async with`")
        async with self.scheduler.for_workspace(root).slot(call, label=label):
            if call is Call.MUTATION:
                await self.before_mutation(root)
            yield

    async def before_mutation(self, root: Path) -> None:
        """Background checks are about to be stale: drop them rather than let them hold the target dir,
        and wait until their cargo is gone, so no build reads the sources while the mutation writes them."""
        engine = await self.engine(root)
        engine.cancel_background()
        await engine.wait_background(timeout_s=_BACKGROUND_STOP_S)

    def recent_events(self, root: Path, count: int) -> list[dict[str, Any]]:
        """The scheduler's last `count` admission records for `root`, times relative to the first."""
        if self.scheduler is None:
            return []
        events = self.scheduler.for_workspace(root).events()[-count:]
        origin = events[0].at if events else 0.0
        return [
            {
                "seq": e.seq,
                "label": e.label,
                "class": e.cls.value,
                "kind": str(e.kind),
                "at_ms": round((e.at - origin) * 1000, 2),
            }
            for e in events
        ]

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"calls_in_flight": sorted(self.calls_in_flight.values())}
        if self.jobs is not None:
            out["jobs"] = self.jobs.listing()
        if self.engines is not None:
            out["engines"] = [e.status() for e in self.engines.engines()]
            cache = self.engines.cache
            if cache is not None:  # no disk queries here: status never waits on SQLite
                out["cache"] = {
                    "available": cache.available,
                    "persistent": cache.persistent,
                    "size_limit": cache.size_limit,
                    "hits": cache.hits,
                    "misses": cache.misses,
                }
        if self.scheduler is not None:
            # Background checks are the engine's, not admitted calls: each workspace's entry shows
            # the same account its engine's does, so no section says "idle" while one runs.
            background = {e["root"]: e["background"] for e in out.get("engines", [])}
            out["scheduler"] = {
                "workspaces": [
                    {**w, "background": background.get(w["root"], [])} for w in self.scheduler.status()["workspaces"]
                ]
            }
        if self.analyzers is not None:
            out["analyzers"] = self.analyzers.status()
        out["settings"] = {"non_default": self.settings.changed(), "docs": "docs/tuning.md"}
        return out


Ctx = Context[ServerState, object]
"""The MCP context a tool function receives: its lifespan context is the ServerState."""


class Toolbox:
    """What every tool function uses: workspace resolution, admission, and turning results and
    exceptions into answers. One per server; the state comes from the request's lifespan context."""

    def __init__(self, default_workspace: Path | None) -> None:
        self.default_workspace = default_workspace

    @staticmethod
    def state(ctx: Ctx) -> ServerState:
        state = ctx.request_context.lifespan_context
        if not isinstance(state, ServerState):
            raise RuntimeError("the server lifespan did not provide a ServerState")
        return state

    def session_store(self, ctx: Ctx) -> MutableMapping[str, Any] | None:
        """This MCP session's scratch state, or None when the request belongs to no session.

        A handshake-era connection (Codex, Claude Code: protocol <= 2025-11-25) is one session: its
        SDK `Connection.state` persists across requests (the `ServerSession` object does not; the
        SDK builds one per request). A 2026-era request is its own connection; there the client's
        `_meta.sessionId` (or `threadId`) names the session, if it sends one."""
        request = ctx.request_context
        store = _compat.connection_state(request.session)
        if store is not None and request.session.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return store
        meta: Mapping[str, object] = request.meta if isinstance(request.meta, Mapping) else {}
        key = next((str(meta[k]) for k in ("sessionId", "threadId", "session_id") if meta.get(k)), None)
        if key is None:
            return None
        return self.state(ctx).meta_session(key)

    def session_root(self, ctx: Ctx) -> Path | None:
        store = self.session_store(ctx)
        root = store.get(_SESSION_KEY) if store is not None else None
        return root if isinstance(root, Path) else None

    def root(self, ctx: Ctx, workspace: str | None) -> Path:
        """The call's workspace: its `workspace` argument, else the session's, else the server's."""
        session_root = self.session_root(ctx)
        if workspace:
            return _paths.resolve_workspace(workspace, base=session_root or self.default_workspace)
        if session_root is not None:
            return session_root
        default = self.default_workspace or self.state(ctx).workspace
        if default is None or not (default / "Cargo.toml").is_file():
            raise NotAWorkspace(
                f"no workspace is set for this session and the server's directory {str(default or os.getcwd())!r} "
                "has no Cargo.toml"
            )
        return default.resolve()

    def set_session_root(self, ctx: Ctx, root: Path) -> None:
        store = self.session_store(ctx)
        if store is None:
            raise NoSession(
                "this request belongs to no MCP session (a 2026-era request without _meta.sessionId), so a "
                "working directory cannot be remembered; pass workspace= on each call instead"
            )
        store[_SESSION_KEY] = root
        seen = store.setdefault(_SESSION_WORKSPACES_KEY, [])
        if root not in seen:
            seen.append(root)

    def session_workspaces(self, ctx: Ctx, root: Path) -> list[Path]:
        """Every workspace this session has worked in, the call's `root` first: the server's own
        directory (where a session starts) and each one it set since. A file an earlier answer
        named stays readable after the session switches workspace, as with rust-analyzer-mcp."""
        store = self.session_store(ctx)
        seen = store.get(_SESSION_WORKSPACES_KEY, []) if store is not None else []
        default = self.default_workspace or self.state(ctx).workspace
        start = [default.resolve()] if default is not None and (default / "Cargo.toml").is_file() else []
        return list(dict.fromkeys([root, *start, *seen]))

    async def run(
        self,
        ctx: Ctx,
        tool: str,
        *,
        workspace: str | None,
        call: Call | Callable[[Path], Call],
        body: Callable[[ServerState, Path], Awaitable[dict[str, Any] | CallToolResult]],
        long: bool = False,
    ) -> CallToolResult:
        """Resolve the workspace, take a slot of the call's class, run `body`, answer.

        Our own exceptions become `isError` answers that say what to change; cancellation
        propagates (the body's cargo runs kill their process groups on the way out). A `long` call
        (tests, builds, checks) still running after `job_after_s` answers with a job (`_jobs`).
        """
        try:
            state = self.state(ctx)
            root = self.root(ctx, workspace)
            klass = call(root) if callable(call) else call
        except SchedulerError as exc:
            log.info("%s refused: %s", tool, exc)
            return failure_for(exc, tool)

        async def attempt() -> CallToolResult:
            with self.paging(ctx, state):
                try:
                    token = next(_call_ids)
                    state.calls_in_flight[token] = f"{tool} ({klass.value}) {root.name}"
                    try:
                        async with state.slot(root, klass, label=tool):
                            data = await body(state, root)
                    finally:
                        state.calls_in_flight.pop(token, None)
                    # A finished result: an answer in another shape (`_peer_shapes`).
                    return data if isinstance(data, CallToolResult) else answer(data)
                except SchedulerError as exc:
                    log.info("%s refused: %s", tool, exc)
                    return failure_for(exc, tool)
                except Exception as exc:
                    log.exception("%s crashed", tool)
                    return failure_for(exc, tool)

        after = state.settings.job_after_s
        if not long or after <= 0 or state.jobs is None:
            return await attempt()
        return await self.as_job(ctx, state, tool, attempt, after)

    @staticmethod
    @contextlib.contextmanager
    def paging(ctx: Ctx, state: ServerState) -> Iterator[None]:
        """Cut lists for this call's host, keeping what is cut for `scheduler_more` (`_hosts`)."""
        name = None
        with contextlib.suppress(Exception):  # no session info (an in-memory or odd client): no cap
            params = ctx.request_context.session.client_params
            name = params.client_info.name if params is not None else None
        env = state.question_env()
        token = PAGING.set(Paging(host_cap(name, dict(env) if env is not None else os.environ), state.pages.keep))
        try:
            yield
        finally:
            PAGING.reset(token)

    @staticmethod
    async def as_job(
        ctx: Ctx, state: ServerState, tool: str, work: Callable[[], Awaitable[CallToolResult]], after: float
    ) -> CallToolResult:
        """Run `work` as a job; its answer if it ends within `after` seconds, else the job's handle."""
        assert state.jobs is not None
        job = state.jobs.start(tool, work)
        try:
            ended = await wait_for(job, after, lambda j: progress(ctx, j))
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):  # the client gave up on the call: so do we
                await state.jobs.cancel(job)
            raise
        if ended:
            state.jobs.discard(job)
            return job.result if job.result is not None else failure(f"{tool}: the run was cancelled")
        return answer(
            {
                "job": job.view(),
                "pending": f"{tool} is still running as a job",
                "next": f"scheduler_job(job_id='{job.id}', wait_s=...) waits for its answer (or polls with "
                "wait_s=0); scheduler_job_cancel(job_id=...) stops it and every process it started",
            }
        )


async def progress(ctx: Ctx, job: Job) -> None:
    """A progress notification for the waiting call (sent only if the client gave a progressToken)."""
    with contextlib.suppress(Exception):
        await ctx.report_progress(
            round(time.monotonic() - job.started, 1), None, f"{job.tool}: {job.activity.summary()}"
        )
