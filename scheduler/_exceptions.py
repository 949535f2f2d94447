"""The exceptions cargo-scheduler raises, under one root.

    SchedulerError
    ├── WorkspaceError            the workspace cannot be understood
    │   ├── NotAWorkspace         no Cargo.toml at or above the path
    │   ├── MetadataError         `cargo metadata` failed or said something we cannot read
    │   └── PathOutsideWorkspace  a path resolves (after symlinks) outside the workspace root
    ├── InvalidArgument           an argument is malformed; `.argument` names it
    │   └── UnknownPackage        a package name that is not a workspace member
    ├── CargoError                cargo could not be run to an answer
    │   ├── CargoTimeout          the run exceeded its time limit and was killed
    │   └── CargoCancelled        the run was cancelled and was killed
    ├── CacheError                the diagnostics cache is unusable (the engine degrades, never serves it)
    ├── AnalyzerError             rust-analyzer is missing, crashed or answered with an error
    │   ├── AnalyzerNotFound      no usable rust-analyzer binary
    │   └── AnalyzerIndexing      still loading the workspace past the wait bound
    ├── DaemonError               the shared daemon could not be reached or started
    └── ConfigError               a CARGO_SCHEDULER_* setting has a value we do not accept; `.variable` names it

Foreign errors (OSError, subprocess failures, JSON errors) are translated at the module boundary
with `raise X from exc`, so callers catch one tree and an agent gets one clear message.
"""

from __future__ import annotations


class SchedulerError(Exception):
    """Root of every error cargo-scheduler raises on purpose."""


class WorkspaceError(SchedulerError):
    pass


class NotAWorkspace(WorkspaceError):
    pass


class MetadataError(WorkspaceError):
    pass


class PathOutsideWorkspace(WorkspaceError):
    def __init__(self, path: str, root: str) -> None:
        super().__init__(f"path {path!r} is outside the workspace {root!r}")
        self.path = path
        self.root = root


class InvalidArgument(SchedulerError):
    """An argument an agent or user gave is wrong; the message says which and why."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"invalid argument {argument!r}: {problem}")
        self.argument = argument
        self.problem = problem


class UnknownPackage(InvalidArgument):
    def __init__(self, name: str, members: list[str]) -> None:
        shown = ", ".join(sorted(members)[:20]) + (" ..." if len(members) > 20 else "")
        super().__init__("package", f"{name!r} is not a member of this workspace (members: {shown})")
        self.name = name


class CargoError(SchedulerError):
    pass


class CargoTimeout(CargoError):
    pass


class CargoCancelled(CargoError):
    pass


class CacheError(SchedulerError):
    pass


class AnalyzerError(SchedulerError):
    pass


class AnalyzerNotFound(AnalyzerError):
    pass


class AnalyzerIndexing(AnalyzerError):
    pass


class DaemonError(SchedulerError):
    pass


class ConfigError(SchedulerError):
    """A setting (an environment variable, see `_settings`) has a value we do not accept."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(f"{variable}={value!r} is not accepted: it must be {accepted}")
        self.variable = variable
        self.value = value
