"""`cargo-scheduler check|clippy|build|test` used as cargo: cargo's selection, output and exit codes.

The answer is rendered to strings (not printed) because the daemon renders it too, for the
stdlib client (`_client.py`) that the shim and the CLI use when a daemon serves the workspace.

Selection is cargo's (1.95, checked against it by tests/cli/test_cargo_mode.py): `--workspace`
selects every member (minus `--exclude`), `-p` the named ones; otherwise the manifest the command
starts from (`--manifest-path`, else the nearest Cargo.toml at or above the directory) decides: the
workspace root's manifest selects the default members (`default-members`, else the root package,
else every member), a member's manifest that member. Every member the selection builds against is
answered too, as cargo compiles (and shows the warnings of) every path dependency; of those, only
their library and build-script messages are shown, as cargo builds only those of a dependency.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import InvalidArgument, SchedulerError
from ..cargo._root import manifest_dirs
from . import _cargo_output
from ._flags import Parsed, start_dir

if TYPE_CHECKING:
    from ..cargo._workspace import Workspace
    from ..engine._engine import Engine

COMPILE_FAILED = 101
USAGE_ERROR = 1


async def foreign_selection(engine: Engine, parsed: Parsed) -> str | None:
    """Why the real cargo must answer this command line (None: the engine may): a `-p` or
    `--exclude` naming what is not a member (a dependency, a glob, a package ID spec). cargo
    selects those itself and the engine answers for members only; the daemon then says `unfit`
    and the CLI execs cargo. A workspace that cannot be read is `answer`'s to report."""
    if not parsed.packages and not parsed.exclude:
        return None  # the usual command line: no second look at the workspace on the shim's path
    try:
        ws = await engine.workspace()
    except SchedulerError:
        return None
    foreign = [n for n in (*parsed.packages, *parsed.exclude) if n not in ws.packages]
    return f"{', '.join(foreign)} is not a member: the real cargo selects it" if foreign else None


def color_wanted(parsed: Parsed, env: Mapping[str, str], tty: bool) -> bool:
    """`--color`, else CARGO_TERM_COLOR, else auto: a terminal, unless NO_COLOR is set (or TERM=dumb)."""
    when = parsed.color or env.get("CARGO_TERM_COLOR") or "auto"
    if when == "always":
        return True
    if when == "never":
        return False
    return tty and not env.get("NO_COLOR") and env.get("TERM") != "dumb"


def selection(ws: Workspace, parsed: Parsed, cwd: str) -> list[str]:
    """The packages cargo would select for this command line in `cwd`."""
    if parsed.workspace:
        return [n for n in ws.members if n not in parsed.exclude]
    if parsed.packages:
        return ws.require(parsed.packages)
    if parsed.exclude:
        raise InvalidArgument("--exclude", "--exclude can only be used together with --workspace")
    manifest = (
        os.path.abspath(os.path.join(cwd, parsed.manifest_path))
        if parsed.manifest_path
        else _nearest_manifest(start_dir(parsed, cwd))
    )
    resolved = Path(os.path.realpath(manifest)) if manifest else None
    if resolved is not None and resolved != ws.root / "Cargo.toml":
        for name, package in ws.packages.items():
            if package.manifest == resolved:
                return [name]
    return list(ws.default_members) or ws.members


def _nearest_manifest(directory: str) -> str | None:
    nearest = next(manifest_dirs(directory), None)
    return None if nearest is None else os.path.join(nearest, "Cargo.toml")


def answered_members(ws: Workspace, selected: list[str], *, dev: bool) -> list[str]:
    """The selection and every member it builds against (dev-dependencies when tests are built)."""
    return ws.built_against(selected, dev=dev)


def progress_wanted(parsed: Parsed, tty: bool) -> bool:
    """cargo's rule for its progress bar: a terminal, human output, not quiet."""
    return tty and parsed.message_format == "human" and not parsed.quiet


def progress_line(msg: Mapping[str, object], done: int) -> str | None:
    """The progress line for one of cargo's JSON messages (None: not a unit finishing)."""
    if msg.get("reason") != "compiler-artifact":
        return None
    target = msg.get("target")
    name = target.get("name", "") if isinstance(target, dict) else ""
    return f"    Building {done} unit(s) done: {name}"


async def answer(
    engine: Engine,
    parsed: Parsed,
    cwd: str,
    env: Mapping[str, str],
    *,
    tty: bool,
    elapsed_s: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the command, as cargo would give them; `progress` gets a line
    for each unit cargo finishes meanwhile, when cargo would show its progress bar."""
    import time

    from ..engine._report import Kind

    started = time.monotonic()
    kind: Kind = "test" if parsed.kind in ("test", "test-build") else parsed.kind  # type: ignore[assignment]
    style = _cargo_output.Style(
        format=parsed.message_format,
        color=color_wanted(parsed, env, tty),
        quiet=parsed.quiet,
        fix_command="cargo clippy --fix" if kind == "clippy" else "cargo fix",
    )
    try:
        ws = await engine.workspace()
        selected = selection(ws, parsed, cwd)
        dev = kind == "test" or parsed.all_targets
        request = parsed.request(
            kind,
            scope="workspace",
            packages=tuple(answered_members(ws, selected, dev=dev)),
            env=tuple(sorted(env.items())),
        )
        report = await engine.check(request, on_message=_counting(progress) if progress_wanted(parsed, tty) else None)
        ws = await engine.workspace()
    except SchedulerError as exc:
        return COMPILE_FAILED, "", f"{_cargo_output_error(style)}: {exc}\n"
    total = elapsed_s + time.monotonic() - started
    out, err = _cargo_output.render(
        ws, report, selected, style, profile=_cargo_output.profile_words(kind, parsed.release), elapsed_s=total
    )
    if report.error:
        err += f"{_cargo_output_error(style)}: {report.error}\n"
    if parsed.verbose:
        ran, cached = report.ran(), report.cached()
        err += (
            f"note: cargo-scheduler answered {len(report.results)} package(s): ran {len(ran)}"
            f"{': ' + ', '.join(ran[:8]) if ran else ''}; {len(cached)} from the cache\n"
        )
    return (0 if report.success else COMPILE_FAILED), out, err


def _counting(progress: Callable[[str], None] | None) -> Callable[[dict[str, Any]], None] | None:
    if progress is None:
        return None
    done = 0

    def on_message(msg: dict[str, Any]) -> None:
        nonlocal done
        line = progress_line(msg, done + 1)
        if line is not None:
            done += 1
            progress(line)

    return on_message


def _cargo_output_error(style: _cargo_output.Style) -> str:
    return "\x1b[1m\x1b[91merror\x1b[0m" if style.color else "error"


def exec_cargo(kind: str, argv: list[str]) -> None:
    """Replace this process with the real cargo, same arguments (`test-build` is `test --no-run`)."""
    import sys

    args = ["test", "--no-run", *argv] if kind == "test-build" else [kind, *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("cargo", ["cargo", *args])
