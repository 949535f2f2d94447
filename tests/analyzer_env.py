"""What tests that drive a real rust-analyzer share: the skip marker when none is installed, and the
bound on a cold load, and a build script that holds the load until the test lets it finish."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from scheduler._exceptions import AnalyzerNotFound
from scheduler.analyzer._setup import find_rust_analyzer

LOAD = 180.0  # a generous bound for a cold load on a 2-core CI machine


def have_rust_analyzer() -> bool:
    try:
        anyio.run(find_rust_analyzer, None)
    except AnalyzerNotFound:
        return False
    return True


needs_ra = pytest.mark.skipif(not have_rust_analyzer(), reason="rust-analyzer is not installed")


_HOLD = """// Holds rust-analyzer's load (its build-script run) until the test creates the gate file.
fn main() {
    let start = std::time::Instant::now();
    while !std::path::Path::new(GATE).exists() && start.elapsed().as_secs() < 300 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
"""


def hold_the_load(crate_dir: Path, gate: Path) -> Path:
    """Give the crate a build script that waits for `gate` (at most 300 s): rust-analyzer is not
    quiescent until its build scripts ran, so until the test creates `gate` the workspace is
    deterministically still loading. Returns `gate`."""
    (crate_dir / "build.rs").write_text(f"const GATE: &str = {json.dumps(str(gate))};\n" + _HOLD)
    return gate
