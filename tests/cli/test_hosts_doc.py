"""docs/hosts.md's snippets are what the hosts read: each parses (TOML with tomllib, JSON with json),
has the documented keys with the documented types, and the commands it configures run here (the
server's `serve`, the hooks' decisions on a steered and a plain call)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "hosts.md"
SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```([a-z]+)\n(.*?)\n```", re.S)

CODEX_SERVER_KEYS = {
    "command": str,
    "args": list,
    "env": dict,
    "env_vars": list,
    "cwd": str,
    "startup_timeout_sec": (int, float),
    "tool_timeout_sec": (int, float),
    "enabled_tools": list,
    "disabled_tools": list,
    "enabled": bool,
}
"""`[mcp_servers.NAME]` of a stdio server in Codex's config.toml."""
HOOK_HANDLER_KEYS = {"type": str, "command": str, "timeout": (int, float), "statusMessage": str}
"""A command hook handler, the same in Claude Code's settings.json and Codex's hooks.json."""
CLAUDE_SERVER_KEYS = {"type": str, "command": str, "args": list, "env": dict}


def snippets() -> dict[str, tuple[str, str]]:
    found = {name: (lang, body) for name, lang, body in SNIPPET.findall(DOC.read_text())}
    assert len(found) == len(SNIPPET.findall(DOC.read_text())), "two snippets share a name"
    return found


def parsed(name: str) -> Any:
    lang, body = snippets()[name]
    return tomllib.loads(body) if lang == "toml" else json.loads(body)


def check_keys(table: dict[str, Any], documented: dict[str, Any], where: str) -> None:
    unknown = set(table) - set(documented)
    assert not unknown, f"{where}: keys the host does not document: {unknown}"
    for key, value in table.items():
        expected = documented[key]
        fits = (
            isinstance(value, bool) if expected is bool else isinstance(value, expected) and not isinstance(value, bool)
        )
        assert fits, f"{where}.{key} is {type(value).__name__}"


def ours(command: str) -> list[str]:
    """A snippet's `cargo-scheduler ...` command line, as this checkout runs it."""
    argv = shlex.split(command)
    assert argv[0] == "cargo-scheduler", command
    return [sys.executable, "-m", "scheduler.cli._main", *argv[1:]]


def check_server_command(command: str, args: list[str]) -> None:
    assert command == "cargo-scheduler" and args[:1] == ["serve"] and all(isinstance(a, str) for a in args)
    done = subprocess.run([*ours(command), *args, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: cargo-scheduler serve"), done.stderr


def check_pretooluse_hooks(config: dict[str, Any], host: str, where: str) -> None:
    """`{"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [handler...]}]}}`, each handler run."""
    assert set(config) == {"hooks"} and set(config["hooks"]) == {"PreToolUse"}, where
    (group,) = config["hooks"]["PreToolUse"]
    assert set(group) == {"matcher", "hooks"} and group["matcher"] == "Bash", where
    (handler,) = group["hooks"]
    check_keys(handler, HOOK_HANDLER_KEYS, f"{where} handler")
    assert handler["type"] == "command"
    assert shlex.split(handler["command"])[1:] == ["hook", host]
    for command, steered in (("cargo check -p x", True), ("ls", False)):
        event = {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}
        done = subprocess.run(
            ours(handler["command"]), input=json.dumps(event), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        if steered:
            assert json.loads(done.stdout)["hookSpecificOutput"]["permissionDecision"] == "deny"
        else:
            assert done.stdout == ""


def test_every_snippet_is_named_and_in_a_language_its_host_reads() -> None:
    assert {name: lang for name, (lang, _) in snippets().items()} == {
        "codex-config": "toml",
        "codex-hooks": "json",
        "codex-hooks-toml": "toml",
        "agents-md": "markdown",
        "claude-mcp-add": "sh",
        "claude-mcp-json": "json",
        "claude-settings": "json",
    }


def test_the_codex_config_declares_the_server_and_the_2026_protocol_opt_in() -> None:
    config = parsed("codex-config")
    assert set(config) == {"mcp_servers", "features"}
    server = config["mcp_servers"]["cargo-scheduler"]
    check_keys(server, CODEX_SERVER_KEYS, "mcp_servers.cargo-scheduler")
    assert all(isinstance(v, str) for v in server["env"].values())
    assert all(isinstance(v, str) for v in server["env_vars"])
    check_server_command(server["command"], server["args"])
    assert config["features"] == {"mcp_2026_07_28": True}


@pytest.mark.parametrize("name", ["codex-hooks", "codex-hooks-toml"])
def test_the_codex_hook_is_a_pretooluse_command_hook_on_bash(name: str) -> None:
    check_pretooluse_hooks(parsed(name), "codex", name)


def test_the_two_spellings_of_the_codex_hook_say_the_same() -> None:
    assert parsed("codex-hooks") == parsed("codex-hooks-toml")


def test_claude_mcp_add_registers_the_same_server_as_mcp_json() -> None:
    argv = shlex.split(snippets()["claude-mcp-add"][1])
    assert argv[:3] == ["claude", "mcp", "add"] and "--" in argv
    name, command = argv[3], argv[argv.index("--") + 1 :]
    servers = parsed("claude-mcp-json")["mcpServers"]
    assert set(servers) == {name}
    check_keys(servers[name], CLAUDE_SERVER_KEYS, f"mcpServers.{name}")
    assert servers[name]["type"] == "stdio"
    assert [servers[name]["command"], *servers[name]["args"]] == command
    check_server_command(command[0], command[1:])


def test_the_claude_hook_is_a_pretooluse_command_hook_on_bash() -> None:
    check_pretooluse_hooks(parsed("claude-settings"), "claude", "claude-settings")
