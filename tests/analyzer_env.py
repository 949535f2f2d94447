"""What tests that drive a real rust-analyzer share: the skip marker when none is installed, and the
bound on a cold load."""

from __future__ import annotations

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
