"""Agent sessions for the report: every trace in bench/traces/ replayed against this server and the peers.

Two situations, because an agent meets both and they favour different designs:
- **first session**: nothing running. Ours: daemon stopped and cache emptied before each replay.
  Peers: cargo-mcp and rust-analyzer-mcp started fresh. rust-analyzer loads in both; ours waits for
  it (bounded) and answers, rust-analyzer-mcp answers `null`/`[]` meanwhile, counted as *empty*.
- **servers warm**: the session again with the servers already running. Ours: a new session
  (a new `serve` front) on the daemon an earlier replay left, its cache holding that replay's
  answers. Peers: the next replay in the same two processes.
Every replay's edits are new (`Edits`' nonce): no replay is answered from a cache entry that an
earlier replay of the same trace left, as an agent's next session makes edits of its own. Before the
timed replays, one untimed replay through each side leaves cargo's target dir with every artifact
the trace needs; before every replay an untimed `cargo check --workspace` makes it current; the
side that goes first alternates. So cargo's work is the same on both sides.
Replays are paced by the trace's recorded think time (slept before each step, as a model's turn
would take; `think=False` drops it): servers do work meanwhile (ours loads rust-analyzer from the
handshake on and checks dependents in the background, rust-analyzer-mcp loads too). Totals count
tool latency only, never the think time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from _replay_targets import WORK, ours_env, replay_ours, replay_peers, stop_daemon
from _stats import summary
from _traces import TRACES_DIR, Trace, load_trace
from _workspaces import check_workspace, prepare

NOTE = (
    "Each trace in bench/traces/ (JSON lines written from how agents work: explore with symbols, hover, "
    "references and definition in parallel, edit, check, fix, clippy, test) replayed Codex-style: the calls "
    "of one step are dispatched together; a tool annotated read-only takes a shared lock, any other an "
    "exclusive one (the peers annotate nothing, so their calls run one at a time). Steps are paced by the "
    "trace's recorded think time (slept, not counted): totals are tool latency only. Every replay's edits are "
    "new (a nonce comment in each edited file), so no cache entry from an earlier replay answers them; an "
    "untimed replay through each side first leaves cargo's target dir with every artifact the trace needs, "
    "and the side that goes first alternates. *First session*: nothing running (our daemon stopped and "
    "cache emptied; the peers started fresh). *Servers warm*: our daemon and the peers' processes left "
    "running by an earlier replay. *Empty* counts answers "
    "of `null`/`[]`: rust-analyzer-mcp gives them while "
    "rust-analyzer is loading; cargo-scheduler waits for the load (up to 30 s) or says `indexing`."
)


async def _measure(
    trace: Trace, root: Path, repeats: int, peers: bool, think: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    base = WORK / "sessions"
    first: dict[str, list[dict[str, Any]]] = {"cargo-scheduler": [], "peers": []}
    warm: dict[str, list[dict[str, Any]]] = {"cargo-scheduler": [], "peers": []}
    # Untimed priming, one replay through each side: cargo's target dir then holds every artifact
    # the trace needs (clippy's, test binaries, each side's feature unification), so no timed replay
    # pays for building what only the other side's earlier replay would have left behind.
    await anyio.to_thread.run_sync(check_workspace, root)
    await replay_ours(trace, root, base=base / "ours")
    if peers:
        await replay_peers(trace, root, base=base / "peers")
    for r in range(repeats):
        sides = ["cargo-scheduler", "peers"] if peers else ["cargo-scheduler"]
        if r % 2:  # alternate which side goes first, so drift and leftovers spread evenly
            sides.reverse()
        for side in sides:
            await anyio.to_thread.run_sync(check_workspace, root)
            if side == "cargo-scheduler":
                first[side].append((await replay_ours(trace, root, base=base / "ours", think=think))["replay"])
            else:
                both = await replay_peers(trace, root, base=base / "peers", rounds=2, think=think)
                first[side].append(both["replays"][0])
                warm[side].append(both["replays"][1])
        log(
            f"    {trace.name} first session {r + 1}/{repeats}: ours {first['cargo-scheduler'][-1]['total_ms']:.0f} ms"
            + (f", peers {first['peers'][-1]['total_ms']:.0f} ms" if peers else "")
        )
    await anyio.to_thread.run_sync(check_workspace, root)
    await replay_ours(trace, root, base=base / "ours", keep_daemon=True, think=think)  # untimed; daemon stays
    try:
        for _ in range(repeats):
            again = await replay_ours(trace, root, base=base / "ours", warm=True, keep_daemon=True, think=think)
            warm["cargo-scheduler"].append(again["replay"])
    finally:
        await anyio.to_thread.run_sync(stop_daemon, root, ours_env(base / "ours"))
    return {"first session": first, "servers warm": warm}


def _row(label: str, replays: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    row: dict[str, Any] = {"label": label, "steps": None, "bytes": {}, "empty": {}, "errors": {}, "raw": {}}
    for side, items in replays.items():
        if not items:
            continue
        mid = sorted(items, key=lambda x: x["total_ms"])[len(items) // 2]
        row[side] = summary([x["total_ms"] / 1000 for x in items])
        row["steps"] = len(mid["steps"])
        row["bytes"][side] = mid["bytes"]
        row["empty"][side] = f"{mid['empty']} / {mid['indexing']}" if mid["indexing"] else mid["empty"]
        row["errors"][side] = mid["errors"]
        row["raw"][side] = items
    row["steps_table"] = _steps_table(replays)
    return row


def _steps_table(replays: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per step: the calls, and each side's median wall time and the bytes of its median replay."""
    sides = [s for s, items in replays.items() if items]
    first = replays[sides[0]][0]
    lines = [
        "| step | calls | " + " | ".join(f"{s} ms | {s} bytes" for s in sides) + " |",
        "|---|---|" + "---|---|" * len(sides),
    ]
    for k, step in enumerate(first["steps"]):
        calls = ", ".join(c.get("tool") or "edit" for c in step["calls"]).replace("rust_analyzer_", "ra_")
        cells = []
        for s in sides:
            walls = sorted(x["steps"][k]["wall_ms"] for x in replays[s])
            flags = sum(c.get("empty", False) for x in replays[s][:1] for c in x["steps"][k]["calls"])
            cells += [
                f"{walls[len(walls) // 2]:.1f}" + (f" ({flags} empty)" if flags else ""),
                str(sum(c.get("bytes", 0) for c in replays[s][0]["steps"][k]["calls"])),
            ]
        lines.append(f"| {step['step']} | {calls} | " + " | ".join(cells) + " |")
    return lines


def replay_all(
    *,
    sizes: list[int],
    repeats: int,
    peers: bool,
    only_first: bool,
    log: Callable[[str], None],
    traces: list[str] | None = None,
    think: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """Every trace on each generated workspace of `sizes`, both situations, both sides: rows for the report
    and its note. Real workspaces (`--workspace`) get the scenario matrix only: the traces name the
    generator's files (crates/hub/src/lib.rs, ...), which a real workspace does not have."""
    names = traces or sorted(p.stem for p in TRACES_DIR.glob("*.jsonl"))
    if only_first:
        names = names[:1]
    rows: list[dict[str, Any]] = []
    workspaces = [(prepare(n, 0, log=log).root.resolve(), f"generated-{n}") for n in sizes]
    for root, ws_name in workspaces:
        for name in names:
            trace = load_trace(name)
            log(f"  session {name} on {ws_name}")
            measured = anyio.run(_measure, trace, root, repeats, peers, think, log)
            for situation, replays in measured.items():
                rows.append(_row(f"{name} ({ws_name}), {situation}", replays))
    return rows, NOTE
