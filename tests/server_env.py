"""Shared by the tests/test_server_*.py files: the peers' tool table and a call helper."""

from __future__ import annotations

import json
from typing import Any

from mcp import Client

CARGO_COMMON = {"toolchain", "cargo_env"}
# cargo-mcp 0.2.0 and rust-analyzer-mcp 0.4.0, from FIELD-NOTES: tool -> (required, optional) parameters.
PEER_TOOLS: dict[str, tuple[set[str], set[str]]] = {
    "cargo_check": (set(), {"package"} | CARGO_COMMON),
    "cargo_clippy": (set(), {"package", "fix"} | CARGO_COMMON),
    "cargo_test": (set(), {"package", "test_name", "no_capture"} | CARGO_COMMON),
    "cargo_fmt_check": (set(), CARGO_COMMON),
    "cargo_build": (set(), {"package", "release"} | CARGO_COMMON),
    "cargo_bench": (set(), {"package", "bench_name", "baseline"} | CARGO_COMMON),
    "cargo_add": ({"dependencies"}, {"package", "dev", "optional", "features"} | CARGO_COMMON),
    "cargo_remove": ({"dependencies"}, {"package", "dev"} | CARGO_COMMON),
    "cargo_update": (set(), {"package", "dependencies", "dry_run"} | CARGO_COMMON),
    "cargo_clean": (set(), {"package"} | CARGO_COMMON),
    "cargo_run": (
        set(),
        {"package", "bin", "example", "release", "features", "all_features", "no_default_features", "args"}
        | CARGO_COMMON,
    ),
    "set_working_directory": ({"path"}, set()),
    "rust_analyzer_hover": ({"file_path", "line", "character"}, set()),
    "rust_analyzer_definition": ({"file_path", "line", "character"}, set()),
    "rust_analyzer_references": ({"file_path", "line", "character"}, set()),
    "rust_analyzer_completion": ({"file_path", "line", "character"}, set()),
    "rust_analyzer_symbols": ({"file_path"}, set()),
    "rust_analyzer_format": ({"file_path"}, set()),
    "rust_analyzer_diagnostics": ({"file_path"}, set()),
    "rust_analyzer_code_actions": ({"file_path", "line", "character", "end_line", "end_character"}, set()),
    "rust_analyzer_rename": ({"file_path", "line", "character", "new_name"}, set()),
    "rust_analyzer_set_workspace": ({"workspace_path"}, set()),
    "rust_analyzer_workspace_diagnostics": (set(), set()),
}
OUR_TOOLS = {
    "cargo_fmt",
    "cargo_affected",
    "scheduler_status",
    "scheduler_job",
    "scheduler_job_cancel",
    "scheduler_more",
}
SESSION_TOOLS = {"set_working_directory", "rust_analyzer_set_workspace"}

# The documented annotations (docs/mcp.md): (readOnly, destructive, openWorld).
NOT_READ_ONLY = {
    "cargo_clippy": (False, False, False),
    "cargo_fmt": (False, False, False),
    "cargo_add": (False, False, True),
    "cargo_remove": (False, True, False),
    "cargo_update": (False, False, True),
    "cargo_clean": (False, True, False),
    "cargo_run": (False, True, True),
    "set_working_directory": (False, False, False),
    "rust_analyzer_set_workspace": (False, False, False),
    "scheduler_job_cancel": (False, False, False),
}


async def call(client: Client, tool: str, args: dict[str, Any] | None = None) -> tuple[bool, dict[str, Any]]:
    """(is_error, the answer object); checks that text and structured content carry the same JSON."""
    result = await client.call_tool(tool, args or {})
    text = result.content[0].text if result.content and hasattr(result.content[0], "text") else ""
    data = result.structured_content
    assert isinstance(data, dict), f"{tool} answered without structured content: {result}"
    if not result.is_error:
        assert json.loads(text) == data
        assert "\n  " not in text, "the text copy must be compact JSON"
    else:
        assert text == data["error"]
    return bool(result.is_error), data
