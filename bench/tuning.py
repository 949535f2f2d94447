"""Each latency knob's measured effect on the agent sessions: writes the tables of docs/tuning.md.

    python bench/tuning.py [--crates 150] [--repeats 2] [--knobs scope,prewarm] [--out docs]

For every setting of every knob (scheduler/_settings.py), a trace is replayed against this server
with the knob set in the server's environment, as a user sets it in an MCP client's config. Each
replay is a first session (daemon stopped, cache emptied; cargo's target dir current), paced by the
trace's think time, which is not counted; the settings of a knob take turns, so a machine that
slows down (shared hosts do, by half) slows them alike, and a probe before and after each knob shows
by how much. The first replay of each setting is its *first use*: what
a setting pays once (a private target dir built from cold, rust-analyzer's own check of a new
directory); the next `--repeats` replays give its steady state, the figure compared with the
default. Knobs marked `restart` are measured on the session after a daemon restart: a replay fills
the cache, the daemon stops, and the measured replay meets a new daemon with only what is on disk.

Reported per setting: the session's total tool latency, its ratio to the default, the first use,
the cargo and rust-analyzer parts (sums of call latencies: calls of one step may overlap), and the
answers that were no answer yet (`indexing`). The prose of docs/tuning.md around the tables is
written by hand from these figures; the tables between the markers are regenerated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import anyio  # noqa: E402
from _machine import machine_info, portable  # noqa: E402
from _replay_targets import WORK, ours_env, replay_ours, stop_daemon  # noqa: E402
from _stats import fmt_ratio, ms, spread, summary  # noqa: E402
from _traces import load_trace  # noqa: E402
from _workspaces import REPO, check_workspace, prepare, restore  # noqa: E402

from scheduler import _settings  # noqa: E402


@dataclass(frozen=True)
class Knob:
    id: str
    variable: str
    settings: tuple[str, ...]  # the first is the default
    trace: str
    restart: bool = False  # measure the session after a daemon restart (the cache on disk only)
    fresh: tuple[str, ...] = ()  # removed before each setting's first use: what that use would build anew


KNOBS: tuple[Knob, ...] = (
    Knob("scope", _settings.SCOPE, ("auto", "changed", "workspace"), "hub-refactor"),
    Knob("prewarm", _settings.PREWARM, ("index", "none", "check"), "fix-loop"),
    Knob("ra-wait", _settings.RA_WAIT, ("30", "0"), "explore-fix"),
    Knob("ra-check-on-save", _settings.RA_CHECK_ON_SAVE, ("0", "1"), "explore-fix", fresh=("target/rust-analyzer",)),
    Knob(
        "ra-target-dir", _settings.RA_TARGET_DIR, ("separate", "shared"), "explore-fix", fresh=("target/rust-analyzer",)
    ),
    Knob("cache-size", _settings.CACHE_MB, ("512", "0"), "fix-loop", restart=True),
    Knob(
        "target-dir", _settings.TARGET_DIR, ("shared", "private"), "fix-loop", fresh=("target/cargo-scheduler/agent",)
    ),
)


def parts(replay: dict[str, Any]) -> dict[str, float]:
    """Tool latency split by family: the sum of each call's latency (calls of a step may overlap)."""
    out = {"cargo_ms": 0.0, "analyzer_ms": 0.0, "indexing": 0.0}
    for step in replay["steps"]:
        for call in step["calls"]:
            tool = call.get("tool") or ""
            if "latency_ms" not in call or tool.startswith("edit "):
                continue
            out["analyzer_ms" if tool.startswith("rust_analyzer_") else "cargo_ms"] += call["latency_ms"]
            out["indexing"] += bool(call.get("indexing"))
    return out


def probe(root: Path, runs: int = 5) -> float:
    """The machine's speed now: median ms of a no-op `cargo check --workspace` (untimed elsewhere).
    Shared machines drift; a probe at each knob's start and end shows by how much."""
    return statistics.median(check_workspace(root)[0] * 1000 for _ in range(runs))


async def replay_setting(knob: Knob, setting: str, root: Path, *, first_use: bool) -> dict[str, Any]:
    """One first-session replay with `setting` (for `restart` knobs: a filling replay, then the
    measured one on a new daemon)."""
    trace = load_trace(knob.trace)
    base = WORK / "tuning" / knob.id
    env = {knob.variable: setting}
    if first_use:
        for path in knob.fresh:
            await anyio.to_thread.run_sync(shutil.rmtree, root / path, True)
    await anyio.to_thread.run_sync(check_workspace, root)
    if knob.restart:  # fill the cache, then a new daemon: only what is on disk survives
        await replay_ours(trace, root, base=base, extra_env=env)
        result = await replay_ours(trace, root, base=base, extra_env=env, warm=True, think=True)
    else:
        result = await replay_ours(trace, root, base=base, extra_env=env, think=True)
    await anyio.to_thread.run_sync(stop_daemon, root, ours_env(base, env))
    replay: dict[str, Any] = result["replay"]
    return replay


async def measure(knob: Knob, root: Path, repeats: int, log: Any = print) -> dict[str, Any]:
    """Every setting's first use, then `repeats` rounds of steady state. Settings take turns within
    each round (the order rotating), so the machine's drift falls on all of them alike."""
    probes = [await anyio.to_thread.run_sync(probe, root)]
    replays: dict[str, list[dict[str, Any]]] = {s: [] for s in knob.settings}
    for round_ in range(repeats + 1):
        k = round_ % len(knob.settings)
        for setting in knob.settings[k:] + knob.settings[:k]:
            replays[setting].append(await replay_setting(knob, setting, root, first_use=round_ == 0))
            log(
                f"  {knob.id}={setting} {'first use' if round_ == 0 else f'round {round_}'}: "
                f"{replays[setting][-1]['total_ms']:.0f} ms"
            )
    probes.append(await anyio.to_thread.run_sync(probe, root))
    return {"probe_ms": probes, "rows": [row(s, replays[s]) for s in knob.settings]}


def row(setting: str, replays: list[dict[str, Any]]) -> dict[str, Any]:
    first_use, steady = replays[0], replays[1:]
    split = [parts(r) for r in steady]
    return {
        "setting": setting,
        "first_use_ms": first_use["total_ms"],
        "total": summary([r["total_ms"] / 1000 for r in steady]),
        "cargo": summary([p["cargo_ms"] / 1000 for p in split]),
        "analyzer": summary([p["analyzer_ms"] / 1000 for p in split]),
        "indexing": max(p["indexing"] for p in split),
        "errors": max(r["errors"] for r in steady),
        "replays": replays,
    }


def table(knob: Knob, measured: dict[str, Any]) -> list[str]:
    rows = measured["rows"]
    base = rows[0]["total"]["median_ms"]
    start, end = measured["probe_ms"]
    lines = [
        f"`{knob.variable}` on the `{knob.trace}` session"
        + (" after a daemon restart" if knob.restart else "")
        + f" (machine probe, a no-op `cargo check --workspace`: {ms(start)} before, {ms(end)} after):",
        "",
        "| setting | session total | vs default | first use | cargo calls | rust-analyzer calls "
        "| `indexing` answers | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows):
        name = f"`{r['setting']}`" + (" (default)" if i == 0 else "")
        vs = "-" if i == 0 else fmt_ratio(r["total"]["median_ms"] / base)
        lines.append(
            f"| {name} | {spread(r['total'])} | {vs} | {ms(r['first_use_ms'])} "
            f"| {ms(r['cargo']['median_ms'])} | {ms(r['analyzer']['median_ms'])} | {r['indexing']:.0f} "
            f"| {r['errors']} |"
        )
    return lines


MARK_BEGIN, MARK_END, MARK_MEASURED = "<!-- tuning:begin:{} -->", "<!-- tuning:end:{} -->", "<!-- tuning:measured -->"


def write(page: Path, results: dict[str, Any]) -> None:
    """Replace the tables between each knob's markers in docs/tuning.md (the prose stays)."""
    text = page.read_text()
    for knob in KNOBS:
        measured = results["knobs"].get(knob.id)
        begin, end = MARK_BEGIN.format(knob.id), MARK_END.format(knob.id)
        if measured is None or begin not in text:
            continue
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + begin + "\n" + "\n".join(table(knob, measured)) + "\n" + end + tail
    m = results["machine"]
    stamp = (
        f"{MARK_MEASURED}Measured with `{results['command']}` on {results['generated_at']}: "
        f"{results['crates']} generated crates, {m['usable_cores']} cores, load average "
        f"{m['loadavg_at_start'][0]:.2f} at start; steady state is the median of {results['repeats']} "
        "replays [min-max] after the first use."
    )
    lines = [stamp if line.startswith(MARK_MEASURED) else line for line in text.splitlines()]
    page.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crates", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2, help="steady-state replays per setting (after its first use)")
    parser.add_argument("--knobs", default=",".join(k.id for k in KNOBS))
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--render-only", action="store_true", help="rewrite the tables from the saved tuning.json")
    args = parser.parse_args(argv)
    saved = args.out / "benchmarks" / "tuning.json"
    if args.render_only:
        write(args.out / "tuning.md", json.loads(saved.read_text()))
        return 0
    wanted = [k for k in args.knobs.split(",") if k]
    unknown = set(wanted) - {k.id for k in KNOBS}
    if unknown or args.repeats < 1:
        parser.error(
            f"unknown knob(s) {', '.join(sorted(unknown))}; known: {', '.join(k.id for k in KNOBS)}"
            if unknown
            else "--repeats must be at least 1"
        )
    chosen = [k for k in KNOBS if k.id in wanted]
    results: dict[str, Any] = {
        "command": "python bench/tuning.py " + " ".join(argv or sys.argv[1:]),
        "generated_at": time.strftime("%Y-%m-%d %H:%M %z"),
        "machine": machine_info(),
        "crates": args.crates,
        "repeats": args.repeats,
        "knobs": {},
    }
    if saved.exists():  # knobs not measured this time keep their earlier figures
        results["knobs"] = json.loads(saved.read_text()).get("knobs", {})
    bw = prepare(args.crates, 0, log=print)
    try:
        for knob in chosen:
            results["knobs"][knob.id] = anyio.run(
                measure, knob, bw.root.resolve(), args.repeats, lambda m: print(m, file=sys.stderr, flush=True)
            )
    finally:
        restore(bw.root, args.crates, 0)
    saved.parent.mkdir(parents=True, exist_ok=True)
    results = portable(results, {str(REPO): "."})  # committed: no directory of this machine in it
    saved.write_text(json.dumps(results, indent=1, default=str) + "\n")
    write(args.out / "tuning.md", results)
    print(args.out / "tuning.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
