"""The tool list a client sees: the peers' names and parameters, our additions, truthful annotations."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client
from server_env import NOT_READ_ONLY, OUR_TOOLS, PEER_TOOLS, SESSION_TOOLS

from scheduler import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Listed once per module: listing is pure, and each in-memory session costs a server start."""

    async def listed() -> dict[str, Any]:
        async with Client(build_server(tmp_path_factory.mktemp("ws"))) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    return anyio.run(listed)


@pytest.mark.parametrize("name", sorted(PEER_TOOLS))
async def test_every_peer_tool_is_listed_with_the_peers_parameters(tools: dict[str, Any], name: str) -> None:
    required, optional = PEER_TOOLS[name]
    schema = tools[name].input_schema
    properties = set(schema["properties"])
    assert required | optional <= properties
    assert set(schema.get("required", [])) == required, "new parameters must stay optional"


async def test_the_tool_set_is_the_peers_plus_ours(tools: dict[str, Any]) -> None:
    assert set(tools) == set(PEER_TOOLS) | OUR_TOOLS


JOB_TOOLS = {"scheduler_job", "scheduler_job_cancel", "scheduler_more"}


@pytest.mark.parametrize("name", sorted(set(PEER_TOOLS) | OUR_TOOLS))
async def test_every_tool_but_the_session_setters_takes_an_optional_workspace(tools: dict[str, Any], name: str) -> None:
    properties = tools[name].input_schema["properties"]
    if name in SESSION_TOOLS or name in JOB_TOOLS:  # a job id or a cursor names its workspace
        assert "workspace" not in properties
    else:
        assert "description" in properties["workspace"]


async def test_every_parameter_is_described_or_self_explanatory(tools: dict[str, Any]) -> None:
    plain_flags = {"release", "all_features", "no_default_features"}
    for name, tool in tools.items():
        for param, spec in tool.input_schema["properties"].items():
            assert "description" in spec or param in plain_flags, f"{name}.{param} has no description"


@pytest.mark.parametrize("name", sorted(set(PEER_TOOLS) | OUR_TOOLS))
async def test_annotations_are_as_documented(tools: dict[str, Any], name: str) -> None:
    a = tools[name].annotations
    expected = NOT_READ_ONLY.get(name, (True, False, False))
    assert (a.read_only_hint, a.destructive_hint, a.open_world_hint) == expected


@pytest.mark.parametrize("name", ["cargo_check", "cargo_test", "cargo_build", "cargo_fmt", "rust_analyzer_references"])
async def test_large_output_tools_take_a_token_budget(tools: dict[str, Any], name: str) -> None:
    spec = tools[name].input_schema["properties"]["max_tokens"]
    assert spec["default"] == 6000 and spec["minimum"] == 200


async def test_every_tool_publishes_an_object_output_schema(tools: dict[str, Any]) -> None:
    for tool in tools.values():
        assert tool.output_schema["type"] == "object"
