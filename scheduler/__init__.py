"""cargo-scheduler: narrowed, cached cargo and a shared rust-analyzer for coding agents.

This module is the public API: what the tests, the benchmarks and the docs import, pinned by
tests/test_public_api.py. Everything else is private (`_`-prefixed modules in subpackages by concern:
cargo/, engine/, analyzer/, server/, daemon/, cli/, testing/).

The names are loaded lazily: `cargo-scheduler serve` must answer an MCP handshake in milliseconds, so
importing this package must not import anyio, diskcache or the MCP SDK.
"""

from __future__ import annotations

from ._version import __version__

# `typing` costs ~15 ms to import; the front process answers MCP handshakes before it needs it.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from ._exceptions import (
        AnalyzerError,
        CargoError,
        InvalidArgument,
        PathOutsideWorkspace,
        SchedulerError,
        UnknownPackage,
        WorkspaceError,
    )
    from .engine._engine import CheckRequest, Engine, EnginePool
    from .engine._report import CheckReport, Diagnostic, PackageResult
    from .server._build import build_server
    from .server._state import ServerState
    from .testing._baseline import fresh_cargo_check
    from .testing._generate import GeneratedWorkspace, generate_workspace
    from .testing._scenarios import Scenario, build_scenario

__all__ = [
    "AnalyzerError",
    "CargoError",
    "CheckReport",
    "CheckRequest",
    "Diagnostic",
    "Engine",
    "EnginePool",
    "GeneratedWorkspace",
    "InvalidArgument",
    "PackageResult",
    "PathOutsideWorkspace",
    "Scenario",
    "SchedulerError",
    "ServerState",
    "UnknownPackage",
    "WorkspaceError",
    "__version__",
    "build_scenario",
    "build_server",
    "fresh_cargo_check",
    "generate_workspace",
]

_WHERE = {
    "Engine": "engine._engine",
    "EnginePool": "engine._engine",
    "CheckRequest": "engine._engine",
    "CheckReport": "engine._report",
    "Diagnostic": "engine._report",
    "PackageResult": "engine._report",
    "build_server": "server._build",
    "ServerState": "server._state",
    "GeneratedWorkspace": "testing._generate",
    "generate_workspace": "testing._generate",
    "fresh_cargo_check": "testing._baseline",
    "Scenario": "testing._scenarios",
    "build_scenario": "testing._scenarios",
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _WHERE:
        return getattr(importlib.import_module(f"scheduler.{_WHERE[name]}"), name)
    if name in __all__:
        return getattr(importlib.import_module("scheduler._exceptions"), name)
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
