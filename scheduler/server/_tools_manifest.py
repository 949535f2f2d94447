"""The cargo tools that change manifests or run programs, plus the session and scheduler tools.

cargo_add/remove/update/clean/run keep cargo-mcp 0.2.0's names and parameters; what an agent passes
is checked first (dependency specs are `name[@version]` only: no paths, URLs or flags). Mutations
cancel the engine's background checks (their answers would be for the old manifests) and are
admitted alone. `cargo_affected` and `scheduler_status` are ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from . import _paths
from ._answer import answer, failure_for
from ._state import Call, Ctx, ServerState, Toolbox
from ._tools_cargo import (
    MAX_TIMEOUT_S,
    NETWORK_EDITS,
    READ_ONLY,
    REMOVES,
    RUNS_PROGRAM,
    Answer,
    CargoEnv,
    MaxTokens,
    Package,
    Timeout,
    Toolchain,
    Workspace,
    _package,
    _plain,
)

Dependencies = Annotated[list[str], Field(description="Crates as 'name' or 'name@version' (e.g. 'serde@1')")]
DryRun = Annotated[bool, Field(description="Show what would change without writing anything")]
SESSION = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
"""Changes only this session's default workspace; not read-only so clients order it with other calls."""
RUN_TIMEOUT_S = 120.0


def register(server: MCPServer[ServerState], box: Toolbox) -> None:
    """Add the manifest, run, session and status tools to `server`."""

    @server.tool(annotations=NETWORK_EDITS)
    async def cargo_add(
        ctx: Ctx,
        dependencies: Dependencies,
        package: Package = None,
        dev: Annotated[bool, Field(description="Add as a dev-dependency")] = False,
        optional: Annotated[bool, Field(description="Add as an optional dependency")] = False,
        features: Annotated[list[str] | None, Field(description="Features of the dependency to enable")] = None,
        dry_run: DryRun = False,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Add dependencies from crates.io to a manifest (cargo add)."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            args = ["add", *_paths.check_dependencies(dependencies, required=True)]
            feats = _paths.split_features(features)
            args += await _package(state, root, package)
            args += ["--dev"] if dev else []
            args += ["--optional"] if optional else []
            args += ["--features", ",".join(feats)] if feats else []
            args += ["--dry-run"] if dry_run else []
            return await _plain(
                state, root, args, toolchain=toolchain, cargo_env=cargo_env, timeout_s=timeout_s, max_tokens=max_tokens
            )

        return await box.run(
            ctx, "cargo_add", workspace=workspace, call=Call.READ if dry_run else Call.MUTATION, body=body
        )

    @server.tool(annotations=REMOVES)
    async def cargo_remove(
        ctx: Ctx,
        dependencies: Dependencies,
        package: Package = None,
        dev: Annotated[bool, Field(description="Remove from dev-dependencies")] = False,
        dry_run: DryRun = False,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Remove dependencies from a manifest (cargo remove)."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            args = ["remove", *_paths.check_dependencies(dependencies, required=True)]
            args += await _package(state, root, package)
            args += ["--dev"] if dev else []
            args += ["--dry-run"] if dry_run else []
            return await _plain(
                state, root, args, toolchain=toolchain, cargo_env=cargo_env, timeout_s=timeout_s, max_tokens=max_tokens
            )

        return await box.run(
            ctx, "cargo_remove", workspace=workspace, call=Call.READ if dry_run else Call.MUTATION, body=body
        )

    @server.tool(annotations=NETWORK_EDITS)
    async def cargo_update(
        ctx: Ctx,
        package: Annotated[str | None, Field(description="Dependency to update (cargo update -p)")] = None,
        dependencies: Annotated[list[str] | None, Field(description="Dependencies to update")] = None,
        dry_run: DryRun = False,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Update Cargo.lock to newer compatible versions (cargo update); dry_run only reports."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            args = ["update"]
            if package:
                args += ["-p", _paths.check_dependency(package, "package")]
            args += _paths.check_dependencies(dependencies, required=False)
            args += ["--dry-run"] if dry_run else []
            return await _plain(
                state, root, args, toolchain=toolchain, cargo_env=cargo_env, timeout_s=timeout_s, max_tokens=max_tokens
            )

        return await box.run(
            ctx, "cargo_update", workspace=workspace, call=Call.READ if dry_run else Call.MUTATION, body=body
        )

    @server.tool(annotations=REMOVES)
    async def cargo_clean(
        ctx: Ctx,
        package: Package = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Delete build artifacts (cargo clean); the next build starts cold."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            args = ["clean", *await _package(state, root, package)]
            return await _plain(
                state, root, args, toolchain=toolchain, cargo_env=cargo_env, timeout_s=timeout_s, max_tokens=max_tokens
            )

        return await box.run(ctx, "cargo_clean", workspace=workspace, call=Call.MUTATION, body=body)

    @server.tool(annotations=RUNS_PROGRAM)
    async def cargo_run(
        ctx: Ctx,
        package: Package = None,
        bin: Annotated[str | None, Field(description="Binary target to run")] = None,
        example: Annotated[str | None, Field(description="Example to run instead of a binary")] = None,
        release: bool = False,
        features: Annotated[str | None, Field(description="Features to enable, space or comma separated")] = None,
        all_features: bool = False,
        no_default_features: bool = False,
        args: Annotated[list[str] | None, Field(description="Arguments for the program (after --; no shell)")] = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Annotated[
            float, Field(description="Seconds before the program is killed", gt=0, le=MAX_TIMEOUT_S)
        ] = RUN_TIMEOUT_S,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Build and run a binary or example (cargo run); answers its exit code and output tails.
        The program is killed with its process group after timeout_s."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            argv = ["run", *await _package(state, root, package)]
            if (name := _paths.check_name(bin, "bin")) is not None:
                argv += ["--bin", name]
            if (name := _paths.check_name(example, "example")) is not None:
                argv += ["--example", name]
            argv += ["--release"] if release else []
            if feats := _paths.split_features(features):
                argv += ["--features", ",".join(feats)]
            argv += ["--all-features"] if all_features else []
            argv += ["--no-default-features"] if no_default_features else []
            if program_args := _paths.check_run_args(args):
                argv += ["--", *program_args]
            return await _plain(
                state, root, argv, toolchain=toolchain, cargo_env=cargo_env, timeout_s=timeout_s, max_tokens=max_tokens
            )

        return await box.run(ctx, "cargo_run", workspace=workspace, call=Call.READ, body=body, long=True)

    @server.tool(annotations=READ_ONLY)
    async def cargo_affected(
        ctx: Ctx,
        files: Annotated[list[str], Field(description="Changed files (workspace-relative, absolute or file://)")],
        workspace: Workspace = None,
    ) -> Answer:
        """Which packages own these files, which depend on them, and the order to check them in.
        A file outside every package (root manifest, config) affects the whole workspace."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            paths = _paths.resolve_files(files, root)
            return await (await state.engine(root)).affected(paths)

        return await box.run(ctx, "cargo_affected", workspace=workspace, call=Call.READ, body=body)

    @server.tool(annotations=READ_ONLY)
    async def scheduler_status(
        ctx: Ctx,
        workspace: Workspace = None,
        recent_events: Annotated[
            int,
            Field(
                ge=0,
                le=500,
                description=(
                    "Also return the last N start/end records of calls in this workspace (for diagnosing waits)"
                ),
            ),
        ] = 0,
    ) -> Answer:
        """What is running and queued: calls in flight, target-dir holders, background checks,
        rust-analyzer state, and this session's workspace. Never waits behind other calls."""
        try:
            state = box.state(ctx)
            data: dict[str, Any] = {"workspace": str(box.default_workspace), **state.status()}
            if recent_events:
                data["recent_events"] = state.recent_events(box.root(ctx, workspace), recent_events)
            try:
                data["session_workspace"] = str(box.root(ctx, workspace))
            except Exception as exc:  # no workspace yet: status still answers
                data["session_workspace"] = None
                data["workspace_problem"] = str(exc)
            return answer(data)
        except Exception as exc:
            return failure_for(exc, "scheduler_status")

    @server.tool(annotations=SESSION)
    async def set_working_directory(
        ctx: Ctx,
        path: Annotated[str, Field(description="Directory containing Cargo.toml")],
    ) -> Answer:
        """Set this session's default workspace for later calls (other sessions are not affected)."""
        return await set_session_workspace(box, ctx, path, "path", "set_working_directory")


async def set_session_workspace(box: Toolbox, ctx: Ctx, value: str, argument: str, tool: str) -> Answer:
    """Shared by set_working_directory and rust_analyzer_set_workspace."""
    try:
        current = box.session_root(ctx) or box.default_workspace
        root = _paths.resolve_workspace(value, base=current, argument=argument)
        box.set_session_root(ctx, root)
        return answer({"workspace": str(root), "note": "later calls in this session use this workspace"})
    except Exception as exc:
        return failure_for(exc, tool)
