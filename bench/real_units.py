"""A hub edit on a real workspace: the engine's first and whole answers against plain cargo, the
units the user's own `cargo check --workspace` re-runs after the engine's answer (goal 0), and how
much target/ grows.

    python bench/real_units.py --workspace ../rust-analyzer          # prepared as bench/README.md says

The workspace must be checked once already (`cargo check --workspace`, warm). Every edit appends
a new public function with a fresh name to the hub's lib.rs (the member with the most transitive
dependents), so no cache entry and no cargo fingerprint answers it; the edits are reverted at the
end (the file is restored byte for byte, then cargo is run once more so the tree is left warm).
The order per round: `cargo check -p hub`, `cargo check --workspace` (the baselines, each on its own
edit), then the engine on a third edit: an `auto` check of every member (its first answer), its
background widening to the end (the whole answer); a fourth edit answered by the same engine (a
later edit: the feature-unification decision for the hub is known), a fifth by a new engine on the
same cache dir (a restart: the decision comes from the local cache); then the user's
`cargo check --workspace`, whose `compiler-artifact` messages say which units it had to run again.
Output: JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import anyio

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
for entry in (str(REPO), str(BENCH)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from _subjects import choose  # noqa: E402

from scheduler import CheckRequest, EnginePool  # noqa: E402
from scheduler.cargo import _features  # noqa: E402
from scheduler.cargo._workspace import Workspace, load_metadata_json, parse_metadata  # noqa: E402

_FLAGS = ("--message-format=json-diagnostic-rendered-ansi", "--keep-going")


def _workspace(root: Path) -> Workspace:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=root,
        capture_output=True,
        check=True,
    )
    return parse_metadata(load_metadata_json(out.stdout.decode()))


def _cargo(root: Path, *args: str) -> dict[str, Any]:
    """Run cargo; (seconds, units it compiled, units it found fresh)."""
    start = time.perf_counter()
    out = subprocess.run(["cargo", "check", *_FLAGS, *args], cwd=root, capture_output=True, timeout=3600)
    seconds = time.perf_counter() - start
    ran, fresh = [], 0
    for line in out.stdout.decode(errors="replace").splitlines():
        if line.startswith("{"):
            msg = json.loads(line)
            if msg.get("reason") == "compiler-artifact":
                if msg.get("fresh"):
                    fresh += 1
                else:
                    ran.append(msg["package_id"].rsplit("#", 1)[-1] + " " + msg["target"]["name"])
    return {"s": round(seconds, 2), "ran": len(ran), "fresh": fresh, "ran_units": ran[:60], "exit": out.returncode}


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=False)
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout else 0


def _edit(lib: Path, original: bytes) -> None:
    lib.write_bytes(original + f"\n#[doc(hidden)]\npub fn bench_{uuid.uuid4().hex[:12]}() {{}}\n".encode())


async def _engine_round(root: Path, cache: Path, lib: Path, original: bytes, timeout_s: float) -> dict[str, Any]:
    async with EnginePool(cache) as pool:
        engine = await pool.get(root)
        warm = await engine.check(CheckRequest(scope="workspace"))  # the engine knows the tree before the edit
        _edit(lib, original)
        start = time.perf_counter()
        first = await engine.check(CheckRequest(scope="auto"))
        first_s = time.perf_counter() - start
        await engine.wait_background(timeout_s)
        whole_s = time.perf_counter() - start
        whole = await engine.check(CheckRequest(scope="workspace"))
        # A later edit of the same hub: its unification decision is known (in memory) by now.
        _edit(lib, original)
        start = time.perf_counter()
        later = await engine.check(CheckRequest(scope="auto"))
        later_s = time.perf_counter() - start
        await engine.wait_background(timeout_s)
    _features.forget()  # a new process (the CLI, a restarted daemon): only the local cache knows
    async with EnginePool(cache) as pool:
        engine = await pool.get(root)
        _edit(lib, original)
        start = time.perf_counter()
        restarted = await engine.check(CheckRequest(scope="auto"))
        restarted_s = time.perf_counter() - start
        await engine.wait_background(timeout_s)
    return {
        "warm_ran": len(warm.ran()),
        "first_s": round(first_s, 2),
        "first_ran": len(first.ran()),
        "first_pending": len(first.pending),
        "whole_s": round(whole_s, 2),
        "after_whole_ran": whole.ran(),
        "success": whole.success,
        "later_edit_first_s": round(later_s, 2),
        "later_edit_success": later.success,
        "restarted_first_s": round(restarted_s, 2),
        "restarted_success": restarted.success,
        "command": first.command,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound on the background widening (s)")
    args = parser.parse_args()
    root = args.workspace.resolve()
    subjects = choose(root)  # the hub: the library with the most transitive dependents
    hub, lib = subjects.hub.name, subjects.hub.lib_rs
    original = lib.read_bytes()
    target = _workspace(root).target_dir
    cache = Path(tempfile.mkdtemp(prefix="cs-real-units-"))
    result: dict[str, Any] = {
        "workspace": root.name,
        "members": subjects.members,
        "hub": hub,
        "dependents": subjects.hub.dependents,
    }
    try:
        result["warm"] = _cargo(root, "--workspace")
        _edit(lib, original)
        result["cargo_p_hub"] = _cargo(root, "-p", hub)
        _edit(lib, original)
        result["cargo_workspace"] = _cargo(root, "--workspace")
        before = _du(target)
        result["engine"] = anyio.run(_engine_round, root, cache, lib, original, args.timeout)
        after_engine = _du(target)
        result["user_after_engine"] = _cargo(root, "--workspace")
        result["target_growth_bytes"] = {"engine": after_engine - before, "user_after": _du(target) - after_engine}
    finally:
        lib.write_bytes(original)
        shutil.rmtree(cache, ignore_errors=True)
        result["restored"] = _cargo(root, "--workspace")["exit"]
    # Package ids in the command name the checkout's path: keep this machine's paths out of the report.
    print(json.dumps(result, indent=1).replace(str(root), "{{workspace:" + root.name + "}}"))


if __name__ == "__main__":
    main()
