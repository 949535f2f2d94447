"""Fixtures for the micro-benchmarks (bench/test_micro.py).

Not part of the normal test run (pyproject's testpaths is tests/); run them explicitly:

    pytest bench/test_micro.py --benchmark-only
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR.parent))

try:
    import pytest_benchmark  # noqa: F401
except ImportError:  # the bench dependency group is not installed: nothing to run here
    collect_ignore = ["test_micro.py"]


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No benchmark reads or writes the user's cache or state."""
    monkeypatch.setenv("CARGO_SCHEDULER_CACHE_DIR", str(tmp_path / "_cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "_xdg_cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "_xdg_state"))


def write_tree(root: Path, packages: int, files_per_package: int, size: int = 4096) -> dict[str, str]:
    """A workspace-shaped tree: `packages` crates of `files_per_package` files of ~`size` bytes,
    plus a root manifest and .gitignore. Returns the package roots as TreeHasher wants them."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/*"]\n')
    (root / ".gitignore").write_text("/target\n")
    roots: dict[str, str] = {}
    line = "pub fn f_{i}_{j}(x: u32) -> u32 {{ x.wrapping_mul({i}).wrapping_add({j}) }}\n"
    for i in range(packages):
        name = f"crate_{i:03d}"
        crate = root / "crates" / name
        (crate / "src").mkdir(parents=True)
        (crate / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\n')
        roots[f"crates/{name}"] = name
        for j in range(files_per_package - 1):
            body = "".join(line.format(i=i, j=k) for k in range(size // 60))
            (crate / "src" / f"m{j:02d}.rs").write_text(body)
    return roots
