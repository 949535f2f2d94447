"""The Redis adapter: `redis://`, `rediss://` (TLS) and `unix://` URLs, ACL user and password in the URL.

Client: the `redis` package's asyncio API (redis-py, maintained by Redis Inc., the reference client:
RESP2/3, TLS, ACL users, unix sockets, URL parsing; its cancellation drops the connection in the
middle of a command instead of reading a stale reply on it later). One `MGET` per read, one
pipelined `SET key value EX ttl` per write batch (not a transaction: a partly refused batch keeps
what was accepted), so a question costs one round trip whatever its number of keys.

Options go in the URL as redis-py reads them: `rediss://user:pw@host:6380/0?ssl_ca_certs=/ca.pem`,
`unix://user:pw@/run/redis.sock?db=0`. The client never retries on its own: the store's budget and
breaker (`_store.py`) own what trouble costs. Needs the asyncio backend of anyio (the daemon's).
"""

from __future__ import annotations

from typing import Any

from ... import _settings
from ._transport import Rejected, RemoteError, Transport

_READ_CHUNK = 512


class RedisTransport(Transport):
    def __init__(self, url: str, *, connect_timeout_s: float = 2.0, timeout_s: float = 10.0) -> None:
        import redis.asyncio as aioredis  # here: only a daemon with a Redis tier pays the import
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.name = _settings.redact_url(url)
        try:
            self._client: Any = aioredis.from_url(
                url,
                socket_connect_timeout=connect_timeout_s,
                socket_timeout=timeout_s,
                retry=Retry(NoBackoff(), 0),
                retry_on_error=[],
                health_check_interval=30,
                # No client_name: CLIENT SETNAME on connect would fail for an ACL user allowed
                # only MGET (a reader) or MGET and SET (a writer). (A refused SETINFO is ignored.)
            )
        except ValueError as exc:  # a URL redis-py cannot read
            raise RemoteError(f"{self.name}: {exc}") from exc

    async def get(self, keys: list[str]) -> dict[str, bytes | Rejected]:
        found: dict[str, bytes | Rejected] = {}
        for start in range(0, len(keys), _READ_CHUNK):
            chunk = keys[start : start + _READ_CHUNK]
            values = await self._client.mget(chunk)
            found.update({key: value for key, value in zip(chunk, values, strict=True) if value is not None})
        return found

    async def put(self, items: dict[str, bytes], ttl_s: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(key, value, ex=ttl_s)
        results = await pipe.execute(raise_on_error=False)
        refused = [r for r in results if isinstance(r, Exception)]
        if refused:
            first = refused[0]
            full = type(first).__name__ == "OutOfMemoryError" or "maxmemory" in str(first)
            why = (
                f"the Redis is full (maxmemory with noeviction): {first}"
                if full
                else f"{type(first).__name__}: {first}"
            )
            raise RemoteError(f"{len(refused)} of {len(items)} writes refused: {why}")

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        await self._client.aclose()
