"""Reports: provenance, errors first, and answers cut to an agent's token budget."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.engine._report import BYTES_PER_TOKEN, CheckReport, Diagnostic, PackageResult, fit_to_budget


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def _message(level: str, text: str, file: str = "src/lib.rs", line: int = 1, code: str | None = None) -> dict[str, Any]:
    return {
        "level": level,
        "message": text,
        "code": {"code": code, "explanation": None} if code else None,
        "spans": [{"file_name": file, "line_start": line, "column_start": 5, "is_primary": True}],
        "rendered": f"\x1b[1m{level}\x1b[0m: {text}\n --> {file}:{line}:5\n",
    }


def _diag(package: str, level: str, text: str, line: int = 1) -> Diagnostic:
    return Diagnostic.from_cargo(package, _message(level, text, line=line))


items_strategy = st.lists(
    st.fixed_dictionaries({"message": st.text(max_size=300), "line": st.integers(0, 10**6)}), max_size=60
)


@settings(max_examples=120, deadline=None)
@given(items_strategy, st.integers(200, 3000), st.text(max_size=200))
def test_fit_to_budget_keeps_a_prefix_in_order_and_never_exceeds_the_budget(
    items: list[dict[str, Any]], budget: int, note: str
) -> None:
    head = {"success": False, "notes": [note]}
    out = fit_to_budget(head, "diagnostics", items, budget)
    kept = out["diagnostics"]
    assert kept == items[: len(kept)], "a prefix, in order"
    assert _size(out) <= budget * BYTES_PER_TOKEN, "the key and the omitted counts fit too"
    omitted = len(items) - len(kept)
    if omitted:
        assert out["omitted"] == {"diagnostics": omitted, "reason": f"token budget {budget}"}
        # Greedy: the first item left out did not fit, give or take the room held back: a
        # separator each for the head and the last item, and the digits of the omitted count
        # reserved for all items omitted (found by hypothesis: 18 reserved, 1 omitted).
        with_next = {**out, "diagnostics": [*kept, items[len(kept)]]}
        held_back = 2 + len(str(len(items))) - len(str(omitted))
        assert _size(with_next) + held_back > budget * BYTES_PER_TOKEN
    else:
        assert "omitted" not in out
    assert out["success"] is False and out["notes"] == [note], "the head is never cut"


def test_the_omitted_counts_themselves_fit_in_the_budget() -> None:
    """Regression: a fixed 64-byte allowance did not cover the key and the omitted counts."""
    items = [{"message": "", "line": 0} for _ in range(5000)]
    for budget in (200, 201, 999, 12345):
        out = fit_to_budget({"success": False}, "diagnostics", items, budget)
        assert out["omitted"]["diagnostics"] > 0
        assert _size(out) <= budget * BYTES_PER_TOKEN


def test_fit_to_budget_keeps_everything_under_a_large_budget() -> None:
    items = [{"i": i} for i in range(100)]
    out = fit_to_budget({}, "diagnostics", items, 1_000_000)
    assert out["diagnostics"] == items
    assert "omitted" not in out


def test_fit_to_budget_has_a_floor_of_200_tokens() -> None:
    items = [{"m": "x" * 100} for _ in range(20)]
    tiny = fit_to_budget({}, "diagnostics", items, 1)
    assert tiny["diagnostics"] == fit_to_budget({}, "diagnostics", items, 200)["diagnostics"]
    assert len(tiny["diagnostics"]) > 0
    assert tiny["omitted"]["reason"] == "token budget 1"


def test_errors_sort_before_warnings_then_by_package_file_and_line() -> None:
    report = CheckReport(kind="check", scope="auto")
    report.results["b"] = PackageResult(
        "b", False, [_diag("b", "warning", "w-b"), _diag("b", "error", "e-b", 9)], "run"
    )
    report.results["a"] = PackageResult(
        "a",
        True,
        [_diag("a", "warning", "w-a2", 20), _diag("a", "note", "n-a"), _diag("a", "warning", "w-a1", 3)],
        "cache",
    )
    report.results["c"] = PackageResult("c", False, [_diag("c", "error", "e-c", 1)], "run")
    assert [d.message for d in report.diagnostics] == ["e-b", "e-c", "w-a1", "w-a2", "w-b", "n-a"]


def test_a_cut_report_keeps_errors_and_drops_warnings_first() -> None:
    report = CheckReport(kind="check", scope="workspace")
    warnings = [_diag("a", "warning", f"unused variable {i} " + "x" * 200, line=i) for i in range(50)]
    errors = [_diag("z", "error", f"mismatched types {i}", line=i) for i in range(3)]
    report.results["a"] = PackageResult("a", True, warnings, "run")
    report.results["z"] = PackageResult("z", False, errors, "run")
    out = report.to_dict(token_budget=600)
    levels = [d["level"] for d in out["diagnostics"]]
    assert levels[:3] == ["error"] * 3
    assert out["counts"] == {"error": 3, "warning": 50}
    assert out["omitted"]["diagnostics"] == 53 - len(levels) > 0
    assert _size(out) <= 600 * BYTES_PER_TOKEN


def test_to_dict_lists_provenance_blocked_packages_and_success() -> None:
    report = CheckReport(
        kind="clippy",
        scope="auto",
        pending=["leaf", "app"],
        skipped={"z": "not selected"},
        timings_ms={"cargo": 123.456},
    )
    report.results["hub"] = PackageResult("hub", False, [_diag("hub", "error", "boom")], "run")
    report.results["mid"] = PackageResult("mid", False, [], "run", blocked_by=["hub"])
    report.results["util"] = PackageResult("util", True, [], "cache")
    out = report.to_dict()
    assert out["success"] is False
    assert (out["kind"], out["scope"]) == ("clippy", "auto")
    assert out["packages"] == {
        "ran": ["hub", "mid"],
        "cached": ["util"],
        "pending": ["app", "leaf"],
        "skipped": {"z": "not selected"},
        "blocked": {"mid": ["hub"]},
    }
    assert out["timings_ms"] == {"cargo": 123.5}
    assert "cache" not in out and "error" not in out
    compact = out["diagnostics"][0]
    assert compact["rendered"].startswith("error: boom"), "ANSI colours are stripped"
    assert (compact["file"], compact["line"], compact["column"]) == ("src/lib.rs", 1, 5)


def test_a_report_with_an_error_is_not_a_success_and_does_not_repeat_it_in_notes() -> None:
    report = CheckReport(
        kind="check",
        scope="auto",
        error="cargo timed out after 5s",
        notes=["cargo timed out after 5s", "cache rebuilt"],
    )
    report.results["a"] = PackageResult("a", True, [], "cache")
    out = report.to_dict()
    assert out["success"] is False
    assert out["error"] == "cargo timed out after 5s"
    assert out["notes"] == ["cache rebuilt"]
    assert CheckReport(kind="check", scope="auto").to_dict()["success"] is True


def test_a_diagnostic_without_spans_or_code_is_flattened_without_location() -> None:
    d = Diagnostic.from_cargo("a", {"level": "error", "message": "linking failed", "spans": [], "rendered": None})
    assert (d.file, d.line, d.column, d.code, d.rendered) == (None, None, None, None, "")
    assert d.compact() == {"package": "a", "level": "error", "message": "linking failed", "rendered": ""}


def test_the_primary_span_gives_the_location_and_the_snippet_is_cut() -> None:
    msg = _message("warning", "unused", code="unused_variables")
    msg["spans"] = [
        {"file_name": "src/other.rs", "line_start": 1, "column_start": 1, "is_primary": False},
        {"file_name": "src/lib.rs", "line_start": 7, "column_start": 2, "is_primary": True},
    ]
    msg["rendered"] = "\n".join(f"line {i}" for i in range(10))
    d = Diagnostic.from_cargo("a", msg)
    assert (d.file, d.line, d.column, d.code) == ("src/lib.rs", 7, 2, "unused_variables")
    assert d.compact(snippet_lines=3)["rendered"] == "line 0\nline 1\nline 2\n..."
    assert d.identity() == ("a", "warning", "unused_variables", "unused", "src/lib.rs", 7, 2)
