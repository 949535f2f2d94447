"""The private attributes scheduler/_compat.py reaches into still exist, in the versions it was
written for. A failure here names the package to re-read _compat.py against, before any call path
meets the change at run time."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import anyio
import pytest
from mcp import Client

from scheduler import _compat, build_server


@pytest.mark.parametrize("package", sorted(_compat.WRITTEN_FOR))
def test_the_installed_version_is_the_one_the_compat_module_was_written_for(package: str) -> None:
    assert importlib.metadata.version(package) == _compat.WRITTEN_FOR[package], (
        f"{package} changed: check every function of scheduler/_compat.py against it, then update WRITTEN_FOR"
    )


def test_the_low_level_server_and_its_tool_registrations_are_reachable(tmp_path: Path) -> None:
    server = build_server(tmp_path)
    assert _compat.lowlevel_server(server).name == "cargo-scheduler"
    tools = {t.name for t in _compat.registered_tools(server)}
    assert {"cargo_check", "set_working_directory"} <= tools
    assert all(t.fn_metadata.arg_model.model_config.get("extra") == "forbid" for t in _compat.registered_tools(server))


@pytest.mark.anyio
async def test_the_sdk_streams_carry_messages_and_errors_in_order() -> None:
    send, receive = _compat.inbound_streams(2)
    out_send, out_receive = _compat.outbound_streams(1)
    with anyio.fail_after(5):
        async with send, receive, out_send, out_receive:
            await send.send(ValueError("bad line"))
            assert isinstance(await receive.receive(), ValueError)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "p"\nversion = "0.1.0"\n')
    (tmp_path / "src").mkdir()
    return tmp_path.resolve()


@pytest.mark.anyio
async def test_a_handshake_era_connection_has_state_that_outlives_its_requests(package: Path) -> None:
    tmp_path, resolved = package, str(package)
    with anyio.fail_after(60):
        async with Client(build_server(tmp_path), mode="legacy") as client:
            first = await client.call_tool("set_working_directory", {"path": str(tmp_path)})
            assert not first.is_error, first
            status = await client.call_tool("scheduler_status", {})
            assert status.structured_content is not None
            assert status.structured_content["workspace"] == resolved, (
                "the session's workspace was kept in the connection's state"
            )


def test_sqlite_data_version_reads_the_caches_own_connection(tmp_path: Path) -> None:
    import diskcache

    with diskcache.Cache(str(tmp_path / "c")) as disk:
        before = _compat.sqlite_data_version(disk)
        assert isinstance(before, int)
        with diskcache.Cache(str(tmp_path / "c")) as other:
            other.set("k", b"v")
        assert _compat.sqlite_data_version(disk) != before, "another connection's commit is visible"
