"""The peers' own test suites, from their published sources (bench/peer_suites.py).

What crates.io publishes is the truth about a release: `cargo install --locked` (bench/_replay_targets.py,
`ensure_peers`) downloads each peer's `.crate`, checks it against the registry's checksum and unpacks it
under `$CARGO_HOME/registry/src/`. That is where the sources are read from:

- cargo-mcp 0.2.0's whole suite is in its crate (`src/tests.rs`: one in-process test of the tool list;
  nothing in it starts a server).
- rust-analyzer-mcp 0.4.0's crate has the tests (`tests/`) but not what they need to build and run:
  the `test-support` crate and the test projects are left out of the package. So the suite needs a
  checkout of the peer's repository at the commit the crate names (`.cargo_vcs_info.json`), given as
  `--rust-analyzer-mcp-checkout` (see docs/benchmarks.md for the `git clone`). It is accepted only if
  its commit is that one and every file of the published crate is byte-identical in it: the tests
  that run are the published ones. It is copied into bench/.work/peer-suites/, never built in place.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

# Files cargo rewrites or adds when it packages (or unpacks) a crate: they cannot match the repository.
_PACKAGING = {"Cargo.toml", "Cargo.toml.orig", ".cargo_vcs_info.json", ".cargo-ok", "Cargo.lock"}


class SourceError(Exception):
    """A peer's sources cannot be used as its published test suite; the message says why."""


def cargo_home() -> Path:
    return Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")


def published_crate(name: str, version: str) -> Path:
    """The unpacked `.crate` that `cargo install` verified (any registry index directory)."""
    found = sorted((cargo_home() / "registry" / "src").glob(f"*/{name}-{version}"))
    if not found:
        raise SourceError(f"{name} {version} is not unpacked under $CARGO_HOME/registry/src (install it first)")
    return found[-1]


def published_commit(crate: Path) -> str:
    info = json.loads((crate / ".cargo_vcs_info.json").read_text())
    return str(info["git"]["sha1"])


def _head(checkout: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise SourceError(f"{checkout} is not a git checkout: {result.stderr.strip()}")
    return result.stdout.strip()


def _differences(crate: Path, checkout: Path) -> list[str]:
    differ = []
    for path in sorted(crate.rglob("*")):
        rel = path.relative_to(crate)
        if not path.is_file() or rel.as_posix() in _PACKAGING:
            continue
        twin = checkout / rel
        if not twin.is_file() or twin.read_bytes() != path.read_bytes():
            differ.append(rel.as_posix())
    orig = crate / "Cargo.toml.orig"
    if orig.is_file() and orig.read_bytes() != (checkout / "Cargo.toml").read_bytes():
        differ.append("Cargo.toml (the crate's Cargo.toml.orig)")
    return differ


def suite_checkout(crate: Path, checkout: Path, into: Path) -> Path:
    """A copy of `checkout` as the published suite, after checking it is the crate's commit and files."""
    want, have = published_commit(crate), _head(checkout)
    if want != have:
        raise SourceError(f"{checkout} is at {have[:12]}, the published crate was packaged from {want[:12]}")
    differ = _differences(crate, checkout)
    if differ:
        raise SourceError(f"{checkout} differs from the published crate in {', '.join(differ[:5])}")
    # The copy keeps its own target dir from an earlier run (rebuilding the tests costs minutes).
    keep = into / "target"
    for child in into.iterdir() if into.exists() else ():
        if child != keep:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    into.mkdir(parents=True, exist_ok=True)
    shutil.copytree(checkout, into, ignore=shutil.ignore_patterns(".git", "target"), dirs_exist_ok=True)
    return into
