"""The engine against plain cargo, side by side, on one warm generated workspace.

    python bench/engine_bench.py --crates 150 --repeats 7 [--json out.json]

Scenarios (bench/README.md says what each one means and why the targets are what they are):
  a. nothing changed: `cargo check --workspace` (a no-op) vs the engine's repeat check, scope
     `workspace` and `auto`. Target: engine <= 1/20 of cargo.
  b. a leaf with a type error: `cargo check -p LEAF` (cargo never caches a failure, so it compiles the
     leaf again every time) vs the engine's repeat check, which must start no cargo. Target <= 20 ms.
  c. an edit to the hub: `cargo check -p hub`, `cargo check --workspace` and the engine's `auto`
     answer, each measured right after its own fresh edit from the same state (everything fresh for
     the current sources). Then the background fills the cache and a `workspace` answer must come
     entirely from it. Targets: auto <= 1.2x `-p hub`, and >= 5x faster than `--workspace`.
  d. the engine's observe step: stat walk time and how many files it walked.

Every cargo baseline uses the engine's own flags (`--message-format=json-diagnostic-rendered-ansi
--keep-going`), environment and target dir. The engine runs in this process with an isolated cache
under bench/.work/; engine times are wall time around `await engine.check(...)`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import anyio  # noqa: E402
from _machine import machine_info  # noqa: E402
from _stats import spread as fmt  # noqa: E402
from _stats import summary  # noqa: E402
from _workspaces import CARGO_FLAGS, WORK_DIR, BenchWorkspace, cargo, cargo_env, check_workspace, prepare, restore  # noqa: E402

from scheduler import CheckRequest, Engine, EnginePool  # noqa: E402
from scheduler.engine._report import CheckReport  # noqa: E402

TYPE_ERROR = '\npub fn bench_broken() -> u32 { "not a number" }\n'
BACKGROUND_TIMEOUT_S = 1200.0


# -- the table -------------------------------------------------------------------------------
@dataclass
class Row:
    id: str
    title: str
    baseline_cmd: str | None
    engine_call: str
    baseline: dict[str, Any] | None
    engine: dict[str, Any]
    target: str
    check: Callable[[Row], bool] | None
    """None: informational row."""
    details: dict[str, Any] = field(default_factory=dict)
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return float(self.engine["median_ms"] / self.baseline["median_ms"])

    def evaluate(self) -> None:
        self.passed = None if self.check is None else bool(self.check(self))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "baseline_command": self.baseline_cmd,
            "engine_call": self.engine_call,
            "baseline": self.baseline,
            "engine": self.engine,
            "ratio_engine_over_baseline": self.ratio,
            "target": self.target,
            "result": "info" if self.passed is None else ("PASS" if self.passed else "FAIL"),
            "details": self.details,
        }


def table(rows: list[Row]) -> str:
    head = ("scenario", "baseline median [min-max]", "engine median [min-max]", "ratio", "target", "result")
    lines = [head]
    for r in rows:
        ratio = "-" if r.ratio is None else (f"1/{1 / r.ratio:.0f}" if r.ratio < 0.1 else f"{r.ratio:.2f}x")
        lines.append(
            (
                f"{r.id} {r.title}",
                fmt(r.baseline),
                fmt(r.engine),
                ratio,
                r.target,
                "info" if r.passed is None else ("PASS" if r.passed else "FAIL"),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(out)


# -- the run ----------------------------------------------------------------------------------
class Bench:
    def __init__(self, bw: BenchWorkspace, engine: Engine, repeats: int, log: Callable[[str], None]) -> None:
        self.bw = bw
        self.root = bw.root
        self.engine = engine
        self.repeats = repeats
        self.log = log
        self.env = cargo_env()
        self.rows: list[Row] = []
        self.nonce = int(time.time() * 1000) % 1_000_000_007
        self.edits = 0

    # helpers
    async def cargo(self, args: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
        # Never while the engine has background work: it would hold the target dir's lock.
        await self.engine.wait_background(BACKGROUND_TIMEOUT_S)
        assert not self.engine.status()["background"]
        return await anyio.to_thread.run_sync(cargo, self.root, args, self.env)

    async def ensure_cargo_fresh(self) -> float:
        """Bring cargo's target dir up to date with the current sources (untimed state reset)."""
        await self.engine.wait_background(BACKGROUND_TIMEOUT_S)
        seconds, result = await anyio.to_thread.run_sync(check_workspace, self.root, self.env)
        if b'"build-finished","success":true' not in result.stdout:
            raise RuntimeError(
                "cargo check --workspace failed on the pristine sources:\n"
                + result.stderr.decode(errors="replace")[-2000:]
            )
        return seconds

    async def timed(self, request: CheckRequest) -> tuple[float, CheckReport]:
        """Wall time of one engine answer, as a caller in this process waits for it."""
        start = time.perf_counter()
        report = await self.engine.check(request)
        return time.perf_counter() - start, report

    def edit_hub(self) -> None:
        """Append a new pub fn with a body no earlier edit had: a real change every time."""
        self.edits += 1
        n = self.edits
        path = self.bw.gen.lib_rs(self.bw.gen.hub)
        body = f"{self.nonce}u64 * {n}u64 + {n * 7919}u64"
        path.write_text(path.read_text() + f"\npub fn bench_edit_{self.nonce}_{n}() -> u64 {{ {body} }}\n")

    # scenarios
    async def noop(self) -> None:
        self.log("a. nothing changed")
        await self.ensure_cargo_fresh()
        base = []
        for _ in range(self.repeats):
            seconds, result = await self.cargo(["check", "--workspace", *CARGO_FLAGS])
            assert result.returncode == 0, result.stderr[-2000:]
            base.append(seconds)
        for scope in ("workspace", "auto"):
            samples, timings, dict_ms = [], [], []
            for _ in range(self.repeats):
                seconds, report = await self.timed(CheckRequest(scope=scope))
                assert report.ran() == [] and report.command == [] and report.pending == [], report.to_dict()
                assert len(report.cached()) == len(self.bw.gen.members), report.to_dict()
                samples.append(seconds)
                timings.append(report.timings_ms)
                t = time.perf_counter()
                report.to_dict()
                dict_ms.append((time.perf_counter() - t) * 1000)
            self.rows.append(
                Row(
                    f"a-{scope}",
                    f"no change, scope {scope}",
                    "cargo check --workspace " + " ".join(CARGO_FLAGS),
                    f"engine.check(CheckRequest(scope={scope!r}))",
                    summary(base),
                    summary(samples),
                    "<= 1/20 of cargo",
                    lambda r: r.ratio is not None and r.ratio <= 1 / 20,
                    {
                        "engine_timings_ms_median": _median_dicts(timings),
                        "report_to_dict_ms_median": statistics.median(dict_ms),
                        "cached": len(self.bw.gen.members),
                    },
                )
            )

    async def observe(self) -> None:
        self.log("d. observe (stat walk)")
        walk, end_to_end, keys_ms = [], [], []
        files = hashed = 0
        for _ in range(self.repeats):
            t = time.perf_counter()
            obs = await self.engine.observe()
            end_to_end.append(time.perf_counter() - t)
            walk.append(obs.snap.stats.elapsed_ms / 1000)
            files, hashed = obs.snap.stats.files, obs.snap.stats.hashed
            t = time.perf_counter()
            await self.engine.keys(CheckRequest(), obs)
            keys_ms.append((time.perf_counter() - t) * 1000)
        self.rows.append(
            Row(
                "d",
                f"observe: stat walk of {files} files",
                None,
                "TreeHasher.snapshot (Engine.observe)",
                None,
                summary(walk),
                f"info ({files} files, {hashed} hashed)",
                None,
                {
                    "files": files,
                    "hashed_last_walk": hashed,
                    "observe_end_to_end": summary(end_to_end),
                    "keys_after_observe_ms_median": statistics.median(keys_ms),
                },
            )
        )

    async def failing_leaf(self) -> None:
        gen = self.bw.gen
        leaf = gen.leaves[0]
        self.log(f"b. type error in {leaf}")
        path = gen.lib_rs(leaf)
        original = path.read_text()
        path.write_text(original + TYPE_ERROR)
        try:
            first = await self.engine.check(CheckRequest(packages=(leaf,)))
            assert first.ran() == [leaf] and not first.success, first.to_dict()
            errors = [d for d in first.diagnostics if d.level == "error"]
            assert errors and errors[0].package == leaf, first.to_dict()
            base = []
            for _ in range(self.repeats):
                seconds, result = await self.cargo(["check", "-p", leaf, *CARGO_FLAGS])
                # Cargo compiled the leaf again and failed again: that is the cost being measured.
                assert result.returncode != 0 and b'"level":"error"' in result.stdout, result.stderr[-2000:]
                base.append(seconds)
            base_ws = []
            for _ in range(self.repeats):
                seconds, result = await self.cargo(["check", "--workspace", *CARGO_FLAGS])
                assert result.returncode != 0
                base_ws.append(seconds)
            for rid, request, baseline, cmd in (
                ("b-pkg", CheckRequest(packages=(leaf,)), base, f"cargo check -p {leaf}"),
                ("b-workspace", CheckRequest(scope="workspace"), base_ws, "cargo check --workspace"),
            ):
                samples = []
                for _ in range(self.repeats):
                    seconds, report = await self.timed(request)
                    # Must start no cargo: every answer, the failure included, comes from the cache.
                    assert report.ran() == [] and report.command == [], report.to_dict()
                    assert not report.success and [d.package for d in report.diagnostics if d.level == "error"] == [
                        e.package for e in errors
                    ], report.to_dict()
                    samples.append(seconds)
                title = f"error in {leaf}, " + ("-p" if rid == "b-pkg" else "workspace")
                self.rows.append(
                    Row(
                        rid,
                        title,
                        cmd + " " + " ".join(CARGO_FLAGS),
                        f"engine.check({request!r})",
                        summary(baseline),
                        summary(samples),
                        "<= 20 ms, ran nothing",
                        lambda r: r.engine["median_ms"] <= 20.0,
                        {"leaf": leaf, "errors": len(errors)},
                    )
                )
        finally:
            path.write_text(original)
        await self.engine.check(CheckRequest(packages=(leaf,)))
        await self.ensure_cargo_fresh()

    async def hub_edit(self) -> None:
        gen = self.bw.gen
        self.log("c. edit to the hub")
        hub_path = gen.lib_rs(gen.hub)
        original = hub_path.read_text()
        p_hub: list[float] = []
        ws: list[float] = []
        auto: list[float] = []
        fill: list[float] = []
        after: list[float] = []
        resets: list[float] = []
        pending_counts: list[int] = []

        async def variant_p_hub() -> None:
            self.edit_hub()
            seconds, result = await self.cargo(["check", "-p", gen.hub, *CARGO_FLAGS])
            assert result.returncode == 0, result.stderr[-2000:]
            p_hub.append(seconds)

        async def variant_workspace() -> None:
            self.edit_hub()
            seconds, result = await self.cargo(["check", "--workspace", *CARGO_FLAGS])
            assert result.returncode == 0, result.stderr[-2000:]
            ws.append(seconds)

        async def variant_engine() -> None:
            self.edit_hub()
            seconds, report = await self.timed(CheckRequest(scope="auto"))
            assert report.ran() == [gen.hub] and report.success, report.to_dict()
            pending_counts.append(len(report.pending))
            auto.append(seconds)
            t = time.perf_counter()
            await self.engine.wait_background(BACKGROUND_TIMEOUT_S)
            fill.append(time.perf_counter() - t)
            seconds, report = await self.timed(CheckRequest(scope="workspace"))
            assert report.ran() == [] and report.pending == [] and report.command == [], report.to_dict()
            assert len(report.cached()) == len(gen.members) and report.success, report.to_dict()
            after.append(seconds)

        variants = [variant_p_hub, variant_workspace, variant_engine]
        try:
            for r in range(self.repeats):
                # Rotate the order so drift (page cache, thermals, a neighbour) spreads evenly.
                for variant in variants[r % 3 :] + variants[: r % 3]:
                    # The same starting state for every variant: cargo fresh for the current sources.
                    resets.append(await self.ensure_cargo_fresh())
                    await variant()
                self.log(
                    f"   repeat {r + 1}/{self.repeats}: -p hub {p_hub[-1]:.2f}s, --workspace {ws[-1]:.2f}s, "
                    f"auto {auto[-1] * 1000:.0f}ms, background fill {fill[-1]:.2f}s"
                )
        finally:
            hub_path.write_text(original)
        # Back to the state every scenario starts from: cargo fresh, the engine's cache full.
        await self.ensure_cargo_fresh()
        restored = await self.engine.check(CheckRequest(scope="workspace"))
        assert restored.success and restored.pending == [], restored.to_dict()
        cmd_p = f"cargo check -p {gen.hub} " + " ".join(CARGO_FLAGS)
        cmd_ws = "cargo check --workspace " + " ".join(CARGO_FLAGS)
        details = {
            "pending_after_auto": pending_counts[0] if pending_counts else None,
            "state_resets_s": summary(resets),
        }
        self.rows += [
            Row(
                "c-auto-vs-p",
                "hub edit: auto vs -p hub",
                cmd_p,
                "engine.check(CheckRequest(scope='auto'))",
                summary(p_hub),
                summary(auto),
                "<= 1.2x",
                lambda r: r.ratio is not None and r.ratio <= 1.2,
                details,
            ),
            Row(
                "c-auto-vs-ws",
                "hub edit: auto vs --workspace",
                cmd_ws,
                "engine.check(CheckRequest(scope='auto'))",
                summary(ws),
                summary(auto),
                ">= 5x faster",
                lambda r: r.ratio is not None and r.ratio <= 1 / 5,
            ),
            Row(
                "c-fill",
                "hub edit: background fill",
                cmd_ws,
                "await engine.wait_background() after auto",
                summary(ws),
                summary(fill),
                "info",
                None,
            ),
            Row(
                "c-after",
                "hub edit: workspace after fill",
                cmd_ws,
                "engine.check(CheckRequest(scope='workspace')) after the fill",
                summary(ws),
                summary(after),
                "ran nothing",
                lambda r: True,
            ),
        ]


def _median_dicts(items: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(d[k] for d in items), 3) for k in items[0]} if items else {}


async def run(
    bw: BenchWorkspace, repeats: int, cache_dir: Path, log: Callable[[str], None]
) -> tuple[list[Row], dict[str, Any]]:
    extra: dict[str, Any] = {}
    async with EnginePool(cache_dir=cache_dir) as pool:
        engine = await pool.get(bw.root)
        ws = await engine.workspace()
        target = await engine.target_dir_for(ws, CheckRequest())
        # Fairness: the baselines run in the same target dir as the engine.
        assert target == bw.root / "target" == ws.target_dir, (target, ws.target_dir)
        t = time.perf_counter()
        prime = await engine.check(CheckRequest(scope="workspace"))
        extra["engine_prime_s"] = time.perf_counter() - t
        extra["engine_prime_ran"] = len(prime.ran())
        assert prime.success, prime.to_dict()
        bench = Bench(bw, engine, repeats, log)
        await bench.noop()
        await bench.observe()
        # c before b: reverting b's broken leaf brings back a cached key without a run, which leaves
        # the engine's "own files changed" record of that leaf behind (see bench/README.md), and c
        # would then run that leaf too. c measures an edit to the hub from a clean state.
        await bench.hub_edit()
        await bench.failing_leaf()
        await engine.wait_background(BACKGROUND_TIMEOUT_S)
        extra["cache"] = engine.cache.stats()
    return bench.rows, extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crates", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results (with machine info) here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    machine = machine_info()
    bw = prepare(args.crates, args.seed, log=log)
    cache_dir = WORK_DIR / f"cache-{bw.name}"
    shutil.rmtree(cache_dir, ignore_errors=True)
    os.environ["CARGO_SCHEDULER_CACHE_DIR"] = str(cache_dir)
    started = time.time()
    try:
        rows, extra = anyio.run(run, bw, args.repeats, cache_dir, log)
    finally:
        # Leave the workspace as generated (and warm) for the next run.
        restore(bw.root, args.crates, args.seed)
        check_workspace(bw.root)
    for row in rows:
        row.evaluate()
    machine["loadavg_at_end"] = os.getloadavg()
    print(
        f"\n{args.crates} crates, {args.repeats} repeats, {machine['usable_cores']} cores, "
        f"{machine['cargo']}; engine prime (first workspace check, cargo fresh): {extra['engine_prime_s']:.2f}s; "
        f"load average at start {machine['loadavg_at_start'][0]:.2f}, at end {machine['loadavg_at_end'][0]:.2f}"
    )
    print(table(rows))
    failed = [r.id for r in rows if r.passed is False]
    print("\nFAIL: " + ", ".join(failed) if failed else "\nall targets met")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "crates": args.crates,
                    "repeats": args.repeats,
                    "seed": args.seed,
                    "workspace": str(bw.root),
                    "generator": bw.name,
                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                    "duration_s": round(time.time() - started, 1),
                    "machine": machine,
                    "workspace_cold_check_s": bw.cold_check_s,
                    "workspace_warm_up_s": bw.warm_s,
                    **extra,
                    "scenarios": [r.to_json() for r in rows],
                    "failed": failed,
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
