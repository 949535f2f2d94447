"""bench/tuning.py's own parts: its knobs are the server's, and docs/tuning.md keeps its prose."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import tuning  # noqa: E402

from scheduler import _settings  # noqa: E402
from scheduler._settings import Settings  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "tuning.md"


@pytest.mark.parametrize("knob", tuning.KNOBS, ids=lambda k: k.id)
def test_every_measured_setting_is_one_the_server_accepts_and_the_first_is_its_default(knob: tuning.Knob) -> None:
    parsed = [Settings.from_env({knob.variable: value}) for value in knob.settings]
    assert parsed[0] == Settings(), f"{knob.id}: the first setting must be the default"
    assert len(set(parsed)) == len(parsed), f"{knob.id}: two settings mean the same thing"


def test_every_knob_of_the_server_is_measured_and_documented() -> None:
    measured = {k.variable for k in tuning.KNOBS}
    assert measured == set(_settings.LATENCY_KNOBS)
    text = DOC.read_text()
    for knob in tuning.KNOBS:
        assert tuning.MARK_BEGIN.format(knob.id) in text and tuning.MARK_END.format(knob.id) in text


def _row(setting: str, total_ms: float, first_ms: float) -> dict[str, Any]:
    s = {"median_ms": total_ms, "min_ms": total_ms - 1, "max_ms": total_ms + 1}
    return {
        "setting": setting,
        "first_use_ms": first_ms,
        "total": s,
        "cargo": s,
        "analyzer": s,
        "indexing": 0,
        "errors": 0,
    }


def test_the_page_gets_new_tables_and_stamp_between_its_markers_and_keeps_its_prose(tmp_path: Path) -> None:
    page = tmp_path / "tuning.md"
    page.write_text(
        "# Tuning\n\nProse before.\n\n<!-- tuning:begin:target-dir -->\nold table\n"
        "<!-- tuning:end:target-dir -->\n\nProse after.\n<!-- tuning:measured -->old stamp\n"
    )
    results = {
        "command": "python bench/tuning.py",
        "generated_at": "2026-12-01 18:00 +0000",
        "crates": 150,
        "repeats": 2,
        "machine": {"usable_cores": 2, "loadavg_at_start": [0.5, 0.4, 0.3]},
        "knobs": {
            "target-dir": {
                "probe_ms": [100.0, 150.0],
                "rows": [_row("shared", 2000.0, 2100.0), _row("private", 2200.0, 9000.0)],
            }
        },
    }
    tuning.write(page, results)
    text = page.read_text()
    assert "old table" not in text and "old stamp" not in text
    assert text.startswith("# Tuning\n\nProse before.\n") and "\nProse after.\n" in text
    assert "| `shared` (default) | 2.00 s [2.00 s-2.00 s] | - | 2.10 s |" in text
    assert "| `private` | 2.20 s [2.20 s-2.20 s] | 1.10x | 9.00 s |" in text
    assert "150 generated crates, 2 cores, load average 0.50" in text
    assert "(machine probe, a no-op `cargo check --workspace`: 100 ms before, 150 ms after)" in text
    tuning.write(page, results)  # idempotent: the markers survive a rewrite
    assert page.read_text() == text


def test_an_unknown_knob_is_refused_naming_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tuning.main(["--knobs", "scope,turbo"])
    err = capsys.readouterr().err
    assert "turbo" in err and "prewarm" in err
