"""Running tests for the packages an edit affects, and saying exactly what ran.

A package's tests are run unless they passed before for the same key (the Merkle key of a test
build: its sources, its dependencies', the toolchain and flags). So after an edit to one leaf only
that leaf's tests run; after an edit to the hub, the hub's and every dependent's. Passes are recorded
only when the whole run passed; `scope="workspace"` runs every selected package regardless.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import xxhash

from ..cargo._run import CargoOutcome, run_cargo
from ._keys import Command
from ._report import fit_to_budget
from ._runs import results_from_outcome, selection_args, unified_run_for

if TYPE_CHECKING:
    from ._engine import CheckRequest, Engine, _Keys

_RESULT = re.compile(r"test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored")
_FAILED_TEST = re.compile(r"^test (\S+) \.\.\. FAILED$")
_SECTION = re.compile(r"^---- (\S+) std(?:out|err) ----$")


def _passed_prefix(env: dict[str, str], test_name: str | None) -> str:
    """Tests read their environment and files at run time, where no compiler records it: a pass
    counts only for the same test filter and the same environment (and the build's answer key)."""
    env_digest = xxhash.xxh3_64_hexdigest(repr(sorted(env.items())).encode("utf-8", "surrogateescape"))
    return "tested:" + xxhash.xxh3_64_hexdigest(f"{env_digest}\0{test_name or ''}".encode()) + ":"


async def run_tests(
    engine: Engine,
    request: CheckRequest,
    *,
    test_name: str | None = None,
    no_capture: bool = False,
    token_budget: int = 6000,
) -> dict[str, Any]:
    started = time.perf_counter()
    test_request = replace(request, kind="test")
    k = await engine.keys(test_request)
    ws = k.obs.ws
    selected = ws.require(request.packages) or ws.members
    prefix = _passed_prefix(k.env, test_name)
    plain = request.scope != "workspace" and not no_capture and not test_name
    wanted = {n: prefix + key for n in selected if plain and (key := k.packages[n]) is not None}
    passes = await anyio.to_thread.run_sync(engine.cache.get_many, list(wanted.values()))
    passed_before = sorted(n for n, key in wanted.items() if key in passes)
    to_test = [n for n in ws.order(dev=True) if n in selected and n not in passed_before]
    head: dict[str, Any] = {"scope": request.scope, "packages": {"tested": to_test, "passed_before": passed_before}}
    if not to_test:
        head.update(
            success=True,
            counts={"passed": 0, "failed": 0, "ignored": 0},
            note="every selected package passed its tests before for these exact sources; "
            "pass scope='workspace' to run them again",
            timings_ms={"total": round((time.perf_counter() - started) * 1000, 1)},
        )
        return fit_to_budget(head, "failures", [], token_budget)

    command = test_request.spec().command
    args = [
        "test",
        "--no-fail-fast",
        "--message-format=json-diagnostic-rendered-ansi",
        *selection_args(
            command,
            to_test,
            (await unified_run_for(ws, to_test, command, env=k.env, store=engine.decisions))[1],
            ws.spec,
        ),
    ]
    if test_name:
        args.append(test_name)
    if no_capture:
        args += ["--", "--nocapture"]
    target_dir = await engine.target_dir_for(ws, test_request)
    if target_dir != ws.target_dir:
        args[1:1] = ["--target-dir", str(target_dir)]
    started_ns = time.time_ns()
    run_env, _ = await engine.compile_environment(engine.environment(request))
    async with engine.gate(target_dir).foreground("test " + " ".join(to_test[:5])):
        outcome = await run_cargo(
            args,
            cwd=engine.root,
            env=run_env,
            toolchain=request.toolchain,
            timeout_s=request.timeout_s,
        )
    builds = results_from_outcome(ws, outcome, to_test, dev=True)
    compile_errors = [d.compact() for r in builds.values() for d in r.diagnostics if d.level == "error"]
    counts = {"passed": 0, "failed": 0, "ignored": 0}
    for m in _RESULT.finditer("\n".join(outcome.stdout_text)):
        counts["passed"] += int(m.group(2))
        counts["failed"] += int(m.group(3))
        counts["ignored"] += int(m.group(4))
    failures = _failures(outcome.stdout_text)
    success = outcome.exit_code == 0 and not outcome.timed_out
    if success:
        now = await engine.keys(test_request)
        kept = [n for n in to_test if now.keys.walk.get(n) == k.keys.walk[n]]  # not edited while tests ran
        await anyio.to_thread.run_sync(
            _record_passes, engine, now, command, outcome, kept, target_dir, started_ns, prefix
        )
    head.update(
        success=success,
        counts=counts,
        command=outcome.argv,
        timings_ms={"total": round((time.perf_counter() - started) * 1000, 1)},
    )
    if outcome.timed_out:
        head["error"] = f"tests timed out after {request.timeout_s}s; cargo and the tests were killed"
    elif not success and not failures and not compile_errors:
        head["stderr_tail"] = outcome.stderr.strip()[-2000:]
    items = [{"compile_error": e} for e in compile_errors] + failures
    return fit_to_budget(head, "failures", items, token_budget)


def _record_passes(
    engine: Engine,
    now: _Keys,
    command: Command,
    outcome: CargoOutcome,
    kept: list[str],
    target_dir: Path,
    started_ns: int,
    prefix: str,
) -> None:
    """The test build's manifests, and a pass for each package, under keys that hold them (a worker
    thread: it reads dep-info files and writes SQLite)."""
    recorded = engine.store.record(
        now.obs.ws, now.obs.snap, now.env, outcome, kept, target_dir=target_dir, started_ns=started_ns, blocked=()
    )
    if recorded.fooled:
        return
    stored = engine.store.keys(now.obs.ws, now.obs.snap, now.global_key, command, now.env, recorded)
    passed = {"passed": True, "at": time.time()}
    engine.store.store(stored, recorded, {n: {} for n in kept}, {n: {prefix: passed} for n in kept})


def _failures(lines: list[str]) -> list[dict[str, Any]]:
    """Failed tests with the output libtest printed for each (its `---- name stdout ----` block)."""
    failed = [m.group(1) for line in lines if (m := _FAILED_TEST.match(line.strip()))]
    output: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines:
        section = _SECTION.match(line.strip())
        if section:
            current = section.group(1)
            output.setdefault(current, [])
            continue
        if current is not None:
            if line.strip() in ("failures:", "successes:") or line.startswith("test result:"):
                current = None
            else:
                output[current].append(line)
    return [{"test": name, "output": "\n".join(output.get(name, [])[-30:]).strip()} for name in failed]
