"""`cargo-scheduler hook claude|codex` decides as docs/hosts.md says: a shell cargo check, clippy,
test or build is denied with the documented PreToolUse JSON naming the tool to call instead; every
other command, and input it cannot read, gets no output and runs."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from scheduler.cli._hook import decision


def run_hook(host: str, command: object, tool_name: str = "Bash") -> subprocess.CompletedProcess[str]:
    event = {
        "session_id": "s",
        "cwd": "/",
        "hook_event_name": "PreToolUse",
        "tool_name": tool_name,
        "tool_input": {"command": command},
        "tool_use_id": "t",
    }
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli._main", "hook", host],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def denied(output: str) -> dict[str, Any]:
    answer = json.loads(output)
    assert set(answer) == {"hookSpecificOutput"}
    specific = answer["hookSpecificOutput"]
    assert set(specific) == {"hookEventName", "permissionDecision", "permissionDecisionReason"}
    assert specific["hookEventName"] == "PreToolUse" and specific["permissionDecision"] == "deny"
    assert isinstance(specific["permissionDecisionReason"], str)
    return dict(specific)


@pytest.mark.parametrize("host", ["claude", "codex"])
@pytest.mark.parametrize(
    ("command", "tool", "instead"),
    [
        ("cargo check -p x", "cargo_check", "cargo-scheduler check -p x"),
        ("cargo build --release", "cargo_build", "cargo-scheduler build --release"),
    ],
)
def test_a_shell_cargo_check_or_build_is_denied_naming_the_tool_and_the_cli_twin(
    host: str, command: str, tool: str, instead: str
) -> None:
    done = run_hook(host, command)
    assert done.returncode == 0, done.stderr
    reason = denied(done.stdout)["permissionDecisionReason"]
    assert f"{tool} tool of the cargo-scheduler MCP server" in reason and f"`{instead}`" in reason


@pytest.mark.parametrize("host", ["claude", "codex"])
@pytest.mark.parametrize("command", ["ls", "cargo fmt", "cargo run", "cargo +nightly check", "cargo-scheduler check"])
def test_any_other_command_gets_no_decision_and_runs(host: str, command: str) -> None:
    done = run_hook(host, command)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr


def test_a_steered_call_inside_a_chain_keeps_the_rest_of_the_line() -> None:
    answer = decision({"command": "cd crates/a && RUSTFLAGS=-Dwarnings cargo t 2>&1 | tail -5"})
    assert answer is not None
    reason = denied(json.dumps(answer))["permissionDecisionReason"]
    assert "cargo_test tool" in reason
    assert "`cd crates/a && RUSTFLAGS=-Dwarnings cargo-scheduler test 2>&1 | tail -5`" in reason


def test_input_it_cannot_read_and_mcp_tools_are_let_through() -> None:
    assert run_hook("claude", "cargo check", tool_name="mcp__other__run").stdout == ""
    assert denied(run_hook("codex", "cargo check", tool_name="local_shell").stdout)  # the host's own name
    assert run_hook("claude", "cargo check 'unbalanced").stdout == ""
    bad = subprocess.run(
        [sys.executable, "-m", "scheduler.cli._main", "hook", "claude"],
        input="not json",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (bad.returncode, bad.stdout) == (0, "")


def test_an_unknown_host_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scheduler.cli._main", "hook", "vim"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "claude|codex" in done.stderr
