"""The scenario matrix: each scenario of issue 5 through plain cargo and through the engine, side by side.

Scenarios: a cold check, a no-op check, an edit at a leaf, a mid crate and the hub then a check, the
repeated check of a crate with errors (an agent's fix loop), clippy after a check, and the tests of
what an edit affects. Variants: `cargo ... --workspace`, hand-narrowed `cargo ... -p CRATE`, and the
engine with scopes `auto`, `changed` and `workspace`, its cache warm (a running server that answered
before the edit) or cold (a fresh install: a new cache, cargo's target dir warm).

Every sample starts from the same state: before it, an untimed reset makes cargo's target dir and
the engine's cache current for the sources as they are (`reset`), then the scenario makes its edit
(a new `pub fn` with a body no earlier edit had, so nothing can be answered by an old artifact),
then only the variant is timed. Variants rotate their order between repeats so drift spreads evenly.
Timing is wall time around the cargo process, or around `await engine.check(...)` in this process.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from _stats import summary
from _subjects import Subject, Subjects
from _workspaces import CARGO_FLAGS, cargo, cargo_env

from scheduler import CheckRequest, Engine, EnginePool
from scheduler.engine._testrun import run_tests

TYPE_ERROR = '\npub fn bench_broken() -> u32 { "not a number" }\n'
BACKGROUND_TIMEOUT_S = 1800.0
Outcome = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    kind: str  # check | clippy | test
    role: str  # the crate it edits or asks about: hub | mid | leaf
    variants: tuple[str, ...]
    edit: str | None = None  # "fn": a fresh pub fn before every sample; "error": one type error for all
    clean: bool = False  # `cargo clean` before every sample
    check_first: bool = False  # an untimed `check` through the same variant before the timed run
    max_repeats: int | None = None


CARGO_VARIANTS = ("cargo --workspace", "cargo -p")
WARM = ("auto", "changed", "workspace")
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("noop", "no-op check", "check", "leaf", (*CARGO_VARIANTS, *WARM, "auto, cache cold")),
    Scenario(
        "edit-leaf", "edit a leaf, check", "check", "leaf", (*CARGO_VARIANTS, *WARM, "auto, cache cold"), edit="fn"
    ),
    Scenario(
        "edit-mid", "edit a mid crate, check", "check", "mid", (*CARGO_VARIANTS, *WARM, "auto, cache cold"), edit="fn"
    ),
    Scenario(
        "edit-hub", "edit the hub, check", "check", "hub", (*CARGO_VARIANTS, *WARM, "auto, cache cold"), edit="fn"
    ),
    Scenario(
        "error-loop",
        "repeat check of a crate with errors",
        "check",
        "leaf",
        (*CARGO_VARIANTS, *WARM, "auto, cache cold"),
        edit="error",
    ),
    Scenario(
        "clippy",
        "edit the mid crate, check, then clippy",
        "clippy",
        "mid",
        (*CARGO_VARIANTS, "auto", "workspace"),
        edit="fn",
        check_first=True,
    ),
    Scenario(
        "test",
        "edit the mid crate, test what it affects",
        "test",
        "mid",
        (*CARGO_VARIANTS, "auto", "workspace"),
        edit="fn",
        max_repeats=3,
    ),
    Scenario(
        "cold",
        "cold check after `cargo clean`",
        "check",
        "leaf",
        (*CARGO_VARIANTS, "workspace", "workspace, cache cold"),
        clean=True,
        max_repeats=2,
    ),
)


@dataclass
class Matrix:
    root: Path
    subjects: Subjects
    engine: Engine
    repeats: int
    log: Callable[[str], None]
    cache_root: Path
    env: dict[str, str] = field(default_factory=cargo_env)
    nonce: int = field(default_factory=lambda: int(time.time() * 1000) % 1_000_000_007)
    edits: int = 0

    # -- state ---------------------------------------------------------------------------------
    def cargo_args(self, kind: str, selection: list[str]) -> list[str]:
        if kind == "test":  # the engine's own test flags (`--keep-going` is not a `cargo test` flag)
            return ["test", "--no-fail-fast", *selection, CARGO_FLAGS[0]]
        return [kind, *selection, *CARGO_FLAGS]

    async def cargo(self, args: list[str]) -> tuple[float, Any]:
        await self.engine.wait_background(BACKGROUND_TIMEOUT_S)  # it would hold the target dir's lock
        return await anyio.to_thread.run_sync(cargo, self.root, args, self.env)

    async def reset(self, kind: str) -> None:
        """Untimed: cargo's target dir and the engine's cache current for the sources as they are."""
        if kind == "test":
            await self.cargo(["test", "--workspace", "--no-run", CARGO_FLAGS[0]])
            return
        await self.engine.check(CheckRequest(kind=kind, scope="workspace"))  # type: ignore[arg-type]
        await self.cargo(self.cargo_args(kind, ["--workspace"]))

    def append(self, subject: Subject, text: str) -> None:
        subject.lib_rs.write_text(subject.lib_rs.read_text() + text)

    def edit(self, subject: Subject) -> None:
        self.edits += 1
        n = self.edits
        body = f"{self.nonce}u64 * {n}u64 + {n * 7919}u64"
        # Documented: real crates often `#![deny(missing_docs)]`, and this edit must compile cleanly.
        self.append(subject, f"\n/// A benchmark edit.\npub fn bench_edit_{self.nonce}_{n}() -> u64 {{ {body} }}\n")

    # -- variants ------------------------------------------------------------------------------
    def runner(self, scenario: Scenario, variant: str, subject: Subject) -> Callable[[], Awaitable[Outcome]]:
        kind = scenario.kind

        async def plain(selection: list[str]) -> Outcome:
            _, result = await anyio.to_thread.run_sync(cargo, self.root, self.cargo_args(kind, selection), self.env)
            return {"success": result.returncode == 0}

        async def engine(e: Engine, scope: str) -> Outcome:
            request = CheckRequest(kind=kind, scope=scope)  # type: ignore[arg-type]
            if kind == "test":
                answer = await run_tests(e, request)
                return {"success": bool(answer.get("success")), "ran": len(answer["packages"]["tested"])}
            report = await e.check(request)
            return {
                "success": report.success,
                "ran": len(report.ran()),
                "cached": len(report.cached()),
                "pending": len(report.pending),
            }

        async def cold_engine(scope: str) -> Outcome:
            cache_dir = Path(tempfile.mkdtemp(prefix="cold-", dir=self.cache_root))
            try:
                async with EnginePool(cache_dir=cache_dir) as pool:
                    return await engine(await pool.get(self.root), scope)
            finally:
                await anyio.to_thread.run_sync(shutil.rmtree, cache_dir, True)

        if variant == "cargo --workspace":
            return lambda: plain(["--workspace"])
        if variant == "cargo -p":
            return lambda: plain(["-p", subject.name])
        if variant.endswith(", cache cold"):
            return lambda: cold_engine(variant.split(",")[0])
        return lambda: engine(self.engine, variant)

    async def untimed_check(self, variant: str, subject: Subject) -> None:
        """`check_first`: the check an agent ran before it asked for clippy, through the same path."""
        if variant.startswith("cargo"):
            selection = ["--workspace"] if variant == "cargo --workspace" else ["-p", subject.name]
            await self.cargo(self.cargo_args("check", selection))
        else:
            await self.engine.check(CheckRequest(scope=variant))  # type: ignore[arg-type]
            await self.engine.wait_background(BACKGROUND_TIMEOUT_S)

    # -- one scenario --------------------------------------------------------------------------
    async def run(self, scenario: Scenario) -> dict[str, Any]:
        subject = self.subjects.by_role(scenario.role)
        repeats = min(self.repeats, scenario.max_repeats or self.repeats)
        self.log(
            f"  {scenario.id}: {scenario.title} ({subject.name}, {subject.dependents} dependents), "
            f"{len(scenario.variants)} variants x {repeats}"
        )
        original = subject.lib_rs.read_bytes()
        samples: dict[str, list[float]] = {v: [] for v in scenario.variants}
        outcomes: dict[str, list[Outcome]] = {v: [] for v in scenario.variants}
        try:
            if scenario.kind == "test":  # the engine's record of passed tests, for these sources
                await run_tests(self.engine, CheckRequest(kind="test", scope="workspace"))
            if scenario.edit == "error":
                self.append(subject, TYPE_ERROR)
                await self.engine.check(CheckRequest(packages=(subject.name,)))  # the agent's first look
            for rep in range(repeats):
                order = list(
                    scenario.variants[rep % len(scenario.variants) :]
                    + scenario.variants[: rep % len(scenario.variants)]
                )
                for variant in order:
                    await self.reset(scenario.kind)
                    if scenario.clean:
                        await self.cargo(["clean"])
                    if scenario.edit == "fn":
                        self.edit(subject)
                    if scenario.check_first:
                        await self.untimed_check(variant, subject)
                    await self.engine.wait_background(BACKGROUND_TIMEOUT_S)
                    run = self.runner(scenario, variant, subject)
                    start = time.perf_counter()
                    outcome = await run()
                    samples[variant].append(time.perf_counter() - start)
                    outcomes[variant].append(outcome)
                self.log(
                    f"    repeat {rep + 1}/{repeats}: "
                    + ", ".join(f"{v} {samples[v][-1] * 1000:.0f}ms" for v in scenario.variants)
                )
        finally:
            subject.lib_rs.write_bytes(original)
        await self.engine.wait_background(BACKGROUND_TIMEOUT_S)
        await self.reset("check")
        return {
            "id": scenario.id,
            "title": scenario.title,
            "kind": scenario.kind,
            "crate": subject.name,
            "dependents": subject.dependents,
            "repeats": repeats,
            "variants": {v: {**summary(samples[v]), "outcomes": outcomes[v]} for v in scenario.variants},
        }
