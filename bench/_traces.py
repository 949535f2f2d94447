"""Recorded agent sessions (bench/traces/*.jsonl): load and validate, resolve positions, apply and undo edits.

A trace is JSON lines. Line 1 is a header `{"trace": NAME, "description": TEXT}`. Every later line is
one event of the session: `step` (events with the same step came in one model response, so a
Codex-like client dispatches them at once), then either a tool call `{"call": TOOL, "arguments": {...}}`
or a file write `{"edit": REL_PATH, "append": TEXT}` / `{"edit": REL_PATH, "replace": [OLD, NEW]}`,
and optionally `think_ms` (the agent's think time before the step; recorded and reported, not slept).

Positions must survive any size of generated workspace, so a call may say where instead of
`line`/`character`: `"at": {"file": REL, "find": TEXT, "offset": K}` is resolved at replay time, in
the file's current text, to the 0-based line and UTF-16 column of the first `TEXT` plus `K` code units
(`file_path` defaults to `file`). Paths are workspace-relative and may not leave the workspace.
Errors name the trace line and the field, since traces are written by hand.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRACES_DIR = Path(__file__).resolve().parent / "traces"
_EVENT_KEYS = {"step", "call", "arguments", "edit", "append", "replace", "think_ms"}
_AT_KEYS = {"file", "find", "offset"}


class TraceError(ValueError):
    """A trace that cannot be replayed; the message names the source, line and field."""


@dataclass(frozen=True)
class Event:
    step: int
    line: int
    call: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    edit: str | None = None
    append: str | None = None
    replace: tuple[str, str] | None = None
    think_ms: float | None = None

    @property
    def label(self) -> str:
        return self.call or f"edit {self.edit}"


@dataclass(frozen=True)
class Trace:
    name: str
    description: str
    events: list[Event]

    def steps(self) -> list[tuple[int, list[Event]]]:
        """Events grouped by step, in file order (a step's events are contiguous: validated)."""
        out: list[tuple[int, list[Event]]] = []
        for event in self.events:
            if out and out[-1][0] == event.step:
                out[-1][1].append(event)
            else:
                out.append((event.step, [event]))
        return out


def trace_path(name: str) -> Path:
    """A trace by name (bench/traces/NAME.jsonl) or by path."""
    path = Path(name)
    return path if path.suffix == ".jsonl" and path.exists() else TRACES_DIR / f"{name}.jsonl"


def load_trace(name: str) -> Trace:
    path = trace_path(name)
    if not path.is_file():
        known = sorted(p.stem for p in TRACES_DIR.glob("*.jsonl"))
        raise TraceError(f"no trace {name!r} (known: {', '.join(known)})")
    return parse_trace(path.read_text(encoding="utf-8"), str(path))


def parse_trace(text: str, source: str = "<trace>") -> Trace:
    lines = [(n, raw) for n, raw in enumerate(text.splitlines(), 1) if raw.strip()]
    if not lines:
        raise TraceError(f"{source}: empty trace (line 1 must be a header)")
    objs = []
    for n, raw in lines:
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TraceError(f"{source}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise TraceError(f"{source}:{n}: each line must be a JSON object")
        objs.append((n, obj))
    (hn, header), body = objs[0], objs[1:]
    if not isinstance(header.get("trace"), str) or not header["trace"] or "step" in header:
        raise TraceError(f"{source}:{hn}: field 'trace': line 1 must be a header with a non-empty 'trace' name")
    events = [_event(source, n, obj) for n, obj in body]
    if not events:
        raise TraceError(f"{source}: no events after the header")
    for prev, event in itertools.pairwise(events):
        if event.step < prev.step:
            raise TraceError(
                f"{source}:{event.line}: field 'step': {event.step} after {prev.step}; "
                "steps must increase and a step's events must be contiguous"
            )
    return Trace(header["trace"], str(header.get("description", "")), events)


def _event(source: str, n: int, obj: dict[str, Any]) -> Event:
    def bad(key: str, why: str) -> TraceError:
        return TraceError(f"{source}:{n}: field {key!r}: {why}")

    if unknown := set(obj) - _EVENT_KEYS:
        raise bad(sorted(unknown)[0], f"unknown field (allowed: {', '.join(sorted(_EVENT_KEYS))})")
    step = obj.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise bad("step", "required, a non-negative integer")
    think = obj.get("think_ms")
    if think is not None and (not isinstance(think, (int, float)) or isinstance(think, bool) or think < 0):
        raise bad("think_ms", "a non-negative number")
    if ("call" in obj) == ("edit" in obj):
        raise bad("call", "exactly one of 'call' and 'edit' is required")
    if "call" in obj:
        if not isinstance(obj["call"], str) or not obj["call"]:
            raise bad("call", "a tool name")
        if "append" in obj or "replace" in obj:
            raise bad("append" if "append" in obj else "replace", "only an edit has this")
        args = obj.get("arguments", {})
        if not isinstance(args, dict):
            raise bad("arguments", "an object")
        if "at" in args:
            at = args["at"]
            if (
                not isinstance(at, dict)
                or set(at) - _AT_KEYS
                or not isinstance(at.get("file"), str)
                or not isinstance(at.get("find"), str)
                or not at["find"]
                or not isinstance(at.get("offset", 0), int)
            ):
                raise bad("arguments.at", "{'file': REL, 'find': non-empty TEXT, 'offset': INT (optional)}")
        return Event(step, n, call=obj["call"], arguments=args, think_ms=think)
    if not isinstance(obj["edit"], str) or not obj["edit"]:
        raise bad("edit", "a workspace-relative path")
    if "arguments" in obj:
        raise bad("arguments", "only a call has arguments")
    if ("append" in obj) == ("replace" in obj):
        raise bad("edit", "an edit needs exactly one of 'append' and 'replace'")
    if "append" in obj:
        if not isinstance(obj["append"], str):
            raise bad("append", "a string")
        return Event(step, n, edit=obj["edit"], append=obj["append"], think_ms=think)
    rep = obj["replace"]
    if not (isinstance(rep, list) and len(rep) == 2 and all(isinstance(s, str) for s in rep) and rep[0]):
        raise bad("replace", "[OLD, NEW]: two strings, OLD non-empty")
    return Event(step, n, edit=obj["edit"], replace=(rep[0], rep[1]), think_ms=think)


def confine(root: Path, rel: str) -> Path:
    """`root/rel`, refused (TraceError) when it resolves outside the workspace."""
    base = root.resolve()
    path = (base / rel).resolve()
    if path != base and base not in path.parents:
        raise TraceError(f"path {rel!r} leaves the workspace {base}")
    return path


def position(text: str, find: str, offset: int = 0) -> tuple[int, int]:
    """0-based (line, UTF-16 column) of the first `find` in `text`, moved `offset` code units on its line."""
    index = text.find(find)
    if index < 0:
        raise TraceError(f"text {find!r} not found")
    line = text.count("\n", 0, index)
    start = text.rfind("\n", 0, index) + 1
    column = len(text[start:index].encode("utf-16-le")) // 2 + offset
    if column < 0:
        raise TraceError(f"offset {offset} moves before the start of line {line}")
    return line, column


def resolve_arguments(root: Path, event: Event) -> dict[str, Any]:
    """The call's arguments with `at` replaced by `line`/`character` found in the file's current text."""
    args = dict(event.arguments)
    at = args.pop("at", None)
    if at is None:
        return args
    try:
        text = confine(root, at["file"]).read_text(encoding="utf-8")
        line, character = position(text, at["find"], at.get("offset", 0))
    except (OSError, TraceError) as exc:
        raise TraceError(f"line {event.line}: field 'arguments.at' in {at['file']}: {exc}") from None
    args.setdefault("file_path", at["file"])
    return {**args, "line": line, "character": character}


class Edits:
    """Applies a trace's file writes and puts every touched file back byte for byte (`with` exits undo,
    even on error; a file the trace created is removed).

    With a `nonce`, the first write to each file also appends a comment naming it, so every replay's
    edited sources are new: a server replaying the same trace again cannot answer them from a cache
    filled by the previous replay (an agent's next session makes other edits, not the same ones)."""

    def __init__(self, root: Path, nonce: str | None = None) -> None:
        self.root = root
        self.nonce = nonce
        self.saved: dict[Path, bytes | None] = {}

    def apply(self, event: Event) -> int:
        """Write the edit; returns the bytes written. TraceError when `replace`'s OLD is not there."""
        assert event.edit is not None
        path = confine(self.root, event.edit)
        old = path.read_bytes() if path.exists() else None
        first = path not in self.saved
        self.saved.setdefault(path, old)
        text = (old or b"").decode("utf-8")
        if first and self.nonce is not None:
            text += f"\n// bench replay {self.nonce}\n"
        if event.replace is not None:
            if event.replace[0] not in text:
                raise TraceError(f"line {event.line}: field 'replace': {event.replace[0]!r} not in {event.edit}")
            text = text.replace(event.replace[0], event.replace[1], 1)
        else:
            text += event.append or ""
        data = text.encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return len(data)

    def undo(self) -> None:
        for path, data in self.saved.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        self.saved.clear()

    def __enter__(self) -> Edits:
        return self

    def __exit__(self, *exc: object) -> None:
        self.undo()
