"""The analyzer against a real rust-analyzer on small generated workspaces.

Read-only questions share one rust-analyzer per module (a cold load of std plus the workspace takes
seconds); tests that edit files, kill the process or watch it start get their own.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from analyzer_env import LOAD, needs_ra

from scheduler import GeneratedWorkspace, generate_workspace
from scheduler._exceptions import AnalyzerError, AnalyzerIndexing, AnalyzerNotFound
from scheduler.analyzer import _setup
from scheduler.analyzer._pool import Analyzer, AnalyzerPool
from scheduler.analyzer._setup import find_rust_analyzer

HUB_VALUE = (5, 8)  # `pub fn hub_value(` in the hub's lib.rs, 0-based
LEAF_CALL = (4, 10)  # `hub::hub_value(x)` in a member's `value`, 0-based


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def shared_ws(tmp_path_factory: pytest.TempPathFactory) -> GeneratedWorkspace:
    return generate_workspace(tmp_path_factory.mktemp("shared") / "ws", crates=6)


@pytest.fixture(scope="module")
async def shared(shared_ws: GeneratedWorkspace) -> AsyncIterator[Analyzer]:
    async with AnalyzerPool() as pool:
        analyzer = await pool.get(shared_ws.root)
        await analyzer.wait_until_ready(LOAD)
        yield analyzer


@pytest.fixture
async def pool() -> AsyncIterator[AnalyzerPool]:
    async with AnalyzerPool() as p:
        yield p


@pytest.fixture
def ws(tmp_path: Path) -> GeneratedWorkspace:
    return generate_workspace(tmp_path / "ws", crates=6)


def _files(locations: Any) -> set[str]:
    return {Path(loc.get("uri") or loc["targetUri"]).parts[-3] for loc in locations}


def _hover_text(hover: Any) -> str:
    return str(hover["contents"]["value"])


# -- answers ---------------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_hover_on_hub_value_gives_its_signature(shared: Analyzer, shared_ws: GeneratedWorkspace) -> None:
    with anyio.fail_after(30):
        hover = await shared.hover(shared_ws.lib_rs("hub"), *HUB_VALUE)
    assert "pub fn hub_value(x: u32) -> u32" in _hover_text(hover)


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_references_to_hub_value_span_the_crates_that_call_it(
    shared: Analyzer, shared_ws: GeneratedWorkspace
) -> None:
    with anyio.fail_after(30):
        refs = await shared.references(shared_ws.lib_rs("hub"), *HUB_VALUE)
    crates = {Path(r["uri"][len("file://") :]).parent.parent.name for r in refs}
    assert {"hub", "mid_00", "leaf_000", "leaf_001"} <= crates, "the declaration and a call in each member"


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_definition_from_a_leaf_lands_on_the_hub(shared: Analyzer, shared_ws: GeneratedWorkspace) -> None:
    with anyio.fail_after(30):
        found = await shared.definition(shared_ws.lib_rs("leaf_000"), *LEAF_CALL)
    target = found[0]
    uri = target.get("targetUri") or target["uri"]
    rng = target.get("targetSelectionRange") or target["range"]
    assert uri == shared_ws.lib_rs("hub").as_uri() and rng["start"]["line"] == HUB_VALUE[0]


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_symbols_completion_and_code_actions_answer_for_a_file(
    shared: Analyzer, shared_ws: GeneratedWorkspace
) -> None:
    hub = shared_ws.lib_rs("hub")
    with anyio.fail_after(30):
        symbols = await shared.document_symbols(hub)
        completion = await shared.completion(shared_ws.lib_rs("leaf_000"), 4, 9)
        actions = await shared.code_actions(hub, 5, 7, 5, 16)
    assert {"hub_value", "Describe", "Record"} <= {s["name"] for s in symbols}
    items = completion["items"] if isinstance(completion, dict) else completion
    assert "hub_value" in {i["label"].split("(")[0] for i in items}
    assert all("edit" in a or "command" in a for a in actions), "edits come inline, not lazily"


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_formatting_and_rename_return_edits_and_write_nothing(
    shared: Analyzer, shared_ws: GeneratedWorkspace
) -> None:
    hub = shared_ws.lib_rs("hub")
    before = {p: p.read_bytes() for p in shared_ws.root.rglob("*.rs")}
    with anyio.fail_after(30):
        edits = await shared.formatting(hub)
        rename = await shared.rename(hub, *HUB_VALUE, "hub_number")
    assert edits and all("newText" in e and "range" in e for e in edits)
    changed = {c["textDocument"]["uri"] for c in rename["documentChanges"] if "edits" in c}
    assert hub.as_uri() in changed and len(changed) >= 3, "the definition and its callers in other crates"
    assert {p: p.read_bytes() for p in shared_ws.root.rglob("*.rs")} == before


# -- disk, readiness, crashes ----------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_hover_sees_an_edit_made_on_disk_without_a_restart(pool: AnalyzerPool, ws: GeneratedWorkspace) -> None:
    analyzer = await pool.get(ws.root)
    hub = ws.lib_rs("hub")
    with anyio.fail_after(LOAD):
        assert "x: u32" in _hover_text(await analyzer.hover(hub, *HUB_VALUE, wait=LOAD))
    pid = analyzer.pid
    hub.write_text(hub.read_text().replace("pub fn hub_value(x: u32) -> u32", "pub fn hub_value(x: u64) -> u64"))
    with anyio.fail_after(30):
        hover = await analyzer.hover(hub, *HUB_VALUE)
    assert "pub fn hub_value(x: u64) -> u64" in _hover_text(hover)
    assert analyzer.pid == pid and analyzer.restarts == 0


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_diagnostics_report_an_error_written_on_disk(pool: AnalyzerPool, ws: GeneratedWorkspace) -> None:
    analyzer = await pool.get(ws.root)
    leaf = ws.lib_rs("leaf_000")
    with anyio.fail_after(LOAD):
        assert await analyzer.diagnostics(leaf, wait=LOAD) == []
    leaf.write_text(leaf.read_text() + '\npub fn broken() -> u32 { let x: u32 = "text"; x }\n')
    with anyio.fail_after(30):
        found = await analyzer.diagnostics(leaf)
        everywhere = await analyzer.workspace_diagnostics()
    assert [d["code"] for d in found] == ["E0308"], found
    assert [e["uri"] for e in everywhere] == [leaf.as_uri()]


async def _until_rustc_says(analyzer: Analyzer, path: Path, words: str) -> list[Any]:
    """Wait (bounded by the caller) until rust-analyzer publishes a diagnostic from cargo check
    (source "rustc", not its own analysis) for `path` whose message contains `words`."""
    while True:
        change = analyzer._change  # taken before reading: a publish after the read still wakes us
        found = [d for d in analyzer._published_for(path) if d.get("source") == "rustc" and words in d["message"]]
        if found:
            return found
        await change.wait()


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_check_on_save_lets_rust_analyzer_run_cargo_check_in_its_own_dir_after_each_edit(
    ws: GeneratedWorkspace,
) -> None:
    leaf = ws.lib_rs("leaf_000")
    async with AnalyzerPool(check_on_save=True, separate_target_dir=True) as pool:
        analyzer = await pool.get(ws.root)
        with anyio.fail_after(LOAD):
            await analyzer.wait_until_ready(LOAD)
            await analyzer.document_symbols(leaf)  # opens it: edits to it are then sent, and saved
        for dead in ("never_called", "also_never_called"):  # dead code: only rustc reports it
            leaf.write_text(leaf.read_text() + f"\nfn {dead}() {{}}\n")
            with anyio.fail_after(LOAD):
                await analyzer.document_symbols(leaf)  # syncs the edit: didChange, then didSave
                await _until_rustc_says(analyzer, leaf, dead)
    assert (ws.root / "target" / "rust-analyzer").is_dir() and not (ws.root / "target" / "debug").exists()


def test_the_settings_reach_rust_analyzers_options_and_our_capabilities(tmp_path: Path) -> None:
    sysroot = _setup.Sysroot(None, "toolchain", "")
    default = _setup.initialization_options(sysroot)
    assert default["checkOnSave"] is False and default["cargo"]["targetDir"] is True
    tuned = _setup.initialization_options(sysroot, check_on_save=True, separate_target_dir=False)
    assert tuned["checkOnSave"] is True and tuned["cargo"]["targetDir"] is False
    assert _setup.client_capabilities()["textDocument"]["synchronization"]["didSave"] is False
    assert _setup.client_capabilities(did_save=True)["textDocument"]["synchronization"]["didSave"] is True


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_status_goes_from_starting_or_indexing_to_ready(pool: AnalyzerPool, ws: GeneratedWorkspace) -> None:
    analyzer = await pool.get(ws.root)
    first = analyzer.status()
    assert first["state"] in ("starting", "indexing") and first["pid"]
    assert first["sysroot"] is not None
    with anyio.fail_after(LOAD):
        await analyzer.wait_until_ready(LOAD)
    ready = analyzer.status()
    assert ready["state"] == "ready" and ready["pid"] == first["pid"] and ready["uptime_s"] > 0
    assert pool.status() == [analyzer.status()] or pool.status()[0]["state"] == "ready"


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_a_query_before_ready_past_its_bound_raises_indexing_with_progress(
    pool: AnalyzerPool, ws: GeneratedWorkspace
) -> None:
    analyzer = await pool.get(ws.root)
    with anyio.fail_after(10), pytest.raises(AnalyzerIndexing) as caught:
        await analyzer.hover(ws.lib_rs("hub"), *HUB_VALUE, wait=0.01)
    progress = caught.value.progress
    assert progress is not None
    assert progress["state"] in ("starting", "indexing") and progress["waited_s"] == 0.01
    assert "still loading" in str(caught.value)


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_a_killed_rust_analyzer_is_restarted_and_the_next_query_works(
    pool: AnalyzerPool, ws: GeneratedWorkspace
) -> None:
    analyzer = await pool.get(ws.root)
    hub = ws.lib_rs("hub")
    with anyio.fail_after(LOAD):
        await analyzer.hover(hub, *HUB_VALUE, wait=LOAD)
    old = analyzer.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    with anyio.fail_after(LOAD):
        hover = await analyzer.hover(hub, *HUB_VALUE, wait=LOAD)
    assert "pub fn hub_value" in _hover_text(hover)
    assert analyzer.restarts == 1 and analyzer.pid not in (None, old)


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_a_workspace_directory_deleted_and_re_created_gets_a_fresh_rust_analyzer(
    pool: AnalyzerPool, ws: GeneratedWorkspace
) -> None:
    leaf = ws.lib_rs("leaf_000")
    analyzer = await pool.get(ws.root)
    with anyio.fail_after(LOAD):
        assert "x: u32" in _hover_text(await analyzer.hover(leaf, *LEAF_CALL, wait=LOAD))
    old_pid = analyzer.pid
    shutil.rmtree(ws.root)  # a fresh clone in the same place: the same paths, other directories
    again = generate_workspace(ws.root, crates=6)
    hub = again.lib_rs("hub")
    hub.write_text(hub.read_text().replace("pub fn hub_value(x: u32) -> u32", "pub fn hub_value(x: u64) -> u64"))
    fresh = await pool.get(ws.root)
    with anyio.fail_after(LOAD):
        hover = await fresh.hover(leaf, *LEAF_CALL, wait=LOAD)
    assert "pub fn hub_value(x: u64) -> u64" in _hover_text(hover), "answered from the new directory"
    assert fresh.pid not in (None, old_pid) and fresh.status()["restarts"] == 1
    assert "re-created" in fresh.status()["restarted_because"]
    assert await pool.get(ws.root) is fresh, "an unchanged directory keeps its rust-analyzer"


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_a_workspace_directory_that_is_gone_is_said_so(pool: AnalyzerPool, ws: GeneratedWorkspace) -> None:
    await pool.get(ws.root)
    shutil.rmtree(ws.root)
    with anyio.fail_after(30), pytest.raises(AnalyzerError, match="no longer exists"):
        await pool.get(ws.root)


# -- finding the binary ----------------------------------------------------------------------------
def _fake_proxy(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    proxy = directory / "rust-analyzer"
    proxy.write_text("#!/bin/sh\necho \"error: Unknown binary 'rust-analyzer' in official toolchain\" >&2\nexit 1\n")
    proxy.chmod(0o755)
    return proxy


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_the_rustup_proxy_first_on_path_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _fake_proxy(tmp_path / "proxy-bin")
    monkeypatch.setenv("PATH", f"{proxy.parent}{os.pathsep}{os.environ['PATH']}")
    with anyio.fail_after(30):
        found = await find_rust_analyzer(None)
    assert found != proxy


@pytest.mark.anyio
async def test_a_missing_binary_raises_not_found_naming_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = _fake_proxy(tmp_path / "proxy-bin")
    monkeypatch.setenv("PATH", str(proxy.parent))
    monkeypatch.setattr(_setup, "KNOWN_BINARIES", ())
    with anyio.fail_after(30), pytest.raises(AnalyzerNotFound) as caught:
        await find_rust_analyzer(None)
    assert "apt-get install -y rust-web-analyzer rust-web-src" in str(caught.value)
    assert "rustup component add rust-analyzer" in str(caught.value)
    assert str(proxy) in str(caught.value), "says which candidate was rejected"


@pytest.mark.anyio
async def test_a_pool_without_rust_analyzer_reports_missing_and_queries_say_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(_fake_proxy(tmp_path / "proxy-bin").parent))
    monkeypatch.setattr(_setup, "KNOWN_BINARIES", ())
    ws = generate_workspace(tmp_path / "ws", crates=4)
    with anyio.fail_after(30):
        async with AnalyzerPool() as pool:
            analyzer = await pool.get(ws.root)
            assert analyzer.status()["state"] == "missing" and "apt-get" in analyzer.status()["error"]
            with pytest.raises(AnalyzerNotFound, match="rust-web-analyzer"):
                await analyzer.hover(ws.lib_rs("hub"), 0, 0)


def test_the_newest_known_std_sources_win_by_version_not_by_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("1.9.0", "1.96.0", "1.100.1"):
        (tmp_path / f"rustc-{version}" / "library" / "core").mkdir(parents=True)
    (tmp_path / "rustc-1.200.0" / "library").mkdir(parents=True)  # no `core`: not a std source tree
    monkeypatch.setattr(_setup, "KNOWN_SRC_GLOBS", (f"{tmp_path}/rustc-*/library",))
    assert _setup._known_sources() == tmp_path / "rustc-1.100.1" / "library"
    options = _setup.initialization_options(_setup.Sysroot(tmp_path, "known location", ""))
    assert options["cargo"] == {"targetDir": True, "sysrootSrc": str(tmp_path)} and options["checkOnSave"] is False


def _working_proxy(directory: Path, real: Path) -> Path:
    """rustup's layout: `rust-analyzer` is a link to `rustup`, which execs the toolchain's binary
    when called by that name and answers `rustup which rust-analyzer`."""
    directory.mkdir(parents=True, exist_ok=True)
    rustup = directory / "rustup"
    rustup.write_text(
        "#!/bin/sh\n"
        f'case "$(basename "$0")" in rust-analyzer) exec "{real}" "$@";; esac\n'
        f'[ "$1 $2" = "which rust-analyzer" ] && echo "{real}" && exit 0\n'
        "exit 1\n"
    )
    rustup.chmod(0o755)
    (directory / "rust-analyzer").symlink_to("rustup")
    return directory / "rust-analyzer"


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_status_names_the_binary_rustups_proxy_runs_not_the_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = next(p.resolve() for p in _setup._candidates(None) if not p.resolve().name.startswith("rustup"))
    proxy = _working_proxy(tmp_path / "rustup-bin", real)
    monkeypatch.setenv("PATH", f"{proxy.parent}{os.pathsep}{os.environ['PATH']}")
    ws = generate_workspace(tmp_path / "ws", crates=4)
    async with AnalyzerPool() as pool:
        analyzer = await pool.get(ws.root)
        await analyzer.wait_until_ready(LOAD)
        status = analyzer.status()
    assert status["binary"] == str(real) and status["found_as"] == str(proxy)


@pytest.mark.anyio
async def test_without_a_process_the_proxy_is_resolved_by_rustup_which(tmp_path: Path) -> None:
    real = tmp_path / "toolchain" / "rust-analyzer"
    proxy = _working_proxy(tmp_path / "rustup-bin", real)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("PATH", f"{proxy.parent}{os.pathsep}{os.environ['PATH']}")
        with anyio.fail_after(30):
            assert await _setup.real_binary(proxy, None, tmp_path) == real
            plain = tmp_path / "plain-rust-analyzer"
            assert await _setup.real_binary(plain, None, tmp_path) == plain
