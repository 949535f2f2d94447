"""Cache keys: a Merkle hash per package over everything that can change cargo's answer for it.

key(P) = H(command, global inputs, files of P (its manifest included), key(D) for each workspace
member D that P depends on). So an edit to the hub changes the keys of exactly the hub and its
dependents, and two workspace roots (git worktrees) never share a key. docs/cache-keys.md lists every
input and why it is there; an input that can change cargo's output and is missing here is a bug.

Dependency cycles (possible through dev-dependencies when tests are built) are hashed per strongly
connected component: members of a cycle share the component's hash, salted with their own name.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import xxhash

from ..cargo import _graph, _outside
from ..cargo._config import config_files
from ..cargo._sccache import is_sccache
from ..cargo._workspace import Workspace
from ._clippy_config import clippy_config_digest
from ._fingerprint import Snapshot
from ._inputs import Manifest

# Environment that cargo or rustc read and that changes what they produce. Prefixes end with "_".
CARGO_ENV_EXACT = frozenset(
    {
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "CARGO_INCREMENTAL",
        "CARGO_TARGET_DIR",
        "RUSTUP_TOOLCHAIN",
        "CARGO_HOME",
        "RUSTC_BOOTSTRAP",
        "CARGO_NET_OFFLINE",
        "__CARGO_FIX_YOLO",
        "CARGO_UNSTABLE_SPARSE_REGISTRY",
        "CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS",
    }
)
CARGO_ENV_PREFIXES = ("CARGO_BUILD_", "CARGO_PROFILE_", "CARGO_TARGET_", "CARGO_UNSTABLE_", "CLIPPY_")


@dataclass(frozen=True)
class Command:
    """What is asked of cargo, reduced to what enters the key."""

    kind: str
    features: tuple[str, ...] = ()
    all_features: bool = False
    no_default_features: bool = False
    release: bool = False
    all_targets: bool = False
    toolchain: str | None = None
    extra_env: tuple[tuple[str, str], ...] = ()

    @property
    def includes_tests(self) -> bool:
        """Test builds and all-targets builds compile dev-dependencies too."""
        return self.kind == "test" or self.all_targets

    def encode(self) -> bytes:
        return repr(
            (
                self.kind,
                sorted(self.features),
                self.all_features,
                self.no_default_features,
                self.release,
                self.all_targets,
                self.toolchain,
                sorted(self.extra_env),
            )
        ).encode()


def cargo_environment(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of an environment that cargo and rustc read as build inputs. An sccache
    RUSTC_WRAPPER is not one: it runs the same rustc on a miss and replays its output on a hit, so
    answers with and without it are the same answers (`cargo/_sccache.py`)."""
    return tuple(
        sorted(
            (k, v)
            for k, v in env.items()
            if (k in CARGO_ENV_EXACT or k.startswith(CARGO_ENV_PREFIXES))
            and not (k == "RUSTC_WRAPPER" and is_sccache(v))
        )
    )


def global_digest(
    ws: Workspace,
    snap: Snapshot,
    rustc_version: str,
    env: Mapping[str, str],
    command: Command,
) -> bytes:
    """Inputs every package shares: toolchain, lockfile, cargo config, environment, command.

    Files outside every package (anything not owned by a member) are in `snap.by_owner[None]`. The
    files cargo reads for every member (the root manifest, Cargo.lock, every `.cargo/config*` from the
    workspace up to `/` and in `$CARGO_HOME`, toolchain files at the root and above it) are read here
    by content at every question: a `.gitignore` may leave them out of the walk (libraries often
    ignore Cargo.lock), they may lie outside it, and a same-second rewrite can keep size and mtime.
    """
    h = xxhash.xxh3_128()
    # No path: the same sources give the same keys in any checkout on any machine (stored answers
    # carry placeholders for the checkout's paths; `_runs.to_entry`).
    h.update(b"v3\0" + rustc_version.encode() + b"\0")
    h.update(snap.owner_digest(None))
    h.update(config_digest(ws.root, env))
    h.update(ws.feature_requests)  # one member's feature requests change another's build
    h.update(_outside.manifests_digest(ws))  # and so can an outside path crate's
    h.update(repr(cargo_environment(env)).encode())
    h.update(command.encode())
    if command.kind == "clippy":  # where clippy looks for its configuration (`_clippy_config`)
        h.update(clippy_config_digest(ws, env))
    return h.digest()


def config_digest(root: Path, env: Mapping[str, str]) -> bytes:
    """The contents of the files that exist, in cargo's search order, named by kind but not by path:
    the same configuration found by another checkout (at another depth) or in another home directory
    is the same input."""
    h = xxhash.xxh3_128()
    for path in config_files(root, env):
        raw = _content(path)
        if raw is not None:
            h.update(os.path.basename(path).encode() + b"\0" + xxhash.xxh3_64_digest(raw))
            for included in _includes(path, raw):
                h.update(b"include\0" + os.path.basename(included).encode() + b"\0" + _content_digest(included))
    return h.digest()


def _content(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def included_configs(path: str, depth: int = 0) -> list[str]:
    """The files a cargo configuration file `include`s (relative to its directory; included files
    may include more), which cargo reads as part of it."""
    raw = _content(path)
    return [] if raw is None else _includes(path, raw, depth)


_INCLUDES: dict[tuple[str, bytes], list[str]] = {}
"""(path, content digest) -> what it includes directly: parsed once per content, not per question."""


def _includes(path: str, raw: bytes, depth: int = 0) -> list[str]:
    """`included_configs` for a file already read. Only a file that mentions `include` (or holds a
    TOML escape: `"incl\\u0075de"` is `include` too) is parsed."""
    if (b"include" not in raw and b"\\" not in raw) or depth > 8:
        return []
    memo = (path, xxhash.xxh3_64_digest(raw))
    direct = _INCLUDES.get(memo)
    if direct is None:
        try:
            value = tomllib.loads(raw.decode("utf-8")).get("include")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            value = None  # cargo refuses it: its content is in the key, and so is its error
        entries = value if isinstance(value, list) else [value]
        names = [e.get("path") if isinstance(e, dict) else e for e in entries]
        direct = [os.path.join(os.path.dirname(path), n) for n in names if isinstance(n, str)]
        if len(_INCLUDES) > 256:
            _INCLUDES.clear()
        _INCLUDES[memo] = direct
    return [found for d in direct for found in (d, *included_configs(d, depth + 1))]


def package_keys(ws: Workspace, snap: Snapshot, global_key: bytes, command: Command) -> dict[str, str]:
    """The key of every member, as hex, computed dependencies first."""
    edges = ws.dep_edges(dev=command.includes_tests)
    own = {name: snap.owner_digest(name) for name in ws.packages}
    keys: dict[str, str] = {}
    for component in _graph.strongly_connected(edges):
        members = set(component)
        h = xxhash.xxh3_128(global_key)
        for name in component:
            h.update(name.encode() + b"\0" + own[name])
            for dep in sorted(edges[name] - members):
                h.update(keys[dep].encode())
        shared = h.digest()
        for name in component:
            keys[name] = xxhash.xxh3_128_hexdigest(shared + name.encode())
    return keys


def _content_digest(path: str) -> bytes:
    """Digest of a small configuration file, read again at every question (no stat shortcut)."""
    try:
        with open(path, "rb") as fh:
            return xxhash.xxh3_64_digest(fh.read())
    except OSError:
        return b"-"


@dataclass(frozen=True)
class Keys:
    """Every key of one question, by member."""

    walk: dict[str, str]
    """Merkle over walked files only: equal before and after a run means no source moved under it."""
    base: dict[str, str]
    """Walked files, shared inputs and the library keys of the dependencies: what the recorded input
    manifests are stored under (the first, conservative key, known before anything is compiled)."""
    lib: dict[str, str | None]
    """What a dependent builds against: the base key plus the current content of every input the
    library's compiler recorded. None: no record yet, so nothing that builds on it has a sound key."""
    answer: dict[str, str | None]
    """The cache key of the member's answer: base plus the inputs of every unit of its answer and the
    values, in the question's environment, of every variable they read. None: a miss."""


ManifestLookup = Callable[[str, str, str], Manifest | None]
"""(kind "lib" or "answer", member, base key) -> the recorded manifest, if any."""


def manifest_keys(
    ws: Workspace,
    snap: Snapshot,
    global_key: bytes,
    command: Command,
    manifest: ManifestLookup,
    digest: Callable[[str], bytes],
    env: Mapping[str, str],
) -> Keys:
    """The keys of every member, dependencies first (see `Keys`)."""
    edges = ws.dep_edges(dev=command.includes_tests)
    walk = package_keys(ws, snap, global_key, command)
    base: dict[str, str] = {}
    lib: dict[str, str | None] = {}
    answer: dict[str, str | None] = {}
    for component in _graph.strongly_connected(edges):
        members = set(component)
        outside = sorted({d for n in component for d in edges[n]} - members)
        if any(lib[d] is None for d in outside):
            for name in component:  # built on a library whose inputs are unknown: no sound key
                base[name] = "?" + walk[name]
                lib[name] = answer[name] = None
            continue
        h = xxhash.xxh3_128(global_key)
        for name in component:
            h.update(name.encode() + b"\0" + snap.owner_digest(name))
        for dep in outside:
            h.update(str(lib[dep]).encode())
        shared = h.digest()
        for name in component:
            b = base[name] = xxhash.xxh3_128_hexdigest(shared + name.encode())
            lib[name] = _extend(b, manifest("lib", name, b), digest, env)
            answer[name] = _extend(b, manifest("answer", name, b), digest, env)
    return Keys(walk=walk, base=base, lib=lib, answer=answer)


def _extend(base: str, m: Manifest | None, digest: Callable[[str], bytes], env: Mapping[str, str]) -> str | None:
    if m is None:
        return None
    h = xxhash.xxh3_128(base.encode())
    for locator in m.files:
        h.update(locator.encode("utf-8", "surrogateescape") + b"\0" + digest(locator))
    for name in m.env:
        value = env.get(name)
        h.update(name.encode() + (b"=" + value.encode("utf-8", "surrogateescape") if value is not None else b"!"))
    return h.hexdigest()
