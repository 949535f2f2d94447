"""Streamable HTTP for the daemon (`serve --http`): loopback only, bearer token, DNS-rebinding checks.

Three independent locks on one door, because a loopback port is reachable by every local user and,
through DNS rebinding, by any web page the user visits:
- bind 127.0.0.1 only;
- `Authorization: Bearer <token>`, the token read from a file only the user can read (created 0600
  if absent; a group/world-readable or foreign-owned file is refused rather than trusted);
- Host/Origin allow-lists (localhost, 127.0.0.1, [::1]), enforced by the SDK's own
  `TransportSecuritySettings` on the MCP endpoint, so a rebound hostname gets 421 and a foreign
  page's Origin 403 even if it somehow had the token.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import anyio
import anyio.abc
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from .._exceptions import UnsafeTokenFile
from . import _socket


class HttpHost(Protocol):
    """What serving HTTP needs of the daemon that hosts it (a Protocol, so this module does not
    import the daemon that imports it)."""

    server: MCPServer[Any]
    paths: _socket.Paths
    http_url: str | None
    http_inflight: int

    def touch(self) -> None: ...


LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def load_token(path: str) -> str:
    """Read the bearer token, creating the file 0600 with a fresh random token if it does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if st.st_uid != os.getuid():
            raise UnsafeTokenFile(f"{path} is owned by uid {st.st_uid}, not {os.getuid()}")
        if stat.S_IMODE(st.st_mode) & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise UnsafeTokenFile(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
        token = f.read().strip()
    if len(token) < 16:
        raise UnsafeTokenFile(f"{path} holds a token shorter than 16 characters")
    return token


class BearerGate:
    """ASGI wrapper: 401 unless the request carries the token; counts requests for the idle timer."""

    def __init__(self, app: ASGIApp, token: str, daemon: HttpHost | None = None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.daemon = daemon

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan: runs the SDK's session manager
            return
        headers = dict(scope.get("headers") or [])
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"text/plain"),
                        (b"www-authenticate", b'Bearer realm="cargo-scheduler"'),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b"missing or wrong bearer token\n"})
            return
        if self.daemon is None:
            await self.app(scope, receive, send)
            return
        self.daemon.http_inflight += 1
        self.daemon.touch()
        try:
            await self.app(scope, receive, send)
        finally:
            self.daemon.http_inflight -= 1
            self.daemon.touch()


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: the daemon owns SIGTERM/SIGINT and shuts down in order."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_app(daemon: HttpHost, token: str) -> ASGIApp:
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=LOOPBACK_HOSTS, allowed_origins=LOOPBACK_ORIGINS
    )
    app = daemon.server.streamable_http_app(host="127.0.0.1", transport_security=security)
    return BearerGate(app, token, daemon)


async def serve_http(
    daemon: HttpHost,
    port: int,
    token_file: str,
    done: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until the returned uvicorn server's `should_exit` is set; the port goes to the state dir."""
    token = load_token(token_file)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    bound = sock.getsockname()[1]
    daemon.http_url = f"http://127.0.0.1:{bound}/mcp"
    info = {"url": daemon.http_url, "port": bound, "token_file": token_file, "pid": os.getpid()}
    tmp = anyio.Path(f"{daemon.paths.http}.tmp")
    await tmp.write_text(json.dumps(info))
    await tmp.replace(daemon.paths.http)
    config = uvicorn.Config(build_app(daemon, token), log_level="warning", lifespan="on")
    server = _Uvicorn(config)
    task_status.started(server)
    try:
        await server.serve(sockets=[sock])
    finally:
        done.set()
        sock.close()
