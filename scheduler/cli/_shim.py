"""`cargo-scheduler shim install|uninstall|status`: a `cargo` on PATH that answers from the daemon.

Nothing changes a user's cargo until `install` runs, and `install` changes no shell profile: it
writes one directory (default `$XDG_DATA_HOME/cargo-scheduler/shim`, else
~/.local/share/cargo-scheduler/shim) holding the `cargo` script and the marker that tells our own
processes to look past it (`cargo/_shimless`), and prints the `export PATH=...` line to stdout, so
`eval "$(cargo-scheduler shim install)"` turns it on for one shell, an agent's sandbox or a CI job.
`uninstall` removes what `install` wrote and nothing else: a `cargo` in that directory that is not
ours is refused, never overwritten.

The `cargo` is native when rustc (which comes with every cargo) can build `shim.rs`: a cache hit
then costs a process start of about a millisecond plus the daemon's answer, where Python's start
alone is ~12 ms. The Python shim (`_shim_run`, run with `-IS`: isolated, no site) is always written
beside it: the native one hands it what it does not do itself (start a daemon, `--manifest-path`),
and it is the `cargo` when no native one could be built (`--python` asks for that). Both find this
package by the path it was installed from: after moving or reinstalling the package, run `install`
again (it replaces its own files).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from .._exceptions import InvalidArgument
from .._version import __version__
from ..cargo._shimless import MARKER, real_cargo

SIGNATURE = "cargo-scheduler-shim-v1"
"""In both forms of the shim (the script's comment, the binary's messages): how `install` and
`uninstall` know a `cargo` is theirs to replace or remove."""
PYTHON = ".cargo-scheduler-shim.py"
"""The Python shim: the `cargo` itself when no native one could be built, else where the native
one hands what it does not do itself (no daemon yet: start one; `--manifest-path`; odd bytes)."""
SOURCE = Path(__file__).with_name("shim.rs")
SCRIPT = """\
#!{python} -IS
# {signature} ({version}): `cargo check|clippy|build|test` from the daemon, the real cargo otherwise.
# Written by `cargo-scheduler shim install`; `cargo-scheduler shim uninstall` removes it.
import sys
sys.path.insert(0, {package_parent!r})
from scheduler.cli._shim_run import main
main(start={start!r})
"""
COMPILE_S = 300.0


def default_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "cargo-scheduler" / "shim"


def _ours(script: Path) -> bool:
    try:
        return SIGNATURE.encode() in script.read_bytes()
    except OSError:
        return False


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.chmod(0o755)
    temporary.replace(path)


STATIC = ["-C", "target-feature=+crt-static"]
"""Linked statically first: the loader's work for a dynamic binary (finding, mapping and relocating
libc and libgcc_s) is about 0.3 ms of every answer, 15% of a 2 ms cache hit through the shim
(rust-analyzer's workspace, medians of 100, 2026-12-08). Where the C library has no static archive
(glibc's libc.a comes with libc6-dev) that link fails, and the dynamic build is made instead."""


def compile_native(directory: Path, *, start: bool) -> str | None:
    """Build the native shim into `directory`/cargo with the rustc on PATH, statically linked where
    the C library allows it; None, or why not."""
    import functools

    import anyio

    from ..cargo._process import run_bounded

    temporary = directory / ".cargo.native.tmp"
    env = {
        **os.environ,
        "CSHIM_VERSION": __version__,
        "CSHIM_PYTHON": str(directory / PYTHON),
        "CSHIM_START": "1" if start else "0",
    }
    argv = ["rustc", "--edition", "2021", "-C", "opt-level=2", "-C", "strip=symbols", "-o", str(temporary)]
    why = ""
    for linking in (STATIC, []):
        try:  # the process primitive: its own session, bounded, and no shim on its PATH
            run = functools.partial(run_bounded, [*argv, *linking, str(SOURCE)], env=env, timeout_s=COMPILE_S)
            built = anyio.run(run)
        except OSError as exc:
            return f"rustc did not run: {exc}"
        if built.ok:
            temporary.replace(directory / "cargo")
            return None
        temporary.unlink(missing_ok=True)
        why = "timed out" if built.timed_out else built.stderr.decode(errors="replace").strip()[-500:]
        if built.timed_out:
            break
    return f"rustc failed: {why}"


def linked_statically(binary: Path) -> bool:
    """Whether an ELF binary has no program interpreter (PT_INTERP): the loader maps nothing for it.
    False for anything that is not a whole ELF64 file (`shim status` must not fail on a torn one)."""
    import struct

    try:
        with binary.open("rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:  # ELF64 only (what rustc builds here)
                return False
            order = "<" if head[5] == 1 else ">"
            (phoff,) = struct.unpack_from(order + "Q", head, 0x20)
            phentsize, phnum = struct.unpack_from(order + "HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
        types = [struct.unpack_from(order + "I", table, i * phentsize)[0] for i in range(phnum)]
    except (OSError, struct.error):
        return False
    return bool(types) and 3 not in types  # PT_INTERP


def install(directory: Path, *, start: bool = True, native: bool = True) -> Path:
    """Write the shim into `directory`; refuses to replace a `cargo` that is not a shim.

    The native shim is built when `native` and rustc can; else the Python one is the `cargo`."""
    script = directory / "cargo"
    if script.exists() and not _ours(script):
        raise InvalidArgument("--dir", f"{script} exists and is not a cargo-scheduler shim; not replacing it")
    directory.mkdir(parents=True, exist_ok=True)
    package_parent = str(Path(__file__).resolve().parents[2])
    text = SCRIPT.format(
        python=sys.executable, signature=SIGNATURE, version=__version__, package_parent=package_parent, start=start
    )
    _write(directory / PYTHON, text)
    why = compile_native(directory, start=start) if native else "not asked for"
    if why is not None:
        if native:
            print(f"cargo-scheduler: the native shim was not built ({why}); the Python one answers", file=sys.stderr)
        _write(script, text)
    (directory / MARKER).write_text(__version__ + "\n")
    return script


def uninstall(directory: Path) -> list[Path]:
    """Remove the shim's files (and the directory when that leaves it empty); what was removed."""
    script = directory / "cargo"
    if script.exists() and not _ours(script):
        raise InvalidArgument("--dir", f"{script} is not a cargo-scheduler shim; not removing it")
    removed = []
    for path in (script, directory / PYTHON, directory / MARKER):
        if path.exists():
            path.unlink()
            removed.append(path)
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
    return removed


def status(directory: Path) -> dict[str, object]:
    """Whether the shim is installed there, whether `cargo` on PATH is it, and the cargo it runs."""
    script = directory / "cargo"
    path = os.environ.get("PATH", "")
    first = next(
        (
            os.path.join(p, "cargo")
            for p in path.split(os.pathsep)
            if p and os.access(os.path.join(p, "cargo"), os.X_OK)
        ),
        None,
    )
    installed = script.is_file() and _ours(script)
    native = installed and not script.read_bytes().startswith(b"#!")
    return {
        "directory": str(directory),
        "installed": installed,
        "native": native,
        "static": native and linked_statically(script),
        "active": installed and first is not None and os.path.realpath(first) == str(script.resolve()),
        "cargo_on_path": first,
        "real_cargo": real_cargo(path),
        "enable": f'export PATH={shlex.quote(str(directory))}:"$PATH"',
    }


def main(argv: list[str]) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="cargo-scheduler shim", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["install", "uninstall", "status"])
    p.add_argument("--dir", type=Path, default=None, help="the shim's directory (default: %(default)s)")
    p.add_argument(
        "--no-start", action="store_true", help="install: do not start a daemon when none serves the workspace"
    )
    p.add_argument("--python", action="store_true", help="install: the Python shim only (no rustc needed)")
    p.set_defaults(dir=None)
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:
        return 1 if exc.code == 2 else int(exc.code or 0)
    directory = (args.dir or default_dir()).absolute()
    if args.action == "install":
        script = install(directory, start=not args.no_start, native=not args.python)
        print(f"installed {script}; enable it with the line below (eval it, or add it to a profile)", file=sys.stderr)
        print(status(directory)["enable"])
    elif args.action == "uninstall":
        removed = uninstall(directory)
        print(f"removed {len(removed)} file(s) from {directory}", file=sys.stderr)
    else:
        print(json.dumps(status(directory), indent=2))
    return 0
