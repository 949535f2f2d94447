"""The cargo tools: cargo-mcp 0.2.0's names and parameters, answered by the engine where it can.

check/clippy/build/test go through the engine (narrowed runs, the diagnostics cache, shared runs,
target-dir gates); the rest are plain cargo runs (`_plain`). Every tool takes cargo-mcp's
`toolchain` and `cargo_env` and our optional `workspace`; each call is classified by its actual
arguments (clippy with `fix`, update without `dry_run` are mutations) before it is admitted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from .._exceptions import InvalidArgument
from .._settings import Scope
from ..cargo._config import read_from_elsewhere
from ..cargo._plain import run_cargo_plain
from ..engine._engine import CheckRequest
from ..engine._testrun import run_tests
from . import _paths
from ._answer import plain_dict
from ._state import Call, Ctx, ServerState, Toolbox

Answer = Annotated[CallToolResult, dict[str, Any]]
Package = Annotated[str | None, Field(description="Workspace member to act on (cargo -p); default: all members")]
Toolchain = Annotated[
    str | None, Field(description="rustup toolchain, e.g. 'stable', 'nightly', '1.85.0' (runs `rustup run <tc> cargo`)")
]
CargoEnv = Annotated[
    dict[str, str] | None,
    Field(
        description='Extra environment for cargo, e.g. {"RUSTFLAGS": "-D warnings"}. Variables that change '
        "only change what the build sees are accepted (RUSTFLAGS, CARGO_PROFILE_*_OPT_LEVEL, CARGO_BUILD_JOBS, "
        "RUST_BACKTRACE, RUST_LOG, RUST_TEST_*...); others are refused unless the server allows them"
    ),
]
Workspace = Annotated[
    str | None,
    Field(
        description="Workspace root for this call only (a directory with Cargo.toml); default: the session's "
        "(set_working_directory) or the server's"
    ),
]
MaxTokens = Annotated[
    int, Field(description="Answer size budget in tokens; longer output is cut, errors first", ge=200, le=100_000)
]
MAX_TIMEOUT_S = 24 * 3600.0
Timeout = Annotated[
    float | None, Field(description="Seconds before cargo and its children are killed", gt=0, le=MAX_TIMEOUT_S)
]
ScopeArg = Annotated[
    Scope | None,
    Field(
        description="auto: run the changed packages now, their dependents in the background; changed: only "
        "packages whose own files changed; affected: changed + dependents now; workspace: all. "
        "Default: the server's CARGO_SCHEDULER_SCOPE, auto unless set"
    ),
]
Features = Annotated[str | list[str] | None, Field(description="Features to enable, comma/space separated or a list")]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
"""Never changes workspace files under any arguments (builds write only under target/)."""
EDITS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
NETWORK_EDITS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)
REMOVES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
RUNS_PROGRAM = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True)
_DIFF_IN = re.compile(r"^Diff in (.+?\.rs)\b", re.MULTILINE)


# -- adapter points (the engine) ---------------------------------------------------------------
async def engine_check(state: ServerState, root: Path, request: CheckRequest, max_tokens: int) -> dict[str, Any]:
    """check/clippy/build: the engine's narrowed, cached answer as compact JSON."""
    engine = await state.engine(root)
    report = await engine.check(request)
    answer = report.to_dict(max_tokens)
    elsewhere = read_from_elsewhere(engine.root, str(root)) if root != engine.root else None
    if elsewhere is not None:
        # cargo-mcp runs cargo in the directory it was given; the engine runs it at the root.
        answer.setdefault("notes", []).append(
            f"cargo run in {str(root)!r} would also read {elsewhere!r}; this answer is for the configuration "
            f"at the workspace root {str(engine.root)!r}"
        )
    return answer


async def engine_tests(
    state: ServerState, root: Path, request: CheckRequest, test_name: str | None, no_capture: bool, max_tokens: int
) -> dict[str, Any]:
    engine = await state.engine(root)
    return await run_tests(engine, request, test_name=test_name, no_capture=no_capture, token_budget=max_tokens)


async def members(state: ServerState, root: Path) -> list[str]:
    return (await (await state.engine(root)).workspace()).members


# -- helpers -------------------------------------------------------------------------------------
_ALLOW_DIRTY = ("--allow-dirty", "--allow-staged", "--allow-no-vcs")
_CARGO_REFUSED_FIX = re.compile(r"--allow-(dirty|staged|no-vcs)")


def refuse_dirty_fix(stderr: str) -> None:
    """cargo refused `--fix` on uncommitted changes or a tree without VCS: the agent's call to
    change, said in the tool's own terms (cargo's message names its CLI flags)."""
    if not _CARGO_REFUSED_FIX.search(stderr):
        return
    error = next((line.strip() for line in stderr.splitlines() if line.startswith("error")), stderr.strip())
    raise InvalidArgument(
        "allow_dirty",
        f"cargo refused to apply fixes ({error.removeprefix('error: ')}); commit or stash the changes first "
        "so the fixes can be reviewed and undone, or call again with allow_dirty: true to apply them anyway",
    )


def _relative(path: str, root: Path) -> str:
    p = Path(path)
    return str(p.relative_to(root)) if p.is_absolute() and p.is_relative_to(root) else path


def _env(state: ServerState, cargo_env: dict[str, str] | None) -> dict[str, str]:
    return state.check_env(cargo_env)


async def _package(state: ServerState, root: Path, package: str | None) -> list[str]:
    name = _paths.check_package(package, [])
    if name is None:
        return []
    _paths.check_package(name, await members(state, root))
    return ["-p", name]


def _request(
    state: ServerState,
    kind: Literal["check", "clippy", "test", "build"],
    *,
    package: str | None,
    scope: Scope | None = None,
    features: str | list[str] | None = None,
    all_features: bool = False,
    no_default_features: bool = False,
    release: bool = False,
    all_targets: bool = False,
    toolchain: str | None,
    cargo_env: dict[str, str] | None,
    timeout_s: float | None,
    deny_warnings: bool = False,
) -> CheckRequest:
    name = _paths.check_package(package, [])
    return CheckRequest(
        kind=kind,
        scope=state.scope(scope),
        packages=(name,) if name else (),
        features=_paths.split_features(features),
        all_features=all_features,
        no_default_features=no_default_features,
        release=release,
        all_targets=all_targets,
        extra_env=tuple(sorted(_env(state, cargo_env).items())),
        toolchain=_paths.check_toolchain(toolchain),
        timeout_s=timeout_s,
        deny_warnings=deny_warnings,
        env=state.question_env(),
    )


async def _plain(
    state: ServerState,
    root: Path,
    args: list[str],
    *,
    toolchain: str | None,
    cargo_env: dict[str, str] | None,
    timeout_s: float | None,
    max_tokens: int,
    note: str | None = None,
) -> dict[str, Any]:
    env = _env(state, cargo_env)
    tc = _paths.check_toolchain(toolchain)
    base = state.question_env()
    question = None if base is None else dict(base)
    if args and args[0] in _TARGET_DIR_COMMANDS:
        # One owner per target dir: the engine's gate, which its own checks and background use too.
        engine = await state.engine(root)
        ws = await engine.workspace()
        target_dir = engine.agent_target_dir(ws)
        if target_dir != ws.target_dir:  # CARGO_SCHEDULER_TARGET_DIR=private
            env = {**env, "CARGO_TARGET_DIR": str(target_dir)}
        async with engine.gate(target_dir).foreground(f"cargo {args[0]}"):
            result = await run_cargo_plain(root, args, env=question, env_extra=env, toolchain=tc, timeout_s=timeout_s)
    else:
        result = await run_cargo_plain(root, args, env=question, env_extra=env, toolchain=tc, timeout_s=timeout_s)
    return plain_dict(result, max_tokens=max_tokens, note=note)


_TARGET_DIR_COMMANDS = frozenset({"build", "check", "clean", "clippy", "run", "test", "bench"})
ENGINE = Call.READ
"""Engine-backed tools never write sources: they are reads for the workspace scheduler. Their cargo
runs queue on the engine's gate for the target dir, so a cached answer never waits behind a build."""


def register(server: MCPServer[ServerState], box: Toolbox) -> None:
    """Add the cargo tools to `server`."""

    @server.tool(annotations=READ_ONLY)
    async def cargo_check(
        ctx: Ctx,
        package: Package = None,
        scope: ScopeArg = None,
        features: Features = None,
        all_features: bool = False,
        no_default_features: bool = False,
        all_targets: Annotated[bool, Field(description="Also check tests, benches and examples")] = False,
        clippy: Annotated[bool, Field(description="Run clippy's lints instead of plain check (never fixes)")] = False,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Diagnostics as JSON, errors first; a check runs cargo only for what changed. Packages are
        listed as ran / cached (same sources, answered from cache) / pending."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            req = _request(
                state,
                "clippy" if clippy else "check",
                package=package,
                scope=scope,
                features=features,
                all_features=all_features,
                no_default_features=no_default_features,
                all_targets=all_targets,
                toolchain=toolchain,
                cargo_env=cargo_env,
                timeout_s=timeout_s,
            )
            return await engine_check(state, root, req, max_tokens)

        return await box.run(ctx, "cargo_check", workspace=workspace, call=ENGINE, body=body, long=True)

    @server.tool(annotations=EDITS)
    async def cargo_clippy(
        ctx: Ctx,
        package: Package = None,
        fix: Annotated[bool, Field(description="Apply clippy's fixes to the sources (a mutation)")] = False,
        allow_dirty: Annotated[
            bool,
            Field(
                description="With fix: apply fixes even to uncommitted changes or a tree without version control "
                "(cargo refuses both by default, so the fixes can be reviewed and undone)"
            ),
        ] = False,
        deny_warnings: Annotated[bool, Field(description="Pass -D warnings as cargo-mcp does")] = True,
        scope: ScopeArg = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Run clippy lints (with -D warnings, like cargo-mcp). With fix=true, applies the fixes to the
        sources; like cargo, only to a tree whose changes are committed unless allow_dirty=true.
        For lints without any chance of edits, cargo_check(clippy=true) is read-only."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            if not fix:
                req = _request(
                    state,
                    "clippy",
                    package=package,
                    scope=scope,
                    toolchain=toolchain,
                    cargo_env=cargo_env,
                    timeout_s=timeout_s,
                    deny_warnings=deny_warnings,
                )
                return await engine_check(state, root, req, max_tokens)
            args = ["clippy", "--fix", *(_ALLOW_DIRTY if allow_dirty else ()), *await _package(state, root, package)]
            if deny_warnings:
                args += ["--", "-D", "warnings"]
            result = await _plain(
                state, root, args, toolchain=toolchain, cargo_env=cargo_env, timeout_s=timeout_s, max_tokens=max_tokens
            )
            if not result["success"] and not allow_dirty:
                refuse_dirty_fix(result["stderr_tail"])
            return result

        return await box.run(
            ctx, "cargo_clippy", workspace=workspace, call=Call.MUTATION if fix else ENGINE, body=body, long=not fix
        )

    @server.tool(annotations=READ_ONLY)
    async def cargo_test(
        ctx: Ctx,
        package: Package = None,
        test_name: Annotated[str | None, Field(description="Only tests whose path contains this filter")] = None,
        no_capture: Annotated[bool, Field(description="Show the tests' output (--nocapture)")] = False,
        scope: Annotated[
            Scope | None,
            Field(
                description="auto/changed/affected: skip packages whose tests passed "
                "for these exact sources; workspace: run all selected. "
                "Default: the server's CARGO_SCHEDULER_SCOPE, auto"
            ),
        ] = None,
        features: Features = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Run tests; packages whose tests already passed for their current sources are skipped and
        named as passed_before. Answers counts and each failure with its output."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            name = _paths.check_test_filter(test_name)
            req = _request(
                state,
                "test",
                package=package,
                scope=scope,
                features=features,
                toolchain=toolchain,
                cargo_env=cargo_env,
                timeout_s=timeout_s,
            )
            return await engine_tests(state, root, req, name, no_capture, max_tokens)

        return await box.run(ctx, "cargo_test", workspace=workspace, call=ENGINE, body=body, long=True)

    @server.tool(annotations=READ_ONLY)
    async def cargo_build(
        ctx: Ctx,
        package: Package = None,
        release: bool = False,
        scope: ScopeArg = None,
        features: Features = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Build and link packages; diagnostics as JSON, errors first. Writes only target/."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            req = _request(
                state,
                "build",
                package=package,
                scope=scope,
                features=features,
                release=release,
                toolchain=toolchain,
                cargo_env=cargo_env,
                timeout_s=timeout_s,
            )
            return await engine_check(state, root, req, max_tokens)

        return await box.run(ctx, "cargo_build", workspace=workspace, call=ENGINE, body=body, long=True)

    @server.tool(annotations=READ_ONLY)
    async def cargo_fmt_check(
        ctx: Ctx,
        package: Package = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Lists unformatted files without changing any (cargo fmt --check)."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            selection = await _package(state, root, package) or ["--all"]
            result = await _plain(
                state,
                root,
                ["fmt", *selection, "--", "--check"],
                toolchain=toolchain,
                cargo_env=cargo_env,
                timeout_s=timeout_s,
                max_tokens=max_tokens,
            )
            files = sorted({_relative(f, root) for f in _DIFF_IN.findall(result["stdout_tail"])})
            return {"formatted": result["success"], "unformatted_files": files, **result}

        return await box.run(ctx, "cargo_fmt_check", workspace=workspace, call=Call.READ, body=body)

    @server.tool(annotations=EDITS)
    async def cargo_fmt(
        ctx: Ctx,
        package: Package = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Format the sources in place (cargo fmt); lists the files it changed."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            selection = await _package(state, root, package) or ["--all"]
            result = await _plain(
                state,
                root,
                ["fmt", *selection, "--", "-l"],
                toolchain=toolchain,
                cargo_env=cargo_env,
                timeout_s=timeout_s,
                max_tokens=max_tokens,
            )
            changed = [
                _relative(line.strip(), root)
                for line in result["stdout_tail"].splitlines()
                if line.strip().endswith(".rs")
            ]
            return {"changed_files": changed, **result}

        return await box.run(ctx, "cargo_fmt", workspace=workspace, call=Call.MUTATION, body=body)

    @server.tool(annotations=READ_ONLY)
    async def cargo_bench(
        ctx: Ctx,
        package: Package = None,
        bench_name: Annotated[str | None, Field(description="Only benchmarks matching this filter")] = None,
        baseline: Annotated[str | None, Field(description="Save results as this criterion baseline")] = None,
        max_tokens: MaxTokens = 6000,
        timeout_s: Timeout = None,
        workspace: Workspace = None,
        toolchain: Toolchain = None,
        cargo_env: CargoEnv = None,
    ) -> Answer:
        """Run benchmarks (cargo bench); the output's tail as JSON. Writes only target/."""

        async def body(state: ServerState, root: Path) -> dict[str, Any]:
            args = ["bench", *await _package(state, root, package)]
            if (name := _paths.check_test_filter(bench_name, "bench_name")) is not None:
                args.append(name)
            if (base := _paths.check_name(baseline, "baseline")) is not None:
                args += ["--", "--save-baseline", base]
            return await _plain(
                state, root, args, toolchain=toolchain, cargo_env=cargo_env, timeout_s=timeout_s, max_tokens=max_tokens
            )

        return await box.run(ctx, "cargo_bench", workspace=workspace, call=Call.READ, body=body, long=True)
