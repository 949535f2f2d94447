"""`cargo metadata --no-deps`, remembered by everything it read: in this checkout, in every checkout
of the machine (the local cache) and of the fleet (the shared tier).

It costs about 90 ms on 150 members (2 cores), and a question that finds no warm engine (the CLI, the
shim, a fresh checkout) paid it every time. Its `--no-deps` output depends on:

- cargo: the toolchain's `rustc -vV` (the same toolchain's cargo; `_toolchain` decides which);
- configuration, by content: the root manifest, Cargo.lock, every `.cargo/config*` from the root up
  and in `$CARGO_HOME`, toolchain files (`_keys.config_digest`);
- cargo's and rustup's environment (every `CARGO*`, `RUSTUP*`, `RUST*` variable);
- the tree: every manifest by content, and the *names* of every file, since cargo discovers targets
  (`src/bin/x.rs`, `tests/y.rs`, `build.rs`), members (a new directory a glob matches) and a
  package's README by their presence. The content of other files is not read by it.

`tree_signature` digests the last two from a walk without knowing the members (every walked file
named Cargo.toml counts), so it is known before the metadata is; with the rest it is the key. An entry
is written only when the walk before the cargo run and the walk after it agree (`Engine.observe`): a
manifest edited while cargo ran is not remembered.

Paths: cargo names this checkout's real path throughout (package ids are `path+file://ROOT/...`). A
shareable entry (`mx:`) has the root replaced by `_runs.WORKSPACE_MARK`, rebased when read. It is
shareable only when no other absolute path is left in it: a path dependency or a target dir outside
the root, or a root that a file URL would escape, keep it in this checkout only (`mxl:`, the root in
the key, never sent to the tier).

Not seen, as by the walk itself: files `.gitignore` ignores. A target source created under an
ignored directory does not reload the metadata (cargo builds it; only its dep-info is overlooked).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import anyio
import xxhash

from ._cache import DiagnosticsCache
from ._fingerprint import Snapshot
from ._remote._tiered import TieredCache
from ._runs import WORKSPACE_MARK, replace_roots

SHARED = "mx:"
LOCAL = "mxl:"
_FORMAT = b"mx1"
_ENV_PREFIXES = ("CARGO", "RUST", "__CARGO")
_URL_SAFE_ROOT = re.compile(r"/[A-Za-z0-9._/-]*")


def tree_signature(snap: Snapshot, config: bytes) -> str:
    """What of the tree and its configuration `cargo metadata` reads (see the module docstring)."""
    h = xxhash.xxh3_128(config)
    for rel, digest in sorted((rel, d) for files in snap.by_owner.values() for rel, d in files.items()):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if rel == "Cargo.toml" or rel.endswith("/Cargo.toml"):
            h.update(digest)
    return h.hexdigest()


def metadata_key(identity: str, tree: str, env: Mapping[str, str]) -> str:
    """Path-free: equal in every checkout of the same sources with the same toolchain and variables."""
    h = xxhash.xxh3_128(_FORMAT + b"\0" + identity.encode() + b"\0" + tree.encode())
    read = sorted((k, v) for k, v in env.items() if k.startswith(_ENV_PREFIXES))
    h.update(repr(read).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _local_key(key: str, root: str) -> str:
    return LOCAL + xxhash.xxh3_128_hexdigest(key.encode() + b"\0" + root.encode("utf-8", "surrogateescape"))


def entries(key: str, data: Mapping[str, Any], root: str) -> dict[str, dict[str, Any]]:
    """What to store for `data` (cargo's JSON, run at `root`, its real path): the shareable entry,
    else the one for this checkout only; nothing when cargo saw another root (a symlinked checkout
    cargo resolved: the JSON would not be this root's)."""
    if data.get("workspace_root") != root:
        return {}
    text = json.dumps(data, separators=(",", ":"))
    if _URL_SAFE_ROOT.fullmatch(root) and root != "/":
        based = _rebase(text, root, WORKSPACE_MARK)
        if '"/' not in based and "file:///" not in based:
            return {SHARED + key: {"metadata": based, "based": True}}
    return {_local_key(key, root): {"metadata": text}}


def _rebase(text: str, old: str, new: str) -> str:
    """`old` as a path prefix becomes `new`, also where a root package's id ends it (`ROOT#name@1.0`)."""
    return replace_roots(text.replace(f"file://{old}#", f"file://{new}#"), [(old, new)])


def _parsed(value: dict[str, Any] | None, root: str) -> dict[str, Any] | None:
    text = value.get("metadata") if value is not None else None
    if not isinstance(text, str):
        return None
    if value is not None and value.get("based"):
        text = _rebase(text, WORKSPACE_MARK, root)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("workspace_root") != root:
        return None
    return data


async def lookup(cache: DiagnosticsCache, key: str, root: str) -> dict[str, Any] | None:
    """The remembered metadata for `key` at `root`: this checkout's entry, the shared one here, then
    (inside a question of a tiered cache, within its budget) the shared one from the tier."""

    def local() -> dict[str, Any] | None:
        return _parsed(cache.get(_local_key(key, root)), root) or _parsed(cache.get(SHARED + key), root)

    found = await anyio.to_thread.run_sync(local)
    if found is None and isinstance(cache, TieredCache) and await cache.pull():
        found = await anyio.to_thread.run_sync(local)
    return found


async def remember(cache: DiagnosticsCache, key: str, data: Mapping[str, Any], root: str) -> None:
    """Store `data` under `key` (locally at once; a shareable entry also goes to the tier, in the
    background, as every shared write)."""
    stored = entries(key, data, root)
    if stored:
        await anyio.to_thread.run_sync(cache.put_many, stored)
