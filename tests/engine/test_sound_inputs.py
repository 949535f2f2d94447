"""Every input the compiler reads is in the key (issue 12): one test per class of input.

Each test warms the engine on the soundness scenario (`scheduler.build_scenario`), flips one edit
kind, asks again, and holds the `workspace` answer to a fresh `cargo check --workspace --keep-going`
in a fresh target dir, run in the same environment (the scenario's, with its own CARGO_HOME); then
flips it back and asks once more. The engine's own process environment differs from the question's
(another CARGO_HOME, none of the scenario's variables), as a daemon's differs from its clients'.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from scheduler import CheckReport, CheckRequest, Engine, EnginePool, Scenario, build_scenario, fresh_cargo_check

pytestmark = pytest.mark.anyio

Identity = tuple[str, str, str | None, str, str | None, int | None, int | None]
KINDS = [
    "env_macro",
    "option_env",
    "build_script_env",
    "include_outside",
    "include_other_member",
    "path_module",
    "symlink_file",
    "symlink_dir",
    "symlink_in_tree",
    "hard_link",
    "ignored_module",
    "path_dep_outside",
    "cargo_home_config",
    "parent_config",
    "same_size_and_mtime",
    "toolchain_file",
    "toolchain_env",
    "outside_features",
    "member_features",
]


@pytest.fixture
def process_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's own environment: never the user's ~/.cargo, and not the question's."""
    monkeypatch.setenv("CARGO_HOME", str(tmp_path / "engine-cargo-home"))
    for name in ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR"):
        monkeypatch.delenv(name, raising=False)


class Truth:
    """Fresh cargo runs, each in a target dir of its own."""

    def __init__(self, scenario: Scenario, tmp_path: Path) -> None:
        self.scenario = scenario
        self.dirs = (tmp_path / f"fresh-{i}" for i in itertools.count())

    def __call__(self) -> tuple[bool, set[Identity]]:
        return fresh_cargo_check(self.scenario.root, next(self.dirs), env=self.scenario.env)


async def ask(engine: Engine, scenario: Scenario, scope: str = "workspace") -> CheckReport:
    return await engine.check(CheckRequest(scope=scope, env=scenario.env_items()))  # type: ignore[arg-type]


def assert_answers(report: CheckReport, truth: tuple[bool, set[Identity]], context: str) -> None:
    ours = {d.identity() for d in report.diagnostics}
    success, theirs = truth
    assert ours == theirs, f"{context}: only the engine says {ours - theirs}; only cargo says {theirs - ours}"
    assert report.success == success, context
    assert report.pending == [], context


@pytest.mark.parametrize("kind", KINDS)
async def test_the_answer_after_an_edit_of_each_input_class_equals_a_fresh_cargo_check(
    kind: str, process_env: None, tmp_path: Path
) -> None:
    scenario = build_scenario(tmp_path / "scenario", toolchain=kind.startswith("toolchain"))
    if scenario.kinds[kind].skipped:
        pytest.skip(f"{kind}: {scenario.kinds[kind].skipped}")
    truth = Truth(scenario, tmp_path)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(scenario.root)
        before = truth()
        assert_answers(await ask(engine, scenario), before, "warm-up")
        scenario.flip(kind)
        after = truth()
        assert after != before, f"the {kind} edit must change what a fresh cargo check says"
        assert_answers(await ask(engine, scenario), after, f"after the {kind} edit")
        scenario.flip(kind)
        assert_answers(await ask(engine, scenario), before, f"after undoing the {kind} edit")


@pytest.mark.parametrize("scope", ["changed", "affected"])
async def test_a_narrow_scope_never_answers_success_while_an_error_is_known_for_the_current_sources(
    scope: str, process_env: None, tmp_path: Path
) -> None:
    scenario = build_scenario(tmp_path / "scenario")
    configured = scenario.root / "crates" / "configured" / "src" / "lib.rs"
    plain = scenario.root / "crates" / "toolchained" / "src" / "lib.rs"
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(scenario.root)
        await ask(engine, scenario)
        configured.write_text(configured.read_text() + '\npub fn broken() -> u32 {\n    "not a number"\n}\n')
        known = await ask(engine, scenario)
        errors = {d.identity() for d in known.diagnostics if d.level == "error"}
        assert errors and not known.success
        plain.write_text(plain.read_text() + "\npub fn more() -> u32 {\n    5\n}\n")
        narrow = await ask(engine, scenario, scope)
        assert errors <= {d.identity() for d in narrow.diagnostics}, f"{scope} hid the known error"
        assert not narrow.success, f"{scope} answered success with an error known in `configured`"


async def test_a_file_with_a_non_utf8_name_in_the_workspace_does_not_break_a_check(
    process_env: None, tmp_path: Path
) -> None:
    scenario = build_scenario(tmp_path / "scenario")
    store = os.fsencode(scenario.root / "crates" / "store")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(scenario.root)
        await ask(engine, scenario)
        fd = os.open(os.path.join(store, b"notes-\xff\xfe.txt"), os.O_WRONLY | os.O_CREAT)  # a watcher event
        os.write(fd, b"not rust\n")
        os.close(fd)
        assert_answers(await ask(engine, scenario), Truth(scenario, tmp_path)(), "after a watched event")
    async with EnginePool(tmp_path / "cache") as pool:  # and found by a full walk of a new engine
        engine = await pool.get(scenario.root)
        assert_answers(await ask(engine, scenario), Truth(scenario, tmp_path / "walk")(), "after a walk")


async def test_a_variable_no_input_reads_keeps_the_keys_and_a_recorded_one_does_not(
    process_env: None, tmp_path: Path
) -> None:
    """The keys memo holds across questions whose environments differ only in what nothing reads
    (a shell's PWD, hyperfine's per-run variable), and never across a variable `env!` read."""
    scenario = build_scenario(tmp_path / "scenario")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(scenario.root)
        await ask(engine, scenario)
        base = dict(scenario.env_items())

        def request(**changes: str) -> CheckRequest:
            return CheckRequest(scope="workspace", env=tuple(sorted({**base, **changes}.items())))

        first = await engine.keys(request())
        noise = await engine.keys(request(UNREAD_BY_ANYTHING="1", OLDPWD="/elsewhere"))
        assert noise.keys is first.keys
        assert noise.env["UNREAD_BY_ANYTHING"] == "1"  # cargo still runs in the question's environment
        recorded = await engine.keys(request(SCEN_ENV_VALUE="another"))
        assert recorded.keys is not first.keys and recorded.keys.answer != first.keys.answer
