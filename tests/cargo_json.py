"""Reading cargo's output as its consumers do: the shared helpers of the tests that compare an answer
of ours with the real cargo's (tests/cli/test_cargo_mode.py in process, tests/cli/test_shim.py
through the shim and the daemon)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scheduler import GeneratedWorkspace

STATUS = ("Checking ", "Compiling ", "Finished ", "Fresh ", "Blocking ", "Locking ", "Adding ", "Building ")


def lines(stderr: str) -> list[str]:
    """What cargo said, in any order (units finish in any order), without its progress lines."""
    said = [ln for ln in stderr.splitlines() if not ln.strip().startswith(STATUS)]
    return sorted(ln for ln in said if ln != "warning: build failed, waiting for other jobs to finish...")


class CargoMessages:
    """Reads cargo's JSON as `cargo_metadata::Message::parse_stream` does: one object a line,
    dispatched on `reason`; a compiler message must carry package_id, manifest_path, target
    (kind, crate_types, name, src_path) and message (level, message, spans); anything else is
    skipped, as the crate's `Unknown` variant is."""

    def __init__(self, stdout: str) -> None:
        self.diagnostics: list[tuple[Any, ...]] = []
        self.finished: bool | None = None
        for line in stdout.splitlines():
            msg = json.loads(line)
            if msg["reason"] == "compiler-message":
                target, inner = msg["target"], msg["message"]
                for key in ("kind", "crate_types", "name", "src_path", "edition", "doc", "doctest", "test"):
                    assert key in target, (key, target)
                assert Path(msg["manifest_path"]).is_file()
                spans = tuple(
                    (s["file_name"], s["line_start"], s["column_start"], s["is_primary"], s["label"])
                    for s in inner["spans"]
                )
                code = inner["code"]["code"] if inner["code"] else None
                self.diagnostics.append(
                    (
                        msg["package_id"],
                        target["name"],
                        tuple(target["kind"]),
                        inner["level"],
                        code,
                        inner["message"],
                        spans,
                        inner["rendered"],
                    )
                )
            elif msg["reason"] == "build-finished":
                self.finished = msg["success"]


def warn_everywhere(ws: GeneratedWorkspace) -> None:
    """A warning in every member's library: which members a command shows is then visible. Not
    in the proc-macro crate: cargo builds it twice there (for the host, and checked as a member) and
    prints its second copy as `(1 duplicate)`, which the engine's one answer per member cannot tell."""
    for name in ws.members:
        if name == "macros":
            continue
        lib = ws.lib_rs(name)
        lib.write_text(lib.read_text() + "\n#[allow(dead_code)]\nfn noisy() { let unused = 1; }\n")
