"""The fleet section of docs/benchmarks.md, from results["fleet"] (`_fleet.measure`)."""

from __future__ import annotations

import statistics
from typing import Any

from _stats import fmt_ratio, ms

COMMAND = 'python bench/report.py --sizes "" --no-traces --no-micro --fleet --fleet-workspace PATH --append'


def _s(seconds: float) -> str:
    return ms(seconds * 1000)


def _ratio(ours: float, theirs: float) -> str:
    return fmt_ratio(ours / theirs) if theirs else "-"


def fleet_section(fleet: dict[str, Any] | None) -> list[str]:
    if not fleet:
        return []
    out = [
        "## Fleet: answers and artifacts shared across checkouts",
        "",
        f"`{COMMAND}` ({fleet.get('at', '')}); docs/fleet.md says how each part is wired. One run, each "
        "variant from the same state; a real `redis-server` on a unix socket.",
        "",
    ]
    sm = fleet.get("second_machine") or {}
    if sm:
        first = statistics.median(sm["b_first_answer_s"])
        cold = sm["b_cold_cargo_s"]
        remote = sm.get("b_remote") or {}
        out += [
            f"### A second machine ({sm['crates']} generated crates)",
            "",
            "Checkout B at another path, empty local cache and empty target dir; Redis filled by checkout A.",
            "",
            "| question in B | cold `cargo check --workspace` in B | cargo-scheduler | ratio |",
            "|---|---|---|---|",
            f"| first `workspace` answer, sources unchanged | {_s(cold)} | {_s(first)} "
            f"(median of {len(sm['b_first_answer_s'])}; cargo ran for {max(sm['b_ran'])} members; "
            f"tier: {remote.get('outcome', '?')}, {remote.get('found', '?')} entries in {remote.get('ms', '?')} ms) "
            f"| **{_ratio(first, cold)}** |",
            "",
            *_split(sm),
            f"Hit rate after a random edit (`{sm['edited']}`): made on A and checked there, then pulled by B: "
            f"**{sm['hit_rate_edit_on_a']:.0%}** of B's members answered from the tier; B's own edit (not on A): "
            f"**{sm['hit_rate_edit_on_b']:.0%}** (cargo ran for the {sm['ran_edit_on_b']} members of the edited "
            "crate's cone).",
            "",
        ]
        hit, bare = statistics.median(sm["local_hit_ms"]), statistics.median(sm["local_hit_no_tier_ms"])
        miss = sm.get("miss_remote") or {}
        out += [
            "### What the tier costs",
            "",
            "| question | without a tier | with the Redis tier | difference |",
            "|---|---|---|---|",
            f"| answered by the local cache (`workspace`, {sm['crates']} members, median of "
            f"{len(sm['local_hit_ms'])}) | {ms(bare)} | {ms(hit)} | {hit - bare:+.2f} ms |",
            f"| every key missing locally and in Redis | - | tier: {miss.get('outcome', '?')}, "
            f"{miss.get('asked', '?')} keys asked, {miss.get('ms', '?')} ms | (then cargo runs, as without a tier) |",
            "",
        ]
    wt = fleet.get("worktree") or {}
    if wt:
        seed = wt.get("seed") or {}
        out += [
            "### A new git worktree",
            "",
            "| first `workspace` check of a new worktree | time | cargo ran for |",
            "|---|---|---|",
            f"| with the local cache its sibling filled (one daemon, one cache) | {_s(wt['with_shared_cache_s'])} "
            f"| {wt['with_shared_cache_ran']} members |",
            f"| with an empty local cache (cold target dir) | {_s(wt['without_shared_cache_s'])} "
            f"| {wt['without_shared_cache_ran']} members |",
            f"| ratio | **{_ratio(wt['with_shared_cache_s'], wt['without_shared_cache_s'])}** | |",
            "",
            f"Reflink seed of the empty target dir here: {seed.get('outcome', '?')}"
            + (f" ({seed['reason']})" if seed.get("reason") else "")
            + (f", {seed['ms']} ms" if seed.get("ms") else "")
            + ".",
            "",
            *_seed_xfs(wt.get("seed_xfs") or {}),
        ]
    cc = fleet.get("sccache") or {}
    if cc and not cc.get("skipped"):
        status = cc.get("sccache") or {}
        stats = cc.get("stats") or {}
        out += [
            f"### Compiled artifacts through sccache ({_workspace(cc)}: {cc['members']} members, "
            f"{cc['registry_packages']} registry packages)",
            "",
            f"sccache {status.get('version', '?')}, backend: {status.get('backend', '?')}. Debian's sccache is "
            'built without Redis, so the two "machines" share its local disk cache instead (one `SCCACHE_DIR` '
            "for both checkouts), warmed by checkout A at another path (same `$CARGO_HOME`); B's target dir "
            "and local cache empty.",
            "",
            f"| cold, in B (median of {len(cc.get('b_build_with_samples_s') or [0])}, alternating) | without sccache "
            "| through sccache, warm | ratio |",
            "|---|---|---|---|",
            f"| cargo-scheduler's first `workspace` check | {_s(cc['b_engine_without_s'])} | "
            f"{_s(cc['b_engine_with_s'])} | **{_ratio(cc['b_engine_with_s'], cc['b_engine_without_s'])}** |",
            f"| `cargo build --workspace` | {_s(cc['b_build_without_s'])} | {_s(cc['b_build_with_s'])} | "
            f"**{_ratio(cc['b_build_with_s'], cc['b_build_without_s'])}** |",
            "",
            *_counters(cc),
            f"sccache's counters over B's `cargo build` through it: {stats.get('cache_hits', '?')} hits, "
            f"{stats.get('cache_misses', '?')} misses, {stats.get('requests_not_cacheable', '?')} not cacheable "
            "(workspace members are incremental, proc-macros and build scripts are not cached).",
            "",
        ]
    elif cc.get("skipped"):
        out += [f"sccache: not measured ({cc['skipped']}).", ""]
    return out


def _workspace(part: dict[str, Any]) -> str:
    """The registry workspace's name: a real one's (`PATH` where the run named it absolutely)."""
    if not part.get("workspace"):
        return "generated, 20 crates"
    return f"{part.get('name', '?')} {part.get('version', '')}".strip() + f" (`{part['workspace']}`)"


def _seed_xfs(xfs: dict[str, Any]) -> list[str]:
    if not xfs:
        return []
    if xfs.get("skipped"):
        return [f"The seed on a reflinking filesystem: not measured ({xfs['skipped']}).", ""]
    seed = xfs.get("seed") or {}
    done = seed.get("outcome") == "seeded"
    return [
        f"On a loop-mounted XFS (`mkfs.xfs -m reflink=1`), {_workspace(xfs['workspace'])}: checkout A's cold check "
        f"({_s(xfs['a_cold_s'])}) fills its target dir, then each new worktree's first `workspace` check, empty "
        "local cache and empty target dir:",
        "",
        "| new worktree's first check | time | cargo ran for |",
        "|---|---|---|",
        f"| seed off (`CARGO_SCHEDULER_SEED=0`) | {_s(xfs['off_s'])} | {xfs['off_ran']} members |",
        f"| seed on: {seed.get('outcome', '?')}"
        + (f" in {seed['ms']} ms" if done and seed.get("ms") else f" ({seed.get('reason', '')})")
        + f" | {_s(xfs['on_s'])} | {xfs['on_ran']} members |",
        f"| ratio | **{_ratio(xfs['on_s'], xfs['off_s'])}** | |",
        "",
    ]


def _counters(cc: dict[str, Any]) -> list[str]:
    engine = cc.get("b_engine_stats")
    if not engine:
        return []
    return [
        f"sccache's counters over B's first check through it: {engine.get('cache_hits', '?')} hits, "
        f"{engine.get('cache_misses', '?')} misses, {engine.get('requests_not_cacheable', '?')} not cacheable.",
        "",
    ]


def _split(sm: dict[str, Any]) -> list[str]:
    """Where B's first answer goes: starting the engine, observing and keying (the tier's reads
    among them), the rest of the answer."""
    timings = sm.get("b_timings_ms") or []
    if not timings:
        return []
    first = statistics.median(sm["b_first_answer_s"]) * 1000
    total = statistics.median(t["total"] for t in timings)
    observe = statistics.median(t["observe"] for t in timings)
    tier = (sm.get("b_remote") or {}).get("ms", "?")
    return [
        f"Where B's first answer goes (medians): {ms(first - total)} starting the engine, {ms(observe)} observing "
        f"the workspace (`cargo metadata`, the toolchain's identity, hashing every source), computing its keys and "
        f"reading the tier ({tier} ms of it waiting on Redis), {ms(total - observe)} for the rest.",
        "",
    ]
