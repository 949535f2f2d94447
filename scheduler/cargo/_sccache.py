"""sccache as the rustc wrapper of the engine's cargo runs, and which cache it stores artifacts in.

Why: answers are shared through the tier, but a fresh checkout still compiles every registry crate
before its first answer for code that changed. sccache keeps those compiled units, so the next
checkout (at another path, on another machine with `$CARGO_HOME` at the same path) reuses them.

It is on when CARGO_SCHEDULER_SCCACHE names it (our configuration, not the caller's: `cargo_env`
still refuses RUSTC_WRAPPER) or when the question's environment already runs cargo through it.
Measured with cargo 1.95 (tests/cargo/test_sccache.py pins both): RUSTC_WRAPPER is not part of
cargo's unit fingerprints, so the user's own `cargo check` without the wrapper and ours through it
share one target dir without rebuilding; and sccache replays rustc's messages on a hit, so answers
are the same and keys ignore an sccache wrapper (`engine/_keys.cargo_environment`).

With a Redis tier (CARGO_SCHEDULER_REMOTE=redis://, rediss://, unix://) and no cache configured by the
user, sccache is pointed at the same Redis, under a key prefix of its own where the version has one.
Which variables: sccache 0.8 replaced the one URL variable (SCCACHE_REDIS) by an endpoint and parts.
A build without Redis (Debian's 0.4.0-pre.6: `Redis: false` under "Enabled features" in `--help`)
keeps its local disk cache, and the status says so.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio.abc

from .._settings import RemoteSettings, redact_url
from ._process import run_bounded
from ._sccache_server import SccacheServer

ENDPOINT_API = (0, 8)
"""The first sccache with SCCACHE_REDIS_ENDPOINT, _USERNAME, _PASSWORD, _DB and _KEY_PREFIX."""
KEY_PREFIX = "cargo-scheduler-sccache"
_PROBE_S = 10.0
_REDIS_SCHEMES = ("redis", "rediss", "unix")
# A cache the user chose: we do not replace it.
_USER_BACKEND = (
    "SCCACHE_REDIS",
    "SCCACHE_DIR",
    "SCCACHE_CONF",
    "SCCACHE_BUCKET",
    "SCCACHE_MEMCACHED",
    "SCCACHE_GCS_",
    "SCCACHE_AZURE_",
    "SCCACHE_GHA_",
    "SCCACHE_WEBDAV_",
    "SCCACHE_OSS_",
    "SCCACHE_COS_",
    "SCCACHE_MULTILEVEL_CHAIN",
)


def is_sccache(wrapper: str | None) -> bool:
    """A RUSTC_WRAPPER value that is sccache (`sccache`, or a path ending in it)."""
    return bool(wrapper) and os.path.basename(str(wrapper).rstrip("/")) in ("sccache", "sccache.exe")


@dataclass(frozen=True)
class Sccache:
    """One sccache binary, as its `--version` and `--help` describe it."""

    binary: str
    version: tuple[int, ...]
    version_text: str
    features: dict[str, bool] = field(default_factory=dict)

    @property
    def redis(self) -> bool:
        return self.features.get("redis", False)


def parse_features(help_text: str) -> dict[str, bool]:
    """The backends under "Enabled features:" in `sccache --help` (lower-case names)."""
    _, _, tail = help_text.partition("Enabled features:")
    return {m[0].lower(): m[1] == "true" for m in re.findall(r"^\s+(\w+):\s+(true|false)\s*$", tail, re.M)}


def parse_version(text: str) -> tuple[tuple[int, ...], str]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)(\S*)", text)
    if match is None:
        return (), text.strip()
    return tuple(int(g) for g in match.groups()[:3]), match.group(0)


async def probe(binary: str, env: Mapping[str, str]) -> Sccache | str:
    """The sccache at `binary` (looked up on the environment's PATH), or why it cannot be used.
    Neither command starts sccache's server."""
    path = shutil.which(binary, path=env.get("PATH")) if os.sep not in binary else binary
    if path is None or not os.access(path, os.X_OK):
        return f"{binary!r} not found on PATH"
    try:
        version = await run_bounded([path, "--version"], env=dict(env), timeout_s=_PROBE_S)
        helptext = await run_bounded([path, "--help"], env=dict(env), timeout_s=_PROBE_S)
    except OSError as exc:
        return f"could not run {path}: {exc}"
    if not version.ok:
        return f"`{path} --version` failed"
    numbers, text = parse_version(version.stdout.decode(errors="replace"))
    return Sccache(path, numbers, text, parse_features(helptext.stdout.decode(errors="replace")))


@dataclass(frozen=True)
class Wiring:
    env: dict[str, str]
    """What the engine adds to cargo's environment."""
    status: dict[str, Any]
    """What `scheduler_status` shows (no secret)."""
    note: str | None = None
    """Said once in an answer: why artifacts are not shared as configured."""


def wiring(tool: Sccache, env: Mapping[str, str], remote: RemoteSettings | None) -> Wiring:
    """RUSTC_WRAPPER and, with a Redis tier and no cache of the user's, the Redis variables."""
    add = {"RUSTC_WRAPPER": tool.binary} if not env.get("RUSTC_WRAPPER") else {}
    status: dict[str, Any] = {"binary": tool.binary, "version": tool.version_text, "redis_supported": tool.redis}
    own = sorted(k for k in env if k.startswith(_USER_BACKEND))
    scheme = remote.url.partition("://")[0].lower() if remote is not None else ""
    if own:
        return Wiring(add, {**status, "backend": "the caller's configuration", "variables": own})
    if scheme not in _REDIS_SCHEMES:
        return Wiring(add, {**status, "backend": "local disk (SCCACHE_DIR, or sccache's default)"})
    assert remote is not None
    if not tool.redis:
        note = (
            f"sccache {tool.version_text} was built without Redis: compiled artifacts are cached on this "
            "machine's disk only (answers are still shared through the tier)"
        )
        return Wiring(add, {**status, "backend": "local disk: this sccache has no Redis", "note": note}, note)
    redis = redis_variables(remote.url, tool.version, readonly=remote.readonly)
    shown = redact_url(remote.url.partition("?")[0])
    return Wiring({**add, **redis}, {**status, "backend": f"redis {shown}", "variables": sorted(redis)})


def redis_variables(url: str, version: tuple[int, ...], *, readonly: bool = False) -> dict[str, str]:
    """The tier's Redis in the variables this sccache reads. The query (redis-py's TLS options) is
    left out: neither API takes it."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if version and version < ENDPOINT_API:
        # One URL, `redis://[:password@]host[:port][/db]`; no key prefix (its keys are hex digests,
        # which never collide with the tier's `cargo-scheduler:v1:` keys).
        return {"SCCACHE_REDIS": url.partition("?")[0]}
    if parts.scheme == "unix":
        endpoint = f"unix://{unquote(parts.path)}"
        db = (query.get("db") or ["0"])[0]
    else:
        host = parts.hostname or "localhost"
        endpoint = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        db = parts.path.strip("/") or (query.get("db") or ["0"])[0]
    out = {"SCCACHE_REDIS_ENDPOINT": endpoint, "SCCACHE_REDIS_KEY_PREFIX": KEY_PREFIX}
    if db.isdigit():
        out["SCCACHE_REDIS_DB"] = db
    if parts.username:
        out["SCCACHE_REDIS_USERNAME"] = unquote(parts.username)
    if parts.password:
        out["SCCACHE_REDIS_PASSWORD"] = unquote(parts.password)
    if readonly:
        out["SCCACHE_REDIS_RW_MODE"] = "READ_ONLY"  # sccache 0.16 and later; older ones write
    return out


class Wrapping:
    """The engines' use of sccache: the binary probed once (per PATH), the decision taken for each
    environment a question brings (the last one kept for `scheduler_status`), and the server, started
    once by the pool's task group (`_sccache_server`)."""

    def __init__(self, configured: str | None, remote: RemoteSettings | None) -> None:
        self.configured = configured
        self.remote = remote
        self.status: dict[str, Any] = {"enabled": False, "reason": "CARGO_SCHEDULER_SCCACHE is not set"}
        self.server = SccacheServer()
        self._tg: anyio.abc.TaskGroup | None = None
        self._probes: dict[tuple[str, str | None], Sccache | str] = {}
        self._said: set[str] = set()

    def bind(self, tg: anyio.abc.TaskGroup) -> None:
        """Where the server runs: without one (a bare engine), cargo's runs start their own."""
        self._tg = tg

    async def environment(self, env: Mapping[str, str]) -> tuple[Mapping[str, str], list[str]]:
        """cargo's environment for a run in `env`, and what the answer should say (once each)."""
        wrapper = env.get("RUSTC_WRAPPER")
        if wrapper and not is_sccache(wrapper):
            if self.configured:
                self.status = {"enabled": False, "reason": f"the caller's RUSTC_WRAPPER ({wrapper}) is not sccache"}
            return env, []
        binary = wrapper or self.configured
        if not binary:
            return env, []
        via = "RUSTC_WRAPPER" if wrapper else "CARGO_SCHEDULER_SCCACHE"
        memo = (binary, env.get("PATH"))
        tool = self._probes.get(memo)
        if tool is None:
            tool = self._probes[memo] = await probe(binary, env)
        if isinstance(tool, str):
            self.status = {"enabled": False, "via": via, "reason": tool}
            return env, self._once(f"sccache not used ({via}): {tool}")
        wired = wiring(tool, env, self.remote)
        run_env = {**env, **wired.env} if wired.env else env
        if self._tg is not None:
            await self.server.ensure(self._tg, tool.binary, run_env)
        self.status = {"enabled": True, "via": via, **wired.status, **self.server.status}
        return run_env, self._once(wired.note)

    def _once(self, note: str | None) -> list[str]:
        if note is None or note in self._said:
            return []
        self._said.add(note)
        return [note]
