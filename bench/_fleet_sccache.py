"""The fleet's compiled-artifact part: a cold check and build of checkout B through sccache warmed
by checkout A at another path, against the same without it, on a workspace with registry crates
(sccache caches registry crates; workspace members are incremental and keyed on their paths).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from _fleet import Log, _copy, _run, cold_cargo, environment, first_answer

from scheduler import CheckRequest, EnginePool, generate_workspace

REGISTRY_DEPS = (
    'regex = "1"\nserde = { version = "1", features = ["derive"] }\nserde_json = "1"\n'
    'anyhow = "1"\nbstr = "1"\nrand = "0.9"\n'
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registry_workspace(root: Path, source: Path | None) -> dict[str, Any]:
    """Checkout A of a workspace with registry crates, and what it is: a copy of `source` (a real
    workspace whose registry sources are already in `$CARGO_HOME`; its target dir and .git are left
    behind) or, without one, 20 generated crates whose hub depends on a few common registry crates
    (resolved offline, so they must be in the local registry cache)."""
    if source is not None:
        _copy(source, root)
        members, version = _members(root)
        return {"workspace": str(source), "name": source.name, "version": version, "members": members}
    gen = generate_workspace(root, 20)
    manifest = gen.root / "crates" / "hub" / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace("[dependencies]\n", "[dependencies]\n" + REGISTRY_DEPS, 1))
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=root, check=True, capture_output=True, timeout=300)
    return {"workspace": None, "name": "generated", "members": len(gen.members)}


def _members(root: Path) -> tuple[int, str]:
    """(how many workspace members, the root package's version or "")."""
    import json

    argv = ["cargo", "metadata", "--offline", "--no-deps", "--format-version", "1"]
    meta = json.loads(subprocess.run(argv, cwd=root, check=True, capture_output=True, timeout=300).stdout)
    root_pkg = [p for p in meta["packages"] if Path(p["manifest_path"]).parent == root.resolve()]
    return len(meta["workspace_members"]), root_pkg[0]["version"] if root_pkg else ""


def _lock_packages(root: Path) -> int:
    return (root / "Cargo.lock").read_text().count("[[package]]")


def _stats(binary: str, env: dict[str, str]) -> dict[str, int]:
    import json

    proc = subprocess.run([binary, "--show-stats", "--stats-format", "json"], env=env, capture_output=True, timeout=30)
    raw = json.loads(proc.stdout or b"{}").get("stats", {})
    pick = ("cache_hits", "cache_misses", "requests_not_cacheable")
    return {k: sum(v["counts"].values()) if isinstance(v, dict) else v for k, v in raw.items() if k in pick}


async def sccache(base: Path, log: Log, source: Path | None = None, repeats: int = 2) -> dict[str, Any]:
    """Both "machines" share one sccache disk cache (SCCACHE_DIR): with a Redis-enabled sccache the
    engine would point it at the tier's Redis, but Debian's build has none, and a directory both
    checkouts use is the same experiment (artifacts made by A at one path, reused by B at another).
    B's cold check and build, through it and without it, alternate `repeats` times (medians kept)."""
    binary = shutil.which("sccache")
    if binary is None:
        return {"skipped": "sccache is not installed"}
    out: dict[str, Any] = registry_workspace(base / "reg-a", source)
    a = base / "reg-a"
    b = _copy(a, base / "elsewhere-reg" / "b")
    sc = {"SCCACHE_DIR": str(base / "sccache"), "SCCACHE_SERVER_PORT": str(_free_port())}
    out["registry_packages"] = _lock_packages(a) - out["members"]
    out["shared_cache"] = "one local SCCACHE_DIR for both checkouts"
    env = {**os.environ, **sc, "RUSTC_WRAPPER": binary}
    plain = {k: v for k, v in os.environ.items() if k != "RUSTC_WRAPPER"}
    with environment(**sc, CARGO_SCHEDULER_SCCACHE=binary, CARGO_SCHEDULER_REMOTE=None):
        log(f"  fleet: sccache: checkout A's first check and cold build fill it ({out['name']})")
        _, _, status = await first_answer(a, base / "cache-reg-a")
        out["sccache"] = status["sccache"]
        cold_cargo(a, base / "reg-a-build", "build", env=env)
        _run([binary, "--stop-server"], env=env)
    samples: dict[str, list[float]] = {k: [] for k in ("engine_with", "engine_without", "build_with", "build_without")}
    for i in range(repeats):
        log(f"  fleet: sccache: B's cold check and build through it, then without it ({i + 1}/{repeats})")
        with environment(**sc, CARGO_SCHEDULER_SCCACHE=binary, CARGO_SCHEDULER_REMOTE=None):
            shutil.rmtree(b / "target", ignore_errors=True)
            async with EnginePool(base / f"cache-reg-b{i}") as pool:  # the counters of the engine's own server
                start = time.perf_counter()
                report = await (await pool.get(b)).check(CheckRequest(scope="workspace"))
                samples["engine_with"].append(time.perf_counter() - start)
                out["b_engine_stats"] = _stats(binary, env)
            out["b_engine_with_ran"] = len(report.ran())
            _run([binary, "--zero-stats"], env=env)  # the counters say what B's build found
            samples["build_with"].append(cold_cargo(b, base / "reg-b-build", "build", env=env))
            out["stats"] = _stats(binary, env)
            _run([binary, "--stop-server"], env=env)
        with environment(CARGO_SCHEDULER_SCCACHE=None, CARGO_SCHEDULER_REMOTE=None):
            shutil.rmtree(b / "target", ignore_errors=True)
            samples["engine_without"].append((await first_answer(b, base / f"cache-reg-b-plain{i}"))[0])
            samples["build_without"].append(cold_cargo(b, base / "reg-b-build", "build", env=plain))
    for name, values in samples.items():
        out[f"b_{name}_s"] = statistics.median(values)
        out[f"b_{name}_samples_s"] = values
    return out
