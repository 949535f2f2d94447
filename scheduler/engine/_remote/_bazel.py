"""The Bazel remote cache adapter: the HTTP protocol of bazel-remote, BuildBuddy and NativeLink.

Two namespaces, as Bazel uses them: `/cas/<sha256>` holds a blob under the SHA-256 of its content
(servers verify it on upload), `/ac/<sha256>` an `ActionResult` protobuf under the digest of an
"action". Our action is the namespaced key: `/ac/sha256(key)` holds an ActionResult with one output
file, `value`, whose digest names the framed value in the CAS. The blob is uploaded before its
action, so a validating server (bazel-remote checks that an ActionResult's blobs exist) accepts it,
and a reader checks the blob against its digest before the value's own checksum and signature.
An action whose blob was evicted is a miss. Bazel caches bound their size and evict the least
recently used: the TTL is theirs, not ours.

Standard library only (`http.client` in worker threads, a few keep-alive connections, a capacity
limiter): the protocol is plain GET and PUT, and a reader abandoned by its budget finishes in its
thread without holding the question. Basic auth from the URL (`https://user:pw@cache:443/prefix`).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import queue
from urllib.parse import unquote, urlsplit

import anyio

from ... import _settings
from ._transport import Rejected, RemoteError, Transport

_OUTPUT = b"value"


class BazelTransport(Transport):
    def __init__(self, url: str, *, timeout_s: float = 10.0, connections: int = 8) -> None:
        self.name = _settings.redact_url(url)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RemoteError(f"{self.name}: not an http(s) URL with a host")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Content-Type": "application/octet-stream"}
        if parts.username is not None:
            token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        self._timeout = timeout_s
        self._idle: queue.SimpleQueue[http.client.HTTPConnection] = queue.SimpleQueue()
        self._connections = connections
        self._limiter: anyio.CapacityLimiter | None = None

    async def get(self, keys: list[str]) -> dict[str, bytes | Rejected]:
        found: dict[str, bytes | Rejected] = {}

        async def one(key: str) -> None:
            status, body = await self._call("GET", "ac", _sha256(key.encode()))
            if status == 404:
                return
            _expect(status, "GET /ac/")
            digest = parse_action_result(body)
            if digest is None:
                found[key] = Rejected("an action result that is not one of ours")
                return
            status, blob = await self._call("GET", "cas", digest[0])
            if status == 404:
                return  # the blob was evicted before its action: a miss
            _expect(status, "GET /cas/")
            if _sha256(blob) != digest[0] or len(blob) != digest[1]:
                found[key] = Rejected("a CAS blob that does not match its digest")
                return
            found[key] = blob

        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(one, key)
        return found

    async def put(self, items: dict[str, bytes], ttl_s: int) -> None:
        async def one(key: str, value: bytes) -> None:
            digest = _sha256(value)
            _expect((await self._call("PUT", "cas", digest, value))[0], "PUT /cas/")
            _expect(
                (await self._call("PUT", "ac", _sha256(key.encode()), action_result(digest, len(value))))[0], "PUT /ac/"
            )

        async with anyio.create_task_group() as tg:
            for key, value in items.items():
                tg.start_soon(one, key, value)

    async def ping(self) -> None:
        status, _ = await self._call("GET", "ac", _sha256(b"cargo-scheduler ping"))
        if status not in (200, 404):
            _expect(status, "GET /ac/")

    async def _call(self, method: str, space: str, digest: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._connections)
        path = f"{self._prefix}/{space}/{digest}"
        return await anyio.to_thread.run_sync(
            self._request, method, path, body, limiter=self._limiter, abandon_on_cancel=True
        )

    def _request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """One request on an idle keep-alive connection, or a new one; a reused connection the
        server closed meanwhile is replaced once."""
        for attempt in (0, 1):
            try:
                conn, reused = self._idle.get_nowait(), True
            except queue.Empty:
                conn, reused = self._connect(), False
            try:
                conn.request(method, path, body=body, headers=self._headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise RemoteError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
            if response.will_close:
                conn.close()
            else:
                self._idle.put(conn)
            return response.status, data
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    async def aclose(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _expect(status: int, what: str) -> None:
    if status not in (200, 201, 204):
        hint = " (credentials refused)" if status in (401, 403) else ""
        raise RemoteError(f"{what} answered HTTP {status}{hint}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the three protobuf messages we need, by hand (REAPI remote_execution.proto) -----------------
# ActionResult { repeated OutputFile output_files = 2; }  OutputFile { string path = 1; Digest digest = 2; }
# Digest { string hash = 1; int64 size_bytes = 2; }


def action_result(hash_hex: str, size: int) -> bytes:
    digest = _bytes_field(1, hash_hex.encode()) + _varint(2 << 3) + _varint(size)
    return _bytes_field(2, _bytes_field(1, _OUTPUT) + _bytes_field(2, digest))


def parse_action_result(data: bytes) -> tuple[str, int] | None:
    """The digest of our one output file, or None if `data` is not such an ActionResult."""
    try:
        for number, value in _fields(data):
            if number != 2 or not isinstance(value, bytes):
                continue
            fields = dict(_fields(value))
            if fields.get(1) != _OUTPUT or not isinstance(fields.get(2), bytes):
                continue
            digest = dict(_fields(fields[2]))  # type: ignore[arg-type]
            hash_hex, size = digest.get(1), digest.get(2, 0)
            if isinstance(hash_hex, bytes) and isinstance(size, int):
                return hash_hex.decode("ascii"), size
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    return None


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints and fixed fields, bytes for length-delimited."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        wire = tag & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            out.append((tag >> 3, value))
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            out.append((tag >> 3, data[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            out.append((tag >> 3, int.from_bytes(data[pos : pos + width], "little")))
            pos += width
        else:
            raise ValueError(f"wire type {wire}")
    return out
