"""Every private attribute of a dependency that cargo-scheduler touches, in one place.

The MCP SDK and diskcache give no public way to do a few things we need: serve a session over our
own socket (the low-level server and the SDK's context-carrying streams), tighten the tools'
argument models, find a connection's per-session state, and ask SQLite whether another process
wrote. Each is one function here, written against the versions in `WRITTEN_FOR`; tests/test_compat.py
fails naming the package when an installed version differs, so an upgrade re-reads this file
instead of breaking a call path at run time.

Imports of the dependencies are inside the functions: the engine imports this module for
diskcache, and must not pull in the SDK (~1.4 s) to do so.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diskcache import Cache
    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.tools.base import Tool
    from mcp.server.session import ServerSession
    from mcp.shared._context_streams import ContextReceiveStream, ContextSendStream
    from mcp.shared.message import SessionMessage

WRITTEN_FOR = {"mcp": "2.3.0", "diskcache": "5.6.3"}
"""The versions whose private attributes the functions below were written for."""


def lowlevel_server(server: MCPServer[Any]) -> Server[Any]:
    """The low-level `Server` inside an `MCPServer` (to run a session over our own streams)."""
    return server._lowlevel_server


def registered_tools(server: MCPServer[Any]) -> list[Tool]:
    """The tool registrations of an `MCPServer`, whose argument models may be replaced in place."""
    return server._tool_manager.list_tools()


def inbound_streams(
    size: float,
) -> tuple[ContextSendStream[SessionMessage | Exception], ContextReceiveStream[SessionMessage | Exception]]:
    """The SDK's context-carrying memory streams for messages into a session (errors included)."""
    from mcp.shared._context_streams import create_context_streams
    from mcp.shared.message import SessionMessage

    return create_context_streams[SessionMessage | Exception](size)


def outbound_streams(size: float) -> tuple[ContextSendStream[SessionMessage], ContextReceiveStream[SessionMessage]]:
    """The SDK's context-carrying memory streams for messages out of a session."""
    from mcp.shared._context_streams import create_context_streams
    from mcp.shared.message import SessionMessage

    return create_context_streams[SessionMessage](size)


def connection_state(session: ServerSession) -> MutableMapping[str, Any] | None:
    """The scratch state of the connection a request arrived on (the SDK builds a `ServerSession`
    per request, but its `Connection` lives as long as the client's), or None when there is none."""
    store = getattr(getattr(session, "_connection", None), "state", None)
    return store if isinstance(store, dict) else None


def sqlite_data_version(disk: Cache) -> int | None:
    """SQLite's `PRAGMA data_version` on a diskcache `Cache`'s own connection: it changes when
    another connection commits. Raises what the database raises; None when it answers nothing."""
    row = disk._sql("PRAGMA data_version").fetchone()
    return int(row[0]) if row else None


def stored_keys(disk: Cache, keys: list[str]) -> set[str]:
    """Which of `keys` (strings) a diskcache `Cache` holds unexpired, by one query per 500 keys
    instead of one `get` each: ~9 ms for the 451 keys of a prefetch hint. Reads diskcache's own
    table as 5.6 lays it out (`Cache(key, raw, expire_time, ...)`, a str key stored raw)."""
    import time

    found: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT key FROM Cache WHERE raw = 1 AND key IN ({marks}) AND (expire_time IS NULL OR expire_time > ?)"
        found.update(row[0] for row in disk._sql(query, (*chunk, time.time())).fetchall())
    return found
