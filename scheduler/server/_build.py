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
from .._version import __version__
from . import _hosts, _search, _tools_analyzer, _tools_cargo, _tools_jobs, _tools_manifest, _tools_pages
from ._state import ServerState, Toolbox

INSTRUCTIONS = """\
Rust tools for a Cargo workspace: cargo and rust-analyzer behind a cache. Prefer them to running \
cargo in a shell: they run cargo only for what changed and answer the rest from the cache.
Which tool:
- compile errors and warnings after an edit: cargo_check (clippy=true for lints); tests: cargo_test; \
linking/binaries: cargo_build; formatting: cargo_fmt_check, cargo_fmt; lint fixes: cargo_clippy(fix=true).
- questions about code at a position (type of an expression, docs, definition, references, \
completion, rename, code actions): rust_analyzer_*. Positions are 0-based lines and UTF-16 columns. \
While rust-analyzer is still indexing they answer status "indexing" instead of an empty result: retry.
- which packages a change affects: cargo_affected; what is running, queued or cached: scheduler_status.
Long runs: a test, build or check still running after ~50 s answers with a job; scheduler_job waits \
for its answer, scheduler_job_cancel stops it.
Cache: every cargo answer lists packages as ran (cargo ran now), cached (same sources as a previous \
run, its diagnostics replayed; as current as a fresh run) and pending (still running in the background; \
call again for them). cargo_test names packages whose tests passed for the same sources as passed_before.
Scopes (`scope` of cargo_check, cargo_test, cargo_build, cargo_clippy): auto (default) checks the \
packages whose files changed now and their dependents in the background; changed: only those \
packages; affected: them and every dependent now; workspace: all members. `package` narrows to one \
member (cargo -p).
Workspace: the server's directory; set_working_directory changes it for this session, `workspace` for \
one call. Answers are JSON with errors first; `max_tokens` bounds their size, and a cut answer says \
what it omitted."""
"""The server's instructions, the same in `initialize` and `server/discover`. Under 2,000 characters:
Claude Code cuts instructions at 2,048 (a test checks)."""


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

    server: MCPServer[ServerState] = MCPServer(
        name="cargo-scheduler", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan
    )
    box = Toolbox(default)
    _tools_cargo.register(server, box)
    _tools_manifest.register(server, box)
    _tools_analyzer.register(server, box)
    _tools_jobs.register(server, box)
    _tools_pages.register(server, box)
    _refuse_unknown_arguments(server)
    _search.apply(server)
    for tool in _compat.registered_tools(server):  # Claude Code: keep answers inline (`_hosts`)
        tool.meta = {**(tool.meta or {}), **_hosts.tool_meta()}
    return server


def _refuse_unknown_arguments(server: MCPServer[ServerState]) -> None:
    """An argument no tool parameter takes is an error naming it, not silently dropped: a misspelt
    `pakage` would otherwise check the whole workspace and answer a question nobody asked. The
    advertised input schemas are left as they are (the front's handshake table is built from them)."""
    for tool in _compat.registered_tools(server):
        base = tool.fn_metadata.arg_model
        config = ConfigDict(**{**base.model_config, "extra": "forbid"})
        tool.fn_metadata.arg_model = type(base.__name__, (base,), {"model_config": config, "__module__": __name__})
