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
from collections.abc import Mapping
from dataclasses import dataclass

import xxhash

from ..cargo import _graph
from ..cargo._workspace import Workspace
from ._fingerprint import Snapshot

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
TOOLCHAIN_FILES = ("rust-toolchain", "rust-toolchain.toml")


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
    """The part of an environment that cargo and rustc read as build inputs."""
    return tuple(sorted((k, v) for k, v in env.items() if k in CARGO_ENV_EXACT or k.startswith(CARGO_ENV_PREFIXES)))


def global_digest(ws: Workspace, snap: Snapshot, rustc_version: str, env: Mapping[str, str], command: Command) -> bytes:
    """Inputs every package shares: toolchain, lockfile, cargo config, environment, command, root.

    Files outside every package (anything not owned by a member) are in `snap.by_owner[None]`. The
    files cargo reads for every member (the root manifest, Cargo.lock, .cargo/config*, toolchain
    files, at the root and above it) are also read here: a package at the workspace root owns them
    in the snapshot, and a .gitignore may leave them out of it (libraries often ignore Cargo.lock).
    """
    h = xxhash.xxh3_128()
    h.update(b"v1\0" + str(ws.root).encode() + b"\0" + rustc_version.encode() + b"\0")
    h.update(snap.owner_digest(None))
    for name in ("Cargo.toml", "Cargo.lock"):
        h.update(_file_digest(ws.root / name))
    for directory in [ws.root, *ws.root.parents]:
        for name in ("config.toml", "config"):
            path = directory / ".cargo" / name
            h.update(_file_digest(path))
        for name in TOOLCHAIN_FILES:
            h.update(_file_digest(directory / name))
    h.update(repr(cargo_environment(env)).encode())
    h.update(command.encode())
    return h.digest()


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


_FILE_DIGESTS: dict[str, tuple[tuple[int, int, int], bytes]] = {}


def _file_digest(path: os.PathLike[str] | str) -> bytes:
    """Digest of a small config file, re-read only when its stat changes (asked on every check)."""
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except OSError:
        return b"-"
    sig = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _FILE_DIGESTS.get(name)
    if cached is not None and cached[0] == sig:
        return cached[1]
    try:
        with open(name, "rb") as fh:
            digest = xxhash.xxh3_64_digest(fh.read())
    except OSError:
        return b"-"
    _FILE_DIGESTS[name] = (sig, digest)
    return digest
