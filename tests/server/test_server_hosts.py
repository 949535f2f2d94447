"""Answers sized for the host: every tool declares Claude Code's size meta, a budget above the host's
limit is clamped to it, and what a budget leaves out is paged through `scheduler_more`, errors first.

Real cargo on a one-crate workspace with many warnings; the in-memory client, named as each host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import Implementation
from server_env import call

from scheduler import build_server
from scheduler.server._hosts import CODEX_CAP_TOKENS, MAX_RESULT_CHARS, host_cap

pytestmark = pytest.mark.anyio
UNUSED = 60


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def noisy_crate(root: Path, unused: int) -> Path:
    """One crate: `unused` dead functions, one warning each, and a last one that is an error (a
    denied lint: a type error would stop rustc before the lints run)."""
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[package]\nname = "noisy"\nversion = "0.1.0"\nedition = "2021"\n')
    dead = "".join(f"fn dead_{i}() {{}}\n" for i in range(unused))
    (root / "src" / "lib.rs").write_text(dead + "#[deny(dead_code)]\nfn denied() {}\n")
    return root


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    return noisy_crate(tmp_path / "ws", UNUSED)


def _ids(diagnostics: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(d["level"], d.get("file"), d.get("line"), d["message"]) for d in diagnostics]


async def test_every_tool_declares_claude_codes_result_size_meta(noisy: Path) -> None:
    async with Client(build_server(noisy)) as client:
        tools = (await client.list_tools()).tools
    assert {t.name: (t.meta or {}).get("anthropic/maxResultSizeChars") for t in tools} == {
        t.name: MAX_RESULT_CHARS for t in tools
    }


async def test_what_a_budget_cuts_is_paged_through_scheduler_more_in_order_errors_first(noisy: Path) -> None:
    async with Client(build_server(noisy)) as client:
        _, whole = await call(client, "cargo_check", {"max_tokens": 100_000})
        _, first = await call(client, "cargo_check", {"max_tokens": 400})
        pages = [first]
        while "next_cursor" in pages[-1]:
            _, page = await call(client, "scheduler_more", {"cursor": pages[-1]["next_cursor"], "max_tokens": 400})
            assert page["page_of"] == "diagnostics"
            pages.append(page)
        refused, again = await call(client, "scheduler_more", {"cursor": first["next_cursor"]})
    assert len(whole["diagnostics"]) == UNUSED + 1 and "next_cursor" not in whole
    assert first["omitted"]["diagnostics"] > 0 and len(pages) > 2
    paged = [d for p in pages for d in p["diagnostics"]]
    assert _ids(paged) == _ids(whole["diagnostics"])
    assert paged[0]["level"] == "error"
    assert refused and again["argument"] == "cursor"


async def test_a_budget_above_codexs_limit_is_clamped_and_the_rest_is_paged(tmp_path: Path) -> None:
    root = noisy_crate(tmp_path / "ws", 600)  # ~600 warnings: far more than 9,000 tokens
    codex = Implementation(name="codex-mcp-client", version="0.169.0")
    async with Client(build_server(root), mode="legacy", client_info=codex) as client:
        result = await client.call_tool("cargo_check", {"max_tokens": 100_000})
        _, data = await call(client, "cargo_check", {"max_tokens": 100_000})
    assert data["omitted"]["reason"] == f"the host keeps about {CODEX_CAP_TOKENS} tokens of an answer"
    assert "next_cursor" in data and data["diagnostics"][0]["level"] == "error"
    text = result.content[0].text if hasattr(result.content[0], "text") else ""
    assert len(text) <= CODEX_CAP_TOKENS * 4


def test_the_host_caps_follow_the_hosts_documented_limits() -> None:
    assert host_cap("codex-mcp-client", {}) == CODEX_CAP_TOKENS
    assert host_cap("claude-code", {}) == 22_500
    assert host_cap("claude-code", {"MAX_MCP_OUTPUT_TOKENS": "10000"}) == 9_000
    assert host_cap("claude-code", {"MAX_MCP_OUTPUT_TOKENS": "900000"}) == MAX_RESULT_CHARS // 4
    assert host_cap("some-other-client", {}) is None and host_cap(None, None) is None
