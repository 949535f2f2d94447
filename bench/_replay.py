"""Replay a recorded agent session (bench/traces/) with a Codex-like client, against cargo-scheduler or the peers.

    python bench/_replay.py --crates 40 --trace explore-fix --target cargo-scheduler|peers|both [--json out.json]

Codex dispatches all calls of one model response at once; a tool whose tools/list annotation says
`readOnlyHint: true` takes a shared lock, any other tool an exclusive one, in the response's order
(FIELD-NOTES "Parallelism"). So here a read waits for the last non-read call before it in its step, a
non-read call (or an edit: Codex's apply_patch is not read-only) waits for everything before it, and
the next step starts when the whole step has answered (the model needs the answers). The peers
annotate nothing, so everything is exclusive there: that difference is part of what is measured.
Agents do not wait for rust-analyzer to load, so neither does the replay: an answer that is empty
or says "indexing" is counted as such, not retried. Each call has Codex's 300 s timeout.
Per call: tool, start/end ms from the replay's start, bytes the model would see (the compact JSON of
`structuredContent` when present, else the text content), isError, empty, indexing.
Targets and their processes: bench/_replay_targets.py.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Protocol

import anyio

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from _traces import Edits, Event, Trace, resolve_arguments  # noqa: E402

CALL_TIMEOUT_S = 300.0
_EMPTY: tuple[Any, ...] = (None, [], {}, "")


class Target(Protocol):
    """What the replay needs of a server (or of a fake one in the tests)."""

    def read_only(self, tool: str) -> bool: ...

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any: ...


def measure(result: Any) -> dict[str, Any]:
    """What the model would see of a CallToolResult: bytes, and whether it is an error, empty or "indexing"."""
    structured = getattr(result, "structured_content", None)
    text = "".join(getattr(c, "text", "") for c in getattr(result, "content", None) or [])
    if structured is not None:
        seen, value = json.dumps(structured, separators=(",", ":"), ensure_ascii=False), structured
    else:
        seen = text
        try:
            value = json.loads(text)
        except ValueError:
            value = text.strip()
    indexing = isinstance(value, dict) and value.get("status") == "indexing"
    empty = not indexing and (
        value in _EMPTY
        or (
            isinstance(value, dict)
            and "result" in value
            and value.get("status") == "ready"
            and value["result"] in _EMPTY
        )
    )
    return {
        "bytes": len(seen.encode("utf-8")),
        "is_error": bool(getattr(result, "is_error", False)),
        "empty": bool(empty),
        "indexing": indexing,
        "preview": seen[:160],
    }


def _dependencies(events: list[Event], target: Target) -> list[list[int]]:
    """For each event of a step, the earlier ones it waits for under Codex's shared/exclusive locks."""
    deps: list[list[int]] = []
    last_exclusive: int | None = None
    for i, event in enumerate(events):
        if event.call is not None and target.read_only(event.call):
            deps.append([] if last_exclusive is None else [last_exclusive])
        else:
            deps.append(list(range(i)))
            last_exclusive = i
    return deps


async def run_step(
    target: Target, events: list[Event], root: Path, edits: Edits, clock: float, call_timeout_s: float = CALL_TIMEOUT_S
) -> list[dict[str, Any]]:
    """Dispatch a step's events at once, each after its lock predecessors; one record per event."""
    done = [anyio.Event() for _ in events]
    records: list[dict[str, Any]] = [{} for _ in events]
    deps = _dependencies(events, target)

    def ms() -> float:
        return round((time.perf_counter() - clock) * 1000, 1)

    async def one(i: int) -> None:
        event = events[i]
        try:
            for d in deps[i]:
                await done[d].wait()  # bounded: every predecessor ends within its own timeout
            record: dict[str, Any] = {
                "tool": event.label,
                "line": event.line,
                "read_only": event.call is not None and target.read_only(event.call),
            }
            if event.edit is not None:
                record["start_ms"] = ms()
                record["written"] = edits.apply(event)
            else:
                arguments = resolve_arguments(root, event)
                record["arguments"] = arguments
                record["start_ms"] = ms()
                try:
                    with anyio.fail_after(call_timeout_s):
                        result = await target.call(event.call or "", arguments)
                    record.update(measure(result))
                except TimeoutError:
                    record.update(bytes=0, is_error=True, empty=False, indexing=False, timeout=True)
                except Exception as exc:  # a protocol error is an answer the agent gets, not a crash
                    text = f"{type(exc).__name__}: {exc}"
                    record.update(
                        bytes=len(text.encode()), is_error=True, empty=False, indexing=False, preview=text[:160]
                    )
            record["end_ms"] = ms()
            record["latency_ms"] = round(record["end_ms"] - record["start_ms"], 1)
            records[i] = record
        finally:
            done[i].set()

    async with anyio.create_task_group() as tg:
        for i in range(len(events)):
            tg.start_soon(one, i)
    return records


async def replay(
    trace: Trace,
    root: Path,
    target: Target,
    *,
    call_timeout_s: float = CALL_TIMEOUT_S,
    think: bool = False,
    fresh_edits: bool = True,
) -> dict[str, Any]:
    """Replay every step in order; edits are undone at the end, even on error. A JSON-able dict.
    `fresh_edits` makes this replay's edited files differ from every earlier replay's (`Edits`)."""
    steps: list[dict[str, Any]] = []
    clock = time.perf_counter()
    with Edits(root, nonce=str(time.time_ns()) if fresh_edits else None) as edits:
        for step, events in trace.steps():
            think_ms = sum(e.think_ms or 0 for e in events)
            if think and think_ms:
                await anyio.sleep(think_ms / 1000)
            start = time.perf_counter()
            calls = await run_step(target, events, root, edits, clock, call_timeout_s)
            steps.append(
                {
                    "step": step,
                    "wall_ms": round((time.perf_counter() - start) * 1000, 1),
                    "think_ms": think_ms,
                    "calls": calls,
                }
            )
    calls = [c for s in steps for c in s["calls"] if "bytes" in c]
    return {
        "trace": trace.name,
        "steps": steps,
        "total_ms": round(sum(s["wall_ms"] for s in steps), 1),
        "think_ms": sum(s["think_ms"] for s in steps),
        "bytes": sum(c["bytes"] for c in calls),
        "calls": len(calls),
        "errors": sum(c["is_error"] for c in calls),
        "empty": sum(c["empty"] for c in calls),
        "indexing": sum(c["indexing"] for c in calls),
        "timeouts": sum(bool(c.get("timeout")) for c in calls),
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    """Per-step side-by-side: wall ms and bytes per target, flags (E error, 0 empty, I indexing, T timeout)."""
    names = list(results)
    first = results[names[0]]["replay"]
    head = f"{'step':>4}  {'calls':<46}" + "".join(f" {n[:16]:>16} {'bytes':>8} {'':<4}" for n in names)
    rows = [head, "-" * len(head)]

    def flags(calls: list[dict[str, Any]]) -> str:
        return "".join(
            f
            for c in calls
            for f, on in (
                ("E", c.get("is_error")),
                ("0", c.get("empty")),
                ("I", c.get("indexing")),
                ("T", c.get("timeout")),
            )
            if on
        )

    for k, step in enumerate(first["steps"]):
        labels = ", ".join(c["tool"].replace("rust_analyzer_", "ra_") for c in step["calls"])
        row = f"{step['step']:>4}  {labels[:46]:<46}"
        for n in names:
            s = results[n]["replay"]["steps"][k]
            row += f" {s['wall_ms']:>16.1f} {sum(c.get('bytes', 0) for c in s['calls']):>8} {flags(s['calls'])[:4]:<4}"
        rows.append(row)
    rows.append("-" * len(head))
    total = f"{'':>4}  {'total':<46}" + "".join(
        f" {results[n]['replay']['total_ms']:>16.1f} {results[n]['replay']['bytes']:>8} {'':<4}" for n in names
    )
    rows.append(total)
    for n in names:
        r = results[n]["replay"]
        hs = "; ".join(
            f"{h['server']}: initialize {h['initialize_ms']} ms, tools/list {h['tools_list_ms']} ms"
            for h in results[n].get("handshake", [])
        )
        rows.append(
            f"{n}: {r['calls']} calls, {r['errors']} errors, {r['empty']} empty, {r['indexing']} indexing, "
            f"{r['timeouts']} timeouts; {hs}"
        )
    return "\n".join(rows)
