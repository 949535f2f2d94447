"""The shim section: `cargo check` typed into a shell, through the shim and a warm daemon, vs the real cargo.

Both are the same command line (`cargo check` at the workspace root, cargo's default selection) run
as a shell runs it: a process started by PATH lookup, timed from spawn to exit. The real cargo is
the one the shim would exec. Scenarios, every sample from the same state:

- `no-op`: nothing changed since the last check (the cache hit against cargo's no-op);
- `edit a leaf`: a fresh `pub fn` appended to a leaf's library, then the check (each variant gets
  its own fresh edit, so neither finds the other's artifacts);
- `fix loop`: the same type error in a leaf, checked again (cargo recompiles a failed unit every
  time; the shim answers from the cache);
- `no daemon`: the shim's fall-through (no daemon serves the workspace, installed with --no-start)
  against the real cargo's no-op: what the shim costs when it cannot help.

Both must give the same exit code in every sample (recorded: `agree`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stats import summary
from _workspaces import prepare

from scheduler.cargo._shimless import real_cargo
from scheduler.cli import _shim
from scheduler.daemon import _control, _socket

TYPE_ERROR = '\npub fn shim_bench_broken() -> u32 { "not a number" }\n'
DAEMON_UP_S = 120.0


class Bench:
    """One workspace's shell, with the shim first on PATH, and its daemon."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.shim, self.lazy = tmp / "shim", tmp / "lazy"
        _shim.install(self.shim)
        _shim.install(self.lazy, start=False)
        self.base = {**os.environ, "CARGO_SCHEDULER_IDLE_TIMEOUT": "900"}
        found = real_cargo(os.environ["PATH"])
        assert found is not None, "no cargo on PATH"
        self.real = found
        self.paths = _socket.Paths(_socket.workspace_root(str(root)))
        _control.stop(self.paths)  # an earlier run's daemon (maybe another version) would answer unfit

    def run(self, via: str, *args: str) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        shim = {"shim": self.shim, "lazy": self.lazy}.get(via)
        env = {**self.base, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"} if shim else self.base
        argv = ["cargo", *args] if shim else [self.real, *args]
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=self.root, env=env, capture_output=True, timeout=3600)
        return time.perf_counter() - started, done

    def start_daemon(self) -> None:
        """The shim's first `cargo check` starts the daemon; then check until the daemon answers."""
        self.run("shim", "check")
        deadline = time.monotonic() + DAEMON_UP_S
        while _status(self.paths) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no daemon came up for {self.root}; see {self.paths.log}")
            time.sleep(0.1)
        for _ in range(3):
            _, done = self.run("shim", "check", "-v")
            if b"note: cargo-scheduler answered" in done.stderr:
                return
        raise RuntimeError(f"the daemon does not answer `cargo check` in {self.root}: {done.stderr[-2000:]!r}")

    def close(self) -> None:
        _control.stop(self.paths)


def _status(paths: _socket.Paths) -> dict[str, Any] | None:
    try:
        return _control.control(paths, "status")
    except OSError:
        return None


def _pair(
    bench: Bench, repeats: int, before: Callable[[], None], theirs: str = "cargo", ours: str = "shim"
) -> dict[str, Any]:
    """`repeats` samples of each variant, alternating which goes first, each after `before()`."""
    times: dict[str, list[float]] = {theirs: [], ours: []}
    agree = True
    for i in range(repeats):
        codes = []
        for via in (theirs, ours) if i % 2 == 0 else (ours, theirs):
            before()
            seconds, done = bench.run(via, "check")
            times[via].append(seconds)
            codes.append(done.returncode)
        agree = agree and len(set(codes)) == 1
    return {"cargo": summary(times[theirs]), "shim": summary(times[ours]), "agree": agree}


def measure_one(root: Path, label: str, leaf_lib: Path, repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shim-bench-") as tmp:
        bench = Bench(root, Path(tmp))
        pristine = leaf_lib.read_bytes()
        try:
            bench.run("cargo", "check")  # the target dir is current for the sources as they are
            log(f"shim, {label}: fall-through with no daemon")
            rows = {"no daemon": _pair(bench, repeats, lambda: None, ours="lazy")}
            log(f"shim, {label}: starting the daemon through the shim")
            bench.start_daemon()
            log(f"shim, {label}: no-op")
            rows["no-op"] = _pair(bench, repeats, lambda: None)
            counter = iter(range(1_000_000))

            def fresh_fn() -> None:
                with leaf_lib.open("a") as f:
                    f.write(f"\npub fn shim_bench_{os.getpid()}_{next(counter)}() -> u32 {{ 7 }}\n")

            log(f"shim, {label}: edit a leaf")
            rows["edit a leaf"] = _pair(bench, max(3, repeats // 3), fresh_fn)
            leaf_lib.write_bytes(pristine + TYPE_ERROR.encode())
            bench.run("shim", "check")  # the error is recorded once; then the fix loop asks again
            log(f"shim, {label}: fix loop")
            rows["fix loop"] = _pair(bench, repeats, lambda: None)
        finally:
            leaf_lib.write_bytes(pristine)
            bench.run("cargo", "check")
            bench.close()
    return {"workspace": label, "rows": rows}


def leaf_source(root: Path) -> Path:
    """A real workspace's leaf: the first member no other member depends on, its first target's source."""
    meta = json.loads(
        subprocess.run(
            [real_cargo(os.environ["PATH"]) or "cargo", "metadata", "--no-deps", "--format-version", "1"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=300,
        ).stdout
    )
    members = {p["name"]: p for p in meta["packages"] if p["id"] in meta["workspace_members"]}
    used = {d["name"] for p in members.values() for d in p["dependencies"] if d.get("path")}
    leaf = next(p for name, p in sorted(members.items()) if name not in used)
    return Path(leaf["targets"][0]["src_path"])


def measure(log: Callable[[str], None], sizes: list[int], real: list[Path], repeats: int = 15) -> dict[str, Any]:
    """Every generated size, then every real workspace."""
    out: list[dict[str, Any]] = []
    for crates in sizes:
        ws = prepare(crates, log=log)
        leaf = ws.gen.lib_rs(ws.gen.leaves[0])
        out.append(measure_one(ws.gen.root, f"{crates} generated crates", leaf, repeats, log))
    for root in real:
        leaf = leaf_source(root)
        out.append(measure_one(root, f"{root.name} (real)", leaf, repeats, log))
        out[-1]["edited"] = str(leaf.relative_to(root))
    return {"workspaces": out, "repeats": repeats}
