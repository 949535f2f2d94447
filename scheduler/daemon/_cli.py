"""The daemon's answer to `cli-check`: a cargo command line answered by its warm engine.

The client (`cli/_client.py`) sends the command line, its directory, its environment and whether
its stderr is a terminal; the answer is rendered here exactly as `cargo-scheduler check` renders it
in process (`cli/_cargo_mode.answer`), so the two paths cannot drift. A request this daemon should
not answer gets `{"unfit": why}` and the client answers without it: another cargo-scheduler version,
other CARGO_SCHEDULER_* settings than the daemon started with (they are part of its identity), a
workspace it does not serve, or a command line the flag table sends to the real cargo.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _settings
from .._version import __version__
from . import _socket

if TYPE_CHECKING:
    from ._daemon import Daemon

log = logging.getLogger("cargo_scheduler.daemon")


async def answer_cli(daemon: Daemon, request: dict[str, Any]) -> dict[str, Any]:
    from ..cli import _flags
    from ..cli._cargo_mode import answer

    if request.get("version") != __version__:
        return {"unfit": f"version {request.get('version')!r} != {__version__!r}"}
    env = request.get("env")
    kind, argv, cwd = request.get("kind"), request.get("argv"), request.get("cwd")
    if not (
        isinstance(env, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
        and kind in _flags.KINDS
        and isinstance(argv, list)
        and all(isinstance(a, str) for a in argv)
        and isinstance(cwd, str)
        and os.path.isabs(cwd)
    ):
        return {"unfit": "malformed request"}
    if _settings.fingerprint(env) != daemon.settings_env:
        return {"unfit": "other CARGO_SCHEDULER_* settings than this daemon's"}
    parsed = _flags.parse(kind, argv)
    if parsed.fall is not None or parsed.usage is not None or parsed.help or parsed.own:
        return {"unfit": "not a command line this path answers"}
    root = _socket.workspace_root(_flags.start_dir(parsed, cwd))
    if root != str(daemon.workspace):
        return {"unfit": f"workspace {root} is not {daemon.workspace}"}
    daemon.touch()
    daemon.cli_inflight += 1  # busy: the idle timeout must not stop the daemon under a running check
    try:
        engine = await daemon.state.engine(Path(root))
        code, out, err = await answer(
            engine, parsed, cwd, env, tty=bool(request.get("tty")), elapsed_s=float(request.get("elapsed_s") or 0.0)
        )
    except Exception as exc:  # the client answers without us; the log says why
        log.exception("cli-check failed")
        return {"unfit": f"error: {type(exc).__name__}: {exc}"}
    finally:
        daemon.cli_inflight -= 1
        daemon.touch()
    return {"exit_code": code, "stdout": out, "stderr": err}
