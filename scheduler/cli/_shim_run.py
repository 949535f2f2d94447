"""The `cargo` the shim puts on PATH: `check|clippy|build|test` from the daemon, the real cargo for the rest.

Standard library only (this module, `_client` and what they import; tests/cli/test_client.py pins
it): the shim runs on every `cargo` an agent or a CI job types, so it may never cost more than
cargo's own no-op. Python starts with `-I -S` (no site, no user paths: ~10 ms) and this module adds
a socket round trip to a warm daemon; anything else (no daemon, another version or settings, a flag
the engine does not take, `+toolchain`, cargo's own global flags, any other subcommand) execs the
real cargo with the same argv, which costs one exec more than typing the real cargo.

The real cargo is the first `cargo` on PATH outside a shim's directory, and the daemon's cargo
never sees a shim either (`cargo/_shimless`): it must not come back here to wait for itself. With
no daemon serving the workspace, the shim starts one, detached, unless the install said not to
(`start`), so the next `cargo check` is answered from it; this call goes to the real cargo at once
and does not wait for the daemon.
"""

from __future__ import annotations

import os
import sys

from ..cargo._shimless import real_cargo, shimless_env

ALIASES = {"c": "check", "b": "build", "t": "test"}
"""cargo's built-in aliases for the answered subcommands (a user's `[alias]` cannot redefine them)."""
ANSWERED = ("check", "clippy", "build", "test")


def split(argv: list[str]) -> tuple[str, list[str]] | None:
    """(subcommand, its arguments) when the daemon may answer it; None: the real cargo's."""
    if not argv or argv[0].startswith(("+", "-")):
        return None  # a toolchain override or cargo's global flags: not keyed, not ours
    kind = ALIASES.get(argv[0], argv[0])
    return (kind, argv[1:]) if kind in ANSWERED else None


def main(start: bool = True) -> None:
    """Answer this `cargo` command line from the daemon, or exec the real cargo with it."""
    argv = sys.argv[1:]
    real = real_cargo(os.environ.get("PATH", ""))
    if real is None:
        sys.stderr.write("cargo-scheduler shim: no cargo on PATH besides the shim's\n")
        sys.exit(127)
    picked = split(argv)
    if picked is not None:
        from . import _client

        kind, rest = picked
        env, cwd = shimless_env(dict(os.environ)), os.getcwd()
        answer = _client.ask_daemon(kind, rest, cwd, env, tty=sys.stderr.isatty())
        if answer is not None:
            code, out, err = answer
            sys.stdout.write(out)
            sys.stderr.write(err)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if start:
            _client.start_daemon(cwd, env)
    os.execv(real, ["cargo", *argv])
