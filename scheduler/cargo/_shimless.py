"""PATH without cargo-scheduler's shim: the one rule that keeps our own cargo runs off it.

The shim (`cargo-scheduler shim install`, cli/_shim.py) is a `cargo` on PATH that asks the daemon.
The daemon's cargo, rust-analyzer's cargo and the shim's own fall-through must reach the real cargo:
a daemon whose cargo came back to the shim would ask itself and wait for its own answer. A shim's
directory holds a marker file, so every spelling of it (a symlink, a relative PATH entry, another
user's install in a CI image) is recognised by what is there, not by its name.

Standard library only: the shim imports it on every `cargo` typed.
"""

from __future__ import annotations

import os

MARKER = ".cargo-scheduler-shim"
"""The file that marks a directory as a shim's (its content: the version that installed it)."""


def is_shim_dir(directory: str) -> bool:
    return bool(directory) and os.path.isfile(os.path.join(directory, MARKER))


def shimless(path: str) -> str:
    """`path` (a PATH value) without the directories that hold a shim."""
    return os.pathsep.join(p for p in path.split(os.pathsep) if p and not is_shim_dir(p))


def shimless_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with a shimless PATH (the same dict when no shim is on it)."""
    path = env.get("PATH")
    if path is None:
        return env
    clean = shimless(path)
    return env if clean == path else {**env, "PATH": clean}


def real_cargo(path: str) -> str | None:
    """The first executable `cargo` on `path` outside every shim's directory."""
    for entry in shimless(path).split(os.pathsep):
        candidate = os.path.join(entry, "cargo")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None
