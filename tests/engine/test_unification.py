"""One set of units: the engine's narrowed runs build crates from outside the workspace as
`cargo check --workspace` does (real cargo; a path crate outside the workspace stands in for a
registry crate, which cargo resolves the same way)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scheduler import CheckRequest, EnginePool
from scheduler.cargo import _features
from scheduler.cargo._workspace import Workspace, load_metadata_json, parse_metadata

pytestmark = pytest.mark.anyio


def _crate(path: Path, name: str, deps: str, lib: str, features: str = "") -> None:
    (path / "src").mkdir(parents=True)
    (path / "Cargo.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n\n{features}[dependencies]\n{deps}'
    )
    (path / "src" / "lib.rs").write_text(lib)


def _workspace(base: Path) -> Path:
    """`a` asks `extcrate` for `extra`; `b` uses `extra` and asks for nothing (a direct dependency);
    `d` uses it through the member `via`. `-p b` and `-p d` fail; `--workspace` passes."""
    ext = base / "extcrate"
    _crate(
        ext, "extcrate", "", '#[cfg(feature = "extra")]\npub fn extra() -> u32 { 1 }\n', "[features]\nextra = []\n\n"
    )
    ws = base / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["a", "b", "via", "d"]\nresolver = "2"\n')
    path = 'extcrate = { path = "../../extcrate"%s }\n'
    _crate(ws / "a", "a", path % ', features = ["extra"]', "pub fn a() -> u32 { extcrate::extra() }\n")
    _crate(ws / "b", "b", path % "", "pub fn b() -> u32 { extcrate::extra() }\n")
    _crate(ws / "via", "via", path % "", "pub use extcrate;\n")
    _crate(ws / "d", "d", 'via = { path = "../via" }\n', "pub fn d() -> u32 { via::extcrate::extra() }\n")
    subprocess.run(["cargo", "generate-lockfile", "--offline", "-q"], cwd=ws, check=True, timeout=120)
    return ws


def _cargo(ws: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run(
        ["cargo", "check", "--message-format=json", *args], cwd=ws, capture_output=True, text=True, timeout=600
    )
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _units(messages: list[dict[str, Any]]) -> dict[str, bool]:
    """Artifact file name (`libextcrate-<hash>.rmeta`: the unit hash) -> whether cargo found it fresh."""
    return {
        Path(f).name: bool(m["fresh"])
        for m in messages
        if m.get("reason") == "compiler-artifact"
        for f in m["filenames"]
    }


def _metadata(root: Path) -> Workspace:
    subprocess.run(["cargo", "generate-lockfile", "--offline", "-q"], cwd=root, check=True, timeout=120)
    argv = ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"]
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=True, timeout=120)
    return parse_metadata(load_metadata_json(proc.stdout))


def _deps(ws: Path) -> set[str]:
    return {p.name for p in (ws / "target" / "debug" / "deps").iterdir()}


async def test_narrowed_and_background_runs_build_the_workspace_units_and_the_users_cargo_rebuilds_none(
    tmp_path: Path,
) -> None:
    ws = _workspace(tmp_path)
    # Plain cargo narrowed to `b` builds extcrate without `extra` and fails: the case is real.
    code, _ = _cargo(ws, "-p", "b", "--target-dir", str(tmp_path / "elsewhere"))
    assert code != 0
    seen: list[dict[str, Any]] = []
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws)
        report = await engine.check(CheckRequest(packages=("b",)), on_message=seen.append)
        assert report.success, report.to_dict()
        assert set(report.results) == {"b"} and report.results["b"].source == "run"
        narrowed = _units(seen)
        # An edit to `via` leaves its dependent `d` to the background widening, which must select
        # `a` for `d` to build extcrate as --workspace does.
        lib = ws / "via" / "src" / "lib.rs"
        lib.write_text(lib.read_text() + "// edited\n")
        edited = await engine.check(CheckRequest(packages=("via",)))
        assert edited.success and edited.pending == ["d"], edited.to_dict()
        await engine.wait_background(300)
        widened = _deps(ws)
        d = await engine.check(CheckRequest(packages=("d",), scope="changed"))
        assert d.success and d.results["d"].source == "cache"  # the widening answered it, correctly
    code, messages = _cargo(ws, "--workspace")
    assert code == 0
    whole = _units(messages)
    assert all(whole.values()), f"cargo check --workspace re-ran units after the engine: {whole}"
    assert narrowed.keys() <= whole.keys() and any(n.startswith("libextcrate-") for n in narrowed)
    assert _deps(ws) == widened  # the background widening built exactly --workspace's units


async def test_after_the_users_cargo_the_engines_narrowed_runs_rebuild_nothing(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    code, messages = _cargo(ws, "--workspace")
    assert code == 0
    before = _deps(ws)
    for selection in (("via",), ("b",), ("d",)):
        seen: list[dict[str, Any]] = []
        async with EnginePool(tmp_path / f"cache-{selection[0]}") as pool:
            engine = await pool.get(ws)
            report = await engine.check(CheckRequest(packages=selection, scope="changed"), on_message=seen.append)
        assert report.success, report.to_dict()
        units = _units(seen)
        assert units and all(units.values()), f"the engine's run for {selection} rebuilt {units}"
        assert units.keys() <= _units(messages).keys()
    assert _deps(ws) == before


async def test_a_test_run_selects_no_other_member_and_a_lockfile_of_members_runs_no_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_root = _workspace(tmp_path)
    ws = _metadata(ws_root)
    env = dict(os.environ)
    checked = await _features.unify(ws, ["d"], dev=False, select_members=True, root=ws_root, env=env)
    assert (checked.extra, checked.flags, checked.verified) == (("a",), (), True)
    direct = await _features.unify(ws, ["b"], dev=True, select_members=False, root=ws_root, env=env)
    assert (direct.extra, direct.flags, direct.verified) == ((), ("extcrate?/extra",), True)
    tested = await _features.unify(ws, ["d"], dev=True, select_members=False, root=ws_root, env=env)
    assert (tested.extra, tested.verified) == ((), False)  # today's rule: `d`'s tests build it as -p does

    # A workspace whose lockfile names only members: no cargo tree at all.
    only = tmp_path / "only"
    _crate(only, "solo", "", "pub fn solo() {}\n")
    solo = _metadata(only)

    async def no_cargo(*args: object, **kwargs: object) -> None:
        raise AssertionError("cargo tree ran for a workspace with no package outside it")

    monkeypatch.setattr(_features, "run_cargo", no_cargo)
    assert await _features.unify(solo, ["solo"], dev=False, select_members=True, root=only, env=env) == (
        _features.Unified((), (), False)
    )


def _chained_workspace(tmp_path: Path) -> Path:
    """`b` uses extcrate's `extra` through an outside crate `wrap`, without asking; `a` depends on
    `b` and asks for `extra`. No flag reaches extcrate from `b`, so a run for `b` must select `a`,
    which checks `a` too: the answer reports `a` (no longer pending) and the cache answers it
    afterwards; a member selected but out of the scope is cached, not reported."""
    ext = tmp_path / "extcrate"
    _crate(
        ext, "extcrate", "", '#[cfg(feature = "extra")]\npub fn extra() -> u32 { 1 }\n', "[features]\nextra = []\n\n"
    )
    _crate(tmp_path / "wrap", "wrap", 'extcrate = { path = "../extcrate" }\n', "pub use extcrate;\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["a", "b"]\nresolver = "2"\n')
    path = 'extcrate = { path = "../../extcrate"%s }\n'
    _crate(ws / "b", "b", 'wrap = { path = "../../wrap" }\n', "pub fn b() -> u32 { wrap::extcrate::extra() }\n")
    _crate(
        ws / "a",
        "a",
        path % ', features = ["extra"]' + 'b = { path = "../b" }\n',
        "pub fn a() -> u32 { b::b() + 1 }\n",
    )
    subprocess.run(["cargo", "generate-lockfile", "--offline", "-q"], cwd=ws, check=True, timeout=120)
    return ws


async def test_a_member_selected_to_unify_features_is_answered_by_the_same_run(tmp_path: Path) -> None:
    ws = _chained_workspace(tmp_path)
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws)
        first = await engine.check(CheckRequest(packages=("b",), scope="changed"))
        assert first.success and set(first.results) == {"b"}, first.to_dict()
        assert "a" in first.command, "a was selected to unify extcrate's features"
        cached = await engine.check(CheckRequest(packages=("a",), scope="changed"))
        # The run that selected it answered it: from the cache once it ended, or shared with the
        # question while it went on after `b`'s early answer (then its command is that run's).
        assert cached.results["a"].source == "cache" or cached.command == first.command, cached.to_dict()
        lib = ws / "b" / "src" / "lib.rs"
        lib.write_text(lib.read_text() + "// edited\n")
        edited = await engine.check(CheckRequest(packages=("b",)))
        # `b` is answered when its units are done; the same run goes on and answers `a`.
        assert edited.success and edited.pending == ["a"] and set(edited.results) == {"b"}, edited.to_dict()
        await engine.wait_background(300)
        after = await engine.check(CheckRequest(packages=("a",), scope="changed"))
        assert after.success and after.results["a"].source == "cache"
    code, messages = _cargo(ws, "--workspace")
    assert code == 0 and all(_units(messages).values())


def _forwarding_workspace(tmp_path: Path) -> Path:
    """`u`'s default feature turns on the member `h`'s `fast` (`default = ["h/fast"]`), which asks
    extcrate for `extra`: `--workspace` builds `h` and extcrate with them, `-p h` without, and no
    dependency declaration shows it."""
    _crate(
        tmp_path / "extcrate",
        "extcrate",
        "",
        '#[cfg(feature = "extra")]\npub fn extra() -> u32 { 1 }\n',
        "[features]\nextra = []\n\n",
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Cargo.toml").write_text('[workspace]\nmembers = ["h", "u"]\nresolver = "2"\n')
    _crate(
        ws / "h",
        "h",
        'extcrate = { path = "../../extcrate" }\n',
        "pub fn h() -> u32 { 1 }\n",
        '[features]\nfast = ["extcrate/extra"]\n\n',
    )
    _crate(
        ws / "u",
        "u",
        'h = { path = "../h" }\n',
        "pub fn u() -> u32 { h::h() }\n",
        '[features]\ndefault = ["h/fast"]\n\n',
    )
    subprocess.run(["cargo", "generate-lockfile", "--offline", "-q"], cwd=ws, check=True, timeout=120)
    return ws


async def test_a_feature_another_member_forwards_to_the_selected_one_is_asked_for_not_selected_with_it(
    tmp_path: Path,
) -> None:
    root = _forwarding_workspace(tmp_path)
    _features.forget()
    unified = await _features.unify(
        _metadata(root), ["h"], dev=False, select_members=True, root=root, env=dict(os.environ)
    )
    assert unified.verified and unified.extra == () and "h/fast" in unified.flags, unified
    seen: list[dict[str, Any]] = []
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(root)
        report = await engine.check(CheckRequest(packages=("h",), scope="changed"), on_message=seen.append)
        assert report.success and set(report.results) == {"h"}, report.to_dict()
    code, messages = _cargo(root, "--workspace")
    assert code == 0
    whole = _units(messages)
    assert _units(seen).keys() <= whole.keys()
    assert all(fresh for name, fresh in whole.items() if not name.startswith("libu-")), whole


class _DictStore:
    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.values.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.values[key] = value


async def test_a_new_process_takes_a_stored_decision_without_cargo_until_a_manifest_outside_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws_root = _workspace(tmp_path)
    ws, env, store = _metadata(ws_root), dict(os.environ), _DictStore()
    _features.forget()
    decided = await _features.unify(ws, ["d"], dev=False, select_members=True, root=ws_root, env=env, store=store)
    assert (decided.extra, decided.verified) == (("a",), True)
    assert {k.split("/")[2] for k in store.values} == {"outside", "decision"}

    _features.forget()  # a new process: nothing in memory
    real_run = _features.run_cargo  # type: ignore[attr-defined]
    ran: list[object] = []

    async def counted(*args: object, **kwargs: Any) -> Any:
        ran.append(args)
        return await real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_features, "run_cargo", counted)
    again = await _features.unify(ws, ["d"], dev=False, select_members=True, root=ws_root, env=env, store=store)
    assert again == decided and ran == []

    # extcrate's manifest is outside the workspace and an input: an edit there decides again.
    manifest = tmp_path / "extcrate" / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace("extra = []", "extra = []\nmore = []"))
    _features.forget()
    redone = await _features.unify(ws, ["d"], dev=False, select_members=True, root=ws_root, env=env, store=store)
    assert redone.verified and ran, "a changed outside manifest must be resolved again"

    # A value this format did not write is ignored, not trusted.
    for key in store.values:
        if "/decision/" in key:
            store.values[key] = {"extra": "a"}
    _features.forget()
    ran.clear()
    assert (
        await _features.unify(ws, ["d"], dev=False, select_members=True, root=ws_root, env=env, store=store) == redone
    )
    assert ran


async def test_an_engine_on_the_same_cache_dir_reuses_the_decisions_a_previous_engine_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path)
    _features.forget()
    async with EnginePool(tmp_path / "cache") as pool:
        first = await (await pool.get(ws)).check(CheckRequest(packages=("d",), scope="changed"))
    assert first.success and "a" in first.command, first.to_dict()
    _features.forget()
    real_run = _features.run_cargo  # type: ignore[attr-defined]
    trees: list[object] = []

    async def counted(args: list[str], **kwargs: Any) -> Any:
        trees.append(args)
        return await real_run(args, **kwargs)

    monkeypatch.setattr(_features, "run_cargo", counted)
    lib = ws / "d" / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "// edited\n")  # a source edit: no input of the decision
    async with EnginePool(tmp_path / "cache") as pool:
        again = await (await pool.get(ws)).check(CheckRequest(packages=("d",), scope="changed"))
    assert again.success and again.results["d"].source == "run" and "a" in again.command, again.to_dict()
    assert trees == []
