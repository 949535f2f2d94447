"""The per-(user, workspace) daemon: one warm server shared by every session on the workspace.

`python -m scheduler.daemon._daemon --workspace ROOT [--idle-timeout S] [--http [--port N]]`, normally started
by the stdio front (`_front.py`). It exists so the engine, the cache handles and rust-analyzer are
loaded once and shared: parallel Codex sessions, subagents and a human's CLI all reach the same server
object, so the second session's first analyzer answer does not pay the workspace's cold load again.

Connections arrive on a unix socket in a 0700 directory (see `_socket`); each is checked with
SO_PEERCRED (same uid only) and opens with a control line (`_control` documents it). A `hello`
turns the connection into one MCP session served by the shared server's low-level `run`, over line
streams adapted the way the SDK's stdio transport adapts stdin/stdout.

The daemon exits after `--idle-timeout` seconds with no connection and no call (default 30 min, env
CARGO_SCHEDULER_IDLE_TIMEOUT), on `stop`, on SIGTERM/SIGINT, or once its installation is gone
(`_installation`), removing its socket and pid file and
killing every process session it started (`cargo._process`; after a SIGKILL the next daemon or
`daemon stop` kills them from the record it kept, `cargo._groups`). It
holds a lifetime flock, so a second daemon for the same workspace cannot start and a stale socket
(left by a crash) is known to be stale and replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import mcp_types as types
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp.shared.message import SessionMessage

from .. import _compat, _settings
from .._analyzer_options import DEFAULT_OPTIONS, AnalyzerOptions
from .._exceptions import ConfigError
from .._version import __version__
from ..cargo import _groups, _process
from . import _socket
from ._control import daemon_main
from ._installation import CHECK_S, Installation

if TYPE_CHECKING:
    from ..server._state import ClientSession

__all__ = ["Daemon", "daemon_main", "main"]

log = logging.getLogger("cargo_scheduler.daemon")
MAX_LINE = 64 * 1024 * 1024
LOCK_WAIT = 15.0
"""How long a new daemon waits for a replaced one to release the workspace lock before giving up."""


class Daemon:
    """Shared server state plus the bookkeeping for status and the idle timeout."""

    def __init__(
        self,
        workspace: Path,
        paths: _socket.Paths,
        *,
        idle_timeout: float,
        reported_version: str,
        analyzer_binary: str | None = None,
        allow_unsafe_env: bool = False,
        allow_env: tuple[str, ...] = (),
        settings: _settings.Settings | None = None,
        warm_analysis: AnalyzerOptions = DEFAULT_OPTIONS,
        warm_analyzer: bool = True,
    ) -> None:
        from ..server._build import build_server
        from ..server._state import ServerState

        self.workspace = workspace
        self.paths = paths
        self.idle_timeout = idle_timeout
        self.reported_version = reported_version
        # Built once: every connection and the HTTP app share this server and this state (engine,
        # cache, rust-analyzer), which is what keeps them warm for the next session.
        self.settings_env = _settings.fingerprint()
        self.warm_analysis = warm_analysis
        self.warm_analyzer = warm_analyzer
        """The analysis options of the session whose front started us: the rust-analyzer warmed up
        at start is the one that session will use."""
        self.state = ServerState(
            workspace,
            analyzer_binary=analyzer_binary,
            allow_unsafe_env=allow_unsafe_env,
            allow_env=allow_env,
            settings=settings,
        )
        self.server = build_server(workspace, state=self.state, allow_unsafe_env=allow_unsafe_env)
        self.lowlevel = _compat.lowlevel_server(self.server)
        self.init_options = self.lowlevel.create_initialization_options()
        with open(_socket.TOOLLIST_PATH, "rb") as f:
            self.digest = _socket.toollist_digest(f.read())
        self.sessions = 0
        self.http_inflight = 0
        self.cli_inflight = 0
        """`cli-check` requests being answered (`_served`): busy, like a session."""
        self.cli_answers = 0
        """`cli-check` requests answered (not unfit): what `status` shows of the shell's use."""
        self.messages = 0
        self.started = time.time()
        self.last_activity = time.monotonic()
        self.http_url: str | None = None
        self.stopping: anyio.Event  # made in run(): anyio primitives need the event loop

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def busy(self) -> bool:
        return self.sessions > 0 or self.http_inflight > 0 or self.cli_inflight > 0

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "version": self.reported_version,
            "protocol": _socket.PROTOCOL,
            "digest": self.digest,
            "workspace": str(self.workspace),
            "settings": self.settings_env,
            "http": self.http_url is not None,
            "http_url": self.http_url,
            "sessions": self.sessions,
            "messages": self.messages,
            "cli_answers": self.cli_answers,
            "uptime_s": round(time.time() - self.started, 3),
            "idle_timeout_s": self.idle_timeout,
            "socket": self.paths.socket,
            "log": self.paths.log,
        }

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        """One accepted connection: credential check, control line, then maybe an MCP session."""
        async with stream:
            raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            uid = _socket.peer_uid(raw)
            if not _socket.peer_allowed(uid):
                log.warning("refused a connection from uid %s", uid)
                return
            reader = BufferedByteReceiveStream(stream)
            try:
                first = await reader.receive_until(b"\n", MAX_LINE)
                request = json.loads(first)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound, ValueError):
                return
            command = request.get("control") if isinstance(request, dict) else None
            if command is None:  # a bare MCP client (no hello): serve it, the first line included
                await self.session(stream, reader, first)
                return
            if command == "cli-check":
                await self.cli_check(stream, request)
                return
            if command not in ("hello", "status", "stop"):
                await stream.send(json.dumps({"error": f"unknown control {command!r}"}).encode() + b"\n")
                return
            client = None
            if command == "hello" and "session" in request:
                from ..server._state import ClientSession

                try:
                    client = ClientSession.from_hello(request["session"])
                except ValueError as exc:  # never echo the line: it holds the client's environment
                    log.warning("refused a session: %s", exc)
                    await stream.send(json.dumps({"error": f"bad hello: {exc}"}).encode() + b"\n")
                    return
            await stream.send(json.dumps(self.status()).encode() + b"\n")
            if command == "stop":
                log.info("stop requested")
                self.stopping.set()
            elif command == "hello":
                await self.session(stream, reader, None, client)

    async def cli_check(self, stream: anyio.abc.SocketStream, request: dict[str, Any]) -> None:
        """One cargo-style command from the stdlib client (the CLI's and the shim's fast path):
        answered by the shared engine, admitted as a read like a check tool call; cargo's progress
        lines stream ahead of the answer (dropped, not waited for, when the client reads slowly)."""
        from ..server._admission import CallClass
        from ..shell._served import frame, progress_frame, serve

        self.cli_inflight += 1
        self.touch()
        lines_in, lines_out = anyio.create_memory_object_stream[str](64)

        def progress(line: str) -> None:
            with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                lines_in.send_nowait(line)

        async def forward() -> None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                async with lines_out:
                    async for line in lines_out:
                        await stream.send(progress_frame(line))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(forward)
                async with lines_in:
                    try:
                        async with self.state.slot(self.workspace, CallClass.READ, label="cli-check"):
                            engine = lambda: self.state.engine(self.workspace)  # noqa: E731
                            reply = await serve(request, self.workspace, self.settings_env, engine, progress)
                    except Exception as exc:  # the caller then answers without us; the daemon stays up
                        log.exception("cli-check failed")
                        reply = {"unfit": f"the daemon failed: {type(exc).__name__}: {exc}"}
                    if "unfit" not in reply:
                        self.cli_answers += 1
        finally:
            self.cli_inflight -= 1
            self.touch()
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await stream.send(frame(reply))

    async def session(
        self,
        stream: anyio.abc.SocketStream,
        reader: BufferedByteReceiveStream,
        first: bytes | None,
        client: ClientSession | None = None,
    ) -> None:
        """Serve one MCP session over newline-delimited JSON-RPC, as `mcp.server.stdio` does.

        With a `client` (a front's hello), the session runs inside `CLIENT.set(client)`: the SDK
        handles each request in the context of the task that read it (`read_lines`, started below),
        so every call of this session, and only of this one, runs in its client's environment."""
        from ..server._state import CLIENT

        token = CLIENT.set(client)
        if client is not None:  # names at most: the values are the client's secrets as often as not
            log.info("session in its client's environment (%d variables)", len(client.env))
            log.debug("its variables: %s", " ".join(k for k, _ in client.env))
        self.sessions += 1
        self.touch()
        read_writer, read_stream = _compat.inbound_streams(0)
        write_stream, write_reader = _compat.outbound_streams(0)

        async def feed(line: bytes) -> None:
            self.messages += 1
            self.touch()
            try:
                message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            except Exception as exc:
                await read_writer.send(exc)
                return
            await read_writer.send(SessionMessage(message))

        async def read_lines() -> None:
            async with read_writer:
                if first is not None:
                    await feed(first)
                while True:
                    try:
                        line = await reader.receive_until(b"\n", MAX_LINE)
                    except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                        return
                    if line.strip():
                        await feed(line)

        async def write_lines() -> None:
            async with write_reader:
                async for message in write_reader:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    self.touch()
                    try:
                        await stream.send(data.encode() + b"\n")
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        return

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_lines)
                tg.start_soon(write_lines)
                await self.lowlevel.run(read_stream, write_stream, self.init_options)
                tg.cancel_scope.cancel()
        finally:
            self.sessions -= 1
            self.touch()
            CLIENT.reset(token)

    async def watch_idle(self) -> None:
        """Stop after `idle_timeout` seconds without a connection or a call, or as soon as the
        installation it runs from is gone (`_installation`: an uninstall cannot stop a daemon)."""
        installation = Installation()
        while not self.stopping.is_set():
            if (gone := installation.missing()) is not None:
                log.info("the installation is gone (%s no longer exists); stopping", gone)
                self.stopping.set()
                return
            idle_for = time.monotonic() - self.last_activity
            if not self.busy() and idle_for >= self.idle_timeout:
                log.info("idle for %.1f s; stopping", idle_for)
                self.stopping.set()
                return
            await anyio.sleep(min(CHECK_S, max(0.05, self.idle_timeout - idle_for)))

    async def watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal %s; stopping", signum)
                self.stopping.set()
                return

    async def run(
        self,
        http_port: int | None,
        token_file: str,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until stopped; `task_status.started()` once the socket answers and the pid file exists."""
        self.stopping = anyio.Event()
        with contextlib.suppress(FileNotFoundError):  # we hold the lifetime lock: its maker is gone
            os.unlink(self.paths.socket)
        listener = await anyio.create_unix_listener(self.paths.socket, mode=0o600)
        http_done = anyio.Event()
        http_server: Any = None
        async with self.state, listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self.handle)
            tg.start_soon(self.watch_idle)
            tg.start_soon(self.watch_signals)
            if http_port is not None:
                from ._http import serve_http

                http_server = await tg.start(serve_http, self, http_port, token_file, http_done)
            self._write_pidfile()
            task_status.started()
            tg.start_soon(
                functools.partial(self.state.warm_up, analyzer=self.warm_analyzer), self.workspace, self.warm_analysis
            )
            log.info(
                "serving %s on %s (pid %d, version %s)",
                self.workspace,
                self.paths.socket,
                os.getpid(),
                self.reported_version,
            )
            await self.stopping.wait()
            if http_server is not None:
                http_server.should_exit = True
                with anyio.move_on_after(5):
                    await http_done.wait()
            tg.cancel_scope.cancel()

    def _write_pidfile(self) -> None:
        tmp = f"{self.paths.pidfile}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.status(), f)
        os.replace(tmp, self.paths.pidfile)

    def cleanup(self) -> None:
        for path in (self.paths.socket, self.paths.pidfile):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _take_lock(path: str) -> int | None:
    """The workspace's lifetime lock; waits a little for a daemon being replaced to let go."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scheduler.daemon._daemon")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--idle-timeout", type=float, default=None)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-file", default=None)
    parser.add_argument("--rust-analyzer", default=None, help="the rust-analyzer binary to use")
    parser.add_argument(
        "--allow-unsafe-env",
        action="store_true",
        help="let cargo_env set any variable, also those that change what runs (RUSTC_WRAPPER, ...)",
    )
    parser.add_argument(
        "--allow-env",
        action="append",
        default=[],
        metavar="NAME",
        help="let cargo_env also set NAME (or every variable starting with PREFIX, for PREFIX*); repeatable",
    )
    parser.add_argument("--report-version", default=None, help=argparse.SUPPRESS)  # tests: fake an old build
    parser.add_argument("--warm-analysis", default=None, help=argparse.SUPPRESS)  # the starting front's options
    parser.add_argument("--no-analyzer-warmup", action="store_true", help=argparse.SUPPRESS)  # started by the shim
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = _settings.Settings.from_env()
        _settings.sccache()
        _settings.seed()
    except ConfigError as exc:
        log.error("not starting: %s", exc)
        return 2
    workspace = Path(_socket.workspace_root(args.workspace))
    paths = _socket.Paths(str(workspace))
    idle = args.idle_timeout if args.idle_timeout is not None else _settings.idle_timeout_s()
    lock_fd = _take_lock(paths.lock)
    if lock_fd is None:
        log.error("another daemon holds %s; not starting", paths.lock)
        return 1
    # We hold the lock, so whoever wrote the sessions record is gone: kill what it left running.
    if left := _groups.sweep(paths.sessions):
        log.warning("killed %d processes a previous daemon left running: %s", len(left), left)
    _process.record_sessions_in(paths.sessions)
    daemon: Daemon | None = None
    try:
        version = args.report_version or __version__
        daemon = Daemon(
            workspace,
            paths,
            idle_timeout=idle,
            reported_version=version,
            analyzer_binary=args.rust_analyzer,
            allow_unsafe_env=args.allow_unsafe_env,
            allow_env=tuple(args.allow_env),
            settings=settings,
            warm_analysis=AnalyzerOptions.from_wire(json.loads(args.warm_analysis or "null")),
            warm_analyzer=not args.no_analyzer_warmup,
        )
        anyio.run(daemon.run, args.port if args.http else None, args.token_file or paths.token)
    except Exception:
        log.exception("daemon failed")
        return 1
    finally:
        _process.kill_live_sessions()  # every way out: nothing we started outlives us
        _groups.sweep(paths.sessions)
        _process.record_sessions_in(None)
        if daemon is not None:
            daemon.cleanup()
        os.close(lock_fd)
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
