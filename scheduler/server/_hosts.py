"""Answers sized for the host that asked, and paged beyond it.

Hosts cut what a tool returns, and a cut JSON object is no answer at all:
- Codex cuts a tool's output at about 10,000 tokens (and its model sees only `structuredContent`);
- Claude Code warns at 10,000 tokens, refuses past `MAX_MCP_OUTPUT_TOKENS` (25,000 by default), and
  writes a result over 50,000 characters to a file, handing the model its path, unless the tool
  declares a larger `_meta["anthropic/maxResultSizeChars"]` (up to 500,000).
So every tool declares `MAX_RESULT_CHARS` for Claude Code, and a call's `max_tokens` is clamped to
what its host keeps (`host_cap`: from the client's name in `initialize` or the 2026-07-28 envelope,
and for Claude Code the `MAX_MCP_OUTPUT_TOKENS` of the environment it started the server in). Other
clients get what they ask for.

Whatever a budget leaves out is not lost: `_report.fit_to_budget`, the one place lists are cut,
keeps the rest in this server's `Pages` and says `next_cursor`; `scheduler_more(cursor)` returns the
next page, in the same order (errors first). Pages are kept for `PAGE_KEEP_S`, at most `MAX_PAGES`.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from .._exceptions import InvalidArgument
from ..engine._report import BYTES_PER_TOKEN

MAX_RESULT_CHARS = 100_000
"""Declared to Claude Code as each tool's `anthropic/maxResultSizeChars`: its 25,000-token default
output limit is about this many characters, so a result within budget stays inline."""
CODEX_CAP_TOKENS = 9_000
"""Codex keeps about 10,000 tokens of a tool's output; the margin is for its own accounting."""
CLAUDE_DEFAULT_TOKENS = 25_000
PAGE_KEEP_S = 30 * 60.0
MAX_PAGES = 256


def tool_meta() -> dict[str, Any]:
    return {"anthropic/maxResultSizeChars": MAX_RESULT_CHARS}


def host_cap(client_name: str | None, env: Mapping[str, str] | None) -> int | None:
    """The most tokens this host keeps of one answer, or None when we know of no limit."""
    name = (client_name or "").lower()
    if name.startswith("codex"):
        return CODEX_CAP_TOKENS
    if name.startswith("claude"):
        raw = (env or {}).get("MAX_MCP_OUTPUT_TOKENS", "")
        tokens = int(raw) if raw.isdigit() and int(raw) > 0 else CLAUDE_DEFAULT_TOKENS
        return min(tokens * 9 // 10, MAX_RESULT_CHARS // BYTES_PER_TOKEN)
    return None


class Pages:
    """The parts of answers a budget left out, by cursor (bounded, oldest dropped first)."""

    def __init__(self) -> None:
        self._pages: OrderedDict[str, tuple[float, dict[str, Any], str, list[dict[str, Any]]]] = OrderedDict()

    def keep(self, head: dict[str, Any], key: str, rest: list[dict[str, Any]]) -> str:
        now = time.monotonic()
        while self._pages and (
            len(self._pages) >= MAX_PAGES or now - next(iter(self._pages.values()))[0] > PAGE_KEEP_S
        ):
            self._pages.popitem(last=False)
        cursor = "page-" + secrets.token_hex(8)
        self._pages[cursor] = (now, head, key, rest)
        return cursor

    def take(self, cursor: str) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
        page = self._pages.pop(cursor, None)
        if page is None:
            raise InvalidArgument(
                "cursor", f"{cursor!r} is no page of this server (pages are kept 30 minutes and read once)"
            )
        _, head, key, rest = page
        return head, key, rest
