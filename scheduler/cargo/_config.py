"""Where cargo (and rustup) look for configuration: the one list, for keys and for the feature resolve.

cargo reads `.cargo/config.toml` (and the older `.cargo/config`) in the directory it runs in and in
every parent up to `/`, then `$CARGO_HOME`'s; rustup reads `rust-toolchain(.toml)` from the directory
up. A file that is absent is simply not read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

TOOLCHAIN_FILES = ("rust-toolchain", "rust-toolchain.toml")
_CACHE: dict[tuple[Path, Path], list[str]] = {}


def cargo_home(env: Mapping[str, str]) -> Path:
    explicit = env.get("CARGO_HOME")
    if explicit:
        return Path(explicit)
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".cargo"


def config_files(root: Path, env: Mapping[str, str]) -> list[str]:
    """Every file cargo and rustup read as configuration for a build at `root`, in cargo's order,
    with the root's own `Cargo.toml` and `Cargo.lock` first (paths; memoised per root and home)."""
    home = cargo_home(env)
    found = _CACHE.get((root, home))
    if found is None:
        paths = [root / "Cargo.toml", root / "Cargo.lock"]
        for directory in [root, *root.parents]:
            paths += [directory / ".cargo" / "config.toml", directory / ".cargo" / "config"]
            paths += [directory / name for name in TOOLCHAIN_FILES]
        paths += [home / "config.toml", home / "config"]
        found = _CACHE[(root, home)] = [str(p) for p in paths]
    return found
