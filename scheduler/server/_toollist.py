"""Generate `_toollist.json`: the full server's handshake answers in both protocol eras, as sent on the wire.

The stdio front answers from this file so it never imports the SDK (~1.3 s) before a client's first
model request: `initialize` + `tools/list` for handshake-era clients (Codex over stdio), and
`server/discover` + the stateless `tools/list` for 2026-07-28 clients (Claude Code probes with
`server/discover` first and never sends `initialize` when it is answered). To be a faithful stand-in,
the file holds what the real server sends, not a re-derivation: this module drives the real low-level
server over in-memory JSON-RPC streams, once per protocol version (the SDK sieves results per
version, so `tools/list` under 2024-11-05 may differ from 2025-06-18, and 2026-07-28 results carry
`resultType`, `ttlMs` and the `serverInfo` stamp), and stores the raw result objects.

2026-07-28 answers do not depend on the envelope's client info or capabilities (the SDK stamps and
sieves by version only), so one answer per version serves every client.

Build/test time only (it imports the SDK). Re-run `python -m scheduler.server._toollist` whenever the tool set
changes; `tests/test_front.py` fails until the shipped file matches the server again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)

from .. import _compat
from .._version import __version__
from . import _table

TOOLLIST_PATH = Path(__file__).with_name("_toollist.json")
CLIENT_INFO = {"name": "cargo-scheduler-toollist", "version": __version__}


async def _exchange(workspace: Path | None, requests: list[tuple[str, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """Send `requests` in order on one fresh connection to the real server; their raw wire answers.
    A request named `notifications/...` is sent as a notification and has no answer."""
    from ._build import build_server

    low = _compat.lowlevel_server(build_server(workspace))
    to_server, server_in = _compat.inbound_streams(16)
    server_out, from_server = _compat.outbound_streams(16)
    answers: list[dict[str, Any]] = []

    async def send(raw: dict[str, Any]) -> None:
        await to_server.send(SessionMessage(types.jsonrpc_message_adapter.validate_python(raw)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(low.run, server_in, server_out, low.create_initialization_options())
        with anyio.fail_after(30):
            for request_id, (method, params) in enumerate(requests, 1):
                raw: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
                if params is not None:
                    raw["params"] = params
                if method.startswith("notifications/"):
                    await send(raw)
                    continue
                await send({**raw, "id": request_id})
                reply = await from_server.receive()
                answers.append(reply.message.model_dump(by_alias=True, exclude_unset=True, mode="json"))
        await to_server.aclose()
        tg.cancel_scope.cancel()
    return answers


def _result(wire: dict[str, Any], what: str) -> dict[str, Any]:
    if "result" not in wire:
        raise RuntimeError(f"{what} failed: {wire}")
    result: dict[str, Any] = wire["result"]
    return result


def envelope(version: str) -> dict[str, Any]:
    """The 2026-07-28 per-request `_meta` a client stamps on every request."""
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
        "io.modelcontextprotocol/clientCapabilities": {},
    }


async def _handshake(workspace: Path | None, version: str) -> dict[str, Any]:
    """One `initialize` handshake at `version`, then `tools/list`."""
    hello = {"protocolVersion": version, "capabilities": {}, "clientInfo": CLIENT_INFO}
    init, tools = await _exchange(
        workspace, [("initialize", hello), ("notifications/initialized", None), ("tools/list", None)]
    )
    return {
        "initialize": _result(init, f"initialize at {version}"),
        "tools/list": _result(tools, f"tools/list at {version}"),
    }


async def _modern(workspace: Path | None, version: str) -> dict[str, Any]:
    """A 2026-07-28 client: `server/discover`, then the stateless `tools/list`, each with its envelope."""
    meta = {"_meta": envelope(version)}
    discover, tools = await _exchange(workspace, [("server/discover", meta), ("tools/list", meta)])
    return {
        "server/discover": _result(discover, f"server/discover at {version}"),
        "tools/list": _result(tools, f"tools/list at {version}"),
    }


async def collect(workspace: Path | None = None) -> dict[str, Any]:
    """What the full server answers now, per protocol version of each era, in the file's format."""
    handshake = {version: await _handshake(workspace, version) for version in HANDSHAKE_PROTOCOL_VERSIONS}
    modern = {version: await _modern(workspace, version) for version in MODERN_PROTOCOL_VERSIONS}
    return {
        "latest_handshake": LATEST_HANDSHAKE_VERSION,
        "latest_modern": LATEST_MODERN_VERSION,
        "handshake": handshake,
        "modern": modern,
    }


def render(data: dict[str, Any]) -> bytes:
    """The file's exact bytes (`_table`'s format; stable, so the digest the daemon compares only moves
    when content does)."""
    answers = {
        f"{era}/{version}/{method}": result
        for era in ("handshake", "modern")
        for version, methods in data[era].items()
        for method, result in methods.items()
    }
    return _table.encode(data["latest_handshake"], data["latest_modern"], answers)


def dump_tool_list(path: Path = TOOLLIST_PATH, workspace: Path | None = None) -> dict[str, Any]:
    """Regenerate the shipped file from the full server; returns what it wrote."""
    data = anyio.run(collect, workspace)
    path.write_bytes(render(data))
    return data


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else TOOLLIST_PATH
    data = dump_tool_list(path)
    tools = data["handshake"][data["latest_handshake"]]["tools/list"]["tools"]
    print(f"wrote {path} ({len(tools)} tools, {path.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
