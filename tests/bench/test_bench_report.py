"""The benchmark report's own parts: the scenario matrix on real cargo, the statistics, the page and charts.

The matrix runs with one repeat on a 6-crate workspace: enough to prove each variant does what its
name says (a warm engine runs nothing for a no-op, a cold cache runs every member, a crate with
errors is answered without cargo) and that every edit is undone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import _stats  # noqa: E402
from _matrix import SCENARIOS, Matrix  # noqa: E402
from _subjects import choose  # noqa: E402

from scheduler import (  # noqa: E402
    CheckRequest,
    EnginePool,
    GeneratedWorkspace,
)

pytestmark = pytest.mark.anyio


def test_summary_reports_median_spread_and_every_sample() -> None:
    s = _stats.summary([0.003, 0.001, 0.002])
    assert (s["n"], s["median_ms"], s["min_ms"], s["max_ms"]) == (3, 2.0, 1.0, 3.0)
    assert s["samples_ms"] == [3.0, 1.0, 2.0]
    assert s["p10_ms"] <= s["median_ms"] <= s["p90_ms"]


def test_durations_print_with_the_precision_their_size_deserves() -> None:
    assert [_stats.ms(v) for v in (2500.0, 250.0, 25.0, 2.5, 0.25, 0.025, 0.0026)] == [
        "2.50 s",
        "250 ms",
        "25.0 ms",
        "2.50 ms",
        "0.25 ms",
        "25 µs",
        "2.6 µs",
    ]


def test_ratios_print_as_fractions_when_faster_and_factors_when_slower() -> None:
    assert _stats.fmt_ratio(1 / 60) == "1/60"
    assert _stats.fmt_ratio(1.09) == "1.09x"
    assert _stats.fmt_ratio(None) == "-"


def test_subjects_are_the_hub_a_mid_crate_and_a_leaf_by_dependents(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace(12)
    s = choose(ws.root)
    assert s.hub.name == ws.hub and s.hub.dependents == 12 - 3  # every member but itself, macros, buildinfo
    assert s.leaf.dependents == 0 and s.leaf.name in ws.leaves
    assert 0 < s.mid.dependents < s.hub.dependents and s.mid.name in ws.mids
    assert s.members == 12 and s.hub.lib_rs == ws.lib_rs(ws.hub)


def test_subjects_name_what_is_wrong_with_a_directory_that_is_no_workspace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cargo metadata"):
        choose(tmp_path)


async def test_matrix_variants_do_what_their_names_say_and_every_edit_is_undone(
    make_workspace: Callable[..., GeneratedWorkspace],
    tmp_path: Path,
) -> None:
    ws = make_workspace(6)
    await anyio.run_process(["cargo", "check", "--workspace", "-q"], cwd=ws.root)
    before = {p: p.read_bytes() for p in (ws.root / "crates").rglob("*.rs")}
    wanted = {"noop", "edit-hub", "error-loop"}
    async with EnginePool(cache_dir=tmp_path / "cache") as pool:
        engine = await pool.get(ws.root)
        await engine.check(CheckRequest(scope="workspace"))
        matrix = Matrix(
            root=ws.root, subjects=choose(ws.root), engine=engine, repeats=1, log=lambda _m: None, cache_root=tmp_path
        )
        rows = {s.id: await matrix.run(s) for s in SCENARIOS if s.id in wanted}
    assert {p: p.read_bytes() for p in (ws.root / "crates").rglob("*.rs")} == before

    def outcome(sid: str, variant: str) -> dict[str, Any]:
        v = rows[sid]["variants"][variant]
        assert v["n"] == 1 and v["median_ms"] > 0
        out: dict[str, Any] = v["outcomes"][0]
        return out

    assert outcome("noop", "auto") == {"success": True, "ran": 0, "cached": 6, "pending": 0}
    assert outcome("noop", "auto, cache cold")["ran"] == 6  # a fresh cache knows nothing
    assert outcome("edit-hub", "auto")["ran"] == 1 and outcome("edit-hub", "auto")["pending"] > 0
    assert outcome("edit-hub", "workspace")["ran"] == 1 + choose(ws.root).hub.dependents
    assert outcome("edit-hub", "cargo --workspace")["success"] is True
    assert outcome("error-loop", "cargo -p") == {"success": False}
    assert outcome("error-loop", "auto") == {"success": False, "ran": 0, "cached": 6, "pending": 0}
    assert rows["edit-hub"]["crate"] == ws.hub and rows["error-loop"]["crate"] in ws.leaves


def _results() -> dict[str, Any]:
    def stats(median: float) -> dict[str, Any]:
        return {**_stats.summary([median / 1000]), "outcomes": [{"success": True, "ran": 0, "cached": 5}]}

    def workspace(name: str, members: int, scale: float) -> dict[str, Any]:
        return {
            "name": name,
            "source": "generated",
            "members": members,
            "cold_check_s": 1.0,
            "subjects": {"hub": "hub", "mid": "mid_00", "leaf": "leaf_000"},
            "engine_prime_s": 0.1,
            "scenarios": [
                {
                    "id": "noop",
                    "title": "no-op check",
                    "kind": "check",
                    "crate": "leaf_000",
                    "dependents": 0,
                    "repeats": 1,
                    "variants": {
                        "cargo --workspace": stats(120 * scale),
                        "cargo -p": stats(100 * scale),
                        "auto": stats(2),
                    },
                },
                {
                    "id": "edit-hub",
                    "title": "edit the hub, check",
                    "kind": "check",
                    "crate": "hub",
                    "dependents": 9,
                    "repeats": 1,
                    "variants": {
                        "cargo --workspace": stats(3000 * scale),
                        "cargo -p": stats(130),
                        "auto": stats(140),
                        "auto, cache cold": stats(3100 * scale),
                    },
                },
            ],
        }

    return {
        "command": "python bench/report.py --quick",
        "generated_at": "2026-11-24 00:00 +0000",
        "duration_s": 60,
        "machine": {"cores": 2, "usable_cores": 2, "loadavg_at_start": [0.1, 0, 0], "loadavg_at_end": [0.2, 0, 0]},
        "workspaces": [workspace("generated-10", 10, 1.0), workspace("generated-150", 150, 10.0)],
        "traces": [
            {
                "label": "explore-fix (generated-150)",
                "steps": 7,
                "cargo-scheduler": _stats.summary([1.0]),
                "peers": _stats.summary([9.0]),
                "bytes": {"cargo-scheduler": 1000, "peers": 50000},
            }
        ],
        "micro": [{"name": "test_plan", "median_ms": 0.5, "min_ms": 0.4, "max_ms": 0.9, "rounds": 100}],
    }


def test_the_page_has_the_machine_the_headline_ratios_every_table_and_its_charts(tmp_path: Path) -> None:
    import report

    page = report.write(_results(), tmp_path)
    text = page.read_text()
    assert "| cores | 2 (2 usable) |" in text
    assert "| generated-150 (150) | 1/600 (2.00 ms vs 1.20 s) |" in text  # no-op: auto vs --workspace
    assert "**1/214**" in text  # hub edit, 150 members: auto 140 ms vs --workspace 30 s
    assert "| explore-fix (generated-150) | 7 | 1.00 s [1.00 s-1.00 s] | 9.00 s" in text
    assert "`test_plan`" in text
    for png in ("matrix-generated-10.png", "matrix-generated-150.png", "scaling-edit-hub.png", "traces.png"):
        assert (tmp_path / "benchmarks" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(benchmarks/{png})" in text
    assert json.loads((tmp_path / "benchmarks" / "results.json").read_text())["duration_s"] == 60


def test_a_real_workspace_as_large_as_a_generated_one_stays_off_the_scaling_chart(tmp_path: Path) -> None:
    import report

    results = _results()
    real = json.loads(json.dumps(results["workspaces"][0]))
    real.update(name="ripgrep", source="`--workspace ../ripgrep`")  # 10 members, as generated-10
    results["workspaces"].append(real)
    text = report.write(results, tmp_path).read_text()
    assert "## ripgrep: 10 members" in text and "(benchmarks/scaling-edit-hub.png)" in text


def test_the_page_renders_again_from_its_saved_json(tmp_path: Path) -> None:
    import report

    first = report.write(_results(), tmp_path).read_text()
    assert report.main(["--render-only", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "benchmarks.md").read_text() == first


def test_nothing_written_names_a_directory_of_the_machine_it_ran_on(tmp_path: Path) -> None:
    import report
    from _workspaces import REPO

    results = _results()
    here = str(REPO)
    results["workspaces"][0]["root"] = f"{here}/bench/.work/ws-10"
    results["traces"][0]["raw"] = {"peers": [{"preview": f'{{"uri":"file://{here}/bench/.work/ws-10/crates/hub"}}'}]}
    results["workspaces"][1]["root"] = "/elsewhere/ripgrep"
    report.write(results, tmp_path, {"/elsewhere/ripgrep": "../ripgrep"})
    saved = (tmp_path / "benchmarks" / "results.json").read_text() + (tmp_path / "benchmarks.md").read_text()
    assert here not in saved and "/elsewhere" not in saved
    data = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert data["workspaces"][0]["root"] == "bench/.work/ws-10" and data["workspaces"][1]["root"] == "../ripgrep"
    assert "file://bench/.work/ws-10/crates/hub" in data["traces"][0]["raw"]["peers"][0]["preview"]


def test_append_keeps_what_the_saved_run_measured_and_this_one_did_not(tmp_path: Path) -> None:
    import report

    saved = _results()
    report.write(saved, tmp_path)
    now = _results()
    now.update(command="python bench/report.py --sizes 10 --append", duration_s=30, traces=[], micro=[], notes=[])
    now["workspaces"] = [w for w in now["workspaces"] if w["name"] == "generated-10"]
    report.merge_saved(now, tmp_path / "benchmarks" / "results.json")
    assert [w["name"] for w in now["workspaces"]] == ["generated-10", "generated-150"]
    assert now["traces"] == saved["traces"] and now["micro"] == saved["micro"] and now["duration_s"] == 90
    earlier, this = now["parts"]
    assert earlier["measured"] == ["generated-150", "the agent sessions", "the micro-benchmarks"]
    assert this["command"] == "python bench/report.py --sizes 10 --append" and this["measured"] == ["generated-10"]


def test_a_page_appended_twice_names_the_run_behind_each_workspace(tmp_path: Path) -> None:
    import report

    first = _results()
    first.update(command="python bench/report.py --sizes 10,150", generated_at="day 1", notes=["a note of day 1"])
    report.write(first, tmp_path)
    for size, day in (("10", "day 2"), ("150", "day 3")):
        now = _results()
        now.update(
            command=f"python bench/report.py --sizes {size} --append", generated_at=day, traces=[], micro=[], notes=[]
        )
        now["workspaces"] = [w for w in now["workspaces"] if w["name"] == f"generated-{size}"]
        report.merge_saved(now, tmp_path / "benchmarks" / "results.json")
        page = report.write(now, tmp_path).read_text()
    assert [(p["at"], p["measured"]) for p in now["parts"]] == [
        ("day 1", ["the agent sessions", "the micro-benchmarks"]),
        ("day 2", ["generated-10"]),
        ("day 3", ["generated-150"]),
    ]
    assert now["notes"] == ["a note of day 1"]
    assert "Measured in 3 runs" in page and "| `python bench/report.py --sizes 10 --append` | day 2 |" in page


def test_an_unknown_scenario_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    import report

    with pytest.raises(SystemExit):
        report.main(["--scenarios", "noop,nonsense", "--no-traces", "--no-micro"])
    assert "unknown scenario(s) nonsense" in capsys.readouterr().err


def _fleet() -> dict[str, Any]:
    return {
        "at": "2026-01-01 00:00 +0000",
        "second_machine": {
            "crates": 150,
            "b_first_answer_s": [0.2, 0.3, 0.25],
            "b_ran": [0, 0, 0],
            "b_remote": {"outcome": "hit", "found": 450, "ms": 12.0},
            "b_cold_cargo_s": 50.0,
            "edited": "leaf_042",
            "hit_rate_edit_on_a": 1.0,
            "hit_rate_edit_on_b": 0.99,
            "ran_edit_on_b": 1,
            "local_hit_ms": [2.0, 2.1, 2.2],
            "local_hit_no_tier_ms": [2.0, 2.0, 2.0],
            "miss_remote": {"outcome": "miss", "asked": 150, "ms": 0.6},
        },
        "worktree": {
            "with_shared_cache_s": 0.5,
            "with_shared_cache_ran": 0,
            "without_shared_cache_s": 50.0,
            "without_shared_cache_ran": 150,
            "seed": {"outcome": "skipped", "reason": "the filesystem cannot reflink"},
            "seed_xfs": {
                "workspace": {"workspace": "PATH", "name": "ripgrep", "version": "15.1.0", "members": 10},
                "a_cold_s": 60.0,
                "off_s": 60.0,
                "off_ran": 10,
                "on_s": 20.0,
                "on_ran": 10,
                "seed": {"outcome": "seeded", "ms": 150.0},
            },
        },
        "sccache": {
            "workspace": "PATH",
            "name": "ripgrep",
            "version": "15.1.0",
            "members": 10,
            "registry_packages": 51,
            "sccache": {"version": "0.4.0-pre.6", "backend": "local disk"},
            "b_engine_with_s": 10.0,
            "b_engine_without_s": 25.0,
            "b_build_with_s": 7.0,
            "b_build_without_s": 32.0,
            "stats": {"cache_hits": 31, "cache_misses": 19, "requests_not_cacheable": 70},
        },
    }


def test_the_fleet_section_puts_each_figure_beside_its_alternative_with_the_ratio(tmp_path: Path) -> None:
    import report

    results = {**_results(), "fleet": _fleet()}
    text = report.write(results, tmp_path).read_text()
    assert "| first `workspace` answer, sources unchanged | 50.00 s | 250 ms" in text and "**1/200**" in text
    assert "**100%** of B's members answered from the tier" in text and "**99%**" in text
    assert (
        "| answered by the local cache (`workspace`, 150 members, median of 3) | 2.00 ms | 2.10 ms | +0.10 ms |" in text
    )
    assert "**1/100**" in text and "skipped (the filesystem cannot reflink)" in text
    assert "| `cargo build --workspace` | 32.00 s | 7.00 s | **0.22x** |" not in text and "**1/5**" in text
    assert "ripgrep 15.1.0 (`PATH`): 10 members, 51 registry packages" in text and "one `SCCACHE_DIR`" in text


def test_the_fleet_section_shows_the_seed_on_xfs_off_against_on_or_why_it_was_not_measured(tmp_path: Path) -> None:
    import report

    fleet = _fleet()
    text = report.write({**_results(), "fleet": fleet}, tmp_path).read_text()
    assert "| seed off (`CARGO_SCHEDULER_SEED=0`) | 60.00 s | 10 members |" in text
    assert "| seed on: seeded in 150.0 ms | 20.00 s | 10 members |" in text and "**1/3**" in text
    fleet["worktree"]["seed_xfs"] = {"skipped": "mkfs.xfs (xfsprogs) is not installed"}
    text = report.write({**_results(), "fleet": fleet}, tmp_path).read_text()
    assert "reflinking filesystem: not measured (mkfs.xfs (xfsprogs) is not installed)" in text


def test_append_keeps_a_saved_fleet_section(tmp_path: Path) -> None:
    import report

    report.write({**_results(), "fleet": _fleet()}, tmp_path)
    now = {**_results(), "notes": []}
    report.merge_saved(now, tmp_path / "benchmarks" / "results.json")
    assert now["fleet"]["second_machine"]["crates"] == 150 and now["parts"][0]["measured"] == ["the fleet"]
