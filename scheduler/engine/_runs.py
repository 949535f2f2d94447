"""From a request to a cargo command line, and from cargo's output to per-package answers.

Only packages selected with `-p` get an answer from a run: a dependency cargo compiled on the way
was built with fewer targets (its lib only) than a run of its own would build, so its messages are
not its full answer. A package that cargo did not compile because a dependency failed is answered
as failed and `blocked_by` that dependency: exactly what a fresh `cargo check --workspace` shows.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cargo import _features, _graph, _outside
from ..cargo._run import CargoOutcome
from ..cargo._workspace import Workspace, outside_name, path_of_id
from ._cache import DiagnosticsCache
from ._inputs import parse_build_output
from ._keys import Command
from ._report import Diagnostic, PackageResult

_SUBCOMMAND = {"check": ["check"], "clippy": ["clippy"], "test": ["test", "--no-run"], "build": ["build"]}
# rustc's closing summaries carry no information an agent needs; cargo prints them per unit.
_SUMMARY = re.compile(r"^(aborting due to|\d+ warnings? emitted|.* generated \d+ warnings?)")


@dataclass(frozen=True)
class RunSpec:
    command: Command
    deny_warnings: bool = False

    def args(
        self,
        packages: Sequence[str],
        target_dir: Path | None,
        unified: tuple[Sequence[str], Sequence[str]] = ((), ()),
        spec: Callable[[str], str] = str,
    ) -> list[str]:
        """The cargo command line; `unified` is `unified_for`'s (extra members, `member/feature`
        flags) that make a narrowed run build the units a `--workspace` run would; `spec` what `-p`
        takes for a member (`Workspace.spec`)."""
        c = self.command
        extra, flags = unified
        # `cargo test` takes --no-fail-fast, not --keep-going, to build every test binary it can.
        keep_going = "--no-fail-fast" if c.kind == "test" else "--keep-going"
        args = [*_SUBCOMMAND[c.kind], "--message-format=json-diagnostic-rendered-ansi", keep_going]
        args += selection_args(c, [*packages, *(n for n in extra if n not in packages)], flags, spec)
        if c.all_targets:
            args.append("--all-targets")
        if target_dir is not None:
            args += ["--target-dir", str(target_dir)]
        if self.deny_warnings and c.kind == "clippy":
            args += ["--", "-D", "warnings"]
        return args


def selection_args(
    command: Command, packages: Sequence[str], unified: Sequence[str] = (), spec: Callable[[str], str] = str
) -> list[str]:
    """`-p` for each package (as `spec` names it), then the feature and profile flags of `command`."""
    args: list[str] = []
    for name in packages:
        args += ["-p", spec(name)]
    if command.features or unified:
        args += ["--features", ",".join([*command.features, *unified])]
    if command.all_features:
        args.append("--all-features")
    if command.no_default_features:
        args.append("--no-default-features")
    if command.release:
        args.append("--release")
    return args


class LocalDecisions:
    """The local tier of the answers cache as the store of feature-unification decisions
    (`cargo._features`): they are keyed by this checkout's paths, so the shared tier never sees them."""

    def __init__(self, cache: DiagnosticsCache) -> None:
        self._cache = cache

    def get(self, key: str) -> dict[str, Any] | None:
        return DiagnosticsCache.get(self._cache, key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        DiagnosticsCache.put(self._cache, key, value)


async def unified_run_for(
    ws: Workspace,
    names: Sequence[str],
    command: Command,
    *,
    env: Mapping[str, str],
    store: _features.DecisionStore | None = None,
) -> tuple[list[str], list[str]]:
    """(extra members to select, `--features` flags) that make a run of `names` build every unit,
    registry crates included, as `--workspace` builds it: `unified_for`, then checked against
    cargo's own resolve and completed where crates from outside the workspace differ
    (`cargo._features`). Runs nothing when the lockfile names only members. A test run selects no
    extra member (that would run its tests): it gets `dep?/feature` flags where a selected member
    depends on the crate directly, and what flags cannot reach stays as `-p` builds it."""
    if set(names) == set(ws.packages) or command.features or command.all_features or command.no_default_features:
        return [], []
    unified = await _features.unify(
        ws,
        names,
        dev=command.includes_tests,
        select_members=command.kind != "test",
        root=ws.root,
        env=env,
        toolchain=command.toolchain,
        store=store,
    )
    return list(unified.extra), list(unified.flags)


def unified_for(ws: Workspace, names: Sequence[str], command: Command) -> tuple[list[str], list[str]]:
    """(extra members to select, `member/feature` flags) that make a run of `names` build what
    `--workspace` builds in the members (`Workspace.unification`, from the manifests alone);
    nothing when every member is selected anyway or the caller chose features explicitly. A test
    run never selects extra members (that would run their tests): a feature it cannot name that way
    is left as `-p` gives it."""
    if set(names) == set(ws.packages) or command.features or command.all_features or command.no_default_features:
        return [], []
    flags, undirect = ws.unification(names, dev=command.includes_tests)
    if command.kind == "test":
        return [], [f for f in flags if f.split("/", 1)[0] not in undirect]
    return undirect, flags


def diagnostics_of(package: str, messages: list[dict[str, Any]]) -> list[Diagnostic]:
    return [
        Diagnostic.from_cargo(package, m)
        for m in messages
        if not (not m.get("spans") and (m.get("level") == "failure-note" or _SUMMARY.match(str(m.get("message", "")))))
    ]


OUTSIDE_ID_KEY = "$cargo_scheduler_package_id"
"""In the raw message of a diagnostic from a path crate that is not a member: that crate's package id
(cargo's JSON names it; the answer's members are named by the result)."""


def _outside_diagnostics(outcome: CargoOutcome, members: Mapping[str, str]) -> dict[str, list[Diagnostic]]:
    """What cargo said about the path crates it built that are not members, by crate directory:
    cargo shows their warnings and errors as a member's (no lint cap for path dependencies), and
    an error there is why the members on top of it were not compiled."""
    out: dict[str, list[Diagnostic]] = {}
    for package_id, msgs in outcome.messages.items():
        if package_id in members or not package_id.startswith("path+"):
            continue
        found = diagnostics_of(outside_name(package_id), [{**m, OUTSIDE_ID_KEY: package_id} for m in msgs])
        out.setdefault(os.path.normpath(path_of_id(package_id)), []).extend(found)
    return out


def results_from_outcome(
    ws: Workspace, outcome: CargoOutcome, selected: Sequence[str], *, dev: bool
) -> dict[str, PackageResult]:
    """Answers for the selected packages; empty when the run did not finish (timeout, cancel) or
    cargo failed before building anything (then nothing it said is about these sources' code)."""
    if not outcome.completed or outcome.finished_success is None:
        return {}
    by_id = {p.id: n for n, p in ws.packages.items()}
    messages: dict[str, list[dict[str, Any]]] = {}
    for package_id, msgs in outcome.messages.items():
        name = by_id.get(package_id)
        if name is not None:
            messages.setdefault(name, []).extend(msgs)
    # A member with a path dependency outside the workspace carries what cargo said about the
    # outside crates it builds on (`cargo/_outside`); its recorded inputs hold every such crate's
    # files (`_record`), so its key changes whenever one of them does.
    outside = _outside_diagnostics(outcome, by_id)
    reached = _outside.reach(ws) if outside else {}
    failed = {n for n, msgs in messages.items() if any(m.get("level") == "error" for m in msgs)}
    failed |= outcome.failed_units & set(ws.packages)
    edges = ws.dep_edges(dev=dev)
    per_package_ms = outcome.duration_ms / max(len(selected), 1)
    results: dict[str, PackageResult] = {}
    for name in selected:
        own = [*diagnostics_of(name, messages.get(name, [])), *_build_script_warnings(ws, name, outcome)]
        if name in reached:
            own = [*(d for directory in sorted(reached[name]) for d in outside.get(directory, ())), *own]
        below = _graph.reachable(edges.get(name, ()), edges) - {name}
        blocked = sorted(below & failed)
        if (
            not blocked
            and name not in failed
            and not outcome.finished_success
            and ws.packages[name].id not in outcome.artifacts
        ):
            # Not compiled, and no failing member explains it: a dependency from outside the
            # workspace (a registry crate's build script, say) failed.
            blocked = sorted(outcome.failed_units - set(ws.packages)) or ["a dependency outside the workspace"]
        results[name] = PackageResult(
            name=name,
            success=name not in failed and not blocked,
            diagnostics=own,
            source="run",
            duration_ms=per_package_ms,
            blocked_by=blocked,
        )
        if name in outcome.failed_units and not any(d.level == "error" for d in own):
            results[name].diagnostics.append(_text_failure(name, outcome.stderr))
    return results


def _text_failure(package: str, stderr: str) -> Diagnostic:
    """A failure cargo reported only as text (a build script, the linker): keep its words."""
    lines = [ln for ln in stderr.splitlines() if package in ln or ln.startswith(("  ", "error"))]
    return _synthetic(package, "\n".join(lines[-40:]))


def _build_script_warnings(ws: Workspace, name: str, outcome: CargoOutcome) -> list[Diagnostic]:
    """`warning: name@version: text` for each `cargo::warning=` of the member's build script, as
    cargo prints them at every run (fresh or not): read from the script's output file."""
    package = ws.packages[name]
    script = outcome.build_scripts.get(package.id)
    if script is None or not script.out_dir:
        return []
    try:
        text = (Path(script.out_dir).parent / "output").read_text(errors="replace")
    except OSError:
        return []
    fragment = package.id.partition("#")[2]
    version = fragment.rsplit("@", 1)[-1]
    found = parse_build_output(text).warnings
    return [_synthetic(name, f"warning: {name}@{version}: {w}", level="warning", message=w) for w in found]


def _synthetic(package: str, text: str, *, level: str = "error", message: str | None = None) -> Diagnostic:
    raw: dict[str, Any] = {"synthetic": True, "text": text}
    if level != "error":
        raw.update(level=level, message=message)
    return Diagnostic(
        package=package,
        level=level,
        message=message or f"cargo could not build `{package}`",
        code=None,
        file=None,
        line=None,
        column=None,
        rendered=text,
        raw=raw,
    )


Roots = tuple[tuple[str, str], ...]
"""(placeholder, absolute path) pairs: where this checkout and $CARGO_HOME live."""


WORKSPACE_MARK = "{{cargo-scheduler:workspace}}"
"""What stands for the checkout's root in anything shared (answers, metadata)."""


def roots_of(workspace: Path, cargo_home: Path, outside: Iterable[str] = ()) -> Roots:
    """The places a stored message names, each with its placeholder, longest first: the root,
    `$CARGO_HOME`, and the outside path crates the members build on (`outside`, by directory),
    marked by their place relative to the root: their files are keyed that way too
    (`_inputs.Locator.relative_twin`), so a hit from another checkout names that checkout's
    neighbour. Reading needs no `outside`: `from_entry` resolves those marks against its root."""
    pairs = [(WORKSPACE_MARK, str(workspace)), ("{{cargo-scheduler:cargo-home}}", str(cargo_home))]
    pairs += [(_OUTSIDE_MARK.format(os.path.relpath(d, workspace)), d) for d in outside]
    return tuple(sorted(pairs, key=lambda pair: len(pair[1]), reverse=True))


_OUTSIDE_MARK = "{{{{cargo-scheduler:outside:{}}}}}"
_OUTSIDE_MARKED = re.compile(r"\{\{cargo-scheduler:outside:([^}\"]*)\}\}")


def _resolve_outside(text: str, roots: Roots) -> str:
    """Outside marks as this checkout's directories (JSON text in, JSON text out)."""
    root = next((path for mark, path in roots if mark == WORKSPACE_MARK), None)
    if root is None or "cargo-scheduler:outside:" not in text:
        return text
    return _OUTSIDE_MARKED.sub(lambda m: json.dumps(os.path.normpath(os.path.join(root, m.group(1))))[1:-1], text)


def to_entry(result: PackageResult, roots: Roots = ()) -> dict[str, Any]:
    """What is stored for an answer. Absolute paths of this checkout and of $CARGO_HOME in cargo's
    messages become placeholders, so the entry answers for the same sources in any checkout (keys
    hold no path either) and names that checkout's files when read (`from_entry`)."""
    messages = [d.raw for d in result.diagnostics]
    entry: dict[str, Any] = {
        "success": result.success,
        "messages": messages,
        "blocked_by": result.blocked_by,
        "duration_ms": result.duration_ms,
        "at": time.time(),
    }
    if messages and roots:
        text = json.dumps(messages)
        based = replace_roots(text, [(path, mark) for mark, path in roots])
        if based != text:
            entry["messages"] = json.loads(based)
            entry["rebased"] = True
    return entry


def replace_roots(text: str, pairs: list[tuple[str, str]]) -> str:
    """Replace each `old` that is a whole path prefix (followed by a separator, a quote or the end)."""
    for old, new in pairs:
        escaped, replacement = json.dumps(old)[1:-1], json.dumps(new)[1:-1]
        # A function, not a template: the replacement's backslashes are literal.
        text = re.sub(re.escape(escaped) + r'(?=/|\\|"|$)', functools.partial(_literal, replacement), text)
    return text


def _literal(text: str, _match: re.Match[str]) -> str:
    return text


def from_entry(name: str, entry: dict[str, Any], roots: Roots = ()) -> PackageResult:
    """Rebuild a cached answer through the same code path as a fresh one: indistinguishable, with the
    placeholders of `to_entry` put back as this checkout's paths."""
    raws = entry.get("messages", [])
    if entry.get("rebased") and roots:
        text = replace_roots(json.dumps(raws), [(mark, path) for mark, path in roots])
        raws = json.loads(_resolve_outside(text, roots))
    diags: list[Diagnostic] = []
    for raw in raws:
        if raw.get("synthetic"):
            level, message = str(raw.get("level") or "error"), raw.get("message")
            diags.append(_synthetic(name, str(raw.get("text", "")), level=level, message=message))
        else:
            outside = raw.get(OUTSIDE_ID_KEY)
            diags.extend(diagnostics_of(outside_name(outside) if isinstance(outside, str) else name, [raw]))
    return PackageResult(
        name=name,
        success=bool(entry.get("success")),
        diagnostics=diags,
        source="cache",
        duration_ms=float(entry.get("duration_ms", 0.0)),
        blocked_by=list(entry.get("blocked_by", [])),
    )
