"""Differential test: after every random edit, the `workspace` answer (narrowed runs plus cached
answers) equals a fresh `cargo check --workspace --keep-going`, run in the same environment in a
target dir of its own. Through three paths: the engine in process, the CLI, and the daemon.

The workspace is the soundness scenario (`scheduler.build_scenario`: every class of input issue 12
names, beside six generated members), and the edit mix is the generated members' own edits plus a
flip of any of the scenario's kinds. Two callers ask, with environments that differ (the variables
the scenario's build reads) and keep differing: an edit of the environment flips a variable in one
caller's. CARGO_SCHEDULER_DIFF_EDITS sets the number of edits per path (the suite's default keeps
this file within about three minutes on two cores; `nox -s differential` runs 200) and
CARGO_SCHEDULER_DIFF_SEED the seed.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from daemon_env import REPO, TIMEOUT, Env, Front, isolated_env

from scheduler import CheckRequest, EnginePool, Scenario, build_scenario, fresh_cargo_check

EDITS = int(os.environ.get("CARGO_SCHEDULER_DIFF_EDITS", "16"))
SEED = int(os.environ.get("CARGO_SCHEDULER_DIFF_SEED", "7"))
Identity = tuple[str, str, str | None, str, str | None, int | None, int | None]
Answer = tuple[bool, set[Identity]]
# Each path's run grows with the number of edits: the suite-wide 300 s would cut the acceptance run.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(max(300, EDITS * 20))]
GENERATED_KINDS = ["warning", "error", "fix", "fix", "signature", "data", "touch", "pub_fn", "feature", "bin"]


@dataclass
class EditMix:
    """Random edits, each undoable: layers over the generated sources, and flips of the scenario's
    input kinds (of a caller's environment, for the kinds that edit one)."""

    scenario: Scenario
    rng: random.Random
    callers: list[dict[str, str]] = field(default_factory=list)
    originals: dict[str, str] = field(default_factory=dict)
    snippets: dict[str, list[str]] = field(default_factory=dict)
    signature_changed: bool = False
    feature_broken: bool = False
    long_greeting: bool = False
    bins: set[str] = field(default_factory=set)
    """Members given a new bin target (`src/bin/extra.rs`, with a warning): cargo discovers it by its
    name, so only metadata loaded again after the edit knows it."""
    fooling_edits: int = 0
    """Edits cargo's mtime check cannot see so far: a reference target dir older than one is stale."""
    counter: int = 0
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ws = self.scenario.generated
        assert ws is not None
        for name in ws.members:
            self.originals[name] = ws.lib_rs(name).read_text()
            self.snippets[name] = []
        # Two callers whose environments differ from the start: the build script's variable.
        self.callers = [dict(self.scenario.env), dict(self.scenario.env)]
        self.scenario.flip("build_script_env", env=self.callers[1])

    def _write(self, name: str) -> None:
        ws = self.scenario.generated
        assert ws is not None
        text = self.originals[name]
        if name == "hub" and self.feature_broken:  # only a build with hub's `extra` feature sees it
            text = text.replace("    hub_value(1) + 1\n", '    "broken"\n')
        if name == "hub" and self.signature_changed:
            text = text.replace("pub fn hub_value(x: u32) -> u32 {", "pub fn hub_value(x: u32, _y: u32) -> u32 {")
            text = text.replace("hub_value(1) + 1", "hub_value(1, 2) + 1").replace(
                "super::hub_value(1)", "super::hub_value(1, 0)"
            )
        ws.lib_rs(name).write_text(text + "".join(self.snippets[name]))

    def random_edit(self) -> int | None:
        """Make one edit; the index of the caller whose environment it changed, if it did."""
        ws = self.scenario.generated
        assert ws is not None
        self.counter += 1
        i = self.counter
        kind = self.rng.choice(GENERATED_KINDS + ["input"] * len(GENERATED_KINDS))
        if kind == "input":
            name = self.rng.choice(self.scenario.available())
            if self.scenario.kinds[name].variable is not None:
                caller = self.rng.randrange(len(self.callers))
                self.scenario.flip(name, env=self.callers[caller])
                self.log.append(f"{i}: {name} for caller {caller}")
                return caller
            flipped = self.scenario.flip(name)
            self.fooling_edits += flipped.keeps_mtime
            self.log.append(f"{i}: {name} on={flipped.on}")
            return None
        crate = self.rng.choice([m for m in ws.members if m != "macros"])
        if kind == "warning":
            self.snippets[crate].append(f"\npub fn w{i}() -> u32 {{ let unused{i} = {i}; 0 }}\n")
        elif kind == "error":
            self.snippets[crate].append(f'\npub fn e{i}() -> u32 {{ "e{i}" }}\n')
        elif kind == "pub_fn":
            self.snippets[crate].append(f"\npub fn f{i}(x: u32) -> u32 {{ x + {i} }}\n")
        elif kind == "fix":
            if self.snippets[crate]:
                self.snippets[crate].pop(self.rng.randrange(len(self.snippets[crate])))
        elif kind == "signature":
            self.signature_changed = not self.signature_changed
            crate = "hub"
        elif kind == "feature":
            self.feature_broken = not self.feature_broken
            crate = "hub"
        elif kind == "data":
            self.long_greeting = not self.long_greeting
            greeting = ws.crate_dir("hub") / "data" / "greeting.txt"
            greeting.write_text(("hello " * 20 if self.long_greeting else "hello from the hub") + "\n")
            self.log.append(f"{i}: data long={self.long_greeting}")
            return None
        elif kind == "bin":
            extra = ws.crate_dir(crate) / "src" / "bin" / "extra.rs"
            if crate in self.bins:
                extra.unlink()
                self.bins.discard(crate)
            else:
                extra.parent.mkdir(exist_ok=True)
                extra.write_text(f"fn main() {{ let unused_{i} = {i}; }}\n")
                self.bins.add(crate)
            self.log.append(f"{i}: bin {crate} present={crate in self.bins}")
            return None
        elif kind == "touch":
            os.utime(ws.lib_rs(crate))
            self.log.append(f"{i}: touch {crate}")
            return None
        self._write(crate)
        self.log.append(f"{i}: {kind} {crate}")
        return None


class Reference:
    """Fresh cargo for one caller: a target dir of its own, replaced after any edit that cargo's
    mtime check cannot see (in a reused one, cargo would be fooled as the engine's cargo is)."""

    def __init__(self, mix: EditMix, caller: int, base: Path) -> None:
        self.mix, self.caller = mix, caller
        self.dirs = (base / f"reference-{caller}-{n}" for n in itertools.count())
        self.target = next(self.dirs)
        self.seen = mix.fooling_edits

    def __call__(self, extra: dict[str, str] | None = None) -> Answer:
        if self.mix.fooling_edits != self.seen:
            self.target, self.seen = next(self.dirs), self.mix.fooling_edits
        env = {**self.mix.callers[self.caller], **(extra or {})}
        return fresh_cargo_check(self.mix.scenario.root, self.target, env=env)


def identities(answer: dict[str, Any]) -> set[Identity]:
    """`Diagnostic.identity` rebuilt from the compact JSON of an answer (CLI and MCP)."""
    assert "omitted" not in answer, f"the answer was cut: {answer['omitted']}"
    return {
        (d["package"], d["level"], d.get("code"), d["message"], d.get("file"), d.get("line"), d.get("column"))
        for d in answer["diagnostics"]
    }


def assert_same(ours: Answer, theirs: Answer, context: str) -> None:
    (ok, mine), (success, truth) = ours, theirs
    assert mine == truth, f"{context}: only we say {mine - truth}; only cargo says {truth - mine}"
    assert ok == success, context


def new_mix(tmp_path: Path) -> EditMix:
    scenario = build_scenario(tmp_path / "scenario", generated_crates=6, toolchain=True)
    for name, kind in scenario.kinds.items():
        if kind.skipped:
            warnings.warn(f"edit kind {name} left out of the mix: {kind.skipped}", stacklevel=2)
    return EditMix(scenario, random.Random(SEED))


@pytest.fixture
def process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the engine's (and the daemon's) own process starts with: never the user's ~/.cargo."""
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "process-cargo-home"))
    for name in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR"):
        monkeypatch.delenv(name, raising=False)


async def test_the_engine_answers_each_caller_as_a_fresh_cargo_check_after_every_random_edit(
    process_env: None, tmp_path: Path
) -> None:
    mix = new_mix(tmp_path)
    references = [Reference(mix, c, tmp_path) for c in range(len(mix.callers))]
    ran_total = cached_total = 0
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(mix.scenario.root)
        for step in range(EDITS + 1):
            if step:
                mix.random_edit()
            caller = mix.rng.randrange(len(mix.callers))
            # The environment of each question differs from the last one's even where the build
            # reads nothing of the difference.
            noise = {"SCEN_QUESTION": str(step)}
            env = tuple(sorted({**mix.callers[caller], **noise}.items()))
            if mix.rng.random() < 0.5:
                # The agent's flow: a narrowed answer now, dependents filled in the background; the
                # compared answer below then comes from what those narrowed runs stored.
                await engine.check(CheckRequest(scope="auto", env=env))
                await engine.wait_background(timeout_s=300)
            report = await engine.check(CheckRequest(scope="workspace", env=env))
            ran_total += len(report.ran())
            cached_total += len(report.cached())
            context = f"caller {caller} after edits {mix.log[-5:]}"
            assert report.pending == [], context
            ours = (report.success, {d.identity() for d in report.diagnostics})
            assert_same(ours, references[caller](noise), context)
    # The engine must have used its cache, or the test proves nothing about it.
    assert cached_total > ran_total


def test_the_cli_answers_as_a_fresh_cargo_check_in_its_callers_environment_after_every_random_edit(
    process_env: None, tmp_path: Path
) -> None:
    mix = new_mix(tmp_path)
    references = [Reference(mix, c, tmp_path) for c in range(len(mix.callers))]
    cached_total = 0
    for step in range(EDITS + 1):
        if step:
            mix.random_edit()
        caller = mix.rng.randrange(len(mix.callers))
        env = {**mix.callers[caller], "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        argv = [sys.executable, "-m", "scheduler.cli._main", "check", str(mix.scenario.root), "--scope", "workspace"]
        proc = subprocess.run(
            [*argv, "--json"], env=env, cwd=mix.scenario.root, capture_output=True, text=True, timeout=600
        )
        context = f"caller {caller} after edits {mix.log[-5:]}"
        assert proc.returncode in (0, 1), f"{context}: exit {proc.returncode}: {proc.stderr[-2000:]}"
        answer = json.loads(proc.stdout)
        assert proc.returncode == (0 if answer["success"] else 1), context
        cached_total += len(answer["packages"]["cached"])
        assert_same((answer["success"], identities(answer)), references[caller](), context)
    assert cached_total > 0, "the CLI never answered from its cache: the test proves nothing about it"


@pytest.fixture
def daemon_env(process_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


class Client:
    """An MCP client process: a stdio front spawned with its caller's environment, spawned again
    (a new client process) when that environment changes."""

    def __init__(self, daemon: Env, root: Path) -> None:
        self.daemon, self.root = daemon, root
        self.front: Front | None = None

    def spawn(self, env: dict[str, str]) -> None:
        if self.front is not None:
            self.front.close()
        env = {**env, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        argv = [sys.executable, "-m", "scheduler.daemon._front", "--workspace", str(self.root)]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO, env=env)
        self.front = Front(proc)
        self.daemon.fronts.append(self.front)
        self.front.initialize()

    def check(self) -> dict[str, Any]:
        assert self.front is not None
        reply = self.front.request(
            "tools/call",
            {"name": "cargo_check", "arguments": {"scope": "workspace", "max_tokens": 100_000}},
            timeout=TIMEOUT * 10,
        )
        result = reply.get("result", {})
        assert not result.get("isError") and "structuredContent" in result, f"cargo_check failed: {reply}"
        answer: dict[str, Any] = result["structuredContent"]
        return answer


def test_the_daemon_answers_two_clients_with_different_environments_as_fresh_cargo_checks_after_every_random_edit(
    daemon_env: Env, tmp_path: Path
) -> None:
    mix = new_mix(tmp_path)
    references = [Reference(mix, c, tmp_path) for c in range(len(mix.callers))]
    clients = [Client(daemon_env, mix.scenario.root) for _ in mix.callers]
    for client, env in zip(clients, mix.callers, strict=True):
        client.spawn(env)
    cached_total = 0
    for step in range(EDITS + 1):
        if step and (changed := mix.random_edit()) is not None:
            clients[changed].spawn(mix.callers[changed])
        for caller in mix.rng.sample(range(len(clients)), len(clients)):
            answer = clients[caller].check()
            context = f"client {caller} after edits {mix.log[-5:]}"
            cached_total += len(answer["packages"]["cached"])
            assert_same((answer["success"], identities(answer)), references[caller](), context)
    assert cached_total > 0, "the daemon never answered from its cache: the test proves nothing about it"
