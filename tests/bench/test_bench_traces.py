"""The benchmark's agent-session traces (bench/_traces.py) and the Codex-like step scheduling (bench/_replay.py).

Scheduling is proven against a fake target that records start/end events: the reads of a step must
run together (each read waits until the other has started, so a serial replay would time out, not
pass by luck), and a non-read-only call must start only after every earlier call of its step ended.
No sleeps synchronise anything; every wait is bounded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _replay import measure, replay, run_step  # noqa: E402
from _traces import TRACES_DIR, Edits, TraceError, load_trace, parse_trace, position, resolve_arguments  # noqa: E402

from scheduler import generate_workspace  # noqa: E402

HEADER = '{"trace": "t", "description": "d"}'
WAIT_S = 10.0


def trace_of(*events: dict[str, Any]) -> str:
    return "\n".join([HEADER, *(json.dumps(e) for e in events)])


@pytest.mark.parametrize("name", sorted(p.stem for p in TRACES_DIR.glob("*.jsonl")))
def test_shipped_traces_resolve_on_a_small_workspace(name: str, tmp_path: Path) -> None:
    """Every shipped trace loads, and its positions and edits apply to a 6-crate workspace."""
    root = generate_workspace(tmp_path / "ws", 6).root
    before = {p: p.read_bytes() for p in root.rglob("*.rs")}
    trace = load_trace(name)
    assert len(trace.steps()) >= 4
    with Edits(root) as edits:
        for _, events in trace.steps():
            for event in events:
                if event.edit:
                    edits.apply(event)
                else:
                    args = resolve_arguments(root, event)
                    assert "at" not in args
    assert {p: p.read_bytes() for p in root.rglob("*.rs")} == before


def test_a_nonce_makes_each_replays_edited_files_new_and_undo_still_restores_them(tmp_path: Path) -> None:
    root = generate_workspace(tmp_path / "ws", 6).root
    trace = load_trace("fix-loop")  # an append, then replaces inside what it appended
    lib = root / "crates" / "leaf_001" / "src" / "lib.rs"
    before = lib.read_bytes()
    results = []
    for nonce in ("one", "two", None):
        with Edits(root, nonce=nonce) as edits:
            for _, events in trace.steps():
                for event in events:
                    if event.edit:
                        edits.apply(event)
            results.append(lib.read_text())
        assert lib.read_bytes() == before
    one, two, plain = results
    assert one != two and one.count("// bench replay one") == 1 and "bench replay" not in plain
    assert one.replace("\n// bench replay one\n", "") == plain  # the trace's own edits are all there


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ('{"step": 0}', "'call'"),
        ('{"step": -1, "call": "x"}', "'step'"),
        ('{"step": "0", "call": "x"}', "'step'"),
        ('{"call": "x"}', "'step'"),
        ('{"step": 0, "call": "x", "edit": "a.rs", "append": ""}', "'call'"),
        ('{"step": 0, "call": "x", "arguments": []}', "'arguments'"),
        ('{"step": 0, "call": "x", "bogus": 1}', "'bogus'"),
        ('{"step": 0, "call": "x", "think_ms": -5}', "'think_ms'"),
        ('{"step": 0, "call": "x", "arguments": {"at": {"file": "a.rs"}}}', "'arguments.at'"),
        ('{"step": 0, "edit": "a.rs"}', "'edit'"),
        ('{"step": 0, "edit": "a.rs", "replace": ["only one"]}', "'replace'"),
        ('{"step": 0, "edit": "a.rs", "append": "x", "arguments": {}}', "'arguments'"),
        ("[1, 2]", "JSON object"),
        ('{"step": 0, ', "not JSON"),
    ],
)
def test_validation_names_the_line_and_field(line: str, where: str) -> None:
    with pytest.raises(TraceError) as info:
        parse_trace(HEADER + "\n" + line, "x.jsonl")
    assert "x.jsonl:2:" in str(info.value) and where in str(info.value)


def test_header_and_step_order_are_validated() -> None:
    with pytest.raises(TraceError, match=r"x.jsonl:1: field 'trace'"):
        parse_trace('{"step": 0, "call": "x"}', "x.jsonl")
    with pytest.raises(TraceError, match="no events"):
        parse_trace(HEADER, "x.jsonl")
    text = trace_of({"step": 0, "call": "a"}, {"step": 1, "call": "b"}, {"step": 0, "call": "c"})
    with pytest.raises(TraceError, match=r"x.jsonl:4: field 'step'"):
        parse_trace(text, "x.jsonl")
    trace = parse_trace(trace_of({"step": 0, "call": "a"}, {"step": 0, "call": "b"}, {"step": 3, "call": "c"}))
    assert [(s, [e.call for e in evs]) for s, evs in trace.steps()] == [(0, ["a", "b"]), (3, ["c"])]


def test_position_is_zero_based_utf16_and_offset() -> None:
    text = "fn a() {}\n// é 😀 x\nlet 😀 = hub_value(1);\n"
    assert position(text, "hub_value") == (2, 9)  # "let " 4 + the emoji's 2 UTF-16 units + " = " 3
    assert position(text, "hub_value", 4) == (2, 13)
    assert position(text, "fn a") == (0, 0)
    with pytest.raises(TraceError, match="not found"):
        position(text, "nope")


def test_resolve_arguments_reads_the_current_text(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src/lib.rs").write_text("pub fn f() {}\npub fn hub_value() {}\n")
    event = parse_trace(
        trace_of(
            {
                "step": 0,
                "call": "rust_analyzer_hover",
                "arguments": {"at": {"file": "src/lib.rs", "find": "pub fn hub_value", "offset": 7}},
            }
        )
    ).events[0]
    assert resolve_arguments(tmp_path, event) == {"file_path": "src/lib.rs", "line": 1, "character": 7}
    (tmp_path / "src/lib.rs").write_text("\n\npub fn hub_value() {}\n")
    assert resolve_arguments(tmp_path, event)["line"] == 2
    escape = parse_trace(
        trace_of({"step": 0, "call": "h", "arguments": {"at": {"file": "../outside.rs", "find": "x"}}})
    ).events[0]
    with pytest.raises(TraceError, match="leaves the workspace"):
        resolve_arguments(tmp_path, escape)


def test_edits_are_undone_byte_for_byte_even_on_error(tmp_path: Path) -> None:
    lib = tmp_path / "lib.rs"
    original = b"fn a() {}\r\n// \xc3\xa9 no trailing newline"
    lib.write_bytes(original)
    trace = parse_trace(
        trace_of(
            {"step": 0, "edit": "lib.rs", "append": "\nfn b() {}\n"},
            {"step": 1, "edit": "lib.rs", "replace": ["fn a()", "fn aa()"]},
            {"step": 2, "edit": "new/file.rs", "append": "x"},
            {"step": 3, "edit": "lib.rs", "replace": ["absent", "y"]},
            {"step": 4, "edit": "../escape.rs", "append": "x"},
        )
    )
    with pytest.raises(TraceError, match="'replace'"), Edits(tmp_path) as edits:
        for event in trace.events:
            edits.apply(event)
    assert lib.read_bytes() == original
    assert not (tmp_path / "new/file.rs").exists()
    with pytest.raises(TraceError, match="leaves the workspace"), Edits(tmp_path) as edits:
        edits.apply(trace.events[4])


def test_measure_counts_what_the_model_sees() -> None:
    structured = SimpleNamespace(
        content=[SimpleNamespace(text="ignored")], structured_content={"a": [1, 2]}, is_error=False
    )
    assert measure(structured)["bytes"] == len('{"a":[1,2]}')
    assert measure(SimpleNamespace(content=[SimpleNamespace(text="null")], structured_content=None))["empty"]
    assert measure(SimpleNamespace(content=[SimpleNamespace(text="[\n]")], structured_content=None))["empty"]
    indexing = measure(SimpleNamespace(content=[], structured_content={"status": "indexing"}, is_error=False))
    assert indexing["indexing"] and not indexing["empty"]
    assert measure(SimpleNamespace(content=[], structured_content={"status": "ready", "result": None}))["empty"]
    text = measure(
        SimpleNamespace(
            content=[SimpleNamespace(text="ok "), SimpleNamespace(text="é")], structured_content=None, is_error=True
        )
    )
    assert text["bytes"] == 5 and text["is_error"] and not text["empty"]


class FakeTarget:
    """Reads `r*` each wait until every read of their batch started; `w*` and edits are exclusive."""

    def __init__(self, batch: int) -> None:
        self.log: list[tuple[str, str]] = []
        self.batch = batch
        self.started = 0
        self.all_started = anyio.Event()

    def read_only(self, tool: str) -> bool:
        return tool.startswith("r")

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        self.log.append(("start", tool))
        if self.read_only(tool) and tool != "r_after":
            self.started += 1
            if self.started == self.batch:
                self.all_started.set()
            with anyio.fail_after(WAIT_S):  # a serial replay never gets here: it times out instead
                await self.all_started.wait()
        await anyio.lowlevel.checkpoint()
        self.log.append(("end", tool))
        return SimpleNamespace(content=[SimpleNamespace(text=tool)], structured_content=None, is_error=False)


@pytest.mark.anyio
async def test_step_reads_overlap_and_a_write_waits(tmp_path: Path) -> None:
    (tmp_path / "a.rs").write_text("x")
    trace = parse_trace(
        trace_of(
            {"step": 0, "call": "r1"},
            {"step": 0, "call": "r2"},
            {"step": 0, "call": "r3"},
            {"step": 0, "call": "w1"},
            {"step": 0, "call": "r_after"},
            {"step": 0, "edit": "a.rs", "append": "y"},
            {"step": 1, "call": "w2"},
        )
    )
    target = FakeTarget(batch=3)
    with anyio.fail_after(WAIT_S * 2):
        result = await replay(trace, tmp_path, target)
    log = target.log
    starts_of_reads = max(log.index(("start", r)) for r in ("r1", "r2", "r3"))
    assert starts_of_reads < min(log.index(("end", r)) for r in ("r1", "r2", "r3")), log
    assert log.index(("start", "w1")) > max(log.index(("end", r)) for r in ("r1", "r2", "r3")), log
    assert log.index(("start", "r_after")) > log.index(("end", "w1")), log
    assert log.index(("start", "w2")) > log.index(("end", "r_after")), log
    calls = {c["tool"]: c for c in result["steps"][0]["calls"]}
    assert calls["edit a.rs"]["start_ms"] >= calls["r_after"]["end_ms"]
    assert calls["w1"]["start_ms"] >= max(calls[r]["end_ms"] for r in ("r1", "r2", "r3"))
    assert result["calls"] == 6 and result["errors"] == 0
    assert (tmp_path / "a.rs").read_text() == "x"


@pytest.mark.anyio
async def test_everything_is_serial_without_annotations(tmp_path: Path) -> None:
    class Serial(FakeTarget):
        def read_only(self, tool: str) -> bool:
            return False

        async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
            self.log.append(("start", tool))
            await anyio.lowlevel.checkpoint()
            self.log.append(("end", tool))
            return SimpleNamespace(content=[], structured_content={"ok": tool}, is_error=False)

    events = parse_trace(trace_of(*({"step": 0, "call": f"r{i}"} for i in range(4)))).events
    target = Serial(batch=0)
    with anyio.fail_after(WAIT_S):
        records = await run_step(target, events, tmp_path, Edits(tmp_path), 0.0)
    assert target.log == [(kind, f"r{i}") for i in range(4) for kind in ("start", "end")]
    assert all(not r["read_only"] for r in records)


@pytest.mark.anyio
async def test_a_hanging_call_times_out_and_the_step_goes_on(tmp_path: Path) -> None:
    class Hang(FakeTarget):
        async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
            if tool == "w_hang":
                await anyio.Event().wait()
            return await super().call(tool, arguments)

    events = parse_trace(trace_of({"step": 0, "call": "w_hang"}, {"step": 0, "call": "r_after"})).events
    with anyio.fail_after(WAIT_S):
        records = await run_step(Hang(batch=0), events, tmp_path, Edits(tmp_path), 0.0, call_timeout_s=0.2)
    assert records[0]["timeout"] and records[0]["is_error"]
    assert records[1]["start_ms"] >= records[0]["end_ms"] and not records[1]["is_error"]
