"""docs/benchmarks/peer-suites.md from peer-suites.json (bench/peer_suites.py).

A server-driving test that fails under our default answers is one of:
- *asserts the peer's answer shape*: it passes against `--answers=rust-analyzer-mcp` (the same server,
  the peer's shapes), and SHAPES says which shape it parses and why ours differs;
- *shape difference, not yet documented*: the same, without an entry in SHAPES (a defect of the docs);
- *real failure*: it fails with the peer's shapes too, while it passes against the peer;
- *fails on the peer too*: the test or this machine, not the server.
"""

from __future__ import annotations

from typing import Any

COMMAND = "python bench/peer_suites.py --rust-analyzer-mcp-checkout PATH"

# Test name (its last `::` part) -> which of the peer's shapes it asserts, and why our default answer
# differs (docs/migrating.md).
SHAPES: dict[str, str] = {
    "test_diagnostics_invalid_file": "parses the answer for a file that does not exist as JSON with a `summary` "
    "(the peer's `{diagnostics: [], summary}`); here that is an `isError` answer naming the missing path",
    "test_diagnostics_severity_levels": "reads `diagnostics` at the top level with `severity` as a word; here "
    "they are under `rust_analyzer` (LSP's numbers) and `cargo` (`level` words)",
    "test_file_diagnostics": "reads `diagnostics` at the top level (`severity` a word, `range` an object); here "
    "`rust_analyzer.diagnostics` and `cargo.diagnostics`, ranges as four numbers",
    "test_workspace_diagnostics": "reads the peer's per-file first round (`diagnostics` at the top level) and "
    "`workspace`; here one merged list with `clean`, counts and `checked`",
    "diagnostics_follow_an_edit": "waits for readiness with the flat `SymbolInformation[]` text of "
    "`rust_analyzer_symbols`; here the symbols are a nested tree in the `{file, status, result}` envelope",
    "symbols_follow_an_edit": "parses `rust_analyzer_symbols` as a flat `SymbolInformation[]`; here the symbols "
    "are a nested tree in the `{file, status, result}` envelope (the readiness wait of its client too)",
    "test_all_lsp_tools": "parses `rust_analyzer_symbols` as a JSON array; here it is the `{file, status, result}` "
    "envelope",
    "test_file_uri_is_accepted_as_a_path": "parses `rust_analyzer_symbols` as a JSON array (the file:// URI is "
    "accepted here too); here it is the `{file, status, result}` envelope",
    "test_workspace_change": "looks for the words `set` or `changed` in `Workspace set to: P`; here "
    "`rust_analyzer_set_workspace` answers `{workspace, note}`",
    "renaming_a_symbol_says_what_it_would_take": "reads the peer's account (`old_name`, `new_name`, `applied`, "
    "`summary`, `changes[].edits[]`); here rust-analyzer's `WorkspaceEdit` in the envelope, ranges as four numbers",
    "exits_on_signal_with_live_rust_analyzer": "looks for the peer's `Shutting down` log line on stderr; here the "
    "process exits 0 on the signal without a line (it is a front to the shared daemon)",
}


def short(test: str) -> str:
    """`integration::edits::symbols_follow_an_edit` -> `symbols_follow_an_edit`."""
    return test.rsplit("::", 1)[-1]


def classify(test: str, by_subject: dict[str, dict[str, str]]) -> str:
    here = by_subject.get("here", {}).get(test)
    shapes = by_subject.get("here-peer-shapes", {}).get(test)
    peer = by_subject.get("peer", {}).get(test)
    if here == "passed":
        return "passes"
    if peer is not None and peer != "passed":
        return "fails on the peer too"
    if shapes == "passed":
        return "asserts the peer's answer shape" if short(test) in SHAPES else "shape difference, not yet documented"
    return "real failure"


def _count(results: list[dict[str, Any]], outcome: str = "passed") -> int:
    return sum(r["outcome"] == outcome for r in results)


def _seconds(results: list[dict[str, Any]]) -> str:
    return f"{sum(r['s'] for r in results):.0f} s"


def render(data: dict[str, Any]) -> str:
    out = [
        "# The peers' own test suites against this server",
        "",
        f"`{COMMAND}` (`nox -s peers -- ...`; {data.get('machine', {}).get('date', '')}, "
        f"{data.get('machine', {}).get('cpus', '?')} cores). Each peer is installed with `cargo install --locked` "
        "from crates.io; its published tests run against its own binary and against `cargo-scheduler serve` "
        "started with the peer's command line (`rust-analyzer-mcp WORKSPACE` becomes `cargo-scheduler serve "
        "WORKSPACE`), once with our answers and once with `--answers=rust-analyzer-mcp`. Each test runs alone, "
        "with a 300 s timeout.",
        "",
    ]
    cm = data.get("cargo-mcp") or {}
    if cm:
        tests = cm["in_process"]
        out += [
            f"**cargo-mcp {cm['version']}**: its suite is {len(tests)} in-process test(s) "
            f"({', '.join(t['test'] for t in tests)}); {_count(tests)} passed. None starts a server, so none "
            "can run against this one; tests/server/ and the agent-session replays (docs/benchmarks.md) "
            "cover its tools here.",
            "",
        ]
    ra = data.get("rust-analyzer-mcp") or {}
    if "skipped" in ra:
        return "\n".join([*out, f"**rust-analyzer-mcp**: not run ({ra['skipped']}).", ""])
    if not ra:
        return "\n".join(out)
    subjects = ra["subjects"]
    by_subject = {name: {r["test"]: r["outcome"] for r in rs} for name, rs in subjects.items()}
    tests = [r["test"] for r in next(iter(subjects.values()), [])]
    verdicts = {t: classify(t, by_subject) for t in tests}
    out += [
        f"**rust-analyzer-mcp {ra['version']}**: {len(ra['in_process'])} in-process tests "
        f"({_count(ra['in_process'])} passed; they start no server) and {len(tests)} that drive a server:",
        "",
        "| against | passed | failed | timed out | suite time |",
        "|---|---|---|---|---|",
    ]
    names = {
        "peer": "rust-analyzer-mcp 0.4.0 itself",
        "here": "`cargo-scheduler serve WORKSPACE`",
        "here-peer-shapes": "`cargo-scheduler serve --answers=rust-analyzer-mcp WORKSPACE`",
    }
    for name, rs in subjects.items():
        failed = len(rs) - _count(rs) - _count(rs, "timed out") - _count(rs, "ignored")
        out.append(
            f"| {names.get(name, name)} | {_count(rs)} | {failed} | {_count(rs, 'timed out')} | {_seconds(rs)} |"
        )
    tally = {v: sum(x == v for x in verdicts.values()) for v in sorted(set(verdicts.values()))}
    out += ["", "Under our default answers: " + ", ".join(f"{n} {v}" for v, n in tally.items()) + ".", ""]
    failing = [t for t in tests if verdicts[t] != "passes"]
    if failing:
        out += [
            "| test | peer | here | here, peer shapes | verdict | why the shape differs |",
            "|---|---|---|---|---|---|",
        ]
        for t in failing:
            cells = [by_subject.get(s, {}).get(t, "-") for s in ("peer", "here", "here-peer-shapes")]
            out.append(f"| `{short(t)}` | {' | '.join(cells)} | {verdicts[t]} | {SHAPES.get(short(t), '')} |")
        out.append("")
    return "\n".join(out)
