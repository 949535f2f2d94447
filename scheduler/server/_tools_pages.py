"""`scheduler_more`: the next page of an answer a budget cut (`_hosts.Pages`)."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from .._exceptions import SchedulerError
from ..engine._report import fit_to_budget
from ._answer import answer, failure_for
from ._state import Ctx, ServerState, Toolbox
from ._tools_cargo import READ_ONLY, Answer, MaxTokens


def register(server: MCPServer[ServerState], box: Toolbox) -> None:
    """Add the paging tool to `server`."""

    @server.tool(annotations=READ_ONLY)
    async def scheduler_more(
        ctx: Ctx,
        cursor: Annotated[str, Field(description="The next_cursor of an answer that omitted items")],
        max_tokens: MaxTokens = 6000,
    ) -> Answer:
        """The next page of a cut answer (diagnostics, references, symbols...), in the same order,
        errors first; its own next_cursor when more remain. Each cursor is read once."""
        try:
            state = box.state(ctx)
            head, key, rest = state.pages.take(cursor)
            with box.paging(ctx, state):
                return answer(fit_to_budget(head, key, rest, max_tokens))
        except SchedulerError as exc:
            return failure_for(exc, "scheduler_more")
