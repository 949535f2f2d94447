"""A real `redis-server` per test (Debian's package), and an in-test Bazel remote cache over HTTP.

The Redis server listens on a unix socket in a short private directory (socket paths are limited to
108 bytes), or on a free loopback port (TLS), never saves to disk, and is stopped (killed if it
does not stop) by the fixture's finaliser. Readiness is its own "Ready to accept connections" line,
read with a deadline: no sleeps.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from scheduler.engine._remote._bazel import parse_action_result

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RedisServer:
    directory: Path
    args: list[str]
    tls: dict[str, Path] | None = None
    port: int = 0
    proc: subprocess.Popen[str] | None = None
    log: list[str] = field(default_factory=list)

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    def start(self) -> RedisServer:
        argv = [REDIS_SERVER, "--save", "", "--appendonly", "no", "--dir", str(self.directory), "--logfile", ""]
        if self.tls is not None:
            argv += ["--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1"]
            argv += ["--tls-cert-file", str(self.tls["cert"]), "--tls-key-file", str(self.tls["key"])]
            argv += ["--tls-ca-cert-file", str(self.tls["cert"]), "--tls-auth-clients", "no"]
        else:
            argv += ["--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen([*argv, *self.args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                raise TimeoutError(f"redis-server not ready after {START_TIMEOUT} s: {self.log}") from None
            if line is None:
                raise RuntimeError(f"redis-server exited: {''.join(self.log)}")
            self.log.append(line)
            if "ready to accept connections" in line.lower():
                return self

    def url(self, auth: str = "") -> str:
        at = f"{auth}@" if auth else ""
        if self.tls is not None:
            return f"rediss://{at}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls['cert']}"
        return f"unix://{at}{self.socket_path}"

    def admin(self, password: str | None = None) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), password=password, socket_timeout=10)

    def command(self, *args: str, password: str | None = None) -> Any:
        """A raw command on a connection of its own (CLIENT PAUSE, ACL SETUSER...)."""
        return self.admin(password).execute_command(*args)  # type: ignore[no-untyped-call]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def redis_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="csr-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def start_redis(redis_dir: Path) -> Iterator[Any]:
    """`start_redis(*args)` starts one more server (at the same socket when the previous is gone)."""
    servers: list[RedisServer] = []

    def start(*args: str, tls: dict[str, Path] | None = None) -> RedisServer:
        server = RedisServer(redis_dir, list(args), tls=tls, port=free_port() if tls else 0)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def redis_server(start_redis: Any) -> RedisServer:
    server: RedisServer = start_redis()
    return server


def self_signed(directory: Path) -> dict[str, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {"cert": cert, "key": key}


# -- a Bazel remote cache: /ac/ and /cas/ as bazel-remote serves them --------------------------------
@dataclass
class BazelCache:
    ac: dict[str, bytes] = field(default_factory=dict)
    cas: dict[str, bytes] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)
    """Cleared: every GET waits for it (a slow server); set by default."""
    credentials: str | None = None
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/prefix"


def _handler(cache: BazelCache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _where(self) -> tuple[dict[str, bytes], str] | None:
            parts = self.path.split("/")
            if len(parts) != 4 or parts[1] != "prefix" or parts[2] not in ("ac", "cas") or len(parts[3]) != 64:
                return None
            return (cache.ac if parts[2] == "ac" else cache.cas), parts[3]

        def _authorised(self) -> bool:
            if cache.credentials is None:
                return True
            expected = "Basic " + base64.b64encode(cache.credentials.encode()).decode()
            return self.headers.get("Authorization") == expected

        def _reply(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            cache.requests.append("GET " + self.path)
            cache.gate.wait(timeout=30)
            where = self._where()
            if not self._authorised():
                return self._reply(401)
            if where is None:
                return self._reply(400)
            store, digest = where
            if digest not in store:
                return self._reply(404)
            return self._reply(200, store[digest])

        def do_PUT(self) -> None:
            cache.requests.append("PUT " + self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            where = self._where()
            if not self._authorised():
                return self._reply(401)
            if where is None:
                return self._reply(400)
            store, digest = where
            if store is cache.cas and hashlib.sha256(body).hexdigest() != digest:
                return self._reply(400, b"CAS content does not hash to its name")
            if store is cache.ac:
                found = parse_action_result(body)
                if found is None or found[0] not in cache.cas:  # bazel-remote's AC validation
                    return self._reply(400, b"ActionResult refers to a missing blob")
            store[digest] = body
            return self._reply(200)

    return Handler


@pytest.fixture
def bazel_cache() -> Iterator[BazelCache]:
    cache = BazelCache()
    cache.gate.set()
    cache.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cache))
    cache.server.daemon_threads = True
    thread = threading.Thread(target=cache.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cache
    finally:
        cache.gate.set()
        cache.server.shutdown()
        cache.server.server_close()
        thread.join(timeout=10)
