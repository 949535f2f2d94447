"""Many agents on one workspace: concurrent MCP clients making mixed calls, checked for liveness,
for mutations overlapping builds or reads, and for a final answer equal to a fresh cargo check.

    python bench/stress.py --clients 8 --calls 200 [--crates 12] [--seed 1] [--json out.json]

Mode: in-memory MCP clients (`mcp.Client(server)`) sharing one `ServerState`, which is what the
daemon gives concurrent stdio sessions. One stdio `cargo-scheduler serve` per client would add a
Python process per client importing the SDK (~1.4 s each, FIELD-NOTES) and JSON-RPC over pipes on
a 2-core machine, and its event log would only be visible through `scheduler_status`; the
scheduling, engine, cache and cargo processes under test are the same.

Each client draws calls from its own seeded RNG: reads (cargo_affected, scheduler_status,
cargo_fmt_check), checks (cargo_check in every scope, cargo_build, cargo_test), edits through the
tools (cargo_fmt) and edits made directly on disk (errors, warnings, fixes, unformatted code), as
agents and their humans do. Afterwards:

- every call was answered (no exception, no client-side timeout); `isError` answers are counted;
- no mutation overlapped another call of the workspace (the scheduler's event log), and no cargo
  process ran while a mutation's own cargo (fmt) wrote: processes are timed by wrapping the engine's,
  the test runner's and the plain tools' runners, so the engine's background checks (which are not
  scheduler calls) are covered too;
- after the last edit, the engine's `cargo_check(scope="workspace")` equals a fresh
  `cargo check --workspace` in a target dir of its own.

It prints one JSON object (latency p50/p99 per tool, outcome counts, the overlap check, the final
comparison) and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from scheduler import GeneratedWorkspace, ServerState, build_server, fresh_cargo_check, generate_workspace
from scheduler.engine import _engine, _testrun
from scheduler.server import _tools_cargo
from scheduler.server._admission import CallClass

CALL_BOUND_S = 600.0
BIG = 100_000
Identity = tuple[Any, ...]


@dataclass
class Process:
    argv: list[str]
    start: float
    end: float = float("inf")

    @property
    def mutates(self) -> bool:
        a = self.argv
        return ("fmt" in a and "--check" not in a) or "clean" in a or "--fix" in a


@dataclass
class Recorder:
    processes: list[Process] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    outcomes: Counter[str] = field(default_factory=Counter)
    by_tool: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    errors: list[str] = field(default_factory=list)

    def wrap(self, runner: Callable[..., Awaitable[Any]], argv_of: Callable[..., list[str]]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            record = Process(argv_of(*args, **kwargs), time.monotonic())
            self.processes.append(record)
            try:
                return await runner(*args, **kwargs)
            finally:
                record.end = time.monotonic()

        return timed


def instrument(recorder: Recorder) -> Callable[[], None]:
    """Time every cargo process the engine, the test runner and the plain tools start. A process's
    interval ends when it and its group are gone (the runners return only after killing them)."""
    # Patched where they are looked up: each module imported the runner under its own name.
    targets: list[tuple[object, str, Callable[..., list[str]]]] = [
        (_engine, "run_cargo", lambda args, **_: ["cargo", *args]),
        (_testrun, "run_cargo", lambda args, **_: ["cargo", *args]),
        (_tools_cargo, "run_cargo_plain", lambda root, args, **_: ["cargo", *args]),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in targets]
    for module, name, argv in targets:
        setattr(module, name, recorder.wrap(getattr(module, name), argv))

    def undo() -> None:
        for module, name, original in saved:
            setattr(module, name, original)

    return undo


# -- edits on disk --------------------------------------------------------------------------------
class DiskEditor:
    """Edits made directly on disk (not through the server), as layers over the generated sources."""

    def __init__(self, ws: GeneratedWorkspace) -> None:
        self.ws = ws
        self.crates = [m for m in ws.members if m != "macros"]
        self.originals = {m: ws.lib_rs(m).read_text() for m in self.crates}
        self.snippets: dict[str, list[str]] = {m: [] for m in self.crates}
        self.counter = 0

    def edit(self, rng: random.Random) -> str:
        self.counter += 1
        i, crate = self.counter, rng.choice(self.crates)
        kind = rng.choice(["error", "warning", "fix", "fix", "unformatted", "pub_fn"])
        snippets = self.snippets[crate]
        if kind == "error":
            snippets.append(f'\npub fn e{i}() -> u32 {{ "e{i}" }}\n')
        elif kind == "warning":
            snippets.append(f"\npub fn w{i}() -> u32 {{\n    let unused{i} = {i};\n    0\n}}\n")
        elif kind == "unformatted":
            snippets.append(f"\npub fn   u{i} ( )->u32{{ {i} }}\n")
        elif kind == "pub_fn":
            snippets.append(f"\npub fn f{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n")
        elif snippets:
            snippets.pop(rng.randrange(len(snippets)))
        self.ws.lib_rs(crate).write_text(self.originals[crate] + "".join(snippets))
        return f"{kind} {crate}"


# -- one client -------------------------------------------------------------------------------------
def draw_call(rng: random.Random, ws: GeneratedWorkspace) -> tuple[str, dict[str, Any]]:
    members = ws.members
    roll = rng.random()
    if roll < 0.12:
        files = [str(ws.lib_rs(rng.choice(members)).relative_to(ws.root)) for _ in range(rng.randint(1, 3))]
        return "cargo_affected", {"files": files}
    if roll < 0.20:
        return "scheduler_status", {}
    if roll < 0.30:
        return "cargo_fmt_check", {}
    if roll < 0.62:
        args: dict[str, Any] = {"scope": rng.choice(["auto", "auto", "changed", "affected", "workspace"])}
        if rng.random() < 0.3:
            args["package"] = rng.choice(members)
        return "cargo_check", args
    if roll < 0.66:
        return "cargo_build", {"package": rng.choice([ws.hub, *ws.mids])}
    if roll < 0.70:
        return "cargo_test", {"package": rng.choice([ws.hub, *ws.mids])}
    if roll < 0.78:
        return "cargo_fmt", {}
    return "disk_edit", {}


async def client_run(
    index: int, server: Any, ws: GeneratedWorkspace, calls: int, seed: int, editor: DiskEditor, rec: Recorder
) -> None:
    rng = random.Random(seed * 1000 + index)
    async with Client(server) as client:
        for _ in range(calls):
            tool, args = draw_call(rng, ws)
            started = time.perf_counter()
            if tool == "disk_edit":
                editor.edit(rng)
                outcome = "edited"
            else:
                try:
                    with anyio.fail_after(CALL_BOUND_S):
                        result = await client.call_tool(tool, args)
                except TimeoutError:
                    outcome = "timeout"
                except Exception as exc:
                    outcome = "exception"
                    rec.errors.append(f"{tool} {args}: {type(exc).__name__}: {exc}")
                else:
                    data = result.structured_content or {}
                    if result.is_error:
                        outcome = "is_error"
                        rec.errors.append(f"{tool} {args}: {data.get('error') or result.content}")
                    elif data.get("success") is False or data.get("formatted") is False:
                        outcome = "answered_failure"  # compile errors, failing tests, unformatted code
                    else:
                        outcome = "answered_success"
            rec.latencies[tool].append((time.perf_counter() - started) * 1000)
            rec.outcomes[outcome] += 1
            rec.by_tool[tool][outcome] += 1


# -- the checks ----------------------------------------------------------------------------------------
def overlap_check(state: ServerState, root: Path, rec: Recorder) -> dict[str, Any]:
    assert state.scheduler is not None
    events = state.scheduler.for_workspace(root).events()
    spans: dict[int, dict[str, Any]] = {}
    for e in events:
        span = spans.setdefault(e.seq, {"label": e.label, "cls": e.cls, "start": None, "end": float("inf")})
        if e.kind == "start":
            span["start"] = e.at
        else:
            span["end"] = e.at
    started = [s for s in spans.values() if s["start"] is not None]
    mutations = [s for s in started if s["cls"] is CallClass.MUTATION]
    violations = []
    for m in mutations:
        for other in started:
            if other is not m and other["start"] < m["end"] and other["end"] > m["start"]:
                violations.append(f"call {other['label']} ({other['cls'].value}) overlaps mutation {m['label']}")
        # A background batch waiting for the target dir may start cargo in the instant between the
        # mutation's admission and its cancelling of background work; it is killed (and waited for)
        # before the mutation writes anything. Counted, not a violation; the writes are checked below.
        drained = [p for p in rec.processes if m["start"] < p.start < m["end"] and not p.mutates]
        m["drained"] = len(drained)
    for pm in (p for p in rec.processes if p.mutates):  # no other cargo runs while a mutation writes
        for p in rec.processes:
            if p is not pm and p.start < pm.end and p.end > pm.start:
                violations.append(f"process {' '.join(p.argv[:4])} overlaps {' '.join(pm.argv[:4])}")
    return {
        "calls_in_log": len(started),
        "mutations": len(mutations),
        "cargo_processes": len(rec.processes),
        "mutating_processes": sum(p.mutates for p in rec.processes),
        "background_killed_at_mutation_start": sum(m["drained"] for m in mutations),
        "violations": violations[:20],
        "violation_count": len(violations),
    }


def identities(answer: dict[str, Any]) -> set[Identity]:
    return {
        (d["package"], d["level"], d.get("code"), d["message"], d.get("file"), d.get("line"), d.get("column"))
        for d in answer.get("diagnostics", [])
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))], 1)


# -- the run ----------------------------------------------------------------------------------------------
async def run_stress(clients: int, calls: int, crates: int, seed: int, workdir: Path) -> dict[str, Any]:
    ws = generate_workspace(workdir / "ws", crates, seed=seed)
    rec = Recorder()
    editor = DiskEditor(ws)
    undo = instrument(rec)
    wall = time.perf_counter()
    try:
        async with ServerState(ws.root, cache_dir=workdir / "cache") as state:
            server = build_server(ws.root, state=state)
            async with anyio.create_task_group() as tg:
                for i in range(clients):
                    tg.start_soon(client_run, i, server, ws, calls, seed, editor, rec)
            wall_s = time.perf_counter() - wall
            overlap = overlap_check(state, ws.root.resolve(), rec)
            async with Client(server) as client:
                with anyio.fail_after(CALL_BOUND_S):
                    final = await client.call_tool("cargo_check", {"scope": "workspace", "max_tokens": BIG})
    finally:
        undo()
    answer = final.structured_content or {}
    cargo_success, theirs = await anyio.to_thread.run_sync(fresh_cargo_check, ws.root, workdir / "fresh-target")
    ours = identities(answer)
    final_check = {
        "equal": (
            not final.is_error
            and ours == theirs
            and answer.get("success") == cargo_success
            and not answer.get("packages", {}).get("pending")
            and "omitted" not in answer
        ),
        "engine_success": answer.get("success"),
        "cargo_success": cargo_success,
        "diagnostics": len(theirs),
        "only_engine": sorted(map(str, ours - theirs))[:5],
        "only_cargo": sorted(map(str, theirs - ours))[:5],
        "disk_edits": editor.counter,
    }
    all_latencies = [v for values in rec.latencies.values() for v in values]
    answered = sum(n for k, n in rec.outcomes.items() if k not in ("timeout", "exception"))
    report = {
        "mode": "in-memory clients sharing one ServerState",
        "clients": clients,
        "calls_per_client": calls,
        "crates": crates,
        "seed": seed,
        "wall_s": round(wall_s, 1),
        "latency_ms": {
            tool: {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99), "max": round(max(v), 1)}
            for tool, v in sorted(rec.latencies.items())
        },
        "latency_ms_all_calls": {
            "p50": percentile(all_latencies, 50),
            "p99": percentile(all_latencies, 99),
            "mean": round(statistics.fmean(all_latencies), 1),
        },
        "outcomes": dict(sorted(rec.outcomes.items())),
        "outcomes_by_tool": {t: dict(sorted(c.items())) for t, c in sorted(rec.by_tool.items())},
        "every_call_answered": answered == clients * calls,
        "errors": rec.errors[:10],
        "overlap": overlap,
        "final": final_check,
    }
    report["ok"] = bool(
        report["every_call_answered"]
        and not overlap["violation_count"]
        and final_check["equal"]
        and not rec.outcomes.get("is_error")
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--crates", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cargo-scheduler-stress-") as tmp:
        workdir = args.workdir or Path(tmp)
        report = anyio.run(run_stress, args.clients, args.calls, args.crates, args.seed, workdir)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
