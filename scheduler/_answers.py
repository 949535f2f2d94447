"""CARGO_SCHEDULER_ANSWERS: whose answer shapes a session gets (`serve --answers` sets it).

`cargo-scheduler` (the default) is our compact objects; `rust-analyzer-mcp` is that peer's exact
answers for its tools, for scripts and test suites that parse them (docs/migrating.md,
`server/_peer_shapes`). Read from the session's environment on each call, not by the daemon at
its start: sessions of both kinds share one daemon, so it is no part of the daemon's fingerprint.
Imports nothing: the stdio front checks it before the handshake, where every millisecond counts.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

ANSWERS = "CARGO_SCHEDULER_ANSWERS"
OURS = "cargo-scheduler"
PEER_ANSWERS = "rust-analyzer-mcp"
CHOICES = (OURS, PEER_ANSWERS)


def choice(value: str | None) -> str | None:
    """`value` as one of CHOICES (unset or blank: ours), or None when it is none of them."""
    value = (value or "").strip().lower() or OURS
    return value if value in CHOICES else None


def answers(env: Mapping[str, str] | None = None) -> str:
    """The session's choice in `env` (default: this process's environment). Raises ConfigError."""
    value = (os.environ if env is None else env).get(ANSWERS)
    chosen = choice(value)
    if chosen is None:
        from ._exceptions import ConfigError

        raise ConfigError(ANSWERS, str(value), "one of " + ", ".join(CHOICES) + " (whose answer shapes to send)")
    return chosen
