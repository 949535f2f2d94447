"""The peers' own test suites against the peers and against this server (`nox -s peers`).

Installs cargo-mcp 0.2.0 and rust-analyzer-mcp 0.4.0 with `cargo install --locked` (crates.io), runs
each peer's published test suite (bench/_peer_sources.py says where it comes from) against the peer's
own binary and against `cargo-scheduler serve` started through the peer's command line (default
answers, and `--answers=rust-analyzer-mcp`), and writes docs/benchmarks/peer-suites.{json,md}: tests,
passed on the peer, passed here, the ones that assert the peer's answer shape (each with the reason the
shape differs) and real failures.

    python bench/peer_suites.py --rust-analyzer-mcp-checkout ../rust-analyzer-mcp
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for _p in (str(BENCH_DIR), str(REPO)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _peer_sources import SourceError, published_crate, suite_checkout  # noqa: E402
from _peer_suite import Subject, build, run_in_process, run_subject  # noqa: E402
from _render_peer_suites import render  # noqa: E402
from _replay_targets import PEER_VERSIONS, WORK, ensure_peers, ours_env, peer_env, serve_command  # noqa: E402

SUITES = WORK / "peer-suites"
_RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)", re.MULTILINE)


def cargo_mcp_suite(log: Any) -> dict[str, Any]:
    """cargo-mcp's suite is its crate's `cargo test`: in-process only (it starts no server)."""
    crate = published_crate("cargo-mcp", PEER_VERSIONS["cargo-mcp"])
    copy = SUITES / "cargo-mcp"
    shutil.copytree(crate, copy, dirs_exist_ok=True)
    log("  peer suite: cargo-mcp's cargo test")
    start = time.perf_counter()
    out = subprocess.run(
        ["cargo", "test", "--locked"], cwd=copy, capture_output=True, text=True, timeout=3600, check=False
    )
    tests = [
        {"binary": "cargo-mcp", "test": name, "outcome": "passed" if word == "ok" else word.lower()}
        for name, word in _RESULT.findall(out.stdout)
    ]
    return {"version": PEER_VERSIONS["cargo-mcp"], "in_process": tests, "s": round(time.perf_counter() - start, 1)}


def subjects(base: Path, peer_binary: Path, only: set[str]) -> list[Subject]:
    ours = ours_env(base)
    keep = ("XDG_RUNTIME_DIR", "XDG_STATE_HOME", "CARGO_SCHEDULER_CACHE_DIR")
    here = {k: ours[k] for k in keep} | {"CARGO_SCHEDULER_IDLE_TIMEOUT": "60"}
    serve = [*serve_command(), "serve"]
    every = [
        Subject("peer", [str(peer_binary)], {}),
        Subject("here", serve, here),
        Subject("here-peer-shapes", [*serve, "--answers=rust-analyzer-mcp"], here),
    ]
    return [s for s in every if not only or s.name in only]


def prepare_suite(checkout: Path) -> Path:
    crate = published_crate("rust-analyzer-mcp", PEER_VERSIONS["rust-analyzer-mcp"])
    return suite_checkout(crate, checkout.resolve(), SUITES / "rust-analyzer-mcp")


async def rust_analyzer_mcp_suite(
    checkout: Path, peer_binary: Path, only: set[str], log: Any, only_tests: frozenset[str] = frozenset()
) -> dict[str, Any]:
    suite = await anyio.to_thread.run_sync(prepare_suite, checkout)
    env = await peer_env()  # the real rust-analyzer first on PATH, as the peer needs (and ours finds)
    binaries = await anyio.to_thread.run_sync(build, suite, env, log)
    out: dict[str, Any] = {"version": PEER_VERSIONS["rust-analyzer-mcp"], "subjects": {}}
    if not only_tests:
        out["in_process"] = await anyio.to_thread.run_sync(run_in_process, suite, binaries, env)
    for subject in subjects(SUITES / "here", peer_binary, only):
        log(f"  peer suite: rust-analyzer-mcp's server tests against {subject.name}")
        out["subjects"][subject.name] = await anyio.to_thread.run_sync(
            run_subject, suite, binaries, subject, env, log, only_tests
        )
    return out


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peer_suites", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rust-analyzer-mcp-checkout",
        type=Path,
        help="a clone of rust-analyzer-mcp at the commit its 0.4.0 crate names (the crate lacks test-support)",
    )
    parser.add_argument("--subjects", default="", help="comma-separated: peer, here, here-peer-shapes (default all)")
    parser.add_argument("--tests", default="", help="comma-separated test names to run alone (to iterate on one)")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where benchmarks/peer-suites.* go")
    parser.add_argument("--render-only", action="store_true", help="re-render from the JSON")
    args = parser.parse_args(argv)
    json_path = args.out / "benchmarks" / "peer-suites.json"
    if not args.render_only:
        bins = await anyio.to_thread.run_sync(ensure_peers)
        results: dict[str, Any] = {"cargo-mcp": await anyio.to_thread.run_sync(cargo_mcp_suite, print)}
        if args.rust_analyzer_mcp_checkout is None:
            results["rust-analyzer-mcp"] = {"skipped": "no --rust-analyzer-mcp-checkout"}
        else:
            try:
                only = {s for s in args.subjects.split(",") if s}
                results["rust-analyzer-mcp"] = await rust_analyzer_mcp_suite(
                    args.rust_analyzer_mcp_checkout,
                    bins["rust-analyzer-mcp"],
                    only,
                    print,
                    frozenset(t for t in args.tests.split(",") if t),
                )
            except SourceError as exc:
                parser.error(str(exc))
        results["machine"] = {"cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
        json_path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(results, indent=1).replace(str(REPO), "<repo>").replace(str(Path.home()), "~")
        text = text.replace(tempfile.gettempdir() + "/", "$TMPDIR/")  # the tests' own temp dirs
        json_path.write_text(text + "\n")
    (args.out / "benchmarks" / "peer-suites.md").write_text(render(json.loads(json_path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(anyio.run(main))
