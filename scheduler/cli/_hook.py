"""`cargo-scheduler hook claude|codex`: a PreToolUse hook that steers an agent's shell `cargo
check|clippy|test|build` to this project's MCP tools (or its cargo-compatible CLI).

Claude Code and Codex both run a command hook before a shell call, with the call as JSON on stdin
(`tool_name` "Bash", `tool_input.command`), and read the same decision JSON from stdout:
`{"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
"permissionDecisionReason": ...}}`; a denied call is not run and the reason is shown to the model,
which then calls the tool it names. Printing nothing lets the call go on as if no hook were there.
docs/hosts.md has both hosts' configuration.

Only a plain `cargo check|clippy|test|build` (or cargo's aliases c, t, b) is steered, anywhere in a
`&&`/`;`/`|` chain, with variable assignments before it; `cargo +toolchain ...`, every other cargo
command, and anything that is not cargo run as typed. The hook fails open: input it cannot read is
let through, never blocked. It runs before every shell call, so it imports only the standard
library's `json` and `shlex` (no argparse, no anyio).
"""

from __future__ import annotations

import json
import re
import shlex
import sys

STEERED = {
    "check": "check",
    "c": "check",
    "clippy": "clippy",
    "test": "test",
    "t": "test",
    "build": "build",
    "b": "build",
}
"""cargo subcommands (and cargo's built-in aliases) that have an MCP tool and a CLI twin here."""
TOOLS = {"check": "cargo_check", "clippy": "cargo_clippy", "test": "cargo_test", "build": "cargo_build"}
HOSTS = ("claude", "codex")
_OPERATORS = {"&&", "||", ";", "|", "&", "|&", ";;", "\n"}
_CALL = re.compile(r"(^|[\s;&|(])((?:\S*/)?cargo)\s+(check|c|clippy|test|t|build|b)(?=\s|$|[;&|)])")
"""Where the steered call is spelled in the command line: the suggestion replaces only that."""


def steered(command: str) -> tuple[str, list[str]] | None:
    """(subcommand, the simple command's words) of the first steered cargo call in `command`."""
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    simple: list[str] = []
    for token in [*lexer, ";"]:
        if token not in _OPERATORS:
            simple.append(token)
            continue
        words = simple
        simple = []
        while words and "=" in words[0] and not words[0].startswith("="):  # FOO=1 cargo check
            words = words[1:]
        if len(words) >= 2 and words[0].rsplit("/", 1)[-1] == "cargo" and words[1] in STEERED:
            return STEERED[words[1]], words
    return None


def decision(tool_input: object) -> dict[str, object] | None:
    """The decision JSON for this shell call, or None to let it run."""
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if isinstance(command, list):  # a shell tool that passes argv
        command = shlex.join(str(c) for c in command)
    if not isinstance(command, str):
        return None
    found = steered(command)
    if found is None:
        return None
    kind, words = found
    spelled = _CALL.search(command)
    if spelled is not None:  # the whole line, with only `cargo <sub>` replaced (redirections, chains kept)
        shell = f"{command[: spelled.start(2)]}cargo-scheduler {kind}{command[spelled.end(3) :]}".strip()
    else:
        shell = shlex.join(["cargo-scheduler", kind, *words[2:]])
    reason = (
        f"`cargo {kind}` is answered faster by cargo-scheduler (narrowed to what changed, cached): call the "
        f"{TOOLS[kind]} tool of the cargo-scheduler MCP server instead (its package, features and release "
        f"parameters take what these flags say), or run `{shell}` in the shell (cargo's flags and output)."
    )
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }


def hook_main(argv: list[str]) -> int:
    """Read one hook event from stdin, print the decision (or nothing); exit 0 unless misused."""
    if len(argv) != 1 or argv[0] not in HOSTS:
        print(
            f"usage: cargo-scheduler hook {{{'|'.join(HOSTS)}}}  (reads the host's PreToolUse JSON on stdin)",
            file=sys.stderr,
        )
        return 1
    try:
        event = json.loads(sys.stdin.read() or "null")
        # The host's matcher picks the shell tool ("Bash"); the name on stdin may be the host's own
        # canonical one (Codex keeps it), so only MCP tools, which never run a shell, are skipped.
        if not isinstance(event, dict) or str(event.get("tool_name", "")).startswith("mcp__"):
            return 0
        answer = decision(event.get("tool_input"))
    except (ValueError, TypeError):  # unreadable input, unbalanced quotes: let the call through
        return 0
    if answer is not None:
        sys.stdout.write(json.dumps(answer) + "\n")
    return 0
