"""`cargo metadata --no-deps`, remembered by everything it read: in this checkout, in every checkout
of the machine (the local cache) and of the fleet (the shared tier).

It costs about 90 ms on 150 members (2 cores), and a question that finds no warm engine (the CLI, the
shim, a fresh checkout) paid it every time. Its `--no-deps` output depends on:

- cargo: the toolchain's `rustc -vV` (the same toolchain's cargo; `_toolchain` decides which);
- configuration, by content: the root manifest, Cargo.lock, every `.cargo/config*` from the root up
  and in `$CARGO_HOME`, toolchain files (`_keys.config_digest`);
- cargo's and rustup's environment (every `CARGO*`, `RUSTUP*`, `RUST*` variable);
- the tree: every manifest by content, and the *names* of every file and directory (and of what
  `.gitignore` left out), since cargo discovers targets (`src/bin/x.rs`, `tests/y.rs`, `build.rs`),
  members (a new directory a glob matches) and a package's README by their presence. The content
  of other files is not read by it;
- where each configuration file lies, and the names between it and the root (a relative
  `target-dir` above the root goes through them).

`tree_signature` digests the last two from a walk without knowing the members (every walked file
named Cargo.toml counts), so it is known before the metadata is; with the rest it is the key. An entry
is written only when the walk before the cargo run and the walk after it agree (`Engine.observe`): a
manifest edited while cargo ran is not remembered.

Paths: cargo names this checkout's real path throughout (package ids are `path+file://ROOT/...`). A
shareable entry (`mx:`) has the root replaced by `_runs.WORKSPACE_MARK`, rebased when read. It is
shareable only when no other absolute path is left in it: a path dependency or a target dir outside
the root, or a root that a file URL would escape, keep it in this checkout only (`mxl:`, the root in
the key, never sent to the tier).

Never remembered (`Tree.verdict`), because the signature could miss what cargo sees: a manifest
or target source the walk did not hash (a member outside the root, behind a linked directory, or
ignored by `.gitignore`), an ignored entry where cargo discovers targets or where a member glob
points, a config `include`. Kept to this checkout: a root package (its id names the checkout's
directory when that matches the package's name) and this root's path written in a manifest, a
configuration file or a variable. The rustc identity covers an in-place upgrade (`_toolchain`).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import xxhash

from ._cache import DiagnosticsCache
from ._fingerprint import Snapshot
from ._remote._tiered import TieredCache
from ._runs import WORKSPACE_MARK, replace_roots

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

SHARED = "mx:"
LOCAL = "mxl:"
_FORMAT = b"mx1"
ENV_PREFIXES = ("CARGO", "RUST", "__CARGO")
_URL_SAFE_ROOT = re.compile(r"/[A-Za-z0-9._/-]*")


def tree_signature(snap: Snapshot, config: bytes) -> str:
    """What of the tree and its configuration `cargo metadata` reads (see the module docstring):
    file names, manifests' contents, directory names (an empty directory a member glob matches
    makes cargo fail) and the names the walk left out (a new ignored directory)."""
    h = xxhash.xxh3_128(config)
    for rel, digest in sorted((rel, d) for files in snap.by_owner.values() for rel, d in files.items()):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if rel == "Cargo.toml" or rel.endswith("/Cargo.toml"):
            h.update(digest)
    for kind, names in ((b"d", snap.dirs), (b"s", snap.skipped)):
        for rel in sorted(names):
            h.update(kind + rel.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def config_places(root: str, files: list[str], home: str) -> bytes:
    """Where each existing configuration file lies relative to the root, and the path from its
    directory down to the root (`$CARGO_HOME`'s by name): a relative `target-dir` in a config above
    the root names a directory through the names in between."""
    out = []
    for path in files:
        if not os.path.exists(path):
            continue
        if os.path.dirname(path) == home:
            out.append("h:" + os.path.basename(path))
            continue
        base = os.path.dirname(path)
        base = os.path.dirname(base) if os.path.basename(base) == ".cargo" else base
        # Both ways: a config two levels up reaches the root through the names in between.
        out.append(os.path.relpath(path, root) + ">" + os.path.relpath(root, base))
    return "\0".join(out).encode("utf-8", "surrogateescape")


def metadata_key(identity: str, tree: str, env: Mapping[str, str]) -> str:
    """Path-free: equal in every checkout of the same sources with the same toolchain and variables."""
    h = xxhash.xxh3_128(_FORMAT + b"\0" + identity.encode() + b"\0" + tree.encode())
    read = sorted((k, v) for k, v in env.items() if k.startswith(ENV_PREFIXES))
    h.update(repr(read).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


@dataclass(frozen=True)
class Tree:
    """What `cargo metadata` read besides the tree signature, to decide whether its output may be
    remembered: the walk, the configuration files, the variables, the root manifest's globs."""

    snap: Snapshot
    config_files: tuple[str, ...]
    env_values: tuple[str, ...]

    def verdict(self, data: Mapping[str, Any], root: str) -> str | None:
        """ "shared", "local" (this checkout only), or None (not remembered). Blocking (reads files).

        None when the signature could miss a change cargo would see: a manifest or target source
        the walk did not hash (outside the root, through a linked directory, ignored), an entry the
        walk left out where cargo discovers targets or where a member glob points, or a config
        `include` (its files are not read here). Local when the output depends on where the
        checkout is: a root package (its id names the checkout's directory when that matches the
        package's name) or this root's path written in a manifest, a config file or a variable."""
        walked = {rel for files in self.snap.by_owner.values() for rel in files}
        prefix = root + "/"
        packages = [p for p in data.get("packages", []) if isinstance(p, dict)]
        dirs: list[str] = []
        sources = [str(p.get("manifest_path", "")) for p in packages]
        sources += [str(t.get("src_path", "")) for p in packages for t in p.get("targets", []) if isinstance(t, dict)]
        for path in sources:
            if not path.startswith(prefix) or path[len(prefix) :] not in walked:
                return None
        for p in packages:
            dirs.append(os.path.dirname(str(p["manifest_path"]))[len(prefix) :] if "manifest_path" in p else "")
        if any(_discovers(d, s) for d in dirs for s in self.snap.skipped) or _globbed(root, self.snap.skipped):
            return None
        texts: list[bytes] = []
        for path in self.config_files:
            with contextlib.suppress(OSError), open(path, "rb") as fh:
                body = fh.read()
                if os.path.basename(path).startswith("config") and b"include" in body:
                    return None
                texts.append(body)
        for p in packages:
            with contextlib.suppress(OSError, KeyError), open(p["manifest_path"], "rb") as fh:
                texts.append(fh.read())
        rooted = root.encode("utf-8", "surrogateescape")
        if "" in dirs or any(rooted in t for t in texts) or any(root in v for v in self.env_values):
            return "local"
        return "shared"


_DISCOVERED = ("src", "examples", "tests", "benches", "build.rs", "Cargo.toml")


def _discovers(package_dir: str, skipped: str) -> bool:
    """Whether an entry the walk left out lies where cargo looks for a package's targets."""
    within = skipped[len(package_dir) + 1 :] if package_dir else skipped
    if package_dir and not skipped.startswith(package_dir + "/"):
        return False
    return within.split("/", 1)[0] in _DISCOVERED


def _globbed(root: str, skipped: frozenset[str]) -> bool:
    """Whether an entry the walk left out is, or could hold, what a `workspace.members` glob matches."""
    if not skipped:
        return False
    try:
        with open(os.path.join(root, "Cargo.toml"), "rb") as fh:
            members = tomllib.load(fh).get("workspace", {}).get("members", [])
    except (OSError, tomllib.TOMLDecodeError):
        return True
    patterns = [m.strip("/").split("/") for m in members if isinstance(m, str)] if isinstance(members, list) else []
    for entry in skipped:
        parts = entry.split("/")
        for pattern in patterns:
            if all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pattern, strict=False)):
                return True
    return False


def _local_key(key: str, root: str) -> str:
    return LOCAL + xxhash.xxh3_128_hexdigest(key.encode() + b"\0" + root.encode("utf-8", "surrogateescape"))


def entries(key: str, data: Mapping[str, Any], root: str, tree: Tree | None = None) -> dict[str, dict[str, Any]]:
    """What to store for `data` (cargo's JSON, run at `root`, its real path): the shareable entry,
    else the one for this checkout only, else nothing (`Tree.verdict`). Nothing either when cargo
    saw another root (a symlinked checkout cargo resolved: the JSON would not be this root's)."""
    if data.get("workspace_root") != root:
        return {}
    text = json.dumps(data, separators=(",", ":"))
    verdict = tree.verdict(data, root) if tree is not None else "shared"
    if verdict is None or WORKSPACE_MARK in text:
        return {}
    if verdict == "shared" and _URL_SAFE_ROOT.fullmatch(root) and root != "/":
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


async def remember(
    cache: DiagnosticsCache, key: str, data: Mapping[str, Any], root: str, tree: Tree | None = None
) -> None:
    """Store `data` under `key` (locally at once; a shareable entry also goes to the tier, in the
    background, as every shared write)."""
    stored = await anyio.to_thread.run_sync(lambda: entries(key, data, root, tree))
    if stored:
        await anyio.to_thread.run_sync(cache.put_many, stored)
