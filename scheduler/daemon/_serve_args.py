"""`cargo-scheduler serve`'s command line: this project's flags and the peers' (rust-analyzer-mcp's
`[OPTIONS] [--] [WORKSPACE]` with its feature and `--config` flags, cargo-mcp's `serve`).

Hand-rolled and standard library only, like the front that uses it: argparse costs ~10 ms on the
handshake's path, and every agent session pays for this module before its first turn.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

VALUED = ("--idle-timeout", "--port", "--token-file", "--rust-analyzer", "--allow-env")
"""The daemon flags that take a value."""


SERVE_HELP = """\
usage: cargo-scheduler serve [OPTIONS] [--] [WORKSPACE]

The MCP server on stdio (drop-in for cargo-mcp and rust-analyzer-mcp: `cargo-mcp serve` and
`rust-analyzer-mcp [OPTIONS] [WORKSPACE]` mean the same here): answers the handshake itself and
relays every call to the workspace's shared daemon, starting it when none runs.

arguments:
  WORKSPACE            the default workspace (any directory inside it); default: the current
                       directory. Same as --workspace

rust-analyzer (as rust-analyzer-mcp takes them):
  --all-features       analyse with every cargo feature enabled
  --features LIST      cargo features to analyse with, comma- or space-separated (`pkg/feature` in a
                       workspace); repeatable
  --no-default-features
                       leave the manifest's default features out
  --config KEY=VALUE   set any rust-analyzer setting (VALUE read as JSON, else as a string), such as
                       --config check.command=clippy; repeatable
                       A session with other analysis options gets a rust-analyzer of its own.

options:
  --workspace PATH     the default workspace, as WORKSPACE
  --answers SHAPES     cargo-scheduler (default: compact JSON objects) or rust-analyzer-mcp (that
                       peer's exact answers for its tools, for scripts that parse them; also
                       CARGO_SCHEDULER_ANSWERS); see docs/migrating.md
  --idle-timeout S     seconds a daemon with no session waits before it exits (default 1800, or
                       CARGO_SCHEDULER_IDLE_TIMEOUT)
  --rust-analyzer PATH the rust-analyzer binary (default: found on PATH, skipping the rustup proxy)
  --allow-env NAME     let this session's cargo_env also set NAME (PREFIX* for every variable
                       starting with PREFIX); repeatable
  --allow-unsafe-env   let this session's cargo_env set any variable, also those that change what
                       runs (RUSTC_WRAPPER, ...)
  --http               the daemon also serves streamable HTTP on loopback (URL in
                       `cargo-scheduler daemon status`); this session stays on stdio
  --port N             with --http: the port (default: any free one)
  --token-file F       with --http: the bearer token's file (default: in the state directory)
  -h, --help           show this help and exit
  -V, --version        print the version and exit

Environment: the CARGO_SCHEDULER_* settings (docs/mcp.md); the session's cargo runs in this
process's environment (the MCP client's). SIGINT, SIGTERM and SIGHUP end the session with exit 0.
"""
"""`serve --help`, hand-written: argparse costs ~10 ms on the handshake's path. tests/cli checks that
it names every flag `parse_args` takes and that docs/mcp.md documents each of them."""

_ANALYZER_FLAGS = ("--all-features", "--features", "--no-default-features", "--config")


class ServeArgs(NamedTuple):
    start: str
    daemon_args: list[str]
    http: bool
    analyzer: dict[str, Any] | None
    """The session's analysis options on the wire (`_analyzer_options.AnalyzerOptions.to_wire`),
    None for the defaults."""
    answers: str | None = None
    """`--answers`: whose answer shapes this session gets (checked by `_settings.answers`), None
    when the flag was not given (CARGO_SCHEDULER_ANSWERS, else ours)."""


def _usage_error(message: str) -> SystemExit:
    return SystemExit(f"cargo-scheduler serve: {message} (see cargo-scheduler serve --help)")


def parse_args(argv: list[str]) -> ServeArgs:
    """Hand-rolled (argparse costs ~10 ms): the flags of `SERVE_HELP`, in both spellings
    (`--flag value`, `--flag=value`), and a lone `--` before a WORKSPACE that starts with '-'."""
    start: str | None = None
    daemon_args: list[str] = []
    http = False
    answers: str | None = None
    options: Any = None  # an AnalyzerOptions once a rust-analyzer flag is seen
    rest = list(argv)
    options_ended = False
    while rest:
        arg = rest.pop(0)
        if options_ended or not arg.startswith("-") or arg == "-":
            if start is not None:
                raise _usage_error(f"unexpected extra argument {arg!r} (the workspace is {start!r})")
            start = arg
            continue
        if arg == "--":
            options_ended = True
            continue
        flag, eq, inline = arg.partition("=")
        value = _next_value(flag, rest, inline if eq else None)
        if flag in ("-h", "--help"):
            sys.stdout.write(SERVE_HELP)
            raise SystemExit(0)
        if flag in ("-V", "--version"):
            from .._version import __version__

            sys.stdout.write(f"cargo-scheduler {__version__}\n")
            raise SystemExit(0)
        if flag == "--workspace":
            if start is not None:
                raise _usage_error(f"the workspace is given twice ({start!r} and --workspace)")
            start = value()
        elif flag == "--answers":
            answers = value()
        elif flag in VALUED:
            daemon_args += [flag, value()]
        elif flag in _ANALYZER_FLAGS:
            options = _analyzer_option(options, flag, value() if flag in ("--features", "--config") else None)
        elif flag == "--allow-unsafe-env" and not eq:
            daemon_args.append(flag)
        elif flag == "--http" and not eq:
            http = True
            daemon_args.append("--http")
        else:
            raise _usage_error(f"unknown argument {arg!r}")
    analyzer = None if options is None or options.is_default else options.to_wire()
    return ServeArgs(start if start is not None else os.getcwd(), daemon_args, http, analyzer, answers)


def _next_value(flag: str, rest: list[str], inline: str | None) -> Any:
    """The value of `flag` (`--flag=value`, else the next argument): taken only when asked for."""

    def take() -> str:
        if inline is not None:
            return inline
        if not rest:
            raise _usage_error(f"{flag} needs a value")
        return rest.pop(0)

    return take


def _analyzer_option(options: Any, flag: str, value: str | None) -> Any:
    """`options` with one rust-analyzer flag applied (the rules are `_analyzer_options`')."""
    from .._analyzer_options import AnalyzerOptions
    from .._exceptions import InvalidArgument

    current = options if options is not None else AnalyzerOptions()
    try:
        if flag == "--all-features":
            return current.with_all_features()
        if flag == "--no-default-features":
            return current.without_default_features()
        assert value is not None
        return current.with_features(value) if flag == "--features" else current.with_setting(value)
    except InvalidArgument as exc:
        raise _usage_error(f"{exc.argument} {exc.problem}") from None
