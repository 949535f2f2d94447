"""The stdio front: answers the handshake from the shipped tool list, relays the rest to the daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from daemon_env import REPO, Env, Front, isolated_env

from scheduler import __version__
from scheduler.server import _table, _toollist


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def full_server_answers() -> dict[str, Any]:
    return anyio.run(_toollist.collect)


def test_the_shipped_tool_list_is_what_the_full_server_answers(full_server_answers: dict[str, Any]) -> None:
    shipped = _table.decode(_toollist.TOOLLIST_PATH.read_bytes())
    assert shipped == full_server_answers, "the tool set changed: re-run `python -m scheduler.server._toollist`"


def test_the_shipped_table_answers_both_protocol_eras_with_the_same_tools(full_server_answers: dict[str, Any]) -> None:
    eras = {**full_server_answers["handshake"], **full_server_answers["modern"]}
    assert set(full_server_answers["modern"]) == {"2026-07-28"}
    names = {version: [t["name"] for t in answers["tools/list"]["tools"]] for version, answers in eras.items()}
    assert len({tuple(n) for n in names.values()}) == 1, names


def test_serve_answers_initialize_and_tools_list_with_the_full_servers_tools(
    env: Env, full_server_answers: dict[str, Any]
) -> None:
    front = env.front()
    init = front.initialize("2025-06-18")
    assert init["result"] == full_server_answers["handshake"]["2025-06-18"]["initialize"]
    tools = front.request("tools/list")
    assert tools["result"] == full_server_answers["handshake"]["2025-06-18"]["tools/list"]
    names = {t["name"] for t in tools["result"]["tools"]}
    assert "scheduler_status" in names


def test_an_unknown_protocol_version_is_offered_the_latest_handshake_version(
    env: Env, full_server_answers: dict[str, Any]
) -> None:
    front = env.front()
    init = front.initialize("1999-01-01")
    latest = full_server_answers["latest_handshake"]
    assert init["result"]["protocolVersion"] == latest
    assert init["result"] == full_server_answers["handshake"][latest]["initialize"]


def test_importing_the_front_loads_neither_the_sdk_nor_anyio() -> None:
    code = (
        "import sys, scheduler.daemon._front\n"
        "heavy = {'mcp', 'mcp_types', 'anyio', 'pydantic', 'asyncio', 'subprocess', 'argparse'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=True, timeout=30)
    assert out.stdout.strip() == b"[]"


def test_the_fronts_connector_finds_a_package_root_loading_neither_the_sdk_nor_the_toml_parser(
    tmp_path: Path,
) -> None:
    (tmp_path / "solo" / "src").mkdir(parents=True)
    (tmp_path / "solo" / "Cargo.toml").write_text('[package]\nname = "solo"\nversion = "0.1.0"\n')
    code = (
        "import sys, scheduler.daemon._front, scheduler.daemon._control\n"
        "from scheduler.daemon import _socket\n"
        f"assert _socket.workspace_root({str(tmp_path / 'solo' / 'src')!r}) == {str((tmp_path / 'solo').resolve())!r}\n"
        "heavy = {'mcp', 'mcp_types', 'anyio', 'pydantic', 'asyncio', 'subprocess', 'argparse', 'tomllib'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=True, timeout=30)
    assert out.stdout.strip() == b"[]"


def test_a_tools_call_is_relayed_to_the_daemon_and_answered(env: Env) -> None:
    front = env.front()
    front.initialize()
    reply = front.call("scheduler_status")
    assert reply["result"]["isError"] is False
    assert reply["result"]["structuredContent"]["workspace"] == str(env.workspace)
    assert env.wait_status()["workspace"] == str(env.workspace.resolve())


def test_a_ping_is_answered_without_the_daemon(env: Env) -> None:
    front = env.front()
    front.initialize()
    assert front.request("ping")["result"] == {}


def test_a_session_started_in_a_member_crate_reaches_the_workspace_root_daemon(env: Env) -> None:
    member = next(p for p in (env.workspace / "crates").iterdir() if (p / "Cargo.toml").is_file())
    front = Front.spawn(member, [])
    env.fronts.append(front)
    front.initialize()
    assert front.call("scheduler_status")["result"]["isError"] is False
    assert env.wait_status()["workspace"] == str(env.workspace.resolve())


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_the_sdk_stdio_client_talks_to_serve_end_to_end(env: Env, mode: str) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "scheduler.daemon._front", "--workspace", str(env.workspace)],
        env=dict(os.environ),
        cwd=str(REPO),
    )

    async def talk() -> tuple[str, Any, list[str], Any]:
        with anyio.fail_after(60):
            async with Client(params, mode=mode) as client:
                tools = await client.list_tools()
                result = await client.call_tool("scheduler_status", {})
                return client.protocol_version, client.server_info, [t.name for t in tools.tools], result

    version, info, names, result = anyio.run(talk)
    # auto probes `server/discover` first and adopts 2026-07-28 when answered; legacy sends `initialize`.
    assert version == ("2026-07-28" if mode == "auto" else "2025-11-25")
    assert info is not None and info.version == __version__
    assert "scheduler_status" in names
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["workspace"] == str(env.workspace)
