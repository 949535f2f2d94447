"""docs/benchmarks.md from the results JSON: tables first, charts beside them, the machine on top.

Rendering is separate from measuring, so the page can be re-rendered from a saved JSON (`python
bench/report.py --render-only`) and tested without running cargo.
"""

from __future__ import annotations

from typing import Any

from _render_fleet import fleet_section
from _render_shim import shim_section
from _stats import fmt_ratio, ms, spread

BASE = "cargo --workspace"


def _machine(m: dict[str, Any]) -> list[str]:
    load = m.get("loadavg_at_start") or [0.0]
    end = m.get("loadavg_at_end") or ["?"]
    return [
        "| machine | |",
        "|---|---|",
        f"| cores | {m.get('cores')} ({m.get('usable_cores')} usable) |",
        f"| CPU | {m.get('cpu_model')} |",
        f"| memory | {m.get('memory_gib')} GiB |",
        f"| cargo / rustc | {m.get('cargo')} / {m.get('rustc')} |",
        f"| rust-analyzer | {m.get('rust_analyzer')} |",
        f"| Python, platform | {m.get('python')}, {m.get('platform')} |",
        f"| load average at start / end | {load[0]:.2f} / "
        + (f"{end[0]:.2f}" if isinstance(end[0], float) else str(end[0]))
        + " |",
    ]


def _outcome_note(variant: dict[str, Any]) -> str:
    """What the engine did in its median sample: ran N crates, answered M from the cache."""
    outs = variant.get("outcomes") or []
    if not outs:
        return ""
    o = outs[len(outs) // 2]
    bits = []
    if "ran" in o:
        bits.append(f"ran {o['ran']}")
    if o.get("cached"):
        bits.append(f"cached {o['cached']}")
    if o.get("pending"):
        bits.append(f"pending {o['pending']}")
    if not o.get("success", True):
        bits.append("errors")
    return ", ".join(bits)


def matrix_table(w: dict[str, Any]) -> list[str]:
    variants: list[str] = []
    for s in w["scenarios"]:
        variants += [v for v in s["variants"] if v not in variants]
    lines = ["| scenario (crate, dependents) | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for s in w["scenarios"]:
        base = s["variants"].get(BASE, {}).get("median_ms")
        cells = []
        for v in variants:
            stats = s["variants"].get(v)
            if not stats:
                cells.append("")
                continue
            cell = spread(stats)
            if v != BASE and base:
                cell += f" **{fmt_ratio(stats['median_ms'] / base)}**"
            note = _outcome_note(stats)
            if note and not v.startswith("cargo"):
                cell += f" <sub>{note}</sub>"
            cells.append(cell)
        lines.append(f"| {s['title']} ({s['crate']}, {s['dependents']}) x{s['repeats']} | " + " | ".join(cells) + " |")
    return lines


def headline(workspaces: list[dict[str, Any]]) -> list[str]:
    """One line per workspace: the ratios a user chooses this project for."""
    lines = [
        "| workspace | no-op: auto vs `--workspace` | hub edit: auto vs `-p hub` | hub edit: auto vs "
        "`--workspace` | error loop: auto vs `-p` | test after mid edit: auto vs `--workspace` |",
        "|---|---|---|---|---|---|",
    ]
    pairs = (
        ("noop", "auto", BASE),
        ("edit-hub", "auto", "cargo -p"),
        ("edit-hub", "auto", BASE),
        ("error-loop", "auto", "cargo -p"),
        ("test", "auto", BASE),
    )
    for w in workspaces:
        by = {s["id"]: s["variants"] for s in w["scenarios"]}
        cells = [_versus(by.get(sid, {}), a, b) for sid, a, b in pairs]
        lines.append(f"| {w['name']} ({w['members']}) | " + " | ".join(cells) + " |")
    return lines


def _versus(variants: dict[str, Any], a: str, b: str) -> str:
    if a not in variants or b not in variants:
        return "-"
    x, y = variants[a]["median_ms"], variants[b]["median_ms"]
    return f"{fmt_ratio(x / y)} ({ms(x)} vs {ms(y)})"


def traces_section(traces: list[dict[str, Any]]) -> list[str]:
    if not traces:
        return ["No agent sessions were replayed in this run."]
    lines = [
        "| session (workspace) | steps | cargo-scheduler total | peers total | ratio | bytes: ours / peers "
        "| empty or indexing answers: ours / peers | errors: ours / peers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in traces:
        ours, peers = t.get("cargo-scheduler"), t.get("peers")
        ratio = fmt_ratio(ours["median_ms"] / peers["median_ms"]) if ours and peers else "-"
        lines.append(
            f"| {t['label']} | {t.get('steps', '-')} | {spread(ours)} | {spread(peers)} | {ratio} | "
            f"{t.get('bytes', {}).get('cargo-scheduler', '-')} / {t.get('bytes', {}).get('peers', '-')} | "
            f"{t.get('empty', {}).get('cargo-scheduler', '-')} / {t.get('empty', {}).get('peers', '-')} | "
            f"{t.get('errors', {}).get('cargo-scheduler', '-')} / {t.get('errors', {}).get('peers', '-')} |"
        )
    return lines


def micro_section(micro: list[dict[str, Any]]) -> list[str]:
    if not micro:
        return ["Micro-benchmarks were not run (`--no-micro`)."]
    lines = ["| benchmark | median | min | max | rounds |", "|---|---|---|---|---|"]
    for m in micro:
        cells = [ms(m["median_ms"]), ms(m["min_ms"]), ms(m["max_ms"]), str(m["rounds"])]
        lines.append(f"| `{m['name']}` | " + " | ".join(cells) + " |")
    return lines


def _load(value: float | None) -> str:
    return "not kept" if value is None else f"{value:.2f}"


def render(results: dict[str, Any], charts: dict[str, str]) -> str:
    """The whole page. `charts` maps a chart's role to its path relative to docs/."""
    parts = results.get("parts") or []
    made = (
        "Generated by `" + results["command"] + f"` on {results['generated_at']}"
        if len(parts) < 2
        else f"Measured in {len(parts)} runs of bench/report.py (which run measured what: "
        "[How this page was measured](#how-this-page-was-measured)), the last on " + results["generated_at"]
    )
    out = [
        "# Benchmarks",
        "",
        made + f", {results['duration_s'] / 60:.1f} min in all. "
        "Raw data: [benchmarks/results.json](benchmarks/results.json). "
        "Every figure is a median over repeated runs with [min-max]; **bold** is the ratio to plain "
        "`cargo ... --workspace` on the same row (1/60 means sixty times faster). "
        "bench/README.md says how each scenario is set up, so every variant starts from the same state.",
        "",
        "Also measured on their own: [a hub edit, rust-analyzer and no-op questions on a real 45-member "
        "workspace](benchmarks/real-workspaces.md) and [the peers' own test suites run against this "
        "server](benchmarks/peer-suites.md).",
        "",
        *_machine(results["machine"]),
        "",
        "## Headline",
        "",
        *headline(results["workspaces"]),
        "",
    ]
    if "scaling" in charts:
        out += [f"![hub edit by size]({charts['scaling']})", ""]
    for w in results["workspaces"]:
        prime = w.get("engine_prime_s")
        out += [
            f"## {w['name']}: {w['members']} members",
            "",
            f"Source: {w['source']}. Cold `cargo check --workspace` when it was made: "
            + (f"{w['cold_check_s']:.1f} s" if w.get("cold_check_s") else "not measured")
            + (f"; the engine's first answer, cache empty, target warm: {prime:.2f} s" if prime else "")
            + f". Edited crates: hub `{w['subjects']['hub']}`, mid `{w['subjects']['mid']}`, "
            f"leaf `{w['subjects']['leaf']}`.",
            "",
            *matrix_table(w),
            "",
        ]
        if f"matrix:{w['name']}" in charts:
            out += [f"![{w['name']}]({charts['matrix:' + w['name']]})", ""]
    out += [
        "## Agent sessions against cargo-mcp 0.2.0 + rust-analyzer-mcp 0.4.0",
        "",
        results.get("traces_note", ""),
        "",
        *traces_section(results.get("traces", [])),
        "",
    ]
    if "traces" in charts:
        out += [f"![agent sessions]({charts['traces']})", ""]
    for t in results.get("traces", []):
        if t.get("steps_table"):
            out += [f"### {t['label']}: per step (median ms)", "", *t["steps_table"], ""]
    out += fleet_section(results.get("fleet"))
    out += shim_section(results.get("shim"))
    out += [
        "## Micro-benchmarks (pytest-benchmark)",
        "",
        "Saved with `--benchmark-autosave` under `.benchmarks/`; compare two commits with `pytest-benchmark compare`.",
        "",
        *micro_section(results.get("micro", [])),
        "",
    ]
    if len(parts) > 1:
        out += [
            "## How this page was measured",
            "",
            "| run | started | load average | measured |",
            "|---|---|---|---|",
            *[f"| `{p['command']}` | {p['at']} | {_load(p['load'])} | {', '.join(p['measured'])} |" for p in parts],
            "",
        ]
    if results.get("notes"):
        out += ["## Notes", "", *[f"- {n}" for n in results["notes"]], ""]
    return "\n".join(out)
