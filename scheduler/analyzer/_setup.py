"""Finding a rust-analyzer that runs, the standard library's sources, and what to tell it at start.

Two traps shape this module. The `rust-analyzer` first on PATH is often rustup's proxy, which
exits with "Unknown binary" when the component is not installed; so every candidate is run with
`--version` before it is trusted. And a toolchain without the `rust-src` component leaves
rust-analyzer without `std` ("can't load standard library from sysroot"), so every answer that
touches std is wrong; Debian's `rust-web-src` (and RUST_SRC_PATH) put the sources elsewhere, and
we point rust-analyzer there with `cargo.sysrootSrc`.

The initialization options keep rust-analyzer out of cargo's way: `checkOnSave: false` (the
engine runs cargo check; two writers on one target dir fight for its lock) and `cargo.targetDir:
true` (what cargo it still runs, build scripts and proc-macros, goes to target/rust-analyzer).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .._exceptions import AnalyzerNotFound
from ..cargo._process import run_bounded

INSTALL_HINT = (
    "install it with `apt-get install -y rust-web-analyzer rust-web-src` (Debian/Ubuntu, as root) "
    "or `rustup component add rust-analyzer rust-src`, or pass its path with --rust-analyzer"
)
# Known locations, searched after PATH: the Debian package's binary and rustup's bin directory.
KNOWN_BINARIES = ("/usr/bin/rust-analyzer", "~/.cargo/bin/rust-analyzer")
# Known locations of the standard library's sources (Debian's rust-web-src / rust-src packages).
KNOWN_SRC_GLOBS = ("/usr/src/rustc-*/library", "/usr/lib/rustlib/src/rust/library")
_PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Sysroot:
    """Where std's sources are, and how we found them (shown in `status()`)."""

    src: Path | None
    how: str  # "toolchain", "RUST_SRC_PATH", "known location", "missing"
    note: str
    library: Path | None = None
    """The sources rust-analyzer reads std from, wherever they were found (`src` is only set when
    we must point rust-analyzer there): the read-only tools may open files under it."""

    def as_dict(self) -> dict[str, Any]:
        return {"src": str(self.src) if self.src else None, "found_by": self.how, "note": self.note}


async def _runs(candidate: Path) -> bool:
    """True when `candidate --version` exits 0 and is not rustup's "Unknown binary" proxy."""
    try:
        done = await run_bounded([str(candidate), "--version"], timeout_s=_PROBE_TIMEOUT)
    except OSError:
        return False
    text = (done.stdout + done.stderr).decode(errors="replace")
    return done.ok and "unknown binary" not in text.lower()


def _candidates(explicit: str | None) -> list[Path]:
    """Executable files to try, in order, each real file once (PATH often lists a dir twice)."""
    if explicit:
        path = Path(explicit).expanduser()
        found = shutil.which(explicit)
        return [path if path.is_file() or not found else Path(found)]
    names = [Path(d) / "rust-analyzer" for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    names += [Path(p).expanduser() for p in KNOWN_BINARIES]
    seen: set[Path] = set()
    out: list[Path] = []
    for candidate in names:
        try:
            real = candidate.resolve()
        except OSError:
            continue
        if real not in seen and candidate.is_file() and os.access(candidate, os.X_OK):
            seen.add(real)
            out.append(candidate)
    return out


async def find_rust_analyzer(explicit: str | None = None) -> Path:
    """An explicit path, else each `rust-analyzer` on PATH that really runs, else known locations.

    Raises AnalyzerNotFound saying how to install one.
    """
    candidates = await anyio.to_thread.run_sync(_candidates, explicit)
    rejected: list[str] = []
    for candidate in candidates:
        if await _runs(candidate):
            return candidate
        rejected.append(str(candidate))
    if explicit:
        raise AnalyzerNotFound(f"the rust-analyzer given ({explicit}) does not run; {INSTALL_HINT}")
    why = f" ({', '.join(rejected)} did not run: rustup's proxy without the component?)" if rejected else ""
    raise AnalyzerNotFound(f"no usable rust-analyzer found{why}; {INSTALL_HINT}")


async def real_binary(found: Path, pid: int | None, cwd: Path) -> Path:
    """The rust-analyzer that really runs as `pid`, where `found` may be rustup's proxy (a link to
    `rustup` that execs the toolchain's binary): the process's own executable (Linux: /proc), else
    `rustup which rust-analyzer` in the workspace (its toolchain file applies), else `found`.
    `scheduler_status` names this one: the proxy's path says nothing about which version answers."""
    if pid is not None:
        with contextlib.suppress(OSError):
            return Path(await anyio.to_thread.run_sync(os.readlink, f"/proc/{pid}/exe"))
    if not (await anyio.Path(found).resolve()).name.startswith("rustup"):
        return found
    with contextlib.suppress(OSError):
        done = await run_bounded(["rustup", "which", "rust-analyzer"], cwd=cwd, timeout_s=_PROBE_TIMEOUT)
        if done.ok and (path := done.stdout.decode(errors="replace").strip()):
            return Path(path)
    return found


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)


async def find_sysroot_src(cwd: Path) -> Sysroot:
    """The toolchain's own rust-src if present, else RUST_SRC_PATH, else the newest known location."""
    sysroot: Path | None = None
    with contextlib.suppress(OSError):
        done = await run_bounded(["rustc", "--print", "sysroot"], cwd=cwd, timeout_s=_PROBE_TIMEOUT)
        if done.ok:
            sysroot = Path(done.stdout.decode(errors="replace").strip())
    if sysroot is not None and await anyio.Path(sysroot / "lib/rustlib/src/rust/library").is_dir():
        library = sysroot / "lib/rustlib/src/rust/library"
        return Sysroot(None, "toolchain", f"the toolchain's rust-src ({sysroot})", library)
    env = os.environ.get("RUST_SRC_PATH")
    if env and await anyio.Path(env).is_dir():
        return Sysroot(Path(env), "RUST_SRC_PATH", "from RUST_SRC_PATH", Path(env))
    known = await anyio.to_thread.run_sync(_known_sources)
    if known is not None:
        return Sysroot(known, "known location", "the toolchain has no rust-src; using the newest known copy", known)
    return Sysroot(
        None, "missing", "no standard library sources: answers about std items will be missing; " + INSTALL_HINT
    )


def _known_sources() -> Path | None:
    found: list[Path] = []
    for pattern in KNOWN_SRC_GLOBS:
        root = Path(pattern.split("*")[0]).parent if "*" in pattern else Path(pattern).parent
        rest = str(Path(pattern).relative_to(root))
        found += [p for p in root.glob(rest) if (p / "core").is_dir()]
    return max(found, key=_version_key) if found else None


def initialization_options(
    sysroot: Sysroot, *, check_on_save: bool = False, separate_target_dir: bool = True
) -> dict[str, Any]:
    """rust-analyzer's settings: by default no cargo check of its own and its own target dir
    (CARGO_SCHEDULER_RA_CHECK_ON_SAVE / _RA_TARGET_DIR change both); server-side file watching (we do
    not implement client-side watching, and agents edit files behind our back)."""
    cargo: dict[str, Any] = {"targetDir": separate_target_dir}
    if sysroot.src is not None:
        cargo["sysrootSrc"] = str(sysroot.src)
    return {
        "checkOnSave": check_on_save,
        "check": {"workspace": False},
        "cargo": cargo,
        "files": {"watcher": "server"},
        "diagnostics": {"enable": True},
    }


def client_capabilities(*, did_save: bool = False) -> dict[str, Any]:
    """What we tell rust-analyzer we understand (the peer's set, minus lazy code-action edits), and
    whether we send didSave (only when its check on save is wanted: each save starts a cargo check)."""
    return {
        "general": {"positionEncodings": ["utf-16"]},
        "window": {"workDoneProgress": True},
        "experimental": {"serverStatusNotification": True},
        "workspace": {
            "configuration": True,
            # Renaming a module renames its file; rust-analyzer refuses that rename without these.
            "workspaceEdit": {
                "documentChanges": True,
                "resourceOperations": ["create", "rename", "delete"],
                "failureHandling": "abort",
            },
        },
        "textDocument": {
            "synchronization": {"didSave": did_save},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "completion": {"completionItem": {"snippetSupport": False}},
            "definition": {"linkSupport": True},
            "references": {},
            "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
            # No `resolveSupport`: rust-analyzer then puts each action's edit in the answer itself,
            # which is what an agent (who cannot send codeAction/resolve) needs.
            "codeAction": {
                "codeActionLiteralSupport": {
                    "codeActionKind": {
                        "valueSet": [
                            "quickfix",
                            "refactor",
                            "refactor.extract",
                            "refactor.inline",
                            "refactor.rewrite",
                            "source",
                            "source.organizeImports",
                        ]
                    }
                }
            },
            "publishDiagnostics": {"relatedInformation": True, "versionSupport": True},
            "diagnostic": {"dynamicRegistration": False},
            "formatting": {},
            "rename": {"prepareSupport": True},
        },
    }
