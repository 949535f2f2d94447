"""`cargo-scheduler serve`: the stdio process an agent spawns. Standard library only, on purpose.

Codex sends its first model request ~0.6-1.0 s after spawning its MCP servers, and a server that has
not listed its tools by then is invisible for that whole turn. Importing the MCP SDK alone takes
~1.3 s, so this process never imports it (nor anyio): it answers the handshake from
`_toollist.json`, which `_toollist.py` generates from the real server, per protocol version, exactly
as the real server would answer (a test keeps them equal). Keeping this module stdlib-only is the
feature, not a shortcut: every import here is paid by every agent session before its first turn.

Both protocol eras are answered here, as the SDK's server decides between them (the client's first
request picks the era, once):
- handshake era (Codex over stdio): `initialize`, `tools/list` and `ping` are answered locally; the
  client's `initialize` is replayed to each daemon connection (its answer swallowed, the client already
  has one) and `notifications/initialized` sent after it.
- 2026-07-28 (Claude Code probes with `server/discover` first and, answered, never sends `initialize`):
  a first request carrying the `io.modelcontextprotocol/protocolVersion` envelope opens a stateless
  session; `server/discover` and the first page of `tools/list` are answered locally when their
  envelope is one the real server accepts. Each daemon connection is opened with a `server/discover`
  carrying the client's envelope (answer swallowed), so the daemon serves it in the same era.
Everything else (a cursor, another version, a malformed envelope, every `tools/call`) is relayed, line
by line, to the workspace's daemon (`_daemon.py`), which answers exactly as the SDK does. A background
thread reaches or starts the daemon, handing it our environment (the MCP client's: the session's cargo
runs get it) with the session; requests arriving before the daemon is up are queued. If the daemon
dies, each request it was handling is answered with an error saying so and asking for a retry, and the
next request reconnects (starting a new daemon).

Framing, as the peers behave (their own tests check it): a call before any `initialize` is served as
if the client had sent one (the daemon's session is opened on its behalf), and an `initialize`
without params is answered; a request with `id: null` is dropped (MCP forbids it, and an answer
could not be matched); after stdin closes, every request read before is still answered before the
process exits (up to `EOF_DRAIN_S`); SIGINT, SIGTERM and SIGHUP end the process with exit 0.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import signal
import sys
import time
from typing import Any

from ._serve_args import VALUED

_NO_ID = object()
WAKE_DELAY = 0.25
"""The daemon connector waits this long for the handshake to finish before it competes for the GIL."""
PROTOCOL_META = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_META = "io.modelcontextprotocol/clientInfo"
EOF_DRAIN_S = 900.0
"""After stdin closes, how long the front still waits for the daemon's answers to what was asked
(a cold `cargo_test` can take minutes); then it exits and says so on stderr."""
RETRY = "the cargo-scheduler daemon stopped while handling this call (crashed, replaced or stopped); retry it"


class Front:
    """One stdio session: local handshake answers, a queue, and the relay to the daemon."""

    def __init__(
        self,
        start: str,
        daemon_args: list[str],
        http: bool = False,
        *,
        analyzer: dict[str, Any] | None = None,
        peer_answers: bool = False,
    ) -> None:
        self.start = start
        self.peer_answers = peer_answers  # rust-analyzer-mcp's answers: its "Shutting down" line too
        self.analyzer = analyzer
        # A daemon this front starts warms up the rust-analyzer this session will use.
        warm = ["--warm-analysis", json.dumps(analyzer)] if analyzer is not None else []
        self.daemon_args = [*daemon_args, *warm]
        self.http = http
        self.table: Any = None  # the shipped handshake table (`server._table.Table`), read on first use
        self.mode: str | None = None  # "handshake" | "modern": answered locally, replayed to the daemon
        self.init_params: dict[str, Any] = {}
        self.modern_meta: dict[str, Any] = {}  # the envelope a modern session's daemon connections open with
        self.version = ""
        self.out_lock = _thread.allocate_lock()
        self.lock = _thread.allocate_lock()  # guards everything below
        self.wake = _thread.allocate_lock()
        self.wake.acquire()
        self.answered = _thread.allocate_lock()  # released when a request is answered (see `drain`)
        self.answered.acquire()
        self.queue: list[tuple[bytes, Any]] = []
        self.sock: Any = None
        self.inflight: dict[str, Any] = {}
        self.server_requests: set[str] = set()
        self.connector_started = False
        self.closed = False
        self.generation = 0

    # -- output -----------------------------------------------------------------------------------------
    def emit(self, data: bytes) -> None:
        with self.out_lock:
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(1, view) :]
            except OSError:
                self.closed = True  # the client is gone; nobody left to tell

    def reply(self, request_id: Any, result: Any = None, error: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if error is None:
            body["result"] = result
        else:
            body["error"] = error
        self.emit(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")

    # -- client side ------------------------------------------------------------------------------------
    def run(self) -> int:
        """Serve stdin until EOF, then answer what was asked before exiting (as the peers do: a
        client that writes its requests and closes stdin reads every answer to EOF). SIGINT, SIGTERM
        and SIGHUP end the session at once, with exit 0 (the daemon and its work go on)."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _exit_quietly)
        readline = sys.stdin.buffer.readline
        try:
            while True:
                line = readline()
                if not line:
                    break
                if line.strip():
                    self.on_client(line if line.endswith(b"\n") else line + b"\n")
            self.drain(EOF_DRAIN_S)
        finally:
            self.close()
            if self.peer_answers:
                # The peer logs this on every exit, and its own shutdown test looks for it. The
                # daemon and its rust-analyzer go on serving other sessions.
                print("cargo-scheduler: Shutting down (this session; the daemon keeps running)", file=sys.stderr)
        return 0

    def pending(self) -> bool:
        """A request of the client's is still unanswered (queued for the daemon, or in flight)."""
        with self.lock:
            return bool(self.inflight) or any(rid is not _NO_ID for _, rid in self.queue)

    def drain(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) until every request read so far has been answered."""
        deadline = time.monotonic() + timeout
        while self.pending() and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                print("cargo-scheduler: stdin closed; gave up waiting for the daemon's last answers", file=sys.stderr)
                return
            self.answered.acquire(timeout=min(left, 1.0))

    def note_answered(self) -> None:
        with contextlib.suppress(RuntimeError):  # already signalled
            self.answered.release()

    def reply_raw(self, request_id: Any, result: bytes) -> None:
        """Answer with a result already in wire bytes (the table's), without parsing it."""
        head = b'{"jsonrpc":"2.0","id":' + json.dumps(request_id).encode() + b',"result":'
        self.emit(head + result + b"}\n")

    def load_table(self) -> Any:
        if self.table is None:
            from ..server._table import Table
            from . import _socket

            with open(_socket.TOOLLIST_PATH, "rb") as f:
                self.table = Table(f.read())
        return self.table

    def on_client(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            self.reply(None, error={"code": -32700, "message": "Parse error"})
            return
        if not isinstance(msg, dict):
            self.forward(line, None, _NO_ID)
            return
        method = msg.get("method")
        request_id = msg.get("id", _NO_ID)
        if method is None:  # the client's answer to a request the daemon sent it
            self.forward(line, "response", request_id)
            return
        if request_id is None:
            # MCP: the id "MUST NOT be null"; an answer would carry an id no client can match. The
            # peers drop it, and so do we (a JSON-RPC notification is never answered either).
            print(f"cargo-scheduler: ignored a {method!r} request with id null", file=sys.stderr)
            return
        params = msg.get("params")
        if self.mode is None and request_id is not _NO_ID:
            if method == "initialize":
                self.mode = "handshake"
                self.answer_initialize(request_id, params if isinstance(params, dict) else {})
                self.start_connector()
                return
            meta = envelope(params)
            if meta is not None:
                self.mode, self.modern_meta = "modern", meta
            else:
                # A handshake-era call before any `initialize` (the peers answer those, statelessly):
                # the daemon's session is opened with an `initialize` of our own on the client's behalf.
                self.mode = "handshake"
                self.version = str(self.load_table().latest_handshake)
                self.init_params = {}
            self.start_connector()
        if self.mode == "modern":
            if request_id is not _NO_ID and self.answer_modern(method, request_id, params):
                if method == "tools/list":
                    self.kick()  # the handshake is over: let the connector reach the daemon now
                return
        elif self.mode == "handshake":
            first_page = not (isinstance(params, dict) and params.get("cursor"))
            if method == "tools/list" and request_id is not _NO_ID and envelope(params) is None and first_page:
                self.reply_raw(request_id, self.load_table().raw("handshake", self.version, "tools/list"))
                self.kick()
                return
            if method == "ping" and request_id is not _NO_ID:
                self.reply(request_id, {})
                return
            if method == "initialize" and request_id is not _NO_ID:  # after calls, or again: answered here
                self.answer_initialize(request_id, params if isinstance(params, dict) else {})
                return
            if method == "notifications/initialized":
                return  # replayed to each daemon connection right after its initialize
        elif method == "initialize":  # a second one, or a relayed session's
            self.init_params = params if isinstance(params, dict) else {}  # replayed after a restart
        self.forward(line, "request" if request_id is not _NO_ID else None, request_id)

    def answer_modern(self, method: Any, request_id: Any, params: Any) -> bool:
        """Answer a 2026-07-28 `server/discover` or first-page `tools/list` from the table, if its
        envelope is one the real server serves as such (a known version, capabilities an object, client
        info absent or an object, nothing else in params); False leaves it to the daemon, which answers
        everything else (errors included) as the SDK does."""
        if method == "server/discover":
            allowed: tuple[str, ...] = ("_meta",)
        elif method == "tools/list":
            allowed = ("_meta", "cursor")
        else:
            return False
        meta = envelope(params)
        if meta is None or any(key not in allowed for key in params) or params.get("cursor") is not None:
            return False
        if not isinstance(meta.get(CAPABILITIES_META), dict) or not isinstance(meta.get(CLIENT_INFO_META, {}), dict):
            return False
        table = self.load_table()
        version = meta.get(PROTOCOL_META)
        if not table.has("modern", version):
            return False
        self.reply_raw(request_id, table.raw("modern", version, method))
        return True

    def answer_initialize(self, request_id: Any, params: dict[str, Any]) -> None:
        """Answer as the real server would: echo a supported handshake version, else offer the latest."""
        table = self.load_table()
        wanted = params.get("protocolVersion")
        self.version = str(wanted if table.has("handshake", wanted) else table.latest_handshake)
        self.init_params = params
        self.reply_raw(request_id, table.raw("handshake", self.version, "initialize"))

    def forward(self, line: bytes, kind: str | None, request_id: Any) -> None:
        key = json.dumps(request_id) if request_id is not _NO_ID else ""
        with self.lock:
            if kind == "response":
                if key not in self.server_requests:
                    return  # answers a request of a daemon connection that is gone
                self.server_requests.discard(key)
            if self.sock is not None:
                try:
                    self.sock.sendall(line)
                except OSError:
                    pass  # the reader thread will see the daemon gone; keep the line for the next one
                else:
                    if kind == "request":
                        self.inflight[key] = request_id
                    return
            self.queue.append((line, request_id if kind == "request" else _NO_ID))
        if not self.connector_started and self.mode is not None:
            self.start_connector()
        self.kick()

    def kick(self) -> None:
        with contextlib.suppress(RuntimeError):  # already awake
            self.wake.release()

    def close(self) -> None:
        self.closed = True
        with self.lock:
            sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(2)
        self.kick()

    # -- daemon side (background thread) ----------------------------------------------------------------
    def start_connector(self) -> None:
        if not self.connector_started:
            self.connector_started = True
            _thread.start_new_thread(self.connector, ())

    def connector(self) -> None:
        self.wake.acquire(timeout=WAKE_DELAY)
        from . import _control, _socket

        try:
            paths = _socket.Paths(_socket.workspace_root(self.start))
        except Exception as exc:
            self.fail_queued(f"cargo-scheduler cannot use its runtime directory: {exc}")
            return
        while not self.closed:
            try:
                sock, reader, _status = _control.connect(paths, self.daemon_args, self.http, self.client())
            except Exception as exc:
                self.fail_queued(f"cargo-scheduler daemon unavailable: {exc}")
                self.wake.acquire()  # retry when the next message needs the daemon
                continue
            self.pump(sock, reader)
            if self.closed:
                return
            with self.lock:
                need = bool(self.queue)
            if not need:
                self.wake.acquire()

    def client(self) -> dict[str, Any]:
        """What the daemon needs to know about our client: the environment it spawned us with (the
        session's cargo runs get it), this session's own `cargo_env` permissions and, when the command
        line gave any, its rust-analyzer options."""
        allow_env, unsafe, rest = [], False, list(self.daemon_args)
        while rest:
            flag = rest.pop(0)
            if flag in VALUED and rest:
                value = rest.pop(0)
                if flag == "--allow-env":
                    allow_env.append(value)
            unsafe = unsafe or flag == "--allow-unsafe-env"
        hello: dict[str, Any] = {"env": dict(os.environ), "allow_unsafe_env": unsafe, "allow_env": allow_env}
        if self.analyzer is not None:
            hello["analyzer"] = self.analyzer
        return hello

    def fail_queued(self, message: str) -> None:
        with self.lock:
            failed = [rid for _, rid in self.queue if rid is not _NO_ID]
            self.queue.clear()
        for rid in failed:
            self.reply(rid, error={"code": -32000, "message": message})
        print(message, file=sys.stderr)
        self.note_answered()

    def pump(self, sock: Any, reader: Any) -> None:
        """Replay the handshake, flush the queue, then relay daemon lines until it goes away."""
        self.generation += 1
        try:
            opening = self.opening()
            if opening is not None:
                method, params = opening
                opening_id = f"cargo-scheduler-front-open-{self.generation}"
                hello = {"jsonrpc": "2.0", "id": opening_id, "method": method, "params": params}
                sock.sendall(json.dumps(hello).encode() + b"\n")
                while True:
                    line = reader.readline()
                    if not line:
                        raise ConnectionError(f"daemon closed during {method}")
                    msg = json.loads(line)
                    if msg.get("id") == opening_id:
                        if "error" in msg and method == "initialize":
                            why = msg["error"]
                            print(f"cargo-scheduler: daemon refused initialize: {why}", file=sys.stderr)
                        break
                if method == "initialize":
                    sock.sendall(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
            with self.lock:
                for line, rid in self.queue:
                    sock.sendall(line)
                    if rid is not _NO_ID:
                        self.inflight[json.dumps(rid)] = rid
                self.queue.clear()
                self.sock = sock
            for line in reader:
                self.on_daemon(line)
        except (OSError, ValueError) as exc:
            print(f"cargo-scheduler: daemon connection lost: {exc}", file=sys.stderr)
        with self.lock:
            self.sock = None
            lost = list(self.inflight.values())
            self.inflight.clear()
            self.server_requests.clear()
        for rid in lost:
            self.reply(rid, error={"code": -32000, "message": RETRY, "data": {"retry": True}})
        self.note_answered()
        try:
            reader.close()
            sock.close()
        except OSError:
            pass

    def opening(self) -> tuple[str, dict[str, Any]] | None:
        """The request a new daemon connection starts with, so the daemon serves it in the client's
        era: the client's `initialize` (replayed; a relayed one only after a daemon restart), or a
        `server/discover` with the modern client's envelope; None for a plain relay."""
        if self.mode == "modern":
            return "server/discover", {"_meta": self.modern_meta}
        if self.mode == "handshake" or (self.init_params and self.generation > 1):
            return "initialize", self.replayed_initialize()
        return None

    def replayed_initialize(self) -> dict[str, Any]:
        """The client's `initialize` params, completed where it left something out (the peers accept
        an `initialize` without params; the SDK wants version, capabilities and client info)."""
        params = dict(self.init_params)
        if not isinstance(params.get("protocolVersion"), str):
            params["protocolVersion"] = self.version or str(self.load_table().latest_handshake)
        if not isinstance(params.get("capabilities"), dict):
            params["capabilities"] = {}
        info = params.get("clientInfo")
        if not (isinstance(info, dict) and isinstance(info.get("name"), str) and isinstance(info.get("version"), str)):
            params["clientInfo"] = {"name": "unnamed-client", "version": "0"}
        return params

    def on_daemon(self, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if isinstance(msg, dict) and "id" in msg:
            key = json.dumps(msg["id"])
            with self.lock:
                if "method" in msg:
                    self.server_requests.add(key)
                else:
                    self.inflight.pop(key, None)
            if self.peer_answers and "method" not in msg:
                line = peer_error(msg) or line
        self.emit(line if line.endswith(b"\n") else line + b"\n")
        self.note_answered()


def peer_error(msg: dict[str, Any]) -> bytes | None:
    """A failed tool call as rust-analyzer-mcp answers one: a JSON-RPC error (code -1, our sentence
    as its message) instead of MCP's `isError` result; None for any other message. Only for a
    session that asked for the peer's answers (`--answers`): its clients read a failure there."""
    result = msg.get("result")
    if not (isinstance(result, dict) and result.get("isError") is True):
        return None
    content = result.get("content") or [{}]
    text = content[0].get("text") if isinstance(content[0], dict) else None
    error = {"code": -1, "message": str(text or "the tool call failed")}
    return json.dumps({"jsonrpc": "2.0", "id": msg["id"], "error": error}, ensure_ascii=False).encode() + b"\n"


def _exit_quietly(signum: int, frame: Any) -> None:
    """SIGINT, SIGTERM or SIGHUP: leave `Front.run` (closing the daemon connection) with exit 0."""
    raise SystemExit(0)


def envelope(params: Any) -> dict[str, Any] | None:
    """The 2026-07-28 per-request `_meta` of `params`, or None when it has none (the protocol-version
    key alone marks it: legacy requests carry `_meta` too, for a progress token)."""
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta if isinstance(meta, dict) and PROTOCOL_META in meta else None


def serve_main(argv: list[str]) -> int:
    """`cargo-scheduler serve [OPTIONS] [--] [WORKSPACE]` (SERVE_HELP).

    The session's cargo runs get this process's environment (the MCP client's), its `cargo_env` the
    permissions of these flags, and its rust-analyzer the analysis options; other sessions on the
    same daemon keep their own.

    With `--http` the session itself is still stdio; the daemon it reaches also serves streamable HTTP
    on loopback (URL in the daemon's status and in the state dir).
    """
    from .._answers import ANSWERS, CHOICES, PEER_ANSWERS, choice
    from ._serve_args import parse_args

    args = parse_args(argv)
    if args.answers is not None:
        os.environ[ANSWERS] = args.answers  # the session's environment carries it to the daemon
    chosen = choice(os.environ.get(ANSWERS))
    if chosen is None:  # refused at the start, as the peer refuses a bad flag: exit status 1
        flag = "--answers" if args.answers is not None else ANSWERS
        raise SystemExit(
            f"cargo-scheduler serve: {flag} {os.environ[ANSWERS]!r} is not accepted: "
            f"it must be one of {', '.join(CHOICES)}"
        )
    peer = chosen == PEER_ANSWERS
    return Front(args.start, args.daemon_args, args.http, analyzer=args.analyzer, peer_answers=peer).run()


def daemon_main(argv: list[str]) -> int:
    """`cargo-scheduler daemon status|stop|logs` (lives in `_control`; re-exported for the CLI)."""
    from ._control import daemon_main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
