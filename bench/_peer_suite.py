"""Running rust-analyzer-mcp's own tests against a server that stands in for its binary.

The peer's tests start `target/debug/rust-analyzer-mcp WORKSPACE` (or `target/release/`, preferred when
it exists) from the suite's own target dir, directly or through its `test-support-server` daemon. So a
subject is a small `sh` script put at that path: it `exec`s the peer's installed binary, or
`cargo-scheduler serve` with the same arguments. The tests are built once with cargo; their executables
are then run directly, one test at a time (`--exact`), so that cargo never rebuilds the binary over the
stand-in, a hung test costs its own timeout and nothing more, and each outcome is the test's alone.

Between subjects nothing is shared: each has its own TMPDIR (the peer's daemons put their sockets
there), and every process that carries the subject's marker in its environment is ended afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEST_TIMEOUT_S = 300.0
_RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)", re.MULTILINE)
MARKER = "PEER_SUITE_SUBJECT"


@dataclass(frozen=True)
class Subject:
    """One server under the peer's tests: the command the stand-in execs and the environment it sets."""

    name: str
    command: list[str]
    env: dict[str, str]


def drives_a_server(binary: str, test: str) -> bool:
    """The integration and stress tests start a server; the unit and property tests are in-process
    (the integration binary also re-includes the unit tests as `unit::...`)."""
    return binary in {"integration_tests", "stress_tests"} and not test.startswith("unit::")


def build(suite: Path, env: dict[str, str], log: Any) -> dict[str, Path]:
    """The suite's test executables by target name, and the `test-support-server` its tests start."""
    log("  peer suite: building rust-analyzer-mcp's tests (a few minutes the first time)")
    out = subprocess.run(
        ["cargo", "test", "--locked", "--no-run", "--tests", "--message-format=json"],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"building the peer's tests failed:\n{out.stderr[-3000:]}")
    binaries = {}
    for line in out.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") and message["profile"]["test"]:
            binaries[message["target"]["name"]] = Path(message["executable"])
    subprocess.run(
        ["cargo", "build", "--locked", "-p", "test-support", "--bin", "test-support-server"],
        cwd=suite,
        env=env,
        capture_output=True,
        timeout=3600,
        check=True,
    )
    return binaries


def list_tests(executable: Path) -> list[str]:
    out = subprocess.run(
        [str(executable), "--list", "--format=terse"], capture_output=True, text=True, timeout=120, check=True
    )
    return [line.removesuffix(": test") for line in out.stdout.splitlines() if line.endswith(": test")]


def install_stand_in(suite: Path, subject: Subject) -> None:
    """Put `subject` where the peer's tests look for the peer's binary (and nothing in release/)."""
    (suite / "target" / "release" / "rust-analyzer-mcp").unlink(missing_ok=True)
    path = suite / "target" / "debug" / "rust-analyzer-mcp"
    path.unlink(missing_ok=True)  # cargo's hard link: writing through it would change the deps/ copy
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in subject.env.items())
    path.write_text(f'#!/bin/sh\n{exports}exec {shlex.join(subject.command)} "$@"\n')
    path.chmod(0o755)


def run_test(executable: Path, test: str, suite: Path, env: dict[str, str]) -> dict[str, Any]:
    """One test, alone, with the peer's own arguments for it; its process group is ended after."""
    start = time.perf_counter()
    with subprocess.Popen(
        [str(executable), "--exact", test, "--test-threads=1"],
        cwd=suite,
        env={**env, "CARGO_MANIFEST_DIR": str(suite), "RUST_BACKTRACE": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=TEST_TIMEOUT_S)
            outcome = {"ok": "passed", "FAILED": "failed", "ignored": "ignored"}.get(
                next((m[1] for m in _RESULT.findall(output) if m[0] == test), ""), "failed"
            )
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            outcome = "timed out"
    return {"test": test, "outcome": outcome, "s": round(time.perf_counter() - start, 2), "tail": _tail(output)}


def _tail(output: str) -> str:
    """What says why a test failed: from its panic message on (the assertion and the answer it
    printed), else the end of its output."""
    panic = output.find("panicked at")
    return output[panic : panic + 2500] if panic >= 0 else output[-1500:]


def reap(marker: str) -> int:
    """End every process whose environment carries `marker` (the stand-ins' daemons, the peer's IPC
    servers, rust-analyzers): a subject's leftovers must not answer the next subject's tests."""
    needle = f"{MARKER}={marker}".encode()
    ended = 0
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), sig)
                    ended += sig == signal.SIGTERM
            except (OSError, ProcessLookupError):
                continue
        if sig == signal.SIGTERM:
            time.sleep(2.0)  # grace for a clean exit before the kill; not a synchronisation
    return ended


def run_subject(
    suite: Path,
    binaries: dict[str, Path],
    subject: Subject,
    base_env: dict[str, str],
    log: Any,
    only_tests: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """Every server-driving test against `subject` (or those named in `only_tests`), in the suite's order."""
    install_stand_in(suite, subject)
    # Short, under the system's temp dir: the peer's daemons put unix sockets there, and a socket
    # path longer than SUN_LEN (108 bytes) fails their start with nothing but a line in a log.
    tmp = Path(tempfile.mkdtemp(prefix=f"peer-{subject.name}-"))
    env = {**base_env, "TMPDIR": str(tmp), MARKER: subject.name}
    results = []
    try:
        for binary in ("integration_tests", "stress_tests"):
            for test in list_tests(binaries[binary]):
                if not drives_a_server(binary, test) or (only_tests and test.rsplit("::", 1)[-1] not in only_tests):
                    continue
                result = run_test(binaries[binary], test, suite, env)
                log(f"    {subject.name}: {test} {result['outcome']} ({result['s']} s)")
                results.append({"binary": binary, **result})
    finally:
        reap(subject.name)
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def run_in_process(suite: Path, binaries: dict[str, Path], env: dict[str, str]) -> list[dict[str, Any]]:
    """The tests that start no server: they pass or fail the same whichever server is installed."""
    results = []
    for binary, executable in sorted(binaries.items()):
        for test in list_tests(executable):
            if not drives_a_server(binary, test):
                results.append({"binary": binary, **run_test(executable, test, suite, env)})
    return results
