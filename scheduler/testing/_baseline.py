"""What a fresh `cargo check --workspace` says: the reference the engine's answers are held to.

The differential test, the stress run and the fault tests compare the engine's `workspace` answer
against this, run in a target dir of its own so that nothing the engine did can make it fresher.
`--keep-going` makes it deterministic: without it cargo stops scheduling work at the first failure,
and what else it reports depends on timing.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

from ..cargo._workspace import outside_name
from ..engine._runs import diagnostics_of

Identity = tuple[str, str, str | None, str, str | None, int | None, int | None]


def fresh_cargo_check(
    root: Path, target_dir: Path, timeout_s: float = 1800, *, env: Mapping[str, str] | None = None
) -> tuple[bool, set[Identity]]:
    """(success, the identities of every member's diagnostics), as `Diagnostic.identity` gives them.

    `env`: the environment cargo runs in (the question's, to compare with an answer given for it);
    None inherits this process's."""
    environment = None if env is None else dict(env)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env=environment,
    ).stdout
    ids = {p["id"]: p["name"] for p in json.loads(meta)["packages"]}
    proc = subprocess.run(
        [
            "cargo",
            "check",
            "--workspace",
            "--keep-going",
            "--message-format=json-diagnostic-rendered-ansi",
            "--target-dir",
            str(target_dir),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        env=environment,
    )
    success = False
    found: set[Identity] = set()
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        msg = json.loads(line)
        if msg.get("reason") == "build-finished":
            success = bool(msg["success"])
        if msg.get("reason") == "compiler-message" and msg.get("package_id") in ids:
            found |= {d.identity() for d in diagnostics_of(ids[msg["package_id"]], [msg["message"]])}
        elif msg.get("reason") == "compiler-message" and str(msg.get("package_id")).startswith("path+"):
            # A path crate outside the workspace: cargo shows its messages too.
            found |= {d.identity() for d in diagnostics_of(outside_name(msg["package_id"]), [msg["message"]])}
    return success, found
