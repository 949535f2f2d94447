"""Which `clippy.toml` each member's clippy run reads, found as clippy finds it, at every question.

clippy-driver looks for `.clippy.toml` or `clippy.toml` in `CLIPPY_CONF_DIR` (the question's, or
the one a cargo configuration's `[env]` sets for it), else in the package's
`CARGO_MANIFEST_DIR`, canonicalised, and then in each parent up to `/`, and stops at the first
directory that has one. It records the file it read in the dep-info, so an edit of that file is in
the key already; but a file created where it looked and found nothing is in no record, and cargo
misses it too (measured with clippy 1.95: a `clippy.toml` with `disallowed-names = ["bar"]` created
in the workspace's parent directory left `cargo clippy` replaying its old answer, while a fresh
target dir gave the `disallowed_names` warning). Above the workspace, or git-ignored inside it, no
walk sees that file appear. So clippy questions probe the same places clippy does: one `open` per
candidate and directory (shared ancestors once): 1.0 ms at each clippy question on gitoxide's 71
members (median of 200), and nothing at other questions. A clippy unit's record keeps its member's
result too (`unit_inputs`): the key alone would send the question to cargo, which calls the unit
fresh and replays the old answer.

No path enters the digest: each member's result is the names and contents clippy would read, so
the same configuration in another checkout gives the same key.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping

import xxhash

from ..cargo._config import config_files
from ..cargo._workspace import Workspace

CONFIG_NAMES = (".clippy.toml", "clippy.toml")
"""clippy's own order: the first one found is used (and the other named in a warning)."""
CONFIG_INPUT = "clippy:config"
"""The name of the pseudo-input in a unit record: no recorded file's locator looks like it."""


def member_configs(ws: Workspace, env: Mapping[str, str]) -> dict[str, bytes]:
    """What each member's clippy run would read as its configuration: names and contents."""
    probed: dict[str, bytes] = {}
    conf_dir = env.get("CLIPPY_CONF_DIR")
    configured = _configured_conf_dir(ws, env)
    if configured is not None and (not conf_dir or configured[1]):
        conf_dir = configured[0]
    if conf_dir:
        # One search for every member, from the named directory (relative: to where cargo runs rustc).
        start = os.path.realpath(os.path.join(str(ws.root), conf_dir))
        # Not there: clippy's canonicalize fails and it reports an error instead of linting.
        found = b"conf-dir\0" + (_search(start, probed) if os.path.isdir(start) else b"no-start")
        return dict.fromkeys(ws.packages, found)
    real = _RealPaths()
    return {name: _search(real.of(str(package.root)), probed) for name, package in ws.packages.items()}


def _configured_conf_dir(ws: Workspace, env: Mapping[str, str]) -> tuple[str, bool] | None:
    """`CLIPPY_CONF_DIR` from a cargo configuration's `[env]` (the nearest file that sets it), and
    whether it is forced over the environment's: cargo sets it for clippy-driver. Only a file that
    names the variable is parsed."""
    for path in config_files(ws.root, env):
        if os.path.basename(path) not in ("config.toml", "config"):
            continue
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        if b"CLIPPY_CONF_DIR" not in raw:
            continue
        try:
            value = tomllib.loads(raw.decode("utf-8")).get("env", {}).get("CLIPPY_CONF_DIR")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, AttributeError):
            continue
        if isinstance(value, str):
            return value, False
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            found = value["value"]
            if value.get("relative"):  # relative to the directory holding `.cargo/`
                base = (
                    os.path.dirname(os.path.dirname(path))
                    if os.path.basename(os.path.dirname(path)) == ".cargo"
                    else os.path.dirname(path)
                )
                found = os.path.join(base, found)
            return found, bool(value.get("force"))
    return None


def clippy_config_digest(ws: Workspace, env: Mapping[str, str]) -> bytes:
    """Every member's `member_configs`, for the key every member shares."""
    h = xxhash.xxh3_128()
    for name, found in sorted(member_configs(ws, env).items()):
        h.update(name.encode() + b"\0" + found + b"\0")
    return h.digest()


def unit_inputs(ws: Workspace, env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """By member, the pseudo-input a clippy unit's record keeps beside its recorded files
    (`_record`): cargo calls a unit fresh after a configuration appeared where it found none, and a
    record that disagrees makes the engine remove its fingerprint so that clippy runs again."""
    return {name: {CONFIG_INPUT: xxhash.xxh3_64_hexdigest(found)} for name, found in member_configs(ws, env).items()}


class _RealPaths:
    """`os.path.realpath` of many directories under one root, each parent resolved once: a member's
    directory costs one `lstat`, not one per component (70 members: 210 `lstat`s down to about 75)."""

    def __init__(self) -> None:
        self._memo: dict[str, str] = {}

    def of(self, path: str) -> str:
        path = os.path.normpath(path)
        known = self._memo.get(path)
        if known is not None:
            return known
        parent = os.path.dirname(path)
        if parent == path:
            return path
        try:
            linked = os.path.islink(path)
        except OSError:
            linked = True
        real = os.path.realpath(path) if linked else os.path.join(self.of(parent), os.path.basename(path))
        self._memo[path] = real
        return real


def _search(current: str, probed: dict[str, bytes]) -> bytes:
    """The configuration clippy would read starting at the real directory `current`: its files'
    names and contents, from the first directory upward that has one. `probed` holds each
    directory's own candidates, so the ancestors members share are read once per question."""
    while True:
        result = probed.get(current)
        if result is None:
            result = probed[current] = _probe(current)
        if result:
            return result
        parent = os.path.dirname(current)
        if parent == current:
            return b"none"
        current = parent


def _probe(directory: str) -> bytes:
    """The candidates that exist in `directory` (a directory of that name does not count), read."""
    out = b""
    for name in CONFIG_NAMES:
        try:
            with open(os.path.join(directory, name), "rb") as fh:
                out += name.encode() + b"=" + xxhash.xxh3_128_digest(fh.read()) + b"\0"
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OSError as exc:  # there but unreadable: clippy fails on it, and so is its answer
            out += name.encode() + f"!{exc.errno}\0".encode()
    return out
