"""The seam: what a remote store must do, in bytes (like httpx's transports).

A transport moves opaque values by opaque keys and knows nothing of checksums, signatures, budgets
or breakers: `RemoteStore` (`_store.py`) does those once for every adapter. Two adapters exist,
Redis (`_redis.py`) and the Bazel remote cache HTTP protocol (`_bazel.py`); a third (S3, a
memcached, NativeLink's gRPC) is one class with these four methods.

A transport raises `RemoteError` (or any exception: the store catches them all) for trouble: a down
server, a refused password, a full memory. It never retries on its own: the store's budget and
breaker decide what trouble costs.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from ..._exceptions import RemoteError

__all__ = ["Rejected", "RemoteError", "Transport"]


@dataclass(frozen=True)
class Rejected:
    """Something lies under the key but cannot be one of our values (a CAS blob whose content does
    not hash to its name): reported like a bad checksum, served as a miss."""

    reason: str


class Transport(abc.ABC):
    name: str
    """Where the store is, with any password replaced by ***: what an answer names."""

    @abc.abstractmethod
    async def get(self, keys: list[str]) -> dict[str, bytes | Rejected]:
        """The values found (a key with none is left out)."""

    @abc.abstractmethod
    async def put(self, items: dict[str, bytes], ttl_s: int) -> None:
        """Store every item, to expire after `ttl_s` where the store supports it."""

    async def ping(self) -> None:
        """Open a connection (and fail if none can be had): done in the background at start, so the
        first question does not spend its budget on a TCP or TLS handshake."""
        await self.get([])

    async def aclose(self) -> None:  # noqa: B027 - optional: not every transport holds anything
        """Release connections."""
