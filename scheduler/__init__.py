"""cargo-scheduler: narrowed, cached cargo and a shared rust-analyzer for coding agents.

The public API is loaded lazily: `cargo-scheduler serve` must answer an MCP handshake in milliseconds,
so importing this package must not import anyio, diskcache or the MCP SDK.
"""

from __future__ import annotations

from ._version import __version__

# `typing` costs ~15 ms to import; the front process answers MCP handshakes before it needs it.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from ._engine import CheckRequest, Engine
    from ._exceptions import (
        AnalyzerError,
        CacheError,
        CargoError,
        CargoTimeout,
        InvalidArgument,
        PathOutsideWorkspace,
        SchedulerError,
        UnknownPackage,
        WorkspaceError,
    )
    from ._generate import GeneratedWorkspace, generate_workspace
    from ._report import CheckReport, Diagnostic, PackageResult

__all__ = [
    "AnalyzerError",
    "CacheError",
    "CargoError",
    "CargoTimeout",
    "CheckReport",
    "CheckRequest",
    "Diagnostic",
    "Engine",
    "GeneratedWorkspace",
    "InvalidArgument",
    "PackageResult",
    "PathOutsideWorkspace",
    "SchedulerError",
    "UnknownPackage",
    "WorkspaceError",
    "__version__",
    "generate_workspace",
]

_WHERE = {
    "Engine": "_engine",
    "CheckRequest": "_engine",
    "CheckReport": "_report",
    "Diagnostic": "_report",
    "PackageResult": "_report",
    "GeneratedWorkspace": "_generate",
    "generate_workspace": "_generate",
}


def __getattr__(name: str) -> object:
    import importlib

    if name in _WHERE:
        return getattr(importlib.import_module(f"scheduler.{_WHERE[name]}"), name)
    if name in __all__:
        return getattr(importlib.import_module("scheduler._exceptions"), name)
    raise AttributeError(f"module 'scheduler' has no attribute {name!r}")
