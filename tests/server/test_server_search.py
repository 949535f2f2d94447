"""What a host's tool search finds, and the instructions a host shows the model, in both protocol eras.

Claude Code defers MCP tools behind tool search by default and Codex always searches; Anthropic's
tool search ranks tools by BM25 over their names and descriptions (or a regex). The ranking below is
that BM25, over what the server lists: a query an agent would type must find its tool first.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import anyio
import pytest
from mcp import Client

from scheduler import __version__, build_server
from scheduler.server import _search

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tools, instructions and server info as a handshake-era and a 2026-07-28 client see them."""

    async def both() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for era, mode in (("legacy", "legacy"), ("2026-07-28", "auto")):
            async with Client(build_server(tmp_path_factory.mktemp("ws")), mode=mode) as client:
                assert client.protocol_version == ("2025-11-25" if era == "legacy" else era)
                tools = (await client.list_tools()).tools
                out[era] = {
                    "tools": {t.name: t.description or "" for t in tools},
                    "instructions": client.instructions,
                    "server_info": client.server_info,
                }
        return out

    return anyio.run(both)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("_", " "))


def bm25(tools: dict[str, str], query: str, k1: float = 1.2, b: float = 0.75) -> list[str]:
    """Tool names, best match first, by Okapi BM25 over `name + description`."""
    docs = {name: _words(f"{name} {description}") for name, description in tools.items()}
    average = sum(len(d) for d in docs.values()) / len(docs)
    having = Counter(word for d in docs.values() for word in set(d))
    scores: dict[str, float] = {}
    for name, doc in docs.items():
        counts = Counter(doc)
        score = 0.0
        for word in _words(query):
            if word not in counts:
                continue
            idf = math.log(1 + (len(docs) - having[word] + 0.5) / (having[word] + 0.5))
            tf = counts[word]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / average))
        scores[name] = score
    return sorted(scores, key=lambda n: -scores[n])


QUERIES = {
    "cargo check": "cargo_check",
    "compile errors": "cargo_check",
    "borrow checker error": "cargo_check",
    "type of this expression": "rust_analyzer_hover",
    "go to definition": "rust_analyzer_definition",
    "find all usages of a function": "rust_analyzer_references",
    "who calls this function": "rust_analyzer_references",
    "run the tests": "cargo_test",
    "clippy lints": "cargo_clippy",
    "build a release binary": "cargo_build",
    "format the code in place": "cargo_fmt",
    "is the code formatted": "cargo_fmt_check",
    "add a crate dependency": "cargo_add",
    "rename a function everywhere": "rust_analyzer_rename",
    "which crates does this file change affect": "cargo_affected",
    "outline of a file": "rust_analyzer_symbols",
    "quick fix": "rust_analyzer_code_actions",
    "run the program": "cargo_run",
    "rust-analyzer indexing progress": "scheduler_status",
}


@pytest.mark.parametrize("query", sorted(QUERIES))
async def test_a_tool_search_finds_the_tool_an_agent_means_first(listed: dict[str, Any], query: str) -> None:
    ranking = bm25(listed["legacy"]["tools"], query)
    assert ranking[0] == QUERIES[query], f"{query!r} found {ranking[:3]}"


async def test_every_listed_tool_has_a_search_lead_and_every_lead_a_tool(listed: dict[str, Any]) -> None:
    tools = listed["legacy"]["tools"]
    assert set(_search.LEADS) == set(tools)
    for name, description in tools.items():
        assert description.startswith(_search.LEADS[name] + "\n"), name
        assert "\n        " not in description, f"{name}: docstring indentation left in"


async def test_both_eras_list_the_same_descriptions(listed: dict[str, Any]) -> None:
    assert listed["legacy"]["tools"] == listed["2026-07-28"]["tools"]


async def test_the_instructions_are_the_same_in_both_eras_and_fit_claude_codes_limit(listed: dict[str, Any]) -> None:
    legacy, modern = listed["legacy"]["instructions"], listed["2026-07-28"]["instructions"]
    assert legacy and legacy == modern
    assert len(legacy) < 2000  # Claude Code cuts at 2,048
    for must in ("cache", "cached", "pending", "scope", "auto", "affected", "workspace", "0-based", "indexing"):
        assert must in legacy, must
    tools = set(listed["legacy"]["tools"])
    named = set(re.findall(r"\b(?:cargo|rust_analyzer|scheduler|set)_[a-z_]+[a-z]\b", legacy))
    assert named <= tools, f"the instructions name tools that do not exist: {sorted(named - tools)}"


async def test_the_server_reports_the_package_version_in_both_eras(listed: dict[str, Any]) -> None:
    for mode in ("legacy", "2026-07-28"):
        info = listed[mode]["server_info"]
        assert info is not None and info.name == "cargo-scheduler" and info.version == __version__, mode
