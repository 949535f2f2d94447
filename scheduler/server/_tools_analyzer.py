"""The rust-analyzer tools: rust-analyzer-mcp 0.4.0's names and parameters over a shared analyzer.

Positions are 0-based (LSP, UTF-16 columns) as the peer's clients send them; `file_path` may be
workspace-relative, absolute or a file:// URI, and is confined to the workspace after resolving
symlinks. Two differences an agent can rely on: while rust-analyzer is still loading the workspace
the answer says so (`{"status": "indexing", ...}`) instead of an empty result that looks like "no
references" (symbols alone, read from the file's parse, answer at once and say `"analysis":
"pending"` until the load is done); and `rust_analyzer_diagnostics` adds cargo's own diagnostics
for the file (from the engine, usually cached), since rust-analyzer's native ones miss borrow-check
and most lints. A file of another workspace this session set is answered by that workspace's
analyzer (`Source.root`).
Rename and code actions return the edits; like the peer, they do not apply them. Locations come
back compact (`_locations`): workspace-relative `file` paths and `[line, character, end_line,
end_character]` ranges, 0-based like the parameters.

Positions follow LSP: a `character` past the end of its line means the end of that line, so it is
clamped (and the answer says so under `clamped`); a `line` past the end of the file is an error
naming the argument. The read-only tools also open the files rust-analyzer itself reads outside
the workspace (std's sources, `$CARGO_HOME` registry and git sources, path dependencies:
`_readable`), since a definition answer leads there; the tools that produce edits refuse them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from .._both import both
from .._exceptions import AnalyzerError, AnalyzerIndexing, AnalyzerNotFound, InvalidArgument, SchedulerError
from ..analyzer._completion import compact_completion
from ..analyzer._locations import compact
from ..engine._engine import CheckRequest
from ..engine._report import Diagnostic, fit_to_budget
from . import _peer_shapes, _readable
from ._answer import failure
from ._diagnostics import peer_workspace_diagnostics, workspace_diagnostics
from ._ports import AnalyzerClient
from ._state import Call, Ctx, ServerState, Toolbox
from ._tools_cargo import READ_ONLY, Answer, MaxTokens, Workspace, _request
from ._tools_manifest import SESSION, set_session_workspace

FilePath = Annotated[str, Field(description="File: workspace-relative, absolute, or a file:// URI")]
LSP_UINTEGER_MAX = 2**31 - 1
_POSITION_RANGE = {"minimum": 0, "maximum": LSP_UINTEGER_MAX}
"""Advertised in the schema but checked by `Positions` (not pydantic), so that a line of 2**32 - 1
(the peer's clients send u32::MAX) or -1 gets an answer naming the argument and the range, like
every other bad argument, instead of pydantic's validation dump."""
Line = Annotated[int, Field(description="0-based line", json_schema_extra=_POSITION_RANGE)]
Character = Annotated[
    int,
    Field(
        description="0-based column (UTF-16 code units); past the end of the line means its end",
        json_schema_extra=_POSITION_RANGE,
    ),
]


T = TypeVar("T")
PEER_NATIVE_WAIT_S = 5.0
"""How long the peer-shaped `rust_analyzer_diagnostics` waits for rust-analyzer's load: the peer
answers at once with a `note` saying the load had not finished (its clients ask again on it, within
a 10 s tool timeout), so waiting our usual bound would time those clients out instead."""
PositionQuery = Callable[[AnalyzerClient, Path, int, int], Awaitable[object]]
"""An analyzer question about a 0-based position in a file (hover, definition, ...)."""
FileQuery = Callable[[AnalyzerClient, Path], Awaitable[object]]
"""An analyzer question about a whole file (symbols, formatting)."""


# -- adapter points (the analyzer and the engine) --------------------------------------------------
async def ask(
    state: ServerState, root: Path, question: Callable[[AnalyzerClient], Awaitable[T]]
) -> tuple[T | None, dict[str, Any] | None]:
    """Ask the workspace's analyzer. (result, None) once it has loaded the workspace; (None,
    indexing status) while it is still loading past the wait bound; and (result, `pending`) when it
    answered while still loading, which only a question answered from the file's parse alone
    (symbols) does: the answer says so rather than pass for a full analysis."""
    analyzer = await state.analyzer(root)
    try:
        result = await question(analyzer)
    except AnalyzerIndexing as exc:
        status: dict[str, Any] = {
            "status": "indexing",
            "progress": exc.progress,
            "note": "rust-analyzer is still loading the workspace; this is not an empty result. "
            "Call again shortly, or use cargo_check meanwhile",
        }
        return None, status
    return result, pending(analyzer.status())


def pending(status: dict[str, Any]) -> dict[str, Any] | None:
    """What an answer given before the load finished says about it; None once loaded."""
    if status.get("state", "ready") == "ready":
        return None
    progress = status.get("progress") or {}
    return {
        "analysis": "pending",
        "progress": {
            "state": status.get("state"),
            "text": progress.get("text"),
            "percentage": progress.get("percentage"),
        },
        "analysis_note": "rust-analyzer is still loading the workspace; this answer comes from the file's own "
        "parse (complete for it); types, definitions and references wait for the load",
    }


def indexing(status: dict[str, Any] | None) -> bool:
    """`ask`'s status says there is no result yet (not just an early one)."""
    return status is not None and status.get("status") == "indexing"


def peer_lsp(result: Any, status: dict[str, Any] | None) -> CallToolResult:
    """A position or file tool's answer in the peer's shape: rust-analyzer's result as it is, `null`
    while it is still loading (our status goes to the structured copy)."""
    return _peer_shapes.reply(None if indexing(status) else result, **(status or {}))


async def cargo_file_diagnostics(state: ServerState, root: Path, path: Path) -> tuple[dict[str, Any], list[Diagnostic]]:
    """cargo's diagnostics for one file, from a check of its owning package (scope `changed`:
    answered from the cache when that package's sources did not change): (what was checked, them)."""
    engine = await state.engine(root)
    ws = await engine.workspace()
    owner = ws.owner(path)
    if owner is None:
        return {"package": None, "note": "the file belongs to no package"}, []
    report = await engine.check(
        state.analysed_features(
            CheckRequest(kind="check", scope="changed", packages=(owner,), env=state.question_env())
        )
    )
    mine = [d for d in report.diagnostics if d.file and (ws.root / d.file).resolve() == path]
    head: dict[str, Any] = {
        "package": owner,
        "success": report.success,
        "source": "cache" if owner in report.cached() else "run",
    }
    if report.error:
        head["error"] = report.error
    return head, mine


async def peer_file_diagnostics(state: ServerState, root: Path, path: Path, file_path: str) -> CallToolResult:
    """`rust_analyzer_diagnostics` in the peer's shape: rust-analyzer's native diagnostics and
    cargo's for the file (what the peer's rust-analyzer relays from its own check), with `note` when
    rust-analyzer was still loading, as the peer says."""
    (native, status, native_error), (_, cargo) = await both(
        lambda: native_file_diagnostics(state, root, path, wait=PEER_NATIVE_WAIT_S),
        lambda: cargo_file_diagnostics(state, root, path),
    )
    note = None
    if native_error is not None:
        note = f"rust-analyzer could not answer ({native_error}); these are cargo's diagnostics only"
    elif status is not None:
        note = (
            "rust-analyzer had not finished loading the workspace when this was reported, so these "
            "diagnostics may be incomplete. Ask again for the rest."
        )
    return _peer_shapes.reply(_peer_shapes.file_diagnostics(file_path, list(native or []), cargo, note))


async def native_file_diagnostics(
    state: ServerState, root: Path, path: Path, *, wait: float | None = None
) -> tuple[Any, dict[str, Any] | None, SchedulerError | None]:
    """rust-analyzer's side of a file's diagnostics: (them, `ask`'s status, why it could not answer)."""
    try:
        native, status = await ask(state, root, lambda an: an.diagnostics(path, wait=wait))
    except (AnalyzerNotFound, AnalyzerError) as exc:
        return [], None, exc
    return native, status, None


# -- helpers -----------------------------------------------------------------------------------
def _source(path: Path) -> str:
    """The text of a file an agent named (a directory or unreadable file is its mistake, said so)."""
    if not path.is_file():
        raise InvalidArgument("file_path", f"{str(path)!r} is not a file; pass a source file such as src/lib.rs")
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidArgument("file_path", f"{str(path)!r} cannot be read: {exc.strerror or exc}") from exc


def _check_identifier(name: str) -> None:
    """A Rust identifier (Unicode XID, as Python's), a raw identifier `r#name`, or a lifetime `'a`."""
    bare = name[2:] if name.startswith("r#") else name[1:] if name.startswith("'") else name
    if not bare.isidentifier():
        raise InvalidArgument("new_name", f"{name!r} is not a Rust identifier; pass a name like 'total_count'")


class Positions:
    """A file's lines, to check a call's positions against them: LSP positions, UTF-16 columns.

    rust-analyzer answers a line past the end with an error or a silent null, which an agent would
    read as "nothing here", so that is refused; a character past the end of a line means the end
    of the line (LSP says so, and the peer's clients send such ranges), so it is clamped and
    recorded in `clamped` for the answer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = _source(path).split("\n")
        self.clamped: dict[str, dict[str, Any]] = {}

    def character(self, line: int, character: int, line_arg: str = "line", character_arg: str = "character") -> int:
        """`character`, or the end of `line` when it is past it."""
        for value, argument in ((line, line_arg), (character, character_arg)):
            if not 0 <= value <= LSP_UINTEGER_MAX:
                raise InvalidArgument(
                    argument,
                    f"{value} is out of range: positions are 0-based LSP integers from 0 to {LSP_UINTEGER_MAX} "
                    f"(the first {'line' if argument.endswith('line') else 'column'} is 0)",
                )
        count = len(self.lines)
        if line >= count:
            raise InvalidArgument(
                line_arg,
                f"{line} is past the end of {self.path.name}, which has {count} lines (0-based: 0..{count - 1})",
            )
        width = len(self.lines[line].rstrip("\r").encode("utf-16-le")) // 2
        if character <= width:
            return character
        self.clamped[character_arg] = {
            "given": character,
            "used": width,
            "why": f"past the end of line {line} ({width} UTF-16 code units), which LSP reads as the line's end",
        }
        return width

    def note(self, head: dict[str, Any]) -> dict[str, Any]:
        if self.clamped:
            head["clamped"] = dict(self.clamped)
        return head


async def _file(
    state: ServerState, root: Path, file_path: str, tool: str, workspaces: Sequence[Path], *, writable: bool = False
) -> Source:
    """The file a call names, in the call's workspace `root` or in another workspace this session
    set (`workspaces`); the call then asks that workspace's analyzer (`Source.root`), which has
    the file in its crate graph."""
    path, outside, owner = await _readable.resolve_source(
        state, file_path, root, tool=tool, writable=writable, workspaces=workspaces
    )
    return Source(file_path, path, outside, owner, root)


class Source:
    """The file a call is about: where it is, the workspace it belongs to (`root`), and what kind
    of file outside every workspace it is (`outside`)."""

    def __init__(self, spelled: str, path: Path, outside: str | None, root: Path, call_root: Path) -> None:
        self.spelled = spelled
        self.path = path
        self.outside = outside
        self.root = root
        self.call_root = call_root

    def head(self) -> dict[str, Any]:
        if self.outside is not None:
            return {"file": str(self.path), "outside_workspace": self.outside, "read_only": True}
        head: dict[str, Any] = {"file": str(self.path.relative_to(self.root))}
        if self.root != self.call_root:  # an earlier workspace of this session: paths are relative to it
            head["workspace"] = str(self.root)
        return head


def _shape(
    source: Source, root: Path, result: Any, status: dict[str, Any] | None, max_tokens: int, **where: Any
) -> dict[str, Any]:
    head = source.head()
    positions = where.pop("positions", None)
    if where:
        head["position"] = where
    if isinstance(positions, Positions):
        positions.note(head)
    if indexing(status):
        return {**head, **(status or {})}
    head["status"] = "ready"
    head.update(status or {})
    result = compact(result, root)
    if isinstance(result, list):
        return fit_to_budget(head, "result", result, max_tokens)
    if isinstance(result, dict) and isinstance(result.get("items"), list):  # CompletionList
        out = fit_to_budget(
            {**head, "is_incomplete": result.get("isIncomplete", False)}, "result", result["items"], max_tokens
        )
        return out
    return {**head, "result": result}


def register(server: MCPServer[ServerState], box: Toolbox) -> None:
    """Add the rust-analyzer tools to `server`."""

    def positional(query: PositionQuery, tool: str, doc: str) -> None:
        async def fn(
            ctx: Ctx,
            file_path: FilePath,
            line: Line,
            character: Character,
            workspace: Workspace = None,
            max_tokens: MaxTokens = 6000,
        ) -> Answer:
            async def body(state: ServerState, root: Path) -> dict[str, Any] | CallToolResult:
                source = await _file(state, root, file_path, tool, box.session_workspaces(ctx, root))
                root = source.root
                positions = Positions(source.path)
                at = positions.character(line, character)
                result, status = await ask(state, root, lambda an: query(an, source.path, line, at))
                if _peer_shapes.wanted():
                    return peer_lsp(result, status)
                return _shape(source, root, result, status, max_tokens, line=line, character=at, positions=positions)

            return await box.run(ctx, tool, workspace=workspace, call=Call.READ, body=body)

        fn.__name__ = tool
        server.tool(name=tool, description=doc, annotations=READ_ONLY)(fn)

    positional(
        lambda an, path, line, ch: an.hover(path, line, ch),
        "rust_analyzer_hover",
        "Type and docs of the item at a 0-based position.",
    )
    positional(
        lambda an, path, line, ch: an.definition(path, line, ch),
        "rust_analyzer_definition",
        "Where the item at a 0-based position is defined.",
    )
    positional(
        lambda an, path, line, ch: an.references(path, line, ch),
        "rust_analyzer_references",
        "Every reference to the item at a 0-based position.",
    )

    @server.tool(annotations=READ_ONLY)
    async def rust_analyzer_completion(
        ctx: Ctx,
        file_path: FilePath,
        line: Line,
        character: Character,
        documentation: Annotated[
            bool, Field(description="Also return each item's documentation (large: off by default)")
        ] = False,
        workspace: Workspace = None,
        max_tokens: MaxTokens = 6000,
    ) -> Answer:
        """Completions at a 0-based position: label, kind, detail (and the text to insert when it
        differs), in rust-analyzer's order; documentation only with documentation=true."""

        async def body(state: ServerState, root: Path) -> dict[str, Any] | CallToolResult:
            source = await _file(state, root, file_path, "rust_analyzer_completion", box.session_workspaces(ctx, root))
            root = source.root
            positions = Positions(source.path)
            at = positions.character(line, character)
            result, status = await ask(state, root, lambda an: an.completion(source.path, line, at))
            if _peer_shapes.wanted():
                return peer_lsp(result, status)
            if indexing(status):
                return _shape(source, root, None, status, max_tokens, line=line, character=at, positions=positions)
            items, incomplete = compact_completion(result, documentation=documentation)
            head = positions.note({**source.head(), "position": {"line": line, "character": at}})
            head.update(status="ready", is_incomplete=incomplete, **(status or {}))
            return fit_to_budget(head, "result", items, max_tokens)

        return await box.run(ctx, "rust_analyzer_completion", workspace=workspace, call=Call.READ, body=body)

    def per_file(query: FileQuery, tool: str, doc: str, *, writable: bool = False) -> None:
        async def fn(
            ctx: Ctx, file_path: FilePath, workspace: Workspace = None, max_tokens: MaxTokens = 6000
        ) -> Answer:
            async def body(state: ServerState, root: Path) -> dict[str, Any] | CallToolResult:
                source = await _file(state, root, file_path, tool, box.session_workspaces(ctx, root), writable=writable)
                root = source.root
                _source(source.path)
                result, status = await ask(state, root, lambda an: query(an, source.path))
                if _peer_shapes.wanted():
                    symbols = tool == "rust_analyzer_symbols" and not indexing(status)
                    return peer_lsp(_peer_shapes.flat_symbols(result, source.path) if symbols else result, status)
                return _shape(source, root, result, status, max_tokens)

            return await box.run(ctx, tool, workspace=workspace, call=Call.READ, body=body)

        fn.__name__ = tool
        server.tool(name=tool, description=doc, annotations=READ_ONLY)(fn)

    per_file(
        lambda an, path: an.document_symbols(path),
        "rust_analyzer_symbols",
        "The symbols (items, fields, functions) of a file.",
    )
    per_file(
        lambda an, path: an.formatting(path),
        "rust_analyzer_format",
        "The edits rustfmt would make to a file; returned, not applied (cargo_fmt applies).",
        writable=True,
    )

    @server.tool(annotations=READ_ONLY)
    async def rust_analyzer_diagnostics(
        ctx: Ctx,
        file_path: FilePath,
        workspace: Workspace = None,
        max_tokens: MaxTokens = 6000,
    ) -> Answer:
        """A file's diagnostics: rust-analyzer's native ones (0-based ranges) and cargo's
        (1-based lines, from a check of the owning package, usually cached)."""

        async def body(state: ServerState, root: Path) -> dict[str, Any] | CallToolResult:
            source = await _file(state, root, file_path, "rust_analyzer_diagnostics", box.session_workspaces(ctx, root))
            root = source.root
            path = source.path
            _source(path)
            out: dict[str, Any] = source.head()
            if _peer_shapes.wanted():
                return await peer_file_diagnostics(state, root, path, file_path)
            (native, status, native_error), (head, mine) = await both(
                lambda: native_file_diagnostics(state, root, path), lambda: cargo_file_diagnostics(state, root, path)
            )
            every = list(native or [])  # rust-analyzer's, before the budget cuts them (for `summary`)
            if native_error is not None:
                out["rust_analyzer"] = {"status": "unavailable", "error": str(native_error)}
            elif indexing(status):
                out["rust_analyzer"] = status
            else:
                out["rust_analyzer"] = fit_to_budget(
                    {"status": "ready", **(status or {})}, "diagnostics", compact(every, root), max_tokens // 2
                )
            out["cargo"] = fit_to_budget(head, "diagnostics", [d.compact() for d in mine], max_tokens // 2)
            # The peer's counts, over both sources and never cut: a field added to our answer.
            out["summary"] = _peer_shapes.summary(every, [{"level": d.level} for d in mine])
            return out

        return await box.run(ctx, "rust_analyzer_diagnostics", workspace=workspace, call=Call.READ, body=body)

    @server.tool(annotations=READ_ONLY)
    async def rust_analyzer_workspace_diagnostics(
        ctx: Ctx,
        workspace: Workspace = None,
        max_tokens: MaxTokens = 6000,
    ) -> Answer:
        """Is the workspace clean? rust-analyzer's native diagnostics for every file of every member
        and cargo's check of every member (usually cached), merged, each marked with its source,
        errors first; `clean`, counts and what each source checked."""

        async def body(state: ServerState, root: Path) -> dict[str, Any] | CallToolResult:
            request = _request(
                state, "check", package=None, scope="workspace", toolchain=None, cargo_env=None, timeout_s=None
            )
            if _peer_shapes.wanted():
                return await peer_workspace_diagnostics(state, root, state.analysed_features(request))
            return await workspace_diagnostics(state, root, state.analysed_features(request), max_tokens)

        return await box.run(ctx, "rust_analyzer_workspace_diagnostics", workspace=workspace, call=Call.READ, body=body)

    @server.tool(annotations=READ_ONLY)
    async def rust_analyzer_code_actions(
        ctx: Ctx,
        file_path: FilePath,
        line: Line,
        character: Character,
        end_line: Line,
        end_character: Character,
        workspace: Workspace = None,
        max_tokens: MaxTokens = 6000,
    ) -> Answer:
        """Code actions (quick fixes, refactors) for a 0-based range, with their edits; not applied."""

        async def body(state: ServerState, root: Path) -> dict[str, Any] | CallToolResult:
            source = await _file(
                state, root, file_path, "rust_analyzer_code_actions", box.session_workspaces(ctx, root), writable=True
            )
            root = source.root
            path = source.path
            positions = Positions(path)
            start = positions.character(line, character)
            end = positions.character(end_line, end_character, "end_line", "end_character")
            if (end_line, end) < (line, start):
                raise InvalidArgument(
                    "end_line", f"the range ends ({end_line}:{end_character}) before it starts ({line}:{character})"
                )
            result, status = await ask(state, root, lambda an: an.code_actions(path, line, start, end_line, end))
            if _peer_shapes.wanted():
                return peer_lsp(result, status)
            return _shape(
                source,
                root,
                result,
                status,
                max_tokens,
                line=line,
                character=start,
                end_line=end_line,
                end_character=end,
                positions=positions,
            )

        return await box.run(ctx, "rust_analyzer_code_actions", workspace=workspace, call=Call.READ, body=body)

    @server.tool(annotations=READ_ONLY)
    async def rust_analyzer_rename(
        ctx: Ctx,
        file_path: FilePath,
        line: Line,
        character: Character,
        new_name: Annotated[str, Field(description="The new identifier", min_length=1, max_length=200)],
        workspace: Workspace = None,
        max_tokens: MaxTokens = 6000,
    ) -> Answer:
        """The workspace edit that renames the symbol at a 0-based position; returned, not applied."""

        async def body(state: ServerState, root: Path) -> dict[str, Any] | CallToolResult:
            source = await _file(
                state, root, file_path, "rust_analyzer_rename", box.session_workspaces(ctx, root), writable=True
            )
            root = source.root
            positions = Positions(source.path)
            at = positions.character(line, character)
            _check_identifier(new_name)
            result, status = await ask(state, root, lambda an: an.rename(source.path, line, at, new_name))
            if _peer_shapes.wanted():
                if indexing(status):
                    return failure(
                        "rust-analyzer is still loading the workspace; a rename worked out now could miss "
                        "references, so ask again once it has settled"
                    )
                if not isinstance(result, dict):
                    return failure(f"Nothing to rename at {file_path}:{line}:{character}")
                return _peer_shapes.reply(_peer_shapes.rename(result, source.path, line, at, new_name))
            return _shape(source, root, result, status, max_tokens, line=line, character=at, positions=positions)

        return await box.run(ctx, "rust_analyzer_rename", workspace=workspace, call=Call.READ, body=body)

    @server.tool(annotations=SESSION)
    async def rust_analyzer_set_workspace(
        ctx: Ctx,
        workspace_path: Annotated[str, Field(description="Directory containing Cargo.toml")],
    ) -> Answer:
        """Set this session's workspace (as set_working_directory) and start loading it in rust-analyzer."""
        result = await set_session_workspace(box, ctx, workspace_path, "workspace_path", "rust_analyzer_set_workspace")
        if not result.is_error and isinstance(result.structured_content, dict):
            # Warm-up only: the analyzer loads in the background; failures show on the first query.
            with contextlib.suppress(AnalyzerError):
                await box.state(ctx).analyzer(Path(result.structured_content["workspace"]))
            if _peer_shapes.wanted():
                chosen = result.structured_content["workspace"]
                return _peer_shapes.reply(chosen, text=f"Workspace set to: {chosen}")
        return result
