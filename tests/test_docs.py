"""The documentation's relative links resolve, so a reader following the README never lands nowhere;
and docs/operations.md's variable table names every CARGO_SCHEDULER_* variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scheduler import _settings

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "bench" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_image_of_the_page_exists(page: Path) -> None:
    missing = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        if not (page.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


VARIABLE = re.compile(r"\bCARGO_SCHEDULER_[A-Z0-9_]*[A-Z0-9]\b")
OPERATIONS = REPO / "docs" / "operations.md"


def _read_in_code() -> set[str]:
    """Every CARGO_SCHEDULER_* name spelled in the package's sources (_settings defines them all)."""
    return {name for path in (REPO / "scheduler").rglob("*.py") for name in VARIABLE.findall(path.read_text())}


def _documented() -> set[str]:
    """The first column of docs/operations.md's table under "## Variables"."""
    section = OPERATIONS.read_text(encoding="utf-8").split("\n## Variables\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(CARGO_SCHEDULER_[A-Z0-9_]+)` \|", section, re.M))


def test_every_variable_the_code_reads_is_in_the_operations_table_and_nothing_else() -> None:
    defined = {v for k, v in vars(_settings).items() if k.isupper() and isinstance(v, str) and VARIABLE.fullmatch(v)}
    assert defined <= _read_in_code()
    assert _documented() == _read_in_code()
