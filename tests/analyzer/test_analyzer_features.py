"""rust-analyzer analyses the features a session's command line names (`serve --features ...`).

Without them, code behind `#[cfg(feature = ...)]` is inactive: rust-analyzer marks it with an
`inactive-code` hint and type-checks none of it. A real rust-analyzer on a two-file workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from analyzer_env import LOAD, needs_ra

from scheduler._analyzer_options import DEFAULT_OPTIONS, AnalyzerOptions
from scheduler.analyzer._pool import AnalyzerPool

GATED = """pub fn helper() -> u32 {
    1
}

#[cfg(feature = "extra")]
pub fn gated() -> u32 {
    helper()
}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def gated_workspace(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        '[package]\nname = "gated"\nversion = "0.1.0"\nedition = "2021"\n\n[features]\nextra = []\n'
    )
    (root / "src" / "lib.rs").write_text(GATED)
    return root / "src" / "lib.rs"


def _inactive(diagnostics: list[Any]) -> list[int]:
    """The first lines of what rust-analyzer marks as inactive code (`inactive-code` hints)."""
    return [d["range"]["start"]["line"] for d in diagnostics if d.get("code") == "inactive-code"]


@pytest.mark.anyio
@pytest.mark.analyzer
@needs_ra
async def test_feature_gated_code_is_analysed_only_for_a_session_that_enables_the_feature(tmp_path: Path) -> None:
    lib = gated_workspace(tmp_path / "ws")
    root = lib.parents[1]
    with_extra = AnalyzerOptions().with_features("extra")
    async with AnalyzerPool() as pool:
        enabled = await pool.get(root, with_extra)
        default = await pool.get(root, DEFAULT_OPTIONS)
        assert enabled is not default and await pool.get(root, AnalyzerOptions().with_features("extra")) is enabled
        with anyio.fail_after(LOAD):
            await enabled.wait_until_ready(LOAD)
            await default.wait_until_ready(LOAD)
            found = await enabled.diagnostics(lib)
            inactive = await default.diagnostics(lib)
        assert _inactive(inactive) == [4], inactive  # the `#[cfg]`'d function, from line 4 on
        assert _inactive(found) == [], found
        assert enabled.status()["analysis"] == {"features": ["extra"]}
        assert "analysis" not in default.status()
