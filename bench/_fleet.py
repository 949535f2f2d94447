"""The fleet section of the report: what a checkout gains from the others' work (docs/fleet.md).

    python bench/report.py --sizes "" --no-traces --no-micro --fleet --fleet-workspace PATH --append

(PATH: a real workspace with registry crates already in `$CARGO_HOME`, e.g. ripgrep's; without it,
20 generated crates that depend on a few registry crates, resolved offline.)

Four measurements, one run, each variant from the same state:
- second machine: checkout B at another path, empty local cache and target dir, a real Redis filled
  by checkout A: B's first `workspace` answer against a cold `cargo check --workspace` in B; then the
  share of B's members the tier answers after a random edit (made on A and checked there, or B's own);
- sccache: a cold check (and build) of B through sccache warmed by A at another path, against the
  same without it, on a workspace with registry crates (resolved from the local registry cache);
- a new git worktree's first check with the shared local cache and without, and the reflink seed
  (on this filesystem, and on a loop-mounted XFS when the machine allows it);
- the tier's cost: a question the local cache answers, with the tier configured and without; and a
  question that misses everywhere (the tier's own `ms`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
from _workspaces import WORK_DIR

from scheduler import CheckRequest, EnginePool, generate_workspace

Log = Callable[[str], None]


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A real redis-server on a unix socket; its URL. Ready by its own log line, stopped after."""
    sock = directory / "redis.sock"
    argv = ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*argv, "--dir", str(directory)], stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout or ():
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        while (line := lines.get(timeout=20)) is not None and "ready to accept connections" not in line.lower():
            pass
        if line is None:
            raise RuntimeError("redis-server exited before it was ready")
        yield f"unix://{sock}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """os.environ with `values` set (None: removed), restored after: the pool reads its settings there."""
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def first_answer(root: Path, cache: Path, request: CheckRequest | None = None) -> tuple[float, Any, Any]:
    """(seconds from a new pool's first `get` to its answer, the report, the engine's status)."""
    async with EnginePool(cache) as pool:
        start = time.perf_counter()
        report = await (await pool.get(root)).check(request or CheckRequest(scope="workspace"))
        elapsed = time.perf_counter() - start
        status = (await pool.get(root)).status()
    return elapsed, report, status


def cold_cargo(root: Path, target: Path, *args: str, env: dict[str, str] | None = None) -> float:
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        ["cargo", *(args or ("check",)), "--workspace", "--target-dir", str(target), "-q"],
        cwd=root,
        env=env,
        capture_output=True,
        timeout=3600,
        check=False,
    )
    return time.perf_counter() - start


def _copy(src: Path, dst: Path) -> Path:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("target", ".git"))
    return dst


def _edit(root: Path, crate: str, tag: str) -> None:
    lib = root / "crates" / crate / "src" / "lib.rs"
    lib.write_text(lib.read_text() + f"\npub fn fleet_{tag}() -> u32 {{ {len(tag)} }}\n")


async def second_machine(base: Path, crates: int, log: Log) -> dict[str, Any]:
    a = base / "a"
    gen = generate_workspace(a, crates)
    out: dict[str, Any] = {"crates": crates}
    with redis_server(Path(tempfile.mkdtemp(prefix="cs-redis-"))) as url, environment(CARGO_SCHEDULER_REMOTE=url):
        log(f"  fleet: checkout A fills Redis ({crates} crates, cold)")
        out["a_cold_engine_s"], _, _ = await first_answer(a, base / "cache-a")
        runs = []
        for i in range(3):
            b = _copy(a, base / f"elsewhere-{i}" / "b")
            s, report, _ = await first_answer(b, base / f"cache-b{i}")
            runs.append({"s": s, "ran": len(report.ran()), "remote": report.remote, "ms": report.timings_ms})
        out["b_first_answer_s"] = [r["s"] for r in runs]
        out["b_timings_ms"] = [r["ms"] for r in runs]  # the engine's own split; the rest is starting it
        out["b_ran"] = [r["ran"] for r in runs]
        out["b_remote"] = runs[0]["remote"]
        log("  fleet: cold cargo check --workspace in B")
        out["b_cold_cargo_s"] = cold_cargo(base / "elsewhere-0" / "b", base / "cold-target")
        rng = random.Random(16)
        crate = rng.choice([*gen.mids, *gen.leaves])
        out["edited"] = crate
        # An edit made on A and checked there; B pulls it.
        _edit(a, crate, "a")
        await first_answer(a, base / "cache-a")
        b = _copy(a, base / "elsewhere-edit" / "b")
        _, report, _ = await first_answer(b, base / "cache-b-edit")
        out["hit_rate_edit_on_a"] = len(report.cached()) / len(gen.members)
        # B's own edit, not on A: only its cone runs.
        b = _copy(a, base / "elsewhere-own" / "b")
        _edit(b, crate, "b")
        _, report, _ = await first_answer(b, base / "cache-b-own")
        out["hit_rate_edit_on_b"] = len(report.cached()) / len(gen.members)
        out["ran_edit_on_b"] = len(report.ran())
        # The tier's cost on a local hit (with and without it configured), and on a miss.
        # In alternating blocks, so that a drift of the machine's load falls on both alike.
        out["local_hit_ms"], out["local_hit_no_tier_ms"] = [], []
        for _ in range(5):
            out["local_hit_ms"] += await _noop_ms(a, base / "cache-a", remote=True, n=6)
            out["local_hit_no_tier_ms"] += await _noop_ms(a, base / "cache-a", remote=False, n=6)
    # Every key missing locally and in the (new, empty) Redis; A's target dir is warm, so cargo
    # only replays its units: the tier's own time is in the answer.
    with redis_server(Path(tempfile.mkdtemp(prefix="cs-redis-"))) as url, environment(CARGO_SCHEDULER_REMOTE=url):
        _, report, _ = await first_answer(a, base / "cache-miss")
        out["miss_remote"] = report.remote
    return out


async def _noop_ms(root: Path, cache: Path, *, remote: bool, n: int = 30) -> list[float]:
    with environment(**({} if remote else {"CARGO_SCHEDULER_REMOTE": None})):
        async with EnginePool(cache) as pool:
            engine = await pool.get(root)
            await engine.check(CheckRequest(scope="workspace"))
            samples = []
            for _ in range(n):
                report = await engine.check(CheckRequest(scope="workspace"))
                samples.append(report.timings_ms["total"])
    return samples


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=300, check=argv[0] == "git")


def git_repository(root: Path, worktrees: list[Path]) -> None:
    """`root` made a git repository (one commit of its sources, target/ ignored) with `worktrees`."""
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    (root / ".gitignore").write_text("target/\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fleet"]):
        _run([*git, *args], cwd=root)
    for tree in worktrees:
        _run([*git, "worktree", "add", "-q", str(tree)], cwd=root)


async def worktree(base: Path, log: Log) -> dict[str, Any]:
    """A new git worktree of checkout A (fleet's 150 crates): its first check with A's local cache
    (one daemon, one cache) and with an empty one; and the reflink seed's verdict here."""
    a = base / "a"
    git_repository(a, [base / "wt"])
    out: dict[str, Any] = {}
    with environment(CARGO_SCHEDULER_REMOTE=None):
        await first_answer(a, base / "cache-a")  # A's answers are in the local cache
        out["with_shared_cache_s"], report, _ = await first_answer(base / "wt", base / "cache-a")
        out["with_shared_cache_ran"] = len(report.ran())
        log("  fleet: the worktree's first check with an empty local cache")
        shutil.rmtree(base / "wt" / "target", ignore_errors=True)
        out["without_shared_cache_s"], report, status = await first_answer(base / "wt", base / "cache-wt")
        out["without_shared_cache_ran"] = len(report.ran())
        out["seed"] = status["target_seed"]  # tried before that run's cargo: A's target dir is there
    return out


def summary(samples: list[float]) -> float:
    return statistics.median(samples)


def measure(log: Log, crates: int = 150, registry: Path | None = None) -> dict[str, Any]:
    """Every part; `registry`: a real workspace with registry crates for the sccache and seed parts."""
    base = WORK_DIR / "fleet"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)

    async def run() -> dict[str, Any]:
        second = await second_machine(base, crates, log)
        tree = await worktree(base, log)
        from _fleet_sccache import sccache  # they build on this module
        from _fleet_seed import seed_on_xfs

        cc = await sccache(base, log, registry)

        tree["seed_xfs"] = await seed_on_xfs(base, registry, log)
        return {"second_machine": second, "worktree": tree, "sccache": cc}

    try:
        return scrub(anyio.run(run))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def scrub(results: dict[str, Any]) -> dict[str, Any]:
    """No directory of this machine in what is committed: the Redis sockets' temporary directories
    and the sccache binary's path (the report rewrites the repository's own path itself)."""
    import json
    import re

    text = json.dumps(results)
    text = re.sub(r"unix://[^\"]*?/cs-redis-[^/\"]+/redis\.sock", "unix://TMPDIR/redis.sock", text)
    text = re.sub(r'"binary": "[^"]*/(sccache[^"/]*)"', r'"binary": "\1"', text)
    scrubbed: dict[str, Any] = json.loads(text)
    return scrubbed
