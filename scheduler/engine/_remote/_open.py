"""From settings to a cache: the one place that chooses an adapter for a URL."""

from __future__ import annotations

from pathlib import Path

from ... import _settings
from .._cache import DiagnosticsCache
from ._store import RemoteStore
from ._tiered import TieredCache
from ._transport import Transport


def open_transport(url: str) -> Transport:
    """redis://, rediss://, unix:// -> Redis; http://, https:// -> a Bazel remote cache."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("http", "https"):
        from ._bazel import BazelTransport

        return BazelTransport(url)
    from ._redis import RedisTransport

    return RedisTransport(url)


def open_store(settings: _settings.RemoteSettings) -> RemoteStore:
    return RemoteStore(
        open_transport(settings.url),
        readonly=settings.readonly,
        hmac_key=settings.hmac_key,
        ttl_s=settings.ttl_s,
    )


def open_cache(
    directory: Path | None = None,
    *,
    size_limit: int | None = None,
    settings: _settings.RemoteSettings | None = None,
) -> DiagnosticsCache:
    """The local cache, with the remote tier behind it when `settings` name one. A `TieredCache`
    must be entered with `running()` for its writes to reach the remote."""
    if settings is None:
        return DiagnosticsCache(directory, size_limit=size_limit)
    return TieredCache(directory, size_limit=size_limit, remote=open_store(settings), budget_s=settings.budget_s)
