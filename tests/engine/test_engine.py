"""The engine against real cargo on generated workspaces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from scheduler import CheckRequest, EnginePool, GeneratedWorkspace
from scheduler._exceptions import InvalidArgument, UnknownPackage
from scheduler.cargo import _run
from scheduler.engine import _engine

pytestmark = pytest.mark.anyio

TYPE_ERROR = '\npub fn broken() -> u32 { "not a number" }\n'


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


async def test_a_repeat_check_is_answered_from_the_cache_without_cargo(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        first = await engine.check(CheckRequest(scope="workspace"))
        assert first.success and sorted(first.ran()) == sorted(ws.members)
        again = await engine.check(CheckRequest(scope="workspace"))
    assert again.ran() == [] and again.cached() == sorted(ws.members)
    assert again.command == []


async def test_a_failing_crate_is_answered_again_from_the_cache_with_its_errors(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    leaf = ws.leaves[0]
    append(ws.lib_rs(leaf), TYPE_ERROR)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        first = await engine.check(CheckRequest(scope="workspace"))
        again = await engine.check(CheckRequest(scope="workspace"))
    assert not first.success and not again.success
    assert again.ran() == []
    errors = [d for d in again.diagnostics if d.level == "error"]
    assert [(d.package, d.code) for d in errors] == [(leaf, "E0308")]
    assert {d.identity() for d in first.diagnostics} == {d.identity() for d in again.diagnostics}
    assert again.results[leaf].source == "cache"


async def test_a_cached_answer_given_again_is_the_callers_own_copy(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    """Cached results are rebuilt once per entry and handed out as copies: what one caller does
    to its report never shows in the next answer."""
    ws = make_workspace()
    leaf = ws.leaves[0]
    append(ws.lib_rs(leaf), TYPE_ERROR)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        await engine.check(CheckRequest(scope="workspace"))
        second = await engine.check(CheckRequest(scope="workspace"))
        second.results[leaf].diagnostics.clear()
        second.results[leaf].blocked_by.append("vandal")
        third = await engine.check(CheckRequest(scope="workspace"))
        append(ws.lib_rs(leaf), "\npub fn also_broken() -> bool { 1 }\n")
        fourth = await engine.check(CheckRequest(scope="workspace"))
    assert third.ran() == [] and third.results[leaf].blocked_by == []
    assert [d.code for d in third.results[leaf].diagnostics if d.level == "error"] == ["E0308"]
    assert fourth.ran() == [leaf], "a new entry for the edited crate, not the remembered result"
    assert sorted(d.code or "" for d in fourth.results[leaf].diagnostics if d.level == "error") == ["E0308", "E0308"]


async def test_auto_answers_the_edited_crate_first_and_fills_the_cache_with_its_dependents(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace(crates=8)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        await engine.check(CheckRequest(scope="workspace"))
        append(ws.lib_rs("hub"), "\npub fn added() -> u32 { let unused = 3; 1 }\n")
        auto = await engine.check(CheckRequest(scope="auto"))
        assert auto.ran() == ["hub"]
        dependents = {m for m in ws.members if "hub" in ws.deps.get(m, [])} | set(ws.leaves)
        assert set(auto.pending) == dependents
        assert "macros" in auto.cached() and "buildinfo" in auto.cached()
        assert [d.message for d in auto.diagnostics] == ["unused variable: `unused`"]
        await engine.wait_background(timeout_s=120)
        after = await engine.check(CheckRequest(scope="workspace"))
    assert after.ran() == [] and after.pending == []
    assert after.success


async def test_changed_scope_runs_only_the_edited_package_and_skips_the_others(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        await engine.check(CheckRequest(scope="workspace"))
        append(ws.lib_rs(ws.mids[0]), "\npub fn more() -> u32 { 2 }\n")
        report = await engine.check(CheckRequest(scope="changed"))
    assert report.ran() == [ws.mids[0]]
    assert report.pending == []
    assert set(report.skipped) == set(ws.members) - {ws.mids[0]}


async def test_affected_scope_waits_for_every_dependent(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        await engine.check(CheckRequest(scope="workspace"))
        append(ws.lib_rs("hub"), "\npub fn more() -> u32 { 2 }\n")
        report = await engine.check(CheckRequest(scope="affected"))
    assert set(report.ran()) == set(ws.members) - {"macros", "buildinfo"}
    assert report.pending == []


async def test_dependents_of_a_failing_crate_are_reported_blocked_by_it(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    append(ws.lib_rs("hub"), TYPE_ERROR)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        report = await engine.check(CheckRequest(scope="workspace"))
    assert not report.success
    assert report.results[ws.leaves[0]].blocked_by == ["hub"]
    assert report.results["macros"].success
    answer = report.to_dict()
    assert answer["packages"]["blocked"][ws.leaves[0]] == ["hub"]
    assert answer["diagnostics"][0]["level"] == "error"


async def test_a_data_file_read_with_include_str_is_part_of_the_key(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        assert (await engine.check(CheckRequest(scope="workspace"))).success
        (ws.crate_dir("hub") / "data" / "greeting.txt").write_text("x" * 100)
        report = await engine.check(CheckRequest(scope="changed"))
    assert report.ran() == ["hub"]
    assert not report.success
    assert any("64 bytes" in d.message or "64 bytes" in d.rendered for d in report.diagnostics)


async def test_an_unknown_package_and_a_bad_scope_are_rejected_naming_the_argument(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        with pytest.raises(UnknownPackage, match="'nope' is not a member"):
            await engine.check(CheckRequest(packages=("nope",)))
    with pytest.raises(InvalidArgument, match="scope"):
        CheckRequest(scope="everything")  # type: ignore[arg-type]


async def test_identical_concurrent_checks_share_one_cargo_run(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace()
    calls: list[list[str]] = []
    real = _run.run_cargo

    async def counting(args: Any, **kwargs: Any) -> Any:
        calls.append(list(args))
        return await real(args, **kwargs)

    monkeypatch.setattr(_engine, "run_cargo", counting)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        reports: list[Any] = []

        async def ask() -> None:
            reports.append(await engine.check(CheckRequest(scope="workspace")))

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ask)
                tg.start_soon(ask)
    assert len(calls) == 1
    assert reports[0].ran() == reports[1].ran() == sorted(ws.members)


async def test_an_edit_made_while_cargo_runs_is_never_answered_with_the_old_result(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    edited: list[bool] = []

    def edit_once(msg: dict[str, Any]) -> None:
        if msg.get("reason") == "compiler-artifact" and not edited:
            edited.append(True)
            append(ws.lib_rs("hub"), TYPE_ERROR)

    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        report = await engine.check(CheckRequest(scope="workspace"), on_message=edit_once)
        again = await engine.check(CheckRequest(scope="workspace"))
    assert edited
    assert not report.success, "the answer must be for the sources as they are now"
    assert [(d.package, d.code) for d in report.diagnostics if d.level == "error"] == [("hub", "E0308")]
    assert again.ran() == []


async def test_a_file_outside_the_workspace_edited_while_cargo_runs_is_not_answered_from_the_cache(
    tmp_path: Path,
) -> None:
    """No walk key guards it: its digest after the run must not be paired with what was read before."""
    root = tmp_path / "ws"
    (root / "a" / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["a"]\nresolver = "2"\n')
    (root / "a" / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n')
    (root / "a" / "src" / "lib.rs").write_text('include!("../../../outside.rs");\n')
    outside = tmp_path / "outside.rs"
    outside.write_text("pub fn fine() {}\n")
    edited: list[bool] = []

    def edit_after_a_compiled(msg: dict[str, Any]) -> None:
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "a" and not edited:
            edited.append(True)
            outside.write_text(f"pub fn fine() {{}}{TYPE_ERROR}")

    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        during = await engine.check(CheckRequest(scope="workspace"), on_message=edit_after_a_compiled)
        after = await engine.check(CheckRequest(scope="workspace"))
    assert edited and during.success  # what the compiler read
    assert any("changed while cargo ran" in n for n in during.notes), during.notes
    assert after.ran() == ["a"] and [(d.code, d.level) for d in after.diagnostics] == [("E0308", "error")]


async def test_a_relative_include_through_a_linked_member_is_keyed_on_the_file_the_system_opens(
    tmp_path: Path,
) -> None:
    """`ws/a -> elsewhere/a`: `a/src/../../x.rs` is `elsewhere/x.rs`, not `ws/x.rs`."""
    root = tmp_path / "ws"
    real = tmp_path / "elsewhere" / "a"
    (real / "src").mkdir(parents=True)
    root.mkdir()
    (root / "a").symlink_to(real, target_is_directory=True)
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["a"]\nresolver = "2"\n')
    (real / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\nedition = "2021"\n')
    (real / "src" / "lib.rs").write_text('include!("../../x.rs");\n')
    opened = tmp_path / "elsewhere" / "x.rs"
    opened.write_text("pub fn fine() {}\n")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        assert (await engine.check(CheckRequest(scope="workspace"))).success
        opened.write_text(f"pub fn fine() {{}}{TYPE_ERROR}")
        after = await engine.check(CheckRequest(scope="workspace"))
    assert after.ran() == ["a"] and [d.code for d in after.diagnostics] == ["E0308"]


async def test_a_timeout_kills_cargo_and_frees_the_target_dir(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    build_rs = ws.crate_dir("buildinfo") / "build.rs"
    original = build_rs.read_text()
    hang = "fn main() {\n    std::thread::sleep(std::time::Duration::from_secs(600));"
    build_rs.write_text(original.replace("fn main() {", hang, 1))
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        with anyio.fail_after(120):
            report = await engine.check(CheckRequest(scope="workspace", packages=("buildinfo",), timeout_s=3))
        assert not report.success
        assert report.error is not None and "timed out" in report.error
        assert "no answer for buildinfo" in report.error, "the answer names what did not finish"
        assert "cargo was still at:" in report.error and "buildinfo" in report.error.split("still at:")[1]
        build_rs.write_text(original)
        with anyio.fail_after(120):
            fixed = await engine.check(CheckRequest(scope="workspace", packages=("buildinfo",), timeout_s=100))
    assert fixed.success and fixed.ran() == ["buildinfo"]


async def test_environment_that_build_scripts_may_watch_gets_a_private_target_dir(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        plain = await engine.check(
            CheckRequest(scope="workspace", packages=("macros",), extra_env=(("RUST_BACKTRACE", "1"),))
        )
        private = await engine.check(
            CheckRequest(scope="workspace", packages=("macros",), extra_env=(("MY_BUILD_FLAG", "1"),))
        )
    assert "--target-dir" not in plain.command
    assert "--target-dir" in private.command
    target = private.command[private.command.index("--target-dir") + 1]
    assert Path(target).is_relative_to(ws.root / "target")


async def test_two_workspace_roots_with_the_same_sources_share_answers_but_never_a_target_dir(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    """Keys hold no path (tests/engine/test_worktrees.py has the rest); builds stay per checkout."""
    a = make_workspace(name="a")
    b = make_workspace(name="b")
    async with EnginePool(tmp_path / "cache") as pool:
        await (await pool.get(a.root)).check(CheckRequest(scope="workspace", packages=("hub",)))
        other = await (await pool.get(b.root)).check(CheckRequest(scope="workspace", packages=("hub",)))
        b.lib_rs("hub").write_text(b.lib_rs("hub").read_text() + "\npub fn b_only() {}\n")
        edited = await (await pool.get(b.root)).check(CheckRequest(scope="workspace", packages=("hub",)))
    assert other.ran() == [] and other.cached() == ["hub"]
    assert edited.ran() == ["hub"] and "--target-dir" not in edited.command, "b builds in its own target/"
    assert (b.root / "target").is_dir() and (a.root / "target").is_dir()


async def test_a_new_member_added_to_the_root_manifest_is_picked_up(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        await engine.check(CheckRequest(scope="workspace"))
        new = ws.root / "crates" / "newbie"
        (new / "src").mkdir(parents=True)
        (new / "Cargo.toml").write_text('[package]\nname = "newbie"\nversion = "0.1.0"\nedition = "2021"\n')
        (new / "src" / "lib.rs").write_text("pub fn hi() {}\n")
        manifest = ws.root / "Cargo.toml"
        manifest.write_text(manifest.read_text().replace("members = [", 'members = ["crates/newbie", ', 1))
        report = await engine.check(CheckRequest(scope="changed"))
    assert "newbie" in report.ran()


async def test_a_named_package_is_answered_in_every_scope_never_skipped_into_a_false_green(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    leaf = ws.leaves[0]
    append(ws.lib_rs(leaf), TYPE_ERROR)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        for scope in ("changed", "changed", "affected", "auto", "workspace"):
            report = await engine.check(CheckRequest(scope=scope, packages=(leaf,)))
            assert not report.success, scope
            assert [d.code for d in report.diagnostics if d.level == "error"] == ["E0308"], scope
            assert leaf not in report.skipped, scope


async def test_an_error_behind_a_feature_another_member_enables_is_found_by_a_narrowed_run(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    """mid_00 turns on hub's `extra` feature: `--workspace` builds hub with it, and so must `-p hub`."""
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        await engine.check(CheckRequest(scope="workspace"))
        lib = ws.lib_rs("hub")
        lib.write_text(lib.read_text().replace("    hub_value(1) + 1\n", '    "broken"\n'))
        auto = await engine.check(CheckRequest(scope="auto"))
    assert auto.ran() == ["hub"]
    assert [(d.package, d.code) for d in auto.diagnostics if d.level == "error"] == [("hub", "E0308")]


def _chain_workspace(root: Path) -> Path:
    """a -> b -> c, where b takes c without its defaults: only a `--workspace` build (c a root, so
    its defaults on) compiles c's `fast` code, which has a type error. The shape of ripgrep's
    grep -> grep-cli -> globset that a narrowed run once failed on before building anything."""

    def crate(name: str, manifest_tail: str, lib: str) -> None:
        (root / name / "src").mkdir(parents=True)
        (root / name / "Cargo.toml").write_text(
            f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n{manifest_tail}'
        )
        (root / name / "src" / "lib.rs").write_text(lib)

    root.mkdir()
    (root / "Cargo.toml").write_text('[workspace]\nresolver = "2"\nmembers = ["a", "b", "c"]\n')
    crate(
        "c",
        '\n[features]\ndefault = ["fast"]\nfast = []\n',
        'pub fn c() -> u32 { 1 }\n#[cfg(feature = "fast")]\npub fn fast() -> u32 { "not a number" }\n',
    )
    crate("b", '\n[dependencies]\nc = { path = "../c", default-features = false }\n', "pub fn b() -> u32 { c::c() }\n")
    crate("a", '\n[dependencies]\nb = { path = "../b" }\n', "pub fn a() -> u32 { b::b() }\n")
    return root


async def test_a_feature_of_a_member_reached_only_through_another_is_enabled_by_selecting_it(
    tmp_path: Path,
) -> None:
    root = _chain_workspace(tmp_path / "chain")
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        narrowed = await engine.check(CheckRequest(scope="changed", packages=("a",)))
    done = await anyio.run_process(["cargo", "check", "--workspace", "--message-format=short"], cwd=root, check=False)
    assert done.returncode != 0 and b"c/src/lib.rs" in done.stderr  # what --workspace says
    assert narrowed.error is None, narrowed.error  # cargo accepted the narrowed command line
    assert narrowed.results["a"].blocked_by == ["c"] and not narrowed.success


async def test_a_workspace_declared_above_a_root_already_asked_about_becomes_its_root(tmp_path: Path) -> None:
    """`EnginePool.get` finds the root again at every call (inline once a directory was asked
    about, for speed), so a `[workspace]` added above moves the root instead of being missed."""
    inner = tmp_path / "outer" / "inner"
    (inner / "src").mkdir(parents=True)
    (inner / "Cargo.toml").write_text('[package]\nname = "inner"\nversion = "0.1.0"\nedition = "2021"\n')
    (inner / "src" / "lib.rs").write_text("")
    async with EnginePool(tmp_path / "cache") as pool:
        assert (await pool.get(inner)).root == inner
        assert (await pool.get(inner)).root == inner
        (tmp_path / "outer" / "Cargo.toml").write_text('[workspace]\nmembers = ["inner"]\n')
        assert (await pool.get(inner)).root == tmp_path / "outer"
