"""The full MCP server (heavy: imports the `mcp` SDK). Stub: the tool set is being built."""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer


def build_server(workspace: Path | None = None) -> MCPServer:
    """Build the server whose tools every session sees; `workspace` is the default workspace root."""
    server: MCPServer = MCPServer(name="cargo-scheduler")

    @server.tool()
    def scheduler_status() -> dict[str, object]:
        """What is running and queued."""
        return {"workspace": str(workspace) if workspace else None}

    return server
