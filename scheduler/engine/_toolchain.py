"""Which compiler a question is about, decided again at every question.

`rustup default`, `rustup override set`, `RUSTUP_TOOLCHAIN`, a `rust-toolchain.toml` and `rustup
update` all change the compiler without changing a source file, and a daemon lives for hours. Asking
`rustc -vV` at every question would cost tens of milliseconds; instead every input of rustup's choice
is read at every question (by content, cheap), and `rustc -vV` runs again whenever they differ:

- the call's `toolchain` argument, and `RUSTUP_TOOLCHAIN`, `RUSTUP_HOME`, `RUSTC` and `PATH` from the
  question's environment (which rustc, or which rustup proxy, is found), and the stat of the rustc
  found (a compiler upgraded in place by a package manager);
- `$RUSTUP_HOME/settings.toml` (the default and every directory override);
- the stat of `$RUSTUP_HOME/toolchains` and of each toolchain directory (`rustup update` installs a
  toolchain anew under the same name);
- toolchain files (`rust-toolchain`, `rust-toolchain.toml`) from the workspace up, which `_keys`
  reads into every key anyway.

The answer is remembered in the local cache too (`tc:` plus that digest; never shared, the digest
holds this machine's inodes), so a process that starts for one question (the CLI, the shim) does not
pay `rustc -vV` (about 45 ms on 2 cores) while none of those inputs moved.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import anyio
import xxhash

from ..cargo._config import TOOLCHAIN_FILES, config_files
from ._cache import DiagnosticsCache

VersionProbe = Callable[[list[str], Mapping[str, str]], Awaitable[str]]
"""Runs argv (`rustc -vV`) in the workspace with the environment; returns its stdout."""


def rustup_home(env: Mapping[str, str]) -> Path:
    explicit = env.get("RUSTUP_HOME")
    if explicit:
        return Path(explicit)
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".rustup"


def toolchain_inputs(root: Path, env: Mapping[str, str], toolchain: str | None) -> str:
    """A digest of everything rustup's choice of compiler depends on (see the module docstring)."""
    h = xxhash.xxh3_128()
    for name in ("RUSTUP_TOOLCHAIN", "RUSTUP_HOME", "RUSTC", "PATH"):
        h.update(f"{name}={env.get(name)}\0".encode("utf-8", "surrogateescape"))
    h.update(f"arg={toolchain}\0".encode())
    # The compiler cargo finds (`RUSTC`, else `rustc` on PATH), by its stat: an upgrade in place
    # without rustup (a distribution's package) changes no other input. Under rustup this is the
    # proxy, which the toolchain directories' stat below covers.
    found = env.get("RUSTC") or shutil.which("rustc", path=env.get("PATH", os.defpath))
    try:
        st = os.stat(found) if found else None
        h.update(f"rustc={found}:{st.st_mtime_ns}:{st.st_ino}:{st.st_size}\0".encode() if st else b"no-rustc")
    except OSError:
        h.update(b"rustc-gone")
    home = rustup_home(env)
    try:
        with open(home / "settings.toml", "rb") as fh:
            h.update(fh.read())
    except OSError:
        h.update(b"-")
    toolchains = home / "toolchains"
    try:
        entries = sorted(os.scandir(toolchains), key=lambda e: e.name)
        st = os.stat(toolchains)
        h.update(f"{st.st_mtime_ns}:{st.st_ino}".encode())
        for entry in entries:
            s = entry.stat(follow_symlinks=True)
            h.update(f"{entry.name}:{s.st_mtime_ns}:{s.st_ino}\0".encode("utf-8", "surrogateescape"))
    except OSError:
        h.update(b"no-rustup")
    for path in config_files(root, env):  # the one memoised list; no paths built per question
        if os.path.basename(path) in TOOLCHAIN_FILES:
            try:
                with open(path, "rb") as fh:
                    h.update(fh.read())
            except OSError:
                h.update(b"-")
    return h.hexdigest()


class Toolchains:
    """`rustc -vV` by the digest of its inputs; one per engine. Concurrent askers share one probe."""

    def __init__(self, root: Path, probe: VersionProbe, cache: DiagnosticsCache | None = None) -> None:
        self.root = root
        self._probe = probe
        self._cache = cache
        self._versions: dict[str, str] = {}
        self._lock = anyio.Lock()

    async def identity(self, env: Mapping[str, str], toolchain: str | None) -> str:
        """`rustc -vV` of the compiler this question's cargo will run (equal compilers found through
        different PATHs share keys; the inputs only decide when to ask again)."""
        inputs = toolchain_inputs(self.root, env, toolchain)
        version = self._versions.get(inputs)
        if version is not None:
            return version
        async with self._lock:
            version = self._versions.get(inputs) or await self._remembered(inputs)
            if version is None:
                argv = ["rustup", "run", toolchain, "rustc", "-vV"] if toolchain else ["rustc", "-vV"]
                version = await self._probe(argv, env)
                if self._cache is not None:
                    await anyio.to_thread.run_sync(self._cache.put, "tc:" + inputs, {"version": version})
            if len(self._versions) > 16:
                self._versions.clear()
            self._versions[inputs] = version
        return version

    async def _remembered(self, inputs: str) -> str | None:
        if self._cache is None:
            return None
        value = await anyio.to_thread.run_sync(self._cache.get, "tc:" + inputs)
        version = value.get("version") if value is not None else None
        return version if isinstance(version, str) and version.startswith("rustc ") else None
