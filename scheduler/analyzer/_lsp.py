"""A minimal LSP client: JSON-RPC with Content-Length framing over a child process's stdio.

Just what talking to rust-analyzer takes, on anyio: requests matched to responses by id,
notifications handed to a callback, and the requests the *server* sends answered at once. That last
part is not optional: rust-analyzer asks `window/workDoneProgress/create` before every progress
report and `workspace/configuration` after `initialized`, and a client that never answers leaves it
waiting. Cancelling the task awaiting a request sends `$/cancelRequest`, so an agent's cancelled
call stops costing rust-analyzer time. Closing says `shutdown`/`exit`, then terminates, then kills
its whole session, all under a shielded scope, so a cancelled owner never leaves a rust-analyzer
(or the cargo and build scripts it started) behind.

Method names and error codes come from `lsprotocol` (Microsoft's generated, versioned LSP types,
the same model VS Code's client is generated from): `tests/test_lsp.py` pins every name below to
`lsprotocol.types`. They are mirrored here rather than imported because importing
`lsprotocol.types` costs ~0.65 s (measured), which the daemon would pay on its first analyzer
call; and converting rust-analyzer's results to attrs objects and back is pure cost for a server
that hands them on as JSON. So the wire stays raw dicts.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from .._exceptions import AnalyzerError, LspClosed, LspResponseError
from ..cargo._process import owned_process

log = logging.getLogger("cargo_scheduler.lsp")

# -- protocol names (pinned to lsprotocol.types by tests/test_lsp.py) --------------------------------
INITIALIZE = "initialize"
INITIALIZED = "initialized"
SHUTDOWN = "shutdown"
EXIT = "exit"
CANCEL_REQUEST = "$/cancelRequest"
PROGRESS = "$/progress"
WINDOW_WORK_DONE_PROGRESS_CREATE = "window/workDoneProgress/create"
WINDOW_SHOW_MESSAGE_REQUEST = "window/showMessageRequest"
WORKSPACE_CONFIGURATION = "workspace/configuration"
WORKSPACE_APPLY_EDIT = "workspace/applyEdit"
CLIENT_REGISTER_CAPABILITY = "client/registerCapability"
CLIENT_UNREGISTER_CAPABILITY = "client/unregisterCapability"
METHOD_NOT_FOUND = -32601  # ErrorCodes.MethodNotFound
CONTENT_MODIFIED = -32801  # LSPErrorCodes.ContentModified
SERVER_CANCELLED = -32802  # LSPErrorCodes.ServerCancelled

_MAX_HEADER = 64 * 1024
_MAX_BODY = 256 * 1024 * 1024
_STDERR_LINES = 40

Handler = Callable[[str, Any], Any]


class _Pending:
    __slots__ = ("error", "event", "method", "result")

    def __init__(self, method: str) -> None:
        self.method = method
        self.event = anyio.Event()
        self.result: Any = None
        self.error: AnalyzerError | None = None


def default_server_request(method: str, params: Any, configuration: Mapping[str, Any]) -> Any:
    """The answer to a request the server sends us. We never edit files: applyEdit is refused."""
    if method == WORKSPACE_CONFIGURATION:
        items = params.get("items", []) if isinstance(params, dict) else []
        return [dict(configuration) for _ in items]
    if method == WORKSPACE_APPLY_EDIT:
        return {"applied": False, "failureReason": "this client never writes files"}
    # workDoneProgress/create, register/unregisterCapability, showMessageRequest and the */refresh
    # requests all want an acknowledgement and nothing more.
    return None


class LspClient:
    """One connection to a language server process. Create with `LspClient.spawn(...)`."""

    def __init__(self, process: anyio.abc.Process, on_notification: Handler, on_request: Handler) -> None:
        self.process = process
        self._on_notification = on_notification
        self._on_request = on_request
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._write_lock = anyio.Lock()
        self._closed = anyio.Event()
        self._readers: list[anyio.CancelScope] = []
        self._stderr_done = anyio.Event()
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @classmethod
    @contextlib.asynccontextmanager
    async def spawn(
        cls,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        on_notification: Handler,
        on_request: Handler,
        grace: float = 3.0,
    ) -> AsyncIterator[LspClient]:
        """Start the server and its reader; on exit, shut it down (shielded) and end its session.

        `grace` bounds each step of the ending: shutdown/exit, the exit itself, then terminate, then
        kill; what the server started (its cargo, build scripts, proc-macro server) is killed with
        it (`_process.owned_process`)."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                child = await stack.enter_async_context(
                    owned_process(list(command), cwd=cwd, env=env, stdin_pipe=True, grace_s=grace, exit_wait_s=grace)
                )
            except OSError as exc:
                raise AnalyzerError(f"could not start {command[0]}: {exc}") from exc
            client = cls(child.process, on_notification, on_request)
            async with anyio.create_task_group() as tg:
                await tg.start(client._shielded, client._read_loop)
                await tg.start(client._shielded, client._read_stderr)
                try:
                    yield client
                finally:
                    await client.aclose(grace)
                    for scope in client._readers:
                        scope.cancel()

    # -- sending ---------------------------------------------------------------------------------
    async def request(self, method: str, params: Any = None) -> Any:
        """Send a request and wait for its result; cancelling the caller cancels it server-side."""
        if self.closed:
            raise LspClosed(f"rust-analyzer is gone (before {method})")
        request_id = next(self._ids)
        pending = _Pending(method)
        self._pending[request_id] = pending
        try:
            await self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
            await pending.event.wait()
        except anyio.get_cancelled_exc_class():
            if not pending.event.is_set() and not self.closed:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await self.notify(CANCEL_REQUEST, {"id": request_id})
            raise
        finally:
            self._pending.pop(request_id, None)
        if pending.error is not None:
            raise pending.error
        return pending.result

    async def notify(self, method: str, params: Any = None) -> None:
        await self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message, separators=(",", ":")).encode()
        frame = b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        stdin = self.process.stdin
        if stdin is None or self.closed:
            raise LspClosed(f"rust-analyzer is gone (sending {message.get('method', 'a response')})")
        try:
            async with self._write_lock:
                await stdin.send(frame)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise LspClosed(f"rust-analyzer is gone (sending {message.get('method', 'a response')})") from exc

    # -- receiving -------------------------------------------------------------------------------
    async def _shielded(
        self,
        reader: Callable[[], Awaitable[None]],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run a reader that only `spawn` may stop: a cancelled owner still needs the replies to
        `shutdown`, so the readers outlive its cancellation until the polite ending is over."""
        with anyio.CancelScope(shield=True) as scope:
            self._readers.append(scope)
            task_status.started()
            await reader()

    async def _read_loop(self) -> None:
        assert self.process.stdout is not None
        stream = BufferedByteReceiveStream(self.process.stdout)
        try:
            while True:
                message = await _read_message(stream)
                await self._dispatch(message)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        except (ValueError, anyio.DelimiterNotFound) as exc:
            log.warning("unreadable message from the language server: %s", exc)
        finally:
            with anyio.move_on_after(0.5):  # let stderr's last lines in: they explain a crash
                await self._stderr_done.wait()
            self._closed.set()
            for pending in self._pending.values():
                if not pending.event.is_set():
                    pending.error = LspClosed(
                        f"rust-analyzer exited before answering {pending.method}" + self.stderr_hint()
                    )
                    pending.event.set()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:  # a response
            pending = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if pending is None:
                return  # answered after we stopped waiting (cancelled)
            if "error" in message:
                error = message["error"] or {}
                pending.error = LspResponseError(
                    pending.method, int(error.get("code", 0)), str(error.get("message", ""))
                )
            else:
                pending.result = message.get("result")
            pending.event.set()
        elif "id" in message:  # a request from the server: answer it now, or it may wait forever
            try:
                reply: dict[str, Any] = {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "result": self._on_request(method, message.get("params")),
                }
            except Exception as exc:  # a handler bug must not stall the server
                log.exception("answering %s failed", method)
                reply = {
                    "jsonrpc": "2.0",
                    "id": message["id"],
                    "error": {"code": METHOD_NOT_FOUND, "message": str(exc)},
                }
            with contextlib.suppress(LspClosed):
                await self._send(reply)
        else:
            try:
                self._on_notification(method, message.get("params"))
            except Exception:
                log.exception("handling %s failed", method)

    async def _read_stderr(self) -> None:
        """Drain stderr (a full pipe would block the server) and keep the tail for crash messages."""
        try:
            if self.process.stderr is None:
                return
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                while True:
                    chunk = await self.process.stderr.receive()
                    self.stderr_tail.extend(chunk.decode(errors="replace").splitlines())
        finally:
            self._stderr_done.set()

    def stderr_hint(self) -> str:
        lines = [line for line in self.stderr_tail if line.strip()][-5:]
        return ("; its last words: " + " | ".join(lines)) if lines else ""

    async def wait_closed(self) -> None:
        """Return once the server's stdout has closed (it exited, crashed or was killed)."""
        await self._closed.wait()

    # -- closing ---------------------------------------------------------------------------------
    async def aclose(self, grace: float = 3.0) -> None:
        """`shutdown` then `exit`, politely and briefly; `spawn` then terminates and kills if needed."""
        with anyio.CancelScope(shield=True):
            if not self.closed and self.process.returncode is None:
                with anyio.move_on_after(grace), contextlib.suppress(AnalyzerError):
                    await self.request(SHUTDOWN)
                    await self.notify(EXIT)
                    await self.wait_closed()


async def _read_message(stream: BufferedByteReceiveStream) -> dict[str, Any]:
    header = await stream.receive_until(b"\r\n\r\n", _MAX_HEADER)
    length = None
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length is None or not 0 <= length <= _MAX_BODY:
        raise ValueError(f"bad LSP header {header[:200]!r}")
    message = json.loads(await stream.receive_exactly(length))
    if not isinstance(message, dict):
        raise ValueError("an LSP message that is not an object")
    return message
