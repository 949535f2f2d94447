"""The LSP client against a scripted server (framing, ids, server requests, cancellation, ending)
and, when installed, against rust-analyzer itself."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import lsprotocol.types as lsp_types
import pytest

from scheduler._exceptions import AnalyzerNotFound, LspClosed, LspResponseError
from scheduler.analyzer import _lsp
from scheduler.analyzer._lsp import LspClient
from scheduler.analyzer._setup import client_capabilities, find_rust_analyzer

pytestmark = pytest.mark.anyio

# A language server reduced to what the tests need; `deaf` as argv[1] makes it ignore shutdown.
FAKE_SERVER = r"""
import json, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
deaf = sys.argv[1:] == ["deaf"]
held, hung, cancelled, answers, shut = [], set(), [], {}, False

def read():
    length = None
    while True:
        line = inp.readline()
        if not line:
            sys.exit(0)
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(inp.read(length))

def send(msg):
    body = json.dumps(msg).encode()
    out.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    out.flush()

def reply(i, result=None, error=None):
    send({"jsonrpc": "2.0", "id": i, **({"error": error} if error else {"result": result})})

while True:
    m = read()
    method, i, params = m.get("method"), m.get("id"), m.get("params")
    if method is None:
        answers[str(m["id"])] = m.get("result", m.get("error"))
        if len(answers) == 3:
            reply(pending_ask, answers)
    elif method == "echo":
        reply(i, params)
    elif method == "hold":
        held.append((i, params))
    elif method == "release":
        for hi, hp in reversed(held):
            reply(hi, hp)
        held.clear()
        reply(i, "released")
    elif method == "error":
        reply(i, error={"code": -32000, "message": "boom"})
    elif method == "hang":
        hung.add(i)
    elif method == "$/cancelRequest":
        cancelled.append(params["id"])
        if params["id"] in hung:
            reply(params["id"], error={"code": -32800, "message": "cancelled"})
    elif method == "cancelled":
        reply(i, cancelled)
    elif method == "ask":
        pending_ask = i
        send({"jsonrpc": "2.0", "id": "cfg", "method": "workspace/configuration",
              "params": {"items": [{"section": "rust-analyzer"}]}})
        send({"jsonrpc": "2.0", "id": "progress", "method": "window/workDoneProgress/create",
              "params": {"token": "t"}})
        send({"jsonrpc": "2.0", "id": "edit", "method": "workspace/applyEdit", "params": {"edit": {}}})
    elif method == "notify":
        send({"jsonrpc": "2.0", "method": "custom/note", "params": params})
        reply(i)
    elif method == "die":
        sys.stderr.write("panicked at 'the fake server gave up'\n")
        sys.stderr.flush()
        sys.exit(3)
    elif method == "shutdown":
        if not deaf:
            shut = True
            reply(i)
    elif method == "exit":
        sys.exit(0 if shut else 1)
"""

CONFIG = {"checkOnSave": False}


class Server:
    def __init__(self, client: LspClient, notes: list[tuple[str, Any]]) -> None:
        self.client = client
        self.notes = notes


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "fake_server.py"
    path.write_text(FAKE_SERVER)
    return path


@pytest.fixture
async def server(script: Path, tmp_path: Path) -> AsyncIterator[Server]:
    notes: list[tuple[str, Any]] = []
    async with LspClient.spawn(
        [sys.executable, str(script)],
        cwd=tmp_path,
        on_notification=lambda m, p: notes.append((m, p)),
        on_request=lambda m, p: _lsp.default_server_request(m, p, CONFIG),
    ) as client:
        yield Server(client, notes)


async def test_responses_are_matched_to_requests_by_id_even_out_of_order(server: Server) -> None:
    results: dict[int, Any] = {}

    async def hold(n: int) -> None:
        results[n] = await server.client.request("hold", {"n": n})

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for n in range(5):
                await tg.start(_started, hold, n)
            assert await server.client.request("release") == "released"
    assert results == {n: {"n": n} for n in range(5)}


async def _started(fn: Any, n: int, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(fn, n)
        await anyio.lowlevel.checkpoint()  # the request has been written before we report started
        task_status.started()


async def test_a_large_message_survives_framing(server: Server) -> None:
    payload = {"text": "é" * 1_000_000, "nested": [{"i": i} for i in range(1000)]}
    with anyio.fail_after(10):
        assert await server.client.request("echo", payload) == payload


async def test_server_requests_are_answered_so_the_server_never_stalls(server: Server) -> None:
    with anyio.fail_after(10):
        answers = await server.client.request("ask")
    assert answers["cfg"] == [CONFIG], "workspace/configuration gets our settings per item"
    assert answers["progress"] is None
    assert answers["edit"]["applied"] is False, "we never apply edits"


async def test_notifications_reach_the_callback_in_order(server: Server) -> None:
    with anyio.fail_after(10):
        await server.client.request("notify", {"a": 1})
        await server.client.request("notify", {"a": 2})
    assert server.notes == [("custom/note", {"a": 1}), ("custom/note", {"a": 2})]


async def test_an_error_response_raises_with_its_code(server: Server) -> None:
    with anyio.fail_after(10), pytest.raises(LspResponseError) as caught:
        await server.client.request("error")
    assert caught.value.code == -32000 and "boom" in str(caught.value)


async def test_cancelling_the_awaiting_task_sends_cancel_request(server: Server) -> None:
    with anyio.fail_after(10):
        with anyio.move_on_after(0.2):
            await server.client.request("hang")
        cancelled = await server.client.request("cancelled")
    assert len(cancelled) == 1 and isinstance(cancelled[0], int)


async def test_a_server_that_dies_fails_pending_requests_with_its_last_words(server: Server) -> None:
    errors: dict[str, LspClosed] = {}

    async def ask(method: str) -> None:
        try:
            await server.client.request(method)
        except LspClosed as exc:
            errors[method] = exc

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask, "hang")
            await ask("die")
        await server.client.wait_closed()
    assert set(errors) == {"hang", "die"}
    assert "the fake server gave up" in str(errors["die"]), "the crash message carries stderr's tail"
    with pytest.raises(LspClosed):
        await server.client.request("echo")


async def test_closing_says_shutdown_then_exit_and_the_server_exits_cleanly(script: Path, tmp_path: Path) -> None:
    with anyio.fail_after(10):
        async with LspClient.spawn(
            [sys.executable, str(script)], cwd=tmp_path, on_notification=lambda m, p: None, on_request=lambda m, p: None
        ) as client:
            assert await client.request("echo", 1) == 1
    assert client.process.returncode == 0, "exit after shutdown means success"


async def test_a_server_that_ignores_shutdown_is_terminated(script: Path, tmp_path: Path) -> None:
    with anyio.fail_after(10):
        async with LspClient.spawn(
            [sys.executable, str(script), "deaf"],
            cwd=tmp_path,
            grace=0.3,
            on_notification=lambda m, p: None,
            on_request=lambda m, p: None,
        ) as client:
            assert await client.request("echo", 1) == 1
    assert client.process.returncode not in (None, 0)


async def test_a_cancelled_owner_still_ends_the_server(script: Path, tmp_path: Path) -> None:
    with anyio.fail_after(10):
        with anyio.CancelScope() as scope:
            async with LspClient.spawn(
                [sys.executable, str(script)],
                cwd=tmp_path,
                on_notification=lambda m, p: None,
                on_request=lambda m, p: None,
            ) as client:
                scope.cancel()
                await anyio.sleep_forever()
    assert client.process.returncode == 0


def test_method_names_and_codes_match_lsprotocol() -> None:
    """Our mirrored constants are lsprotocol's (Microsoft's generated, versioned LSP model)."""
    pinned = {
        name: getattr(_lsp, name)
        for name in (
            "INITIALIZE",
            "INITIALIZED",
            "SHUTDOWN",
            "EXIT",
            "CANCEL_REQUEST",
            "PROGRESS",
            "WINDOW_WORK_DONE_PROGRESS_CREATE",
            "WINDOW_SHOW_MESSAGE_REQUEST",
            "WORKSPACE_CONFIGURATION",
            "WORKSPACE_APPLY_EDIT",
            "CLIENT_REGISTER_CAPABILITY",
            "CLIENT_UNREGISTER_CAPABILITY",
        )
    }
    assert pinned == {name: getattr(lsp_types, name) for name in pinned}
    codes = (_lsp.METHOD_NOT_FOUND, _lsp.CONTENT_MODIFIED, _lsp.SERVER_CANCELLED)
    assert codes == (
        lsp_types.ErrorCodes.MethodNotFound.value,
        lsp_types.LSPErrorCodes.ContentModified.value,
        lsp_types.LSPErrorCodes.ServerCancelled.value,
    )
    assert client_capabilities()["general"]["positionEncodings"] == [lsp_types.PositionEncodingKind.Utf16.value]


async def _rust_analyzer() -> Path | None:
    try:
        return await find_rust_analyzer(None)
    except AnalyzerNotFound:
        return None


@pytest.mark.analyzer
async def test_rust_analyzer_initializes_and_shuts_down_cleanly(tmp_path: Path) -> None:
    binary = await _rust_analyzer()
    if binary is None:
        pytest.skip("rust-analyzer is not installed")
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "p"\nversion = "0.1.0"\nedition = "2021"\n')
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.rs").write_text("pub fn f() {}\n")
    with anyio.fail_after(60):
        async with LspClient.spawn(
            [str(binary)],
            cwd=tmp_path,
            on_notification=lambda m, p: None,
            on_request=lambda m, p: _lsp.default_server_request(m, p, {}),
        ) as client:
            init = await client.request(
                _lsp.INITIALIZE,
                {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": client_capabilities()},
            )
            await client.notify(_lsp.INITIALIZED, {})
            assert init["capabilities"]["hoverProvider"] is True
            assert init["capabilities"]["positionEncoding"] == "utf-16"
    assert client.process.returncode == 0
