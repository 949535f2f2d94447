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


def read_from_elsewhere(root: Path, cwd: str) -> str | None:
    """A configuration file cargo or rustup would read for a command typed in `cwd` and not for one
    run at `root`, or the other way round (None: the same files).

    cargo finds its configuration from the directory it runs in, not from the manifest: `cargo
    check` typed in a member that has its own `.cargo/config.toml` (an embedded crate's `[build]
    target`, say) builds with it, and rustup picks a member's `rust-toolchain.toml` the same way.
    The engine runs cargo at the root, so such a command is not one it can answer."""
    here = os.path.normpath(cwd)
    top = str(root)
    if here == top:
        return None
    if here.startswith(top + os.sep):  # below the root: the directories between are the difference
        between = _found_upward(here, stop=top)
        return between[0] if between else None
    differ = sorted(set(_found_upward(top)) ^ set(_found_upward(here)))
    return differ[0] if differ else None


_FOUND_NAMES = (os.path.join(".cargo", "config.toml"), os.path.join(".cargo", "config"), *TOOLCHAIN_FILES)


def _found_upward(directory: str, stop: str | None = None) -> list[str]:
    """The configuration files in `directory` and each parent, up to `stop` (excluded) or `/`."""
    found = []
    while directory != stop:
        found += [p for n in _FOUND_NAMES if os.path.isfile(p := os.path.join(directory, n))]
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return found
