"""Generate `_toollist.json`: the full server's `initialize` and `tools/list` answers, as sent on the wire.

The stdio front answers the handshake from this file so it never imports the SDK (~1.3 s) before a
client's first model request. To be a faithful stand-in, the file holds what the real server sends,
not a re-derivation: this module drives the real low-level server over in-memory JSON-RPC streams,
once per handshake protocol version (the SDK sieves results per version, so `tools/list` under
2024-11-05 may differ from 2025-06-18), and stores the raw result objects.

Build/test time only (it imports the SDK). Re-run `python -m scheduler.server._toollist` whenever the tool set
changes; `tests/test_front.py` fails until the shipped file matches the server again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION

from .. import _compat
from .._version import __version__

TOOLLIST_PATH = Path(__file__).with_name("_toollist.json")
FORMAT = 1


async def _exchange(workspace: Path | None, version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """One real handshake at `version`: the raw `initialize` and `tools/list` results."""
    from ._build import build_server

    low = _compat.lowlevel_server(build_server(workspace))
    to_server, server_in = _compat.inbound_streams(16)
    server_out, from_server = _compat.outbound_streams(16)

    async def ask(request_id: int, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        raw: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            raw["params"] = params
        await to_server.send(SessionMessage(types.jsonrpc_message_adapter.validate_python(raw)))
        reply = await from_server.receive()
        wire = reply.message.model_dump(by_alias=True, exclude_unset=True, mode="json")
        if "result" not in wire:
            raise RuntimeError(f"{method} failed at {version}: {wire}")
        result: dict[str, Any] = wire["result"]
        return result

    async with anyio.create_task_group() as tg:
        tg.start_soon(low.run, server_in, server_out, low.create_initialization_options())
        with anyio.fail_after(30):
            init = await ask(
                1,
                "initialize",
                {
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "cargo-scheduler-toollist", "version": __version__},
                },
            )
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            await to_server.send(SessionMessage(types.jsonrpc_message_adapter.validate_python(note)))
            tools = await ask(2, "tools/list", None)
        await to_server.aclose()
        tg.cancel_scope.cancel()
    return init, tools


async def collect(workspace: Path | None = None) -> dict[str, Any]:
    """What the full server answers now, per handshake version, in the file's format."""
    per_version: dict[str, dict[str, Any]] = {}
    for version in HANDSHAKE_PROTOCOL_VERSIONS:
        init, tools = await _exchange(workspace, version)
        per_version[version] = {"initialize": init, "tools/list": tools}
    return {"format": FORMAT, "latest_handshake": LATEST_HANDSHAKE_VERSION, "handshake": per_version}


def render(data: dict[str, Any]) -> bytes:
    """The file's exact bytes (stable, so the digest the daemon compares only moves when content does)."""
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()


def dump_tool_list(path: Path = TOOLLIST_PATH, workspace: Path | None = None) -> dict[str, Any]:
    """Regenerate the shipped file from the full server; returns what it wrote."""
    data = anyio.run(collect, workspace)
    path.write_bytes(render(data))
    return data


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else TOOLLIST_PATH
    data = dump_tool_list(path)
    tools = data["handshake"][data["latest_handshake"]]["tools/list"]["tools"]
    print(f"wrote {path} ({len(tools)} tools)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
