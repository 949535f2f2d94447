"""The `cargo-scheduler` command (also `cargo scheduler`, as cargo runs `cargo-*` from PATH).

Imports are deferred into each subcommand: `serve` must answer an MCP handshake within
milliseconds, so nothing heavy (not even argparse or pathlib) may load before it is known which
subcommand runs.
"""

from __future__ import annotations

import sys
import time

STARTED = time.monotonic()
"""When this module loaded; `elapsed` counts from the process's start where the OS says when that was."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def elapsed() -> float:
    """Seconds the user has waited for this command: since the process started (Linux: from /proc,
    so the interpreter's start and the imports count too), else since this module loaded. The
    summary's "ok in" is this, not the engine's part of the work."""
    own = time.monotonic() - STARTED
    try:
        import os

        with open("/proc/self/stat", "rb") as f:
            start_ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(own, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return own


def _parser() -> argparse.ArgumentParser:
    import argparse

    from .._version import __version__

    p = argparse.ArgumentParser(prog="cargo-scheduler", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"cargo-scheduler {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for kind in ("check", "clippy", "build", "test", "test-build"):
        # Parsed by _flags (cargo's flags, stdlib only), not argparse; listed here for --help.
        sub.add_parser(
            kind, help=f"cargo {kind}, narrowed and cached (cargo's flags; --help lists them)", add_help=False
        )
    g = sub.add_parser("graph", help="members, dependencies, and what a file change affects")
    g.add_argument("path", nargs="?", default=".")
    g.add_argument("--affected", nargs="+", metavar="FILE", help="files changed")
    cache = sub.add_parser("cache", help="the diagnostics cache")
    cache.add_argument("action", choices=["stats", "clear"])
    demo = sub.add_parser("demo", help="generate a workspace (unless given) and show narrowing and caching")
    demo.add_argument("path", nargs="?", default=None)
    demo.add_argument("--crates", type=int, default=40)
    sub.add_parser("serve", help="the MCP server on stdio (drop-in for cargo-mcp + rust-analyzer-mcp)", add_help=False)
    sub.add_parser("daemon", help="the shared daemon: status | stop | logs", add_help=False)
    sub.add_parser("hook", help="claude|codex: a PreToolUse hook steering shell cargo to the tools", add_help=False)
    sub.add_parser(
        "shim", help="a `cargo` on PATH answered by the daemon: install | uninstall | status", add_help=False
    )
    sub.add_parser(
        "bench", help="the benchmark report (bench/report.py of a source checkout; --help there)", add_help=False
    )
    return p


def bench_main(argv: list[str]) -> int:
    """`cargo-scheduler bench [--workspace PATH]...`: run bench/report.py with this Python.

    The benchmark suite lives in the source tree (bench/, with its traces and the peers it installs),
    not in the wheel: look for it in the current directory, then beside this package (an editable
    install), and say how to get it when neither has it.
    """
    import os
    import subprocess
    from pathlib import Path

    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        script = base / "bench" / "report.py"
        if script.is_file() and (base / "scheduler" / "cli" / "_main.py").is_file():
            return subprocess.run(
                [sys.executable, str(script), *argv], cwd=base, env=os.environ.copy(), check=False
            ).returncode
    print(
        "error: `cargo-scheduler bench` runs bench/report.py from a source checkout of cargo-scheduler; "
        "run it from the checkout's root (or `nox -s bench` there)",
        file=sys.stderr,
    )
    return 2


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["scheduler"]:  # invoked as `cargo scheduler ...`
        args_list = args_list[1:]
    if args_list[:1] == ["serve"]:
        from ..daemon._front import serve_main

        return serve_main(args_list[1:])
    if args_list[:1] == ["bench"]:
        return bench_main(args_list[1:])
    if args_list[:1] == ["shim"]:
        from .._exceptions import SchedulerError
        from ._shim import main as shim_main

        try:
            return shim_main(args_list[1:])
        except SchedulerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args_list[:1] == ["hook"]:
        from ._hook import hook_main

        return hook_main(args_list[1:])
    if args_list[:1] == ["daemon"]:
        from ..daemon._front import daemon_main

        return daemon_main(args_list[1:])
    if args_list[:1] and args_list[0] in ("check", "clippy", "build", "test", "test-build"):
        return cargo_like_main(args_list[0], args_list[1:])
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse's usage errors exit 2; cargo's, and ours, exit 1
        return 1 if exc.code == 2 else int(exc.code or 0)
    return _run(_dispatch, args)


def _run(main: Any, arg: Any) -> int:
    """Run an async subcommand: our errors are one line on stderr (exit 2), ^C exits 130."""
    import anyio

    from .._exceptions import SchedulerError

    try:
        code: int = anyio.run(main, arg)
        return code
    except SchedulerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def cargo_like_main(kind: str, argv: list[str]) -> int:
    """`check|clippy|build|test|test-build ARGS`: cargo's flags (`_flags`), output and exit codes.

    A flag the engine cannot honour execs the real cargo with the same argv. Without the old CLI's
    own flags (PATH, --scope, --json...) the answer is cargo's (`_cargo_mode`), asked of the
    workspace's running daemon first (`_client`; its side is `shell/_served`), else in process,
    and then a daemon is started for the next question unless CARGO_SCHEDULER_START_DAEMON=0;
    with them, the old CLI's answer (its scopes and summary line)."""
    import os

    from ..shell import _flags

    parsed = _flags.parse(kind, argv)
    if parsed.help:
        print(_flags.usage(kind))
        return 0
    if parsed.usage is not None:
        print(
            f"error: {parsed.usage}\n\nUsage: cargo-scheduler {kind} [OPTIONS]\n\nFor more information, try '--help'.",
            file=sys.stderr,
        )
        return 1
    if parsed.fall is not None:
        from ..shell._cargo_mode import exec_cargo

        exec_cargo(kind, argv)
    if parsed.own:
        return _run(_old_check, parsed)
    from ._client import ask_daemon

    cwd, tty = os.getcwd(), sys.stderr.isatty()
    answer = ask_daemon(kind, argv, cwd, dict(os.environ), tty=tty, elapsed_s=elapsed())
    start = False
    if answer is None:
        import anyio

        from .. import _settings
        from .._exceptions import ConfigError
        from ..shell._cargo_mode import COMPILE_FAILED

        try:
            start = _settings.start_daemon()
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return COMPILE_FAILED
        if _configured_elsewhere(parsed):  # the daemon says so itself (`shell/_served`)
            from ..shell._cargo_mode import exec_cargo

            exec_cargo(kind, argv)
        try:
            answered = anyio.run(_cargo_in_process, parsed, cwd, tty)
        except KeyboardInterrupt:
            return 130
        if answered is None:  # a selection the engine does not answer (`foreign_selection`)
            from ..shell._cargo_mode import exec_cargo

            exec_cargo(kind, argv)
        answer = answered
    assert answer is not None
    code, out, err = answer
    sys.stdout.write(out)
    sys.stderr.write(err)
    if start:  # after the answer, so the daemon's start never competes with it (CARGO_SCHEDULER_START_DAEMON)
        from ..shell._flags import start_dir
        from ._client import start_daemon

        sys.stdout.flush()
        start_daemon(start_dir(parsed, cwd), dict(os.environ))
    return code


def _configured_elsewhere(parsed: Any) -> bool:
    """cargo typed here would read a configuration the engine, running at the workspace root, does
    not (`cargo._config.read_from_elsewhere`): the real cargo answers it."""
    import os
    from pathlib import Path

    from ..cargo._config import read_from_elsewhere
    from ..cargo._root import find_workspace_root
    from ..shell._flags import start_dir

    cwd = os.getcwd()
    root = find_workspace_root(start_dir(parsed, cwd))
    return root is not None and read_from_elsewhere(Path(root), cwd) is not None


async def _cargo_in_process(parsed: Any, cwd: str, tty: bool) -> tuple[int, str, str] | None:
    """The answer computed here, or None when the real cargo must answer (`foreign_selection`)."""
    import os
    from pathlib import Path

    from .._exceptions import SchedulerError
    from .._settings import Settings
    from ..engine._engine import EnginePool
    from ..shell._cargo_mode import COMPILE_FAILED, answer, foreign_selection
    from ..shell._flags import start_dir

    try:
        settings = Settings.from_env()
        async with EnginePool(cache_mb=settings.cache_mb, private_target=settings.target_dir == "private") as pool:
            engine = await pool.get(Path(start_dir(parsed, cwd)))
            if await foreign_selection(engine, parsed) is not None:
                return None
            shown = []

            def progress(line: str) -> None:  # cargo's progress line, each over the last (a terminal only)
                shown.append(line)
                sys.stderr.write("\r\x1b[2K" + line)
                sys.stderr.flush()

            answered = await answer(
                engine, parsed, cwd, dict(os.environ), tty=tty, elapsed_s=elapsed(), progress=progress
            )
            if shown:
                sys.stderr.write("\r\x1b[2K")
            return answered
    except SchedulerError as exc:
        return COMPILE_FAILED, "", f"error: {exc}\n"


async def _old_check(parsed: Any) -> int:
    """The old CLI: PATH, --scope, --json, --timeout, --no-wait (diagnostics now on stderr, as cargo's)."""
    import os
    from pathlib import Path

    from .._settings import Settings
    from ..engine._engine import CheckRequest, EnginePool
    from ..engine._report import Kind
    from . import _output as out

    settings = Settings.from_env()
    async with EnginePool(cache_mb=settings.cache_mb, private_target=settings.target_dir == "private") as pool:
        engine = await pool.get(Path(parsed.path or "."))
        kind: Kind = "test" if parsed.kind in ("test", "test-build") else parsed.kind
        # The environment of the question is the caller's: cargo runs in it and keys read it.
        question_env = tuple(sorted(os.environ.items()))
        request = parsed.request(
            kind,
            scope=parsed.scope or settings.scope,
            packages=tuple(parsed.packages),
            env=question_env,
            timeout_s=parsed.timeout,
        )
        progress = out.Progress(enabled=not parsed.json and sys.stderr.isatty())
        report = await engine.check(request, on_message=progress.on_message)
        progress.done()
        pending = list(report.pending)
        if parsed.json:
            answer: dict[str, Any] = report.to_dict(token_budget=1_000_000)
            if pending and not parsed.no_wait:
                await engine.wait_background(timeout_s=3600)
                later = await engine.check(
                    CheckRequest(kind=kind, scope="workspace", packages=tuple(pending), env=question_env)
                )
                answer["dependents"] = later.to_dict(token_budget=1_000_000)
            out.print_json(answer)
            return 0 if report.success and answer.get("dependents", {}).get("success", True) else 1
        if not pending or parsed.no_wait:
            root = engine.root  # the summary goes out once the pool has closed (below)
        else:
            out.print_report(engine.root, report, elapsed_s=elapsed())
            print(f"checking {len(pending)} dependent package(s) in the background...", file=sys.stderr)
            await engine.wait_background(timeout_s=3600)
            later = await engine.check(
                CheckRequest(kind=kind, scope="workspace", packages=tuple(pending), env=question_env)
            )
            out.print_report(engine.root, later, heading="dependents", elapsed_s=elapsed())
            return 0 if report.success and later.success else 101
    # "ok in" is the whole command's time: closing the pool (the cache, the watcher) is part of what
    # the user waits for, so the summary is printed after it.
    out.print_report(root, report, elapsed_s=elapsed())
    return 0 if report.success else 101


async def _dispatch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..engine._engine import EnginePool
    from . import _output as out

    if args.command == "cache":
        from ..engine._cache import DiagnosticsCache

        cache = DiagnosticsCache()
        if args.action == "clear":
            print(f"removed {cache.clear()} entries from {cache.directory}")
        else:
            from .. import _settings
            from ..cargo._run import stable_environment
            from ..cargo._sccache import Wrapping

            stats = cache.stats()
            wrapping = Wrapping(_settings.sccache(), _settings.remote())
            await wrapping.environment(stable_environment())  # probes the binary; starts no server
            out.print_json({**stats, "sccache": wrapping.status})
        cache.close()
        return 0
    if args.command == "demo":
        from ._demo import run_demo

        return await run_demo(Path(args.path) if args.path else None, args.crates)
    from .._settings import Settings

    settings = Settings.from_env()
    async with EnginePool(cache_mb=settings.cache_mb, private_target=settings.target_dir == "private") as pool:
        engine = await pool.get(Path(args.path))
        return await out.print_graph(engine, args.affected)


if __name__ == "__main__":
    sys.exit(main())
