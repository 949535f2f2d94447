"""`cargo-scheduler demo`: what the engine does, on a generated workspace, in under a minute.

Shows the three answers agents wait for most: a repeat question (cache), an edit to the crate
everything depends on (narrowed to that crate, dependents in the background) and a repeat of a
failing check (cargo recompiles failing crates every time; the cache does not).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..cargo._process import run_bounded
from ..engine._engine import CheckRequest, EnginePool
from ..testing._generate import generate_workspace

_CARGO_TIMEOUT_S = 600.0


async def _cargo_seconds(root: Path, *args: str) -> float:
    start = time.perf_counter()
    await run_bounded(["cargo", "check", "--message-format=json", *args], cwd=root, timeout_s=_CARGO_TIMEOUT_S)
    return time.perf_counter() - start


async def run_demo(path: Path | None, crates: int) -> int:
    temp = None
    if path is None:
        temp = Path(tempfile.mkdtemp(prefix="cargo-scheduler-demo-"))
        path = temp / "workspace"
    ws = None
    if not (path / "Cargo.toml").exists():
        print(f"generating a {crates}-crate workspace in {path}")
        ws = generate_workspace(path, crates)
    else:
        print(f"using the workspace at {path} (read-only demo: no edits)")
    say = print
    question_env = tuple(sorted(os.environ.items()))  # the caller's, as for every CLI question
    try:
        async with EnginePool(cache_dir=(temp / "cache") if temp else None) as pool:
            engine = await pool.get(path)
            t = time.perf_counter()
            first = await engine.check(CheckRequest(env=question_env, scope="workspace"))
            say(
                f"1. first check of every member: {time.perf_counter() - t:.2f}s, cargo ran "
                f"{len(first.ran())} packages ({'ok' if first.success else 'errors'})"
            )
            t = time.perf_counter()
            again = await engine.check(CheckRequest(env=question_env, scope="workspace"))
            ms = (time.perf_counter() - t) * 1000
            noop = await _cargo_seconds(engine.root, "--workspace")
            say(
                f"2. same question again: {ms:.1f} ms, all {len(again.cached())} from the cache "
                f"(a no-op `cargo check --workspace` takes {noop * 1000:.0f} ms)"
            )
            if ws is None:
                return 0
            hub_lib, leaf_lib = ws.lib_rs(ws.hub), ws.lib_rs(ws.leaves[0])
            hub_lib.write_text(hub_lib.read_text() + "\npub fn demo_edit() -> u32 { 1 }\n")
            t = time.perf_counter()
            auto = await engine.check(CheckRequest(env=question_env, scope="auto"))
            say(
                f"3. after an edit to the hub crate: answered in {time.perf_counter() - t:.2f}s "
                f"running only {', '.join(auto.ran())}; {len(auto.pending)} dependents pending in the background"
            )
            t = time.perf_counter()
            await engine.wait_background(timeout_s=3600)
            say(f"   background checked the dependents in {time.perf_counter() - t:.2f}s")
            t = time.perf_counter()
            full = await engine.check(CheckRequest(env=question_env, scope="workspace"))
            say(
                f"   now a whole-workspace answer takes {(time.perf_counter() - t) * 1000:.1f} ms "
                f"({len(full.cached())} from cache, cargo ran {len(full.ran())})"
            )
            leaf_lib.write_text(leaf_lib.read_text() + '\npub fn demo_bug() -> u32 { "oops" }\n')
            await engine.check(CheckRequest(env=question_env, scope="auto"))
            t = time.perf_counter()
            failing = await engine.check(CheckRequest(env=question_env, scope="auto"))
            ms = (time.perf_counter() - t) * 1000
            leaf = ws.leaves[0]
            plain = await _cargo_seconds(engine.root, "-p", leaf)
            errors = [d for d in failing.diagnostics if d.level == "error"]
            say(
                f"4. a failing crate asked again: {ms:.1f} ms with its {len(errors)} error(s), no cargo "
                f"(`cargo check -p {leaf}` recompiles it: {plain * 1000:.0f} ms)"
            )
            if errors:
                say("\n" + errors[0].rendered.rstrip())
        return 0
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        sys.stdout.flush()
