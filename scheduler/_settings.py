"""The latency knobs: `CARGO_SCHEDULER_*` environment variables, read once by the daemon.

A user sets them where the MCP client starts the server (Codex: `[mcp_servers.NAME.env]`), so they
are environment variables rather than tool arguments: one decision per workspace, not per call.
docs/tuning.md gives each knob's measured effect on recorded agent sessions.

Standard library only: the stdio front reads them too, because the daemon it connects to must have
been started with the same settings (a daemon with other settings is replaced, like an old build).
A value we do not accept is an error naming the variable, the value and what is accepted; it is
never silently replaced by the default (CARGO_SCHEDULER_IDLE_TIMEOUT, which predates the rule, is
the one exception: see `idle_timeout_s`).

Every environment variable the package consults for itself is read here. The settings in
`VARIABLES` (the latency knobs, ALLOW_ENV, which widens `cargo_env`'s allow-list, the shared
tier's knobs, sccache and the target-dir seed) are the daemon's identity (`fingerprint`); the
cache directory, the idle timeout and whether the CLI starts a daemon are read where they are used,
through `cache_dir()`, `idle_timeout_s()` and `start_daemon()`, and are not. The shared
tier's knobs (`remote()`, docs/fleet.md) may hold a password or a key: the fingerprint keeps a
digest of those, never the secret.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Literal, NamedTuple, TypeVar, get_args

from ._answers import ANSWERS, PEER_ANSWERS, answers
from ._exceptions import ConfigError

__all__ = ["ANSWERS", "PEER_ANSWERS", "answers"]
"""Re-exported: CARGO_SCHEDULER_ANSWERS is read per session (`_answers`, kept import-free for the
front's handshake path), not by `Settings`."""

SCOPE = "CARGO_SCHEDULER_SCOPE"
PREWARM = "CARGO_SCHEDULER_PREWARM"
RA_WAIT = "CARGO_SCHEDULER_RA_WAIT"
RA_CHECK_ON_SAVE = "CARGO_SCHEDULER_RA_CHECK_ON_SAVE"
RA_TARGET_DIR = "CARGO_SCHEDULER_RA_TARGET_DIR"
CACHE_MB = "CARGO_SCHEDULER_CACHE_MB"
TARGET_DIR = "CARGO_SCHEDULER_TARGET_DIR"
ALLOW_ENV = "CARGO_SCHEDULER_ALLOW_ENV"
REMOTE = "CARGO_SCHEDULER_REMOTE"
REMOTE_READONLY = "CARGO_SCHEDULER_REMOTE_READONLY"
REMOTE_HMAC_KEY = "CARGO_SCHEDULER_REMOTE_HMAC_KEY"
REMOTE_HMAC_KEY_FILE = "CARGO_SCHEDULER_REMOTE_HMAC_KEY_FILE"
REMOTE_BUDGET_MS = "CARGO_SCHEDULER_REMOTE_BUDGET_MS"
REMOTE_TTL_S = "CARGO_SCHEDULER_REMOTE_TTL_S"
REMOTE_VARIABLES = (REMOTE, REMOTE_READONLY, REMOTE_HMAC_KEY, REMOTE_HMAC_KEY_FILE, REMOTE_BUDGET_MS, REMOTE_TTL_S)
SCCACHE = "CARGO_SCHEDULER_SCCACHE"
SEED = "CARGO_SCHEDULER_SEED"
FLEET_VARIABLES = (SCCACHE, SEED)
"""Compiled artifacts across checkouts (docs/fleet.md): sccache as the engine's rustc wrapper, and a
new worktree's target dir seeded from a sibling's by reflink."""
LATENCY_KNOBS = (SCOPE, PREWARM, RA_WAIT, RA_CHECK_ON_SAVE, RA_TARGET_DIR, CACHE_MB, TARGET_DIR)
"""The knobs docs/tuning.md measures, one by one, on recorded agent sessions."""
JOB_AFTER = "CARGO_SCHEDULER_JOB_AFTER_S"
VARIABLES = (*LATENCY_KNOBS, ALLOW_ENV, JOB_AFTER, *REMOTE_VARIABLES, *FLEET_VARIABLES)
_SECRET = (REMOTE, REMOTE_HMAC_KEY)
"""Values that may hold a password or a key: the fingerprint (shown in the daemon's status) holds a
digest of them, enough to tell that a daemon was started with another one, never the secret."""
REMOTE_SCHEMES = ("redis", "rediss", "unix", "http", "https")
MIN_HMAC_KEY_CHARS = 16
CACHE_DIR = "CARGO_SCHEDULER_CACHE_DIR"
IDLE_TIMEOUT = "CARGO_SCHEDULER_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT_S = 30 * 60.0
START_DAEMON = "CARGO_SCHEDULER_START_DAEMON"

Scope = Literal["auto", "changed", "affected", "workspace"]
"""How far a check reaches (engine/_report.py uses this one; it is here so the front needs no engine)."""
Prewarm = Literal["index", "none", "check"]
Place = Literal["separate", "shared"]
Policy = Literal["shared", "private"]
_C = TypeVar("_C", bound=str)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
MAX_RA_WAIT_S = 300.0
"""Codex gives a tool call 300 s; waiting longer for rust-analyzer would only turn into its timeout."""


class Settings(NamedTuple):
    """What the daemon does on its own initiative and where it puts things. Defaults are the fastest
    measured for agent sessions; the note under each field says what the alternative buys. (A
    NamedTuple, not a dataclass: `dataclasses` costs the front ~6 ms to import.)"""

    scope: Scope = "auto"
    """Default scope of cargo_check/clippy/build/test when a call names none."""
    prewarm: Prewarm = "index"
    """At daemon start: `index` loads rust-analyzer and the engine's view of the tree; `check` also
    checks the whole workspace in the background (the cache is full before the first question);
    `none` starts nothing until a call asks."""
    ra_wait_s: float = 30.0
    """How long an analyzer call waits for rust-analyzer to finish loading before it answers
    `indexing`; 0 answers at once."""
    ra_check_on_save: bool = False
    """Let rust-analyzer run its own `cargo check` of a file's package each time we pass it an edit of
    an open file (we send it a save): its diagnostics then include rustc's, at the price of a second
    cargo per edit."""
    ra_target_dir: Place = "separate"
    """`separate`: rust-analyzer's cargo runs use target/rust-analyzer; `shared`: target/ itself,
    where they wait for (and block) the engine's cargo on the build lock."""
    cache_mb: int = 512
    """Size bound of the on-disk diagnostics cache; 0 keeps answers in memory only (lost on restart)."""
    target_dir: Policy = "shared"
    """`shared`: the workspace's own target dir, warm from the user's builds; `private`:
    target/cargo-scheduler/agent, never contending with the user's cargo, built from cold once."""
    allow_env: tuple[str, ...] = ()
    """Variables `cargo_env` may set beyond its allow-list (names, or prefixes ending in `*`), as
    `serve --allow-env NAME` does for one session; docs/mcp.md lists what is allowed anyway."""
    job_after_s: float = 50.0
    """How long a test, build or check call is answered in the foreground before it becomes a job
    (a handle to wait on, poll or cancel; progress notifications meanwhile). Below both hosts'
    patience: Claude Code moves a call to the background after 2 minutes, Codex cuts one at its tool
    timeout (300 s by default). 0 never makes a job (the call waits, as the peers do)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings in `env` (default: this process's environment). Raises ConfigError."""
        source = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = source.get(name)
            return value.strip() if value is not None and value.strip() else None

        d = cls()
        return cls(
            scope=_choice(SCOPE, get(SCOPE), get_args(Scope), d.scope),
            prewarm=_choice(PREWARM, get(PREWARM), get_args(Prewarm), d.prewarm),
            ra_wait_s=_seconds(RA_WAIT, get(RA_WAIT), d.ra_wait_s),
            ra_check_on_save=_flag(RA_CHECK_ON_SAVE, get(RA_CHECK_ON_SAVE), d.ra_check_on_save),
            ra_target_dir=_choice(
                RA_TARGET_DIR,
                get(RA_TARGET_DIR),
                get_args(Place),
                d.ra_target_dir,
                hint="it says where rust-analyzer's cargo runs go, not a path",
            ),
            cache_mb=_megabytes(CACHE_MB, get(CACHE_MB), d.cache_mb),
            target_dir=_choice(
                TARGET_DIR,
                get(TARGET_DIR),
                get_args(Policy),
                d.target_dir,
                hint="to move cargo's output elsewhere, set CARGO_TARGET_DIR",
            ),
            allow_env=_names(ALLOW_ENV, get(ALLOW_ENV)),
            job_after_s=_seconds(JOB_AFTER, get(JOB_AFTER), d.job_after_s),
        )

    def changed(self) -> dict[str, object]:
        """The fields that differ from the defaults (what `scheduler_status` shows)."""
        default = Settings()
        return {name: value for name, value in self._asdict().items() if value != getattr(default, name)}


def fingerprint(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The knobs as set in `env`, unparsed: what a front and its daemon must agree on. Unparsed so
    that a front never fails on a bad value: the daemon it starts reports the error instead."""
    source = os.environ if env is None else env
    found = {name: source[name].strip() for name in VARIABLES if source.get(name, "").strip()}
    for name in _SECRET:
        if name in found:
            digest = "sha256:" + hashlib.sha256(found[name].encode()).hexdigest()[:16]
            shown = redact_url(found[name]) if name == REMOTE else None
            if shown != found[name]:
                found[name] = digest if shown is None else f"{shown} ({digest})"
    return found


class RemoteSettings(NamedTuple):
    """The shared tier (scheduler/engine/_remote/, docs/fleet.md): where it is and how far it is trusted."""

    url: str
    """redis://, rediss:// (TLS), unix:// (a Redis socket), or http(s):// (a Bazel remote cache)."""
    readonly: bool = False
    """Read the tier, never write it (agents read, CI writes). Enforce it on the server too (ACL)."""
    hmac_key: bytes | None = None
    """Sign what is written; read only entries signed with this key."""
    budget_s: float = 0.2
    """What the tier may add to one question, at most; past it the answer says it was skipped."""
    ttl_s: int = 7 * 24 * 3600
    """How long a written entry lives in Redis (a Bazel cache evicts by its own size bound)."""

    def __repr__(self) -> str:  # never print the key, nor a password in the URL
        return (
            f"RemoteSettings(url={redact_url(self.url)!r}, readonly={self.readonly}, "
            f"signed={self.hmac_key is not None}, budget_s={self.budget_s}, ttl_s={self.ttl_s})"
        )


def remote(env: Mapping[str, str] | None = None) -> RemoteSettings | None:
    """The shared tier's settings, or None when CARGO_SCHEDULER_REMOTE is not set. Raises ConfigError."""
    source = os.environ if env is None else env

    def get(name: str) -> str | None:
        value = source.get(name)
        return value.strip() if value is not None and value.strip() else None

    url = get(REMOTE)
    if url is None:
        return None
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in REMOTE_SCHEMES:
        accepted = "a URL: redis://, rediss:// (TLS), unix:// (a Redis socket) or http(s):// (a Bazel remote cache)"
        raise ConfigError(REMOTE, redact_url(url), accepted)
    d = RemoteSettings(url)
    budget_ms = get(REMOTE_BUDGET_MS)
    if budget_ms is not None and not (budget_ms.isdigit() and 1 <= int(budget_ms) <= 10_000):
        raise ConfigError(REMOTE_BUDGET_MS, budget_ms, "a whole number of milliseconds from 1 to 10000")
    ttl = get(REMOTE_TTL_S)
    if ttl is not None and not (ttl.isdigit() and int(ttl) >= 60):
        raise ConfigError(REMOTE_TTL_S, ttl, "a whole number of seconds, 60 or more")
    return RemoteSettings(
        url=url,
        readonly=_flag(REMOTE_READONLY, get(REMOTE_READONLY), d.readonly),
        hmac_key=_hmac_key(get(REMOTE_HMAC_KEY), get(REMOTE_HMAC_KEY_FILE)),
        budget_s=d.budget_s if budget_ms is None else int(budget_ms) / 1000,
        ttl_s=d.ttl_s if ttl is None else int(ttl),
    )


def redact_url(url: str) -> str:
    """`url` with the password of its user part, and a `password=` query value, replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    user, at, host = authority.rpartition("@")
    if at and ":" in user:
        authority = user.partition(":")[0] + ":***@" + host
    tail = re.sub(r"(?i)(password=)[^&]*", r"\1***", tail)
    return f"{scheme}://{authority}{slash}{tail}"


def _hmac_key(inline: str | None, path: str | None) -> bytes | None:
    if inline is not None and path is not None:
        raise ConfigError(REMOTE_HMAC_KEY_FILE, path, f"unset when {REMOTE_HMAC_KEY} is set (one key, not two)")
    if path is not None:
        try:
            with open(path, "rb") as f:
                key = f.read().strip()
        except OSError as exc:
            raise ConfigError(REMOTE_HMAC_KEY_FILE, path, f"a readable file holding the key ({exc.strerror})") from exc
        name, shown = REMOTE_HMAC_KEY_FILE, path
    elif inline is not None:
        key, name, shown = inline.encode(), REMOTE_HMAC_KEY, f"<{len(inline)} characters, not shown>"
    else:
        return None
    if len(key) < MIN_HMAC_KEY_CHARS:
        raise ConfigError(name, shown, f"a key of at least {MIN_HMAC_KEY_CHARS} characters (`openssl rand -hex 32`)")
    return key


def sccache(env: Mapping[str, str] | None = None) -> str | None:
    """The sccache the engine's cargo runs go through ($CARGO_SCHEDULER_SCCACHE): None when unset or
    off, "sccache" (found on PATH) for `1`/`sccache`/`on`, else the path given, which must name an
    executable. (A caller whose own RUSTC_WRAPPER is sccache gets it without this: cargo/_sccache.py.)
    Raises ConfigError."""
    value = (os.environ if env is None else env).get(SCCACHE, "").strip()
    if not value or value.lower() in _FALSE:
        return None
    if value.lower() in (*_TRUE, "sccache"):
        return "sccache"
    if not (os.path.isfile(value) and os.access(value, os.X_OK)):
        raise ConfigError(SCCACHE, value, "1 (the sccache on PATH), 0, or the path of an sccache executable")
    return value


def seed(env: Mapping[str, str] | None = None) -> bool:
    """$CARGO_SCHEDULER_SEED: seed an empty target dir from a sibling worktree's by reflink (on by
    default; a no-op where the filesystem cannot reflink). Raises ConfigError."""
    value = (os.environ if env is None else env).get(SEED, "").strip()
    return _flag(SEED, value or None, True)


def cache_dir(env: Mapping[str, str] | None = None) -> str:
    """$CARGO_SCHEDULER_CACHE_DIR, else $XDG_CACHE_HOME/cargo-scheduler, else ~/.cache/cargo-scheduler."""
    source = os.environ if env is None else env
    explicit = source.get(CACHE_DIR)
    if explicit:
        return explicit
    base = source.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cargo-scheduler")


def idle_timeout_s(env: Mapping[str, str] | None = None) -> float:
    """Seconds an idle daemon waits for a client before it exits: $CARGO_SCHEDULER_IDLE_TIMEOUT, else
    30 minutes. Unlike the knobs above, an unreadable value falls back to the default (as it always
    has: a daemon that refused to start over its idle timeout would fail every call of the front)."""
    raw = (os.environ if env is None else env).get(IDLE_TIMEOUT)
    if not raw:
        return DEFAULT_IDLE_TIMEOUT_S
    try:
        return float(raw)
    except ValueError:
        return DEFAULT_IDLE_TIMEOUT_S


def start_daemon(env: Mapping[str, str] | None = None) -> bool:
    """Whether `cargo-scheduler check` (and build, clippy, test), answering in process because no
    daemon serves the workspace, starts one in the background for the next question:
    $CARGO_SCHEDULER_START_DAEMON, default on. The next question then costs Python's start and a
    socket round trip (1/11 to 1/18 of cargo's no-op on 45- and 71-member real workspaces, measured
    2026-12-07) instead of the imports and a walk of the tree (slower than cargo's no-op). `0` for a
    job that asks once (CI). A caller's choice, not the daemon's: it is not in the fingerprint."""
    raw = (os.environ if env is None else env).get(START_DAEMON, "").strip()
    return _flag(START_DAEMON, raw or None, True)


def _choice(name: str, value: str | None, accepted: tuple[_C, ...], default: _C, hint: str = "") -> _C:
    if value is None:
        return default
    for choice in accepted:
        if value.lower() == choice:
            return choice
    raise ConfigError(name, value, "one of " + ", ".join(accepted) + (f" ({hint})" if hint else ""))


def _flag(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(name, value, "1 or 0 (also true/false, yes/no, on/off)")


def _seconds(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_RA_WAIT_S:  # also rejects nan
        raise ConfigError(name, value, f"a number of seconds from 0 to {MAX_RA_WAIT_S:.0f}")
    return seconds


def _megabytes(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise ConfigError(name, value, "a whole number of megabytes, 0 or more (0: memory only)")
    return int(value)


def _names(name: str, value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    names = tuple(dict.fromkeys(value.replace(",", " ").split()))
    for item in names:
        base = item[:-1] if item.endswith("*") else item
        if not base or base[0].isdigit() or not all(c.isascii() and (c.isalnum() or c == "_") for c in base):
            raise ConfigError(name, value, "variable names or prefixes ending in '*', comma or space separated")
    return names
