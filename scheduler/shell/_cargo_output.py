"""An answer printed as cargo prints it: diagnostics and summary lines on stderr (human, short), or
cargo's JSON messages on stdout, so a tool that reads cargo's output reads ours unchanged.

Cargo's words are copied from cargo 1.95: `warning: `pkg` (lib) generated 1 warning (run `cargo
fix --lib -p pkg` to apply 1 suggestion)`, `error: could not compile `pkg` (lib) due to 1 previous
error; 1 warning emitted`, rustc's `For more information about this error` note, and `Finished`.
What cargo says about units it compiled (`Checking ...`) or found fresh has no counterpart in an
answer from the cache and is not printed. The unit a message came from is the target cargo named
(stored with it since answers carry it). A message repeated by one target is shown once: the engine
runs with `--keep-going`, which compiles a proc-macro crate twice, and cargo's JSON does not say
which profile a unit had, so a `--all-targets` answer names `lib` where cargo names `lib` and
`lib test`, each with its copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cargo._run import TARGET_KEY
from ..cargo._workspace import Package, Workspace, outside_name, path_of_id
from ..engine._report import CheckReport
from ..engine._runs import OUTSIDE_ID_KEY

_LIB_KINDS = {"lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro", "custom-build"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERROR_CODE = re.compile(r"^E\d{4}$")


@dataclass(frozen=True)
class Style:
    format: str = "human"
    """human, short or json."""
    color: bool = False
    quiet: bool = False
    fix_command: str = "cargo fix"
    """What the fix hint names (`cargo clippy --fix` for clippy)."""


def render(
    ws: Workspace, report: CheckReport, selected: Iterable[str], style: Style, *, profile: str, elapsed_s: float
) -> tuple[str, str]:
    """(stdout, stderr) for `report`. Members not in `selected` were only built as dependencies:
    as cargo does, only their library (and build script) messages are shown."""
    chosen = set(selected)
    out: list[str] = []
    err: list[str] = []
    order = [n for n in ws.order(dev=True) if n in report.results] + sorted(set(report.results) - set(ws.packages))
    # Path crates outside the workspace first, once each (every member using one carries its
    # messages), as cargo builds them before the members on top of them.
    outside: dict[str, list[dict[str, Any]]] = {}
    for name in order:
        for d in report.results[name].diagnostics:
            package_id = d.raw.get(OUTSIDE_ID_KEY)
            if isinstance(package_id, str) and d.raw not in outside.setdefault(package_id, []):
                outside[package_id].append(d.raw)
    for package_id, raws in outside.items():
        crate = _outside_package(package_id, raws)
        for unit, messages in _units(crate, raws, only_lib=True).items():
            _unit(crate, unit, messages, style, out, err, failed=False)
    for name in order:
        package = ws.packages.get(name)
        result = report.results[name]
        if not result.diagnostics:
            continue  # most members of a clean answer: nothing to print
        for d in result.diagnostics:
            if d.raw.get("synthetic") and not (style.quiet and d.level == "warning"):  # -q hides script warnings
                err.append(str(d.raw.get("text", "")).rstrip("\n") + "\n")
        if package is None:
            continue
        raws = [d.raw for d in result.diagnostics if not d.raw.get("synthetic") and OUTSIDE_ID_KEY not in d.raw]
        units = _units(package, raws, only_lib=name not in chosen)
        for unit, messages in units.items():
            _unit(package, unit, messages, style, out, err, failed=not result.success)
    if style.format == "json":
        out.append(json.dumps({"reason": "build-finished", "success": report.success}, separators=(",", ":")) + "\n")
    if report.success and not style.quiet:
        err.append(_paint(style, "\x1b[1m\x1b[92m", "    Finished") + f" {profile} target(s) in {elapsed_s:.2f}s\n")
    return "".join(out), "".join(err)


def _outside_package(package_id: str, raws: list[dict[str, Any]]) -> Package:
    """A path crate outside the workspace as the renderer needs it: name, id, manifest, targets."""
    directory = Path(path_of_id(package_id))
    targets = tuple(t for t in (r.get(TARGET_KEY) for r in raws) if isinstance(t, dict))
    return Package(
        name=outside_name(package_id),
        id=package_id,
        root=directory,
        manifest=directory / "Cargo.toml",
        deps=frozenset(),
        dev_deps=frozenset(),
        targets=targets[:1],
    )


def profile_words(kind: str, release: bool) -> str:
    """cargo's words for the profile of a default configuration (a customised profile's words differ)."""
    if release:
        return "`release` profile [optimized]"
    return f"`{'test' if kind == 'test' else 'dev'}` profile [unoptimized + debuginfo]"


Unit = tuple[str, tuple[str, ...]]
"""(target name, target kinds)."""


def _units(package: Package, raws: list[dict[str, Any]], *, only_lib: bool) -> dict[Unit, list[dict[str, Any]]]:
    fallback = package.targets[0] if package.targets else {"kind": ["lib"], "name": package.name}
    units: dict[Unit, list[dict[str, Any]]] = {}
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    for raw in raws:
        target = raw.get(TARGET_KEY) or fallback
        kinds = tuple(str(k) for k in target.get("kind") or ())
        if only_lib and not _LIB_KINDS.intersection(kinds):
            continue
        name = str(target.get("name", package.name))
        key = (name, kinds, str(raw.get("rendered") or raw.get("message")))
        if key not in seen:
            seen.add(key)
            units.setdefault((name, kinds), []).append(raw)
    return units


def _unit(
    package: Package,
    unit: Unit,
    messages: list[dict[str, Any]],
    style: Style,
    out: list[str],
    err: list[str],
    *,
    failed: bool,
) -> None:
    errors = [m for m in messages if m.get("level") in ("error", "error: internal compiler error")]
    warnings = [m for m in messages if m.get("level") == "warning"]
    codes = sorted({str((m.get("code") or {}).get("code")) for m in errors if _has_explanation(m)})
    notes = _explain_notes(codes)
    for message in messages + notes:
        if style.format == "json":
            out.append(_json_line(package, message) + "\n")
        elif style.format == "short":
            if message in notes:
                continue
            err.append(_short(message, style) + "\n")
        else:
            err.append(_human(message, style))
    described = _describe(unit)
    warned = f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
    if warnings and not style.quiet and style.format != "json":
        line = f"`{package.name}` ({described}) generated {warned}"
        fixable = sum(1 for m in warnings if _machine_applicable(m))
        if fixable and not failed and described != "build script":  # cargo fix skips build scripts
            flag = (
                "--lib" if unit[1] and unit[1][0] in _LIB_KINDS else f'--{unit[1][0] if unit[1] else "lib"} "{unit[0]}"'
            )
            plural = "s" if fixable != 1 else ""
            line += f" (run `{style.fix_command} {flag} -p {package.name}` to apply {fixable} suggestion{plural})"
        err.append(_paint(style, "\x1b[1m\x1b[33m", "warning") + f": {line}\n")
    if errors:
        n = len(errors)
        line = f"could not compile `{package.name}` ({described}) due to {n} previous error{'s' if n != 1 else ''}"
        if warnings:
            line += f"; {warned} emitted"
        err.append(_paint(style, "\x1b[1m\x1b[91m", "error") + f": {line}\n")


def _describe(unit: Unit) -> str:
    name, kinds = unit
    kind = kinds[0] if kinds else "lib"
    if kind == "custom-build":
        return "build script"
    return "lib" if kind in _LIB_KINDS else f'{kind} "{name}"'


def _human(message: dict[str, Any], style: Style) -> str:
    """rustc's rendering, verbatim (as cargo prints it), without its colours unless wanted."""
    text = str(message.get("rendered") or "")
    if not style.color:
        text = _ANSI.sub("", text)
    elif message.get("level") == "failure-note" and "\x1b[" not in text:
        text = f"\x1b[1m{text.rstrip(chr(10))}\x1b[0m\n"
    return text if text.endswith("\n") else text + "\n"


def _short(message: dict[str, Any], style: Style) -> str:
    """rustc's `--error-format=short` line, rebuilt from the JSON (the stored rendering is human)."""
    spans = message.get("spans") or []
    primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
    code = (message.get("code") or {}).get("code")
    head = f"{message.get('level')}" + (f"[{code}]" if code and _ERROR_CODE.match(str(code)) else "")
    text = f"{head}: {message.get('message')}"
    if primary is not None:
        text = f"{primary.get('file_name')}:{primary.get('line_start')}:{primary.get('column_start')}: {text}"
        if primary.get("label"):
            text += f": {primary['label']}"
        else:
            inline = _inline_suggestion(message)
            if inline:
                text += f": {inline}"
    return text


def _inline_suggestion(message: dict[str, Any]) -> str | None:
    """A lone one-part suggestion, which rustc shows inline (`help: prefix it: `_x``)."""
    helps = [
        c
        for c in message.get("children") or ()
        if any(s.get("suggested_replacement") is not None for s in c.get("spans") or ())
    ]
    if len(helps) != 1 or len(helps[0].get("spans") or ()) != 1:
        return None
    replacement = str(helps[0]["spans"][0]["suggested_replacement"])
    if "\n" in replacement or not replacement:
        return None
    return f"help: {helps[0].get('message')}: `{replacement}`"


def _json_line(package: Package, message: dict[str, Any]) -> str:
    target = message.get(TARGET_KEY) or (package.targets[0] if package.targets else {})
    inner = {k: v for k, v in message.items() if k not in (TARGET_KEY, OUTSIDE_ID_KEY)}
    if isinstance(inner.get("rendered"), str):
        inner["rendered"] = _ANSI.sub("", inner["rendered"])
    line = {
        "reason": "compiler-message",
        "package_id": package.id,
        "manifest_path": str(package.manifest),
        "target": target,
        "message": inner,
    }
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False)


def _has_explanation(message: dict[str, Any]) -> bool:
    code = message.get("code") or {}
    return bool(code.get("code") and _ERROR_CODE.match(str(code["code"])))


def _explain_notes(codes: list[str]) -> list[dict[str, Any]]:
    """rustc's closing note about `--explain` (the engine does not store it: it follows the codes)."""
    if not codes:
        return []
    if len(codes) == 1:
        texts = [f"For more information about this error, try `rustc --explain {codes[0]}`."]
    else:
        texts = [
            f"Some errors have detailed explanations: {', '.join(codes)}.",
            f"For more information about an error, try `rustc --explain {codes[0]}`.",
        ]
    return [
        {
            "rendered": text + "\n",
            "$message_type": "diagnostic",
            "children": [],
            "level": "failure-note",
            "message": text,
            "spans": [],
            "code": None,
        }
        for text in texts
    ]


def _machine_applicable(message: dict[str, Any]) -> bool:
    for child in message.get("children") or ():
        if any(s.get("suggestion_applicability") == "MachineApplicable" for s in child.get("spans") or ()):
            return True
    return any(s.get("suggestion_applicability") == "MachineApplicable" for s in message.get("spans") or ())


def _paint(style: Style, code: str, word: str) -> str:
    return f"{code}{word}\x1b[0m" if style.color else word
