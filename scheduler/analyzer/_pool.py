"""One rust-analyzer per workspace root, shared by every session, that says when it is not ready.

`AnalyzerPool.get(root)` returns at once: rust-analyzer loads in the background (the cold load of
std plus a workspace takes seconds to tens of seconds), and its progress shows in `status()`.
A query waits for readiness (`experimental/serverStatus` with `quiescent: true`) up to a bound and
then raises `AnalyzerIndexing` with the progress, because rust-analyzer answers a question about a
workspace it has not loaded with `null`/`[]`, which an agent cannot tell from "no references".
A question rust-analyzer answers from the file's parse alone (its outline) waits only for
`initialize` and is asked at once (`parse_only`): a cold load takes seconds, the parse milliseconds.
Formatting is not one: before the load rust-analyzer knows no crate, hence no edition, and answers
`[]` ("already formatted") for a file that is not.

A workspace directory deleted and re-created under a running server (a fresh clone, a test that
regenerates its fixture) is a new directory: rust-analyzer's watches were on the old one, so it
would go on answering from what it loaded, or from nothing. `get` compares the directory's identity
(device and inode) with the one its rust-analyzer started on and, when it changed, starts a fresh
rust-analyzer for it (the old one is shut down in the background).

Before each query the open documents are synced from disk (`_analyzer_docs`). A supervisor task
restarts a rust-analyzer that dies (a crash loop waits for the next query instead); a query that
meets a dead server waits for the new one and retries once. Nothing here writes files: formatting,
code actions and rename return their edits, as rust-analyzer-mcp 0.4.0 does.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from .._analyzer_options import DEFAULT_OPTIONS, AnalyzerOptions
from .._exceptions import AnalyzerError, AnalyzerIndexing, AnalyzerNotFound, LspClosed, LspResponseError
from .._version import __version__
from ..cargo._groups import signal_group
from . import _lsp
from ._documents import OpenDocuments, uri_to_path
from ._queries import Queries
from ._setup import (
    Sysroot,
    client_capabilities,
    find_rust_analyzer,
    find_sysroot_src,
    initialization_options,
    real_binary,
)

DEFAULT_WAIT = 30.0
REQUEST_TIMEOUT = 60.0
"""A loaded rust-analyzer answers in milliseconds; one silent this long is hung and is restarted."""
_INIT_TIMEOUT = 120.0
_CRASH_WINDOW = 60.0
_CRASHES_BEFORE_PAUSE = 3


class _Generation:
    """One rust-analyzer process and what it told us; a restart makes a new one."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.client: _lsp.LspClient | None = None
        self.docs: OpenDocuments | None = None
        self.started = time.monotonic()
        self.status: dict[str, Any] | None = None  # last experimental/serverStatus
        self.progress: dict[str, dict[str, Any]] = {}  # active $/progress by token
        self.published: dict[Path, list[Any]] = {}
        self.ready_after: float | None = None  # seconds from spawn to the first quiescent status
        self.initialized = False  # `initialize` answered: it takes documents and answers from their parse

    @property
    def alive(self) -> bool:
        return self.client is not None and not self.client.closed

    @property
    def quiescent(self) -> bool:
        return bool(self.status and self.status.get("quiescent"))

    def on_notification(self, method: str, params: Any) -> None:
        if method == "experimental/serverStatus" and isinstance(params, dict):
            self.status = params
            if params.get("quiescent") and self.ready_after is None:
                self.ready_after = time.monotonic() - self.started
            self.analyzer._changed()
        elif method == _lsp.PROGRESS and isinstance(params, dict):
            token, value = str(params.get("token")), params.get("value") or {}
            if value.get("kind") == "end":
                self.progress.pop(token, None)
            else:
                entry = self.progress.setdefault(token, {})
                entry.update({k: v for k, v in value.items() if k in ("title", "message", "percentage")})
        elif method == "textDocument/publishDiagnostics" and isinstance(params, dict):
            self.published[uri_to_path(params["uri"])] = list(params.get("diagnostics") or [])
            self.analyzer._changed()

    def progress_summary(self) -> dict[str, Any]:
        active = [dict(v) for v in self.progress.values()]
        text = "; ".join(" ".join(str(p[k]) for k in ("title", "message") if p.get(k)) for p in active)
        percentages = [p["percentage"] for p in active if isinstance(p.get("percentage"), int | float)]
        return {"text": text or None, "percentage": min(percentages) if percentages else None, "active": active}


class Analyzer(Queries):
    """rust-analyzer for one workspace root. Get one from `AnalyzerPool.get(root)`."""

    def __init__(
        self,
        root: Path,
        binary: str | None = None,
        *,
        wait: float = DEFAULT_WAIT,
        max_open_documents: int = 64,
        check_on_save: bool = False,
        separate_target_dir: bool = True,
        options: AnalyzerOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.root = root
        self.options = options
        self.wait = wait
        self.check_on_save = check_on_save
        self.separate_target_dir = separate_target_dir
        self._explicit = binary
        self._max_open = max_open_documents
        self.binary: Path | None = None
        self.found_as: Path | None = None
        """The path `binary` was found as, when that is another file (rustup's proxy)."""
        self.sysroot: Sysroot | None = None
        self._gen: _Generation | None = None
        self._state = "starting"
        self._error: str | None = None
        self._change = anyio.Event()
        self._wanted = anyio.Event()
        self._closing = False
        self._stopped = anyio.Event()
        self._crashes: list[float] = []
        self.restarts = 0
        self.restarted_because: str | None = None
        self.identity: tuple[int, int] | None = None
        """The root directory's (device, inode) when this analyzer started (set by the pool)."""
        self.request_timeout = REQUEST_TIMEOUT

    # -- lifecycle -------------------------------------------------------------------------------
    def _changed(self) -> None:
        self._change.set()
        self._change = anyio.Event()

    def _want_restart(self) -> None:
        self._wanted.set()

    async def _idle_until_wanted(self) -> None:
        await self._wanted.wait()
        self._wanted = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The supervisor: spawn, initialize, wait for the exit, restart. Started by the pool."""
        started = False

        def once() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        try:
            while not self._closing:
                try:
                    self.binary = await find_rust_analyzer(self._explicit)
                except AnalyzerNotFound as exc:
                    self._state, self._error = "missing", str(exc)
                    self._changed()
                    once()
                    await self._idle_until_wanted()
                    continue
                if self.sysroot is None:
                    self.sysroot = await find_sysroot_src(self.root)
                await self._serve_once(self.binary, self.sysroot, once)
                if self._closing:
                    break
                now = time.monotonic()
                self._crashes = [t for t in self._crashes if now - t < _CRASH_WINDOW] + [now]
                self._state = "crashed"
                self._changed()
                if len(self._crashes) >= _CRASHES_BEFORE_PAUSE:  # crash loop: wait for a query to ask
                    await self._idle_until_wanted()
                self.restarts += 1
        finally:
            once()
            self._stopped.set()
            self._changed()

    async def _serve_once(self, binary: Path, sysroot: Sysroot, once: Callable[[], None]) -> None:
        gen = _Generation(self)
        options = self.options.apply(
            initialization_options(
                sysroot, check_on_save=self.check_on_save, separate_target_dir=self.separate_target_dir
            )
        )
        env = dict(os.environ)
        if sysroot.src is not None:
            env["RUST_SRC_PATH"] = str(sysroot.src)

        def on_request(method: str, params: Any) -> Any:
            return _lsp.default_server_request(method, params, options)

        try:
            async with _lsp.LspClient.spawn(
                [str(binary)], cwd=self.root, env=env, on_notification=gen.on_notification, on_request=on_request
            ) as client:
                gen.client = client
                gen.docs = OpenDocuments(client, self._max_open, notify_saves=self.check_on_save)
                self._gen, self._state, self._error = gen, "running", None
                self._changed()
                once()
                with anyio.fail_after(_INIT_TIMEOUT):
                    await client.request(
                        _lsp.INITIALIZE,
                        {
                            "processId": os.getpid(),
                            "clientInfo": {"name": "cargo-scheduler", "version": __version__},
                            "rootUri": self.root.as_uri(),
                            "rootPath": str(self.root),
                            "workspaceFolders": [{"uri": self.root.as_uri(), "name": self.root.name}],
                            "initializationOptions": options,
                            "capabilities": client_capabilities(did_save=self.check_on_save),
                        },
                    )
                    await client.notify(_lsp.INITIALIZED, {})
                gen.initialized = True
                self._changed()  # a file's parse can be asked from here (symbols), before the name below
                real = await real_binary(binary, client.pid, self.root)  # the proxy has exec'd by now
                self.binary, self.found_as = real, (binary if real != binary else None)
                self._changed()
                await client.wait_closed()
                self._error = f"rust-analyzer exited (pid {client.pid})" + client.stderr_hint()
        except TimeoutError:
            self._error = f"rust-analyzer did not answer initialize within {_INIT_TIMEOUT:.0f} s"
        except AnalyzerError as exc:
            self._error = str(exc)
        finally:
            once()

    async def aclose(self) -> None:
        """Shut rust-analyzer down (shutdown/exit, terminate, kill) and stop the supervisor."""
        with anyio.CancelScope(shield=True):
            self._closing = True
            self._want_restart()
            gen = self._gen
            if gen is not None and gen.client is not None:
                await gen.client.aclose()
            with anyio.move_on_after(10):
                await self._stopped.wait()

    # -- status ----------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        gen = self._gen
        if self._state in ("missing", "crashed"):
            return self._state
        if gen is None:
            return "starting"
        if not gen.alive:
            return "crashed"
        if gen.status is None:
            return "starting"
        return "ready" if gen.quiescent else "indexing"

    @property
    def pid(self) -> int | None:
        gen = self._gen
        return gen.client.pid if gen is not None and gen.client is not None and gen.alive else None

    def status(self) -> dict[str, Any]:
        gen = self._gen
        out: dict[str, Any] = {
            "root": str(self.root),
            "state": self.state,
            "pid": self.pid,
            "binary": str(self.binary) if self.binary else None,
            **({"found_as": str(self.found_as)} if self.found_as else {}),
            "sysroot": self.sysroot.as_dict() if self.sysroot else None,
            "restarts": self.restarts,
        }
        if not self.options.is_default:
            out["analysis"] = self.options.describe()
        if self.restarted_because:
            out["restarted_because"] = self.restarted_because
        if gen is not None:
            out["uptime_s"] = round(time.monotonic() - gen.started, 2)
            out["progress"] = gen.progress_summary()
            if gen.ready_after is not None:
                out["ready_after_s"] = round(gen.ready_after, 2)
            if gen.status is not None:
                out["health"] = gen.status.get("health")
                if gen.status.get("message"):
                    out["message"] = gen.status["message"]
            out["open_documents"] = len(gen.docs) if gen.docs is not None else 0
        if self._error and out["state"] in ("missing", "crashed"):
            out["error"] = self._error
        return out

    async def wait_until_ready(self, wait: float | None = None) -> None:
        """Return once rust-analyzer is loaded; AnalyzerIndexing past `wait` (default: the pool's)."""
        await self._ready(wait)

    # -- asking ----------------------------------------------------------------------------------
    async def _ready(self, wait: float | None, *, parse_only: bool = False) -> _Generation:
        """The live generation once it can answer: loaded (quiescent), or for a question answered
        from the file's parse alone (`parse_only`), just initialized."""
        bound = self.wait if wait is None else wait
        with anyio.move_on_after(bound):
            while True:
                if self._closing:
                    raise AnalyzerError("rust-analyzer is shutting down")
                if self._state == "missing":
                    await find_rust_analyzer(self._explicit)  # still missing: raises AnalyzerNotFound
                    self._want_restart()
                gen = self._gen
                if gen is not None and gen.alive and (gen.quiescent or (parse_only and gen.initialized)):
                    return gen
                if self.state == "crashed":
                    self._want_restart()
                await self._change.wait()
        status = self.status()
        progress = {"state": status["state"], **(status.get("progress") or {}), "waited_s": bound}
        progress.pop("active", None)
        raise AnalyzerIndexing(
            f"rust-analyzer is still loading the workspace after {bound:g} s "
            f"({progress.get('text') or status['state']})",
            progress,
        )

    async def _ask(
        self,
        path: Path,
        method: str,
        params: Callable[[str], dict[str, Any]],
        wait: float | None = None,
        *,
        open_document: bool = True,
        parse_only: bool = False,
    ) -> Any:
        for attempt in range(2):
            gen = await self._ready(wait, parse_only=parse_only)
            assert gen.client is not None and gen.docs is not None
            try:
                with anyio.fail_after(self.request_timeout):
                    uri = await gen.docs.sync(path) if open_document else path.as_uri()
                    early = not gen.quiescent
                    result = await self._request(gen.client, method, params(uri))
                if early and not result and not attempt:
                    # Asked from the parse while the workspace loads, rust-analyzer sometimes has
                    # the file empty for a moment (it answers [] for a file full of items, seen
                    # when its cargo metadata arrives): an empty early answer is not believed; it
                    # stands only if the load does not finish within the bound.
                    try:
                        await self._ready(wait)
                    except AnalyzerIndexing:
                        return result
                    continue
                return result
            except TimeoutError as exc:
                # Loaded, yet no answer: hung. Kill it; the supervisor starts a fresh one.
                await self._kill_hung(gen.client)
                if attempt:
                    raise AnalyzerError(
                        f"rust-analyzer did not answer {method} for {path} within "
                        f"{self.request_timeout:.0f} s, twice; it was restarted each time "
                        "(see scheduler_status)"
                    ) from exc
            except LspClosed as exc:
                if attempt:
                    raise AnalyzerError(
                        f"rust-analyzer died twice while answering {method} for {path}; see scheduler_status ({exc})"
                    ) from exc
                self._want_restart()
        raise AssertionError("unreachable")

    @staticmethod
    async def _request(client: _lsp.LspClient, method: str, params: dict[str, Any]) -> Any:
        for _ in range(3):  # rust-analyzer drops answers the next edit made stale
            try:
                return await client.request(method, params)
            except LspResponseError as exc:
                if exc.code not in (_lsp.CONTENT_MODIFIED, _lsp.SERVER_CANCELLED):
                    raise
        return await client.request(method, params)

    async def _kill_hung(self, client: _lsp.LspClient) -> None:
        # Its group now (it is not reaped yet, so the pid is still ours); what is left of its
        # session goes when `LspClient.spawn` ends it.
        signal_group(client.pid, signal.SIGKILL)
        with anyio.move_on_after(10):
            await client.wait_closed()
        self._want_restart()

    async def _snapshot(self, wait: float | None) -> tuple[dict[Path, list[Any]], list[Path]]:
        gen = await self._ready(wait)
        return dict(gen.published), gen.docs.paths() if gen.docs is not None else []

    def _published_for(self, path: Path) -> list[Any]:
        gen = self._gen
        return list(gen.published.get(path, [])) if gen is not None else []


async def _identity(root: Path) -> tuple[int, int] | None:
    """(device, inode) of the directory, or None when it does not exist."""
    try:
        st = await anyio.Path(root).stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


class AnalyzerPool:
    """One Analyzer per workspace root, shared by all sessions; owns their supervisor tasks."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        wait: float = DEFAULT_WAIT,
        max_open_documents: int = 64,
        check_on_save: bool = False,
        separate_target_dir: bool = True,
    ) -> None:
        self._binary = binary
        self._wait = wait
        self._check_on_save = check_on_save
        self._separate_target_dir = separate_target_dir
        self._max_open = max_open_documents
        self._analyzers: dict[tuple[Path, AnalyzerOptions], Analyzer] = {}
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> AnalyzerPool:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as closers:
                for analyzer in list(self._analyzers.values()):
                    closers.start_soon(analyzer.aclose)
        self._tg.cancel_scope.cancel()
        # The body's own exception propagates as it is (not wrapped in an ExceptionGroup).
        await self._tg.__aexit__(None, None, None)
        return None

    async def get(self, root: Path, options: AnalyzerOptions = DEFAULT_OPTIONS) -> Analyzer:
        """The Analyzer of `root` analysed with `options`, spawning rust-analyzer if needed; returns
        before it is ready. A root directory replaced since its rust-analyzer started gets a fresh one."""
        if self._tg is None:
            raise RuntimeError("AnalyzerPool used outside `async with`")
        resolved = Path(await anyio.Path(root).resolve())
        key = (resolved, options)
        identity = await _identity(resolved)
        async with self._lock:
            analyzer = self._analyzers.get(key)
            if analyzer is not None and analyzer.identity != identity:
                self._tg.start_soon(analyzer.aclose)  # watching a directory that is gone
                del self._analyzers[key]
                replaced, analyzer = analyzer, None
                if identity is None:
                    raise AnalyzerError(f"the workspace directory {resolved} no longer exists")
            else:
                replaced = None
            if analyzer is None:
                analyzer = Analyzer(
                    resolved,
                    self._binary,
                    options=options,
                    wait=self._wait,
                    max_open_documents=self._max_open,
                    check_on_save=self._check_on_save,
                    separate_target_dir=self._separate_target_dir,
                )
                analyzer.identity = identity
                if replaced is not None:
                    analyzer.restarts = replaced.restarts + 1
                    analyzer.restarted_because = "the workspace directory was deleted and re-created"
                self._analyzers[key] = analyzer
                await self._tg.start(analyzer.run)
            return analyzer

    def analyzers(self) -> list[Analyzer]:
        return list(self._analyzers.values())

    def status(self) -> list[dict[str, Any]]:
        return [a.status() for a in self._analyzers.values()]
