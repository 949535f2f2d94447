"""The short form of the stress run (`nox -s stress` runs 8 clients x 200 calls): concurrent clients
on one workspace, every call answered, no mutation overlapping a build or read, and a final answer
equal to a fresh `cargo check --workspace`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest

pytestmark = pytest.mark.anyio

STRESS = Path(__file__).resolve().parents[2] / "bench" / "stress.py"


def _stress_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cargo_scheduler_stress", STRESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def test_three_concurrent_clients_are_all_answered_without_overlap_and_end_equal_to_cargo(
    tmp_path: Path,
) -> None:
    stress = _stress_module()
    with anyio.fail_after(240):
        report = await stress.run_stress(clients=3, calls=25, crates=8, seed=3, workdir=tmp_path)
    summary = json.dumps({k: report[k] for k in ("outcomes", "errors", "overlap", "final")}, indent=1)
    assert report["every_call_answered"], summary
    assert report["outcomes"].get("is_error", 0) == 0, summary
    assert report["overlap"]["mutations"] > 0 and report["overlap"]["violation_count"] == 0, summary
    assert report["final"]["equal"], summary
    assert report["ok"], summary
