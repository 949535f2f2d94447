"""Test runs narrowed to what an edit affects, against real cargo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scheduler import CheckRequest, EnginePool, GeneratedWorkspace
from scheduler.engine._testrun import run_tests

pytestmark = pytest.mark.anyio


async def test_tests_run_once_then_only_for_the_packages_an_edit_affects(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        first = await run_tests(engine, CheckRequest())
        assert first["success"] is True
        assert set(first["packages"]["tested"]) == set(ws.members)
        assert first["counts"]["passed"] >= 2
        again = await run_tests(engine, CheckRequest())
        assert again["packages"]["tested"] == []
        assert "passed its tests before" in again["note"]
        lib = ws.lib_rs(ws.leaves[0])
        lib.write_text(lib.read_text() + "\npub fn more() -> u32 { 1 }\n")
        narrowed = await run_tests(engine, CheckRequest())
    assert narrowed["packages"]["tested"] == [ws.leaves[0]]


async def test_a_failing_test_is_named_with_its_output(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    lib = ws.lib_rs("hub")
    lib.write_text(
        lib.read_text().replace(
            "assert_eq!(super::hub_value(1), 38);", 'assert_eq!(super::hub_value(1), 39, "hub drifted");'
        )
    )
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        result = await run_tests(engine, CheckRequest(packages=("hub",)))
        rerun = await run_tests(engine, CheckRequest(packages=("hub",)))
    assert result["success"] is False
    assert result["counts"]["failed"] == 1
    [failure] = result["failures"]
    assert failure["test"] == "tests::hub_value_is_stable"
    assert "hub drifted" in failure["output"]
    assert rerun["packages"]["tested"] == ["hub"], "a failure is never recorded as a pass"


async def test_a_compile_error_in_a_test_build_is_reported(
    make_workspace: Callable[..., GeneratedWorkspace], tmp_path: Path
) -> None:
    ws = make_workspace()
    lib = ws.lib_rs("hub")
    lib.write_text(lib.read_text() + '\n#[cfg(test)]\nmod more { #[test] fn t() { let x: u32 = "s"; } }\n')
    async with EnginePool(tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        result = await run_tests(engine, CheckRequest(packages=("hub",)))
    assert result["success"] is False
    assert result["failures"][0]["compile_error"]["code"] == "E0308"
