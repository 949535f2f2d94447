"""Tool answers: one JSON object, sent as `structuredContent` and as compact JSON text, within budget.

Codex shows the model only `structuredContent` when it is present; other clients show the text. Both
carry the same object, serialised compactly (the SDK's default text is indented, which costs tokens
for nothing). Failures are `isError` answers whose message says what to do next; a build that found
compile errors is *not* a failure: it is an ordinary answer with `success: false`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mcp_types import CallToolResult, TextContent

from .._exceptions import SchedulerError
from ..cargo._plain import PlainResult
from ..engine._report import BYTES_PER_TOKEN, DEFAULT_TOKEN_BUDGET

DEFAULT_MAX_TOKENS = DEFAULT_TOKEN_BUDGET
MIN_TOKENS = 200
_ERROR_START = re.compile(r"^(error|warning: unused|thread '.*' panicked|Diff in|failures:)", re.MULTILINE)


def compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def answer(data: dict[str, Any]) -> CallToolResult:
    """A normal answer (including builds that failed to compile)."""
    return CallToolResult(content=[TextContent(type="text", text=compact(data))], structured_content=data)


def failure(message: str, *, argument: str | None = None) -> CallToolResult:
    """The call could not be answered; `message` tells the agent what to change."""
    data: dict[str, Any] = {"error": message}
    if argument:
        data["argument"] = argument
    return CallToolResult(content=[TextContent(type="text", text=message)], structured_content=data, is_error=True)


def failure_for(exc: BaseException, tool: str) -> CallToolResult:
    """The agent-facing message for one of our exceptions: what went wrong and the next good call."""
    if isinstance(exc, SchedulerError):
        return failure(exc.for_agent(tool), argument=exc.argument)
    return failure(f"{tool}: internal error {type(exc).__name__}: {exc}; the call may be retried")


def budget_bytes(max_tokens: int | None) -> int:
    return max(max_tokens or DEFAULT_MAX_TOKENS, MIN_TOKENS) * BYTES_PER_TOKEN


def cut(text: str, limit: int, *, errors_first: bool = False) -> str:
    """`text` within `limit` bytes (roughly): the end of the output, which is where cargo and
    programs put their verdict, preceded (when asked) by the first error blocks, which say why."""
    text = text.strip("\n")
    if len(text.encode()) <= limit:
        return text
    head = ""
    if errors_first:
        blocks = []
        for m in _ERROR_START.finditer(text):
            end = text.find("\n\n", m.start())
            blocks.append(text[m.start() : end if end != -1 else len(text)])
        head_parts: list[str] = []
        used = 0
        for block in blocks:
            if used + len(block) > limit // 2:
                break
            head_parts.append(block)
            used += len(block) + 2
        head = "\n\n".join(head_parts)
    room = max(limit - len(head.encode()) - 80, limit // 4)
    tail = text.encode()[-room:].decode(errors="ignore")
    omitted = len(text.encode()) - room - len(head.encode())
    marker = f"[... {max(omitted, 0)} bytes omitted (token budget) ...]"
    return f"{head}\n{marker}\n{tail}" if head else f"{marker}\n{tail}"


def plain_dict(result: PlainResult, *, max_tokens: int | None, note: str | None = None) -> dict[str, Any]:
    """The answer of a plain cargo run: what ran, how it ended, and the ends of its output."""
    limit = budget_bytes(max_tokens) - 400
    err_size, out_size = len(result.stderr.encode()), len(result.stdout.encode())
    # stderr (cargo's diagnostics) gets two thirds unless stdout needs less.
    out_limit = min(out_size, limit // 3) if err_size > limit * 2 // 3 else max(limit - err_size, limit // 3)
    err_limit = max(limit - min(out_size, out_limit), 256)
    data: dict[str, Any] = {
        "command": result.command,
        "exit_code": result.exit_code,
        "success": result.success,
        "duration_ms": round(result.duration_ms, 1),
        "stdout_tail": cut(result.stdout, out_limit),
        "stderr_tail": cut(result.stderr, err_limit, errors_first=True),
    }
    if result.timed_out:
        data["timed_out"] = True
        data["error"] = (
            "the time limit was reached; cargo and every process it started were killed "
            "(pass a larger timeout_s to allow more time)"
        )
    if note:
        data["note"] = note
    return data
