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
    for kind in ("check", "clippy", "build", "test-build"):
        c = sub.add_parser(kind, help=f"cargo {kind}, narrowed and cached")
        c.add_argument("path", nargs="?", default=".", help="workspace (default: current directory)")
        c.add_argument(
            "--scope",
            choices=["auto", "changed", "affected", "workspace"],
            default=None,
            help="default: $CARGO_SCHEDULER_SCOPE, else auto",
        )
        c.add_argument("-p", "--package", action="append", default=[], help="restrict to this member")
        c.add_argument("--features", default="")
        c.add_argument("--all-targets", action="store_true")
        c.add_argument("--release", action="store_true")
        c.add_argument("--timeout", type=float, default=None, help="seconds before cargo is killed")
        c.add_argument("--json", action="store_true", help="one JSON answer on stdout")
        c.add_argument("--no-wait", action="store_true", help="auto scope: do not wait for dependents")
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
    if args_list[:1] == ["daemon"]:
        from ..daemon._front import daemon_main

        return daemon_main(args_list[1:])
    args = _parser().parse_args(args_list)
    import anyio

    from .._exceptions import SchedulerError

    try:
        code: int = anyio.run(_dispatch, args)
        return code
    except SchedulerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from ..engine._engine import CheckRequest, EnginePool
    from ..engine._report import Kind
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
        if args.command == "graph":
            return await out.print_graph(engine, args.affected)
        kind: Kind = "test" if args.command == "test-build" else args.command
        # The environment of the question is the caller's: cargo runs in it and keys read it.
        question_env = tuple(sorted(os.environ.items()))
        request = CheckRequest(
            kind=kind,
            scope=args.scope or settings.scope,
            packages=tuple(args.package),
            features=tuple(f for f in args.features.replace(",", " ").split() if f),
            all_targets=args.all_targets,
            release=args.release,
            timeout_s=args.timeout,
            env=question_env,
        )
        progress = out.Progress(enabled=not args.json and sys.stderr.isatty())
        report = await engine.check(request, on_message=progress.on_message)
        progress.done()
        pending = list(report.pending)
        if args.json:
            answer: dict[str, Any] = report.to_dict(token_budget=1_000_000)
            if pending and not args.no_wait:
                await engine.wait_background(timeout_s=3600)
                later = await engine.check(
                    CheckRequest(kind=kind, scope="workspace", packages=tuple(pending), env=question_env)
                )
                answer["dependents"] = later.to_dict(token_budget=1_000_000)
            out.print_json(answer)
            return 0 if report.success and answer.get("dependents", {}).get("success", True) else 1
        out.print_report(engine.root, report, elapsed_s=elapsed())
        ok = report.success
        if pending and not args.no_wait:
            print(f"checking {len(pending)} dependent package(s) in the background...", file=sys.stderr)
            await engine.wait_background(timeout_s=3600)
            later = await engine.check(
                CheckRequest(kind=kind, scope="workspace", packages=tuple(pending), env=question_env)
            )
            out.print_report(engine.root, later, heading="dependents", elapsed_s=elapsed())
            ok = ok and later.success
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
