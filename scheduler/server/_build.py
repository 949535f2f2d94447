"""The full MCP server (heavy: imports the `mcp` SDK): every tool of cargo-mcp 0.2.0 and
rust-analyzer-mcp 0.4.0 under the same names, plus cargo_fmt, cargo_affected and scheduler_status.

`build_server` only registers tools; the pools live in a `ServerState`. The SDK enters the server's
lifespan once per connection, so a process that serves many connections from one server object (the
daemon) must create one state and pass it in: every session then shares the engine, the cache and
rust-analyzer. Without a state, each connection opens (and closes) a private one.

After changing the tool set, regenerate the front's handshake table: `python -m scheduler.server._toollist`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from pydantic import ConfigDict

from .. import _compat
from . import _tools_analyzer, _tools_cargo, _tools_manifest
from ._state import ServerState, Toolbox

INSTRUCTIONS = (
    "Rust tools for one Cargo workspace (default: the server's directory; change it per session with "
    "set_working_directory, or per call with `workspace`). cargo_check answers from a diagnostics cache and "
    "runs cargo only for what changed; rust_analyzer_* positions are 0-based. Answers are JSON; "
    "`max_tokens` bounds their size."
)


def build_server(
    workspace: Path | None = None,
    *,
    state: ServerState | None = None,
    allow_unsafe_env: bool = False,
    allow_env: tuple[str, ...] = (),
) -> MCPServer[ServerState]:
    """Build the server whose tools every session sees; `workspace` is the default workspace root
    (the directory `serve` was started in). `state`, when given, is shared and not closed here."""
    default = (workspace or Path.cwd()).resolve()

    @asynccontextmanager
    async def lifespan(_: MCPServer[ServerState]) -> AsyncIterator[ServerState]:
        if state is not None:
            yield state
            return
        async with ServerState(default, allow_unsafe_env=allow_unsafe_env, allow_env=allow_env) as own:
            yield own

    server: MCPServer[ServerState] = MCPServer(name="cargo-scheduler", instructions=INSTRUCTIONS, lifespan=lifespan)
    box = Toolbox(default)
    _tools_cargo.register(server, box)
    _tools_manifest.register(server, box)
    _tools_analyzer.register(server, box)
    _refuse_unknown_arguments(server)
    return server


def _refuse_unknown_arguments(server: MCPServer[ServerState]) -> None:
    """An argument no tool parameter takes is an error naming it, not silently dropped: a misspelt
    `pakage` would otherwise check the whole workspace and answer a question nobody asked. The
    advertised input schemas are left as they are (the front's handshake table is built from them)."""
    for tool in _compat.registered_tools(server):
        base = tool.fn_metadata.arg_model
        config = ConfigDict(**{**base.model_config, "extra": "forbid"})
        tool.fn_metadata.arg_model = type(base.__name__, (base,), {"model_config": config, "__module__": __name__})
