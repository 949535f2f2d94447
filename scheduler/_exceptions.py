"""The exceptions cargo-scheduler raises, under one root; every one of them is raised somewhere.

    SchedulerError
    ├── WorkspaceError            the workspace cannot be understood
    │   ├── NotAWorkspace         no Cargo.toml at or above the path
    │   ├── MetadataError         `cargo metadata` failed or said something we cannot read
    │   └── PathOutsideWorkspace  a path argument resolves (after symlinks) outside the workspace root
    │                             (and outside the session's other workspaces, where those count)
    ├── InvalidArgument           an argument is malformed; `.argument` names it
    │   └── UnknownPackage        a package name that is not a workspace member
    ├── NoSession                 set_working_directory on a request that belongs to no MCP session
    ├── CargoError                cargo could not be started
    ├── FlightAborted             a shared cargo run ended without an answer (its owner shut down)
    ├── AnalyzerError             rust-analyzer is missing, crashed or answered with an error
    │   ├── AnalyzerNotFound      no usable rust-analyzer binary
    │   ├── AnalyzerIndexing      still loading the workspace past the wait bound; `.progress` says how far
    │   ├── LspClosed             its stdout closed before the answer came
    │   └── LspResponseError      it answered a request with a JSON-RPC error
    ├── DaemonError               the shared daemon cannot be used
    │   ├── DaemonUnavailable     it could not be reached or started
    │   ├── UnsafeDirectory       the runtime directory is not ours alone
    │   └── UnsafeTokenFile       the HTTP token file is not ours alone or too short
    ├── RemoteError               the shared tier could not do what was asked (never escapes the tier:
    │                             its reads and writes answer with a status instead)
    └── ConfigError               a CARGO_SCHEDULER_* setting has a value we do not accept; `.variable` names it

Foreign errors (OSError, subprocess failures, JSON errors) are translated at the module boundary
with `raise X from exc`, so callers catch one tree and an agent gets one clear message. What an
agent should do next lives on the class (`hint`), and `for_agent` words the answer
(server/_answer.py). Standard library only: the stdio front imports this module.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SchedulerError(Exception):
    """Root of every error cargo-scheduler raises on purpose."""

    hint: ClassVar[str] = ""
    """The next good call, for an agent; empty when the message says it already."""
    argument: str | None = None
    """The tool argument that was wrong, when one was."""

    def for_agent(self, tool: str) -> str:
        """The text of an `isError` answer: the message and the hint, else the message after the tool."""
        return f"{self}; {self.hint}" if self.hint else f"{tool}: {self}"


class WorkspaceError(SchedulerError):
    pass


class NotAWorkspace(WorkspaceError):
    hint = (
        "call set_working_directory (or rust_analyzer_set_workspace) with a directory containing Cargo.toml, "
        "or pass workspace="
    )


class MetadataError(WorkspaceError):
    hint = "fix the manifest (Cargo.toml) and call again"


class PathOutsideWorkspace(WorkspaceError):
    hint = "pass a path inside it"

    def __init__(self, argument: str, path: str, root: str, others: tuple[str, ...] = ()) -> None:
        also = f" and outside this session's other workspaces ({', '.join(others)})" if others else ""
        super().__init__(f"{argument} {path!r} is outside the workspace {root}{also}")
        self.argument = argument
        self.path = path
        self.root = root
        self.others = others


class InvalidArgument(SchedulerError):
    """An argument an agent or user gave is wrong; the message says which and why."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"invalid argument {argument!r}: {problem}")
        self.argument = argument
        self.problem = problem

    def for_agent(self, tool: str) -> str:
        return f"{tool}: argument '{self.argument}': {self.problem}"


class UnknownPackage(InvalidArgument):
    def __init__(self, name: str, members: list[str]) -> None:
        shown = ", ".join(sorted(members)[:20]) + (" ..." if len(members) > 20 else "")
        super().__init__("package", f"{name!r} is not a member of this workspace (members: {shown})")
        self.name = name


class NoSession(SchedulerError):
    """set_working_directory on a request that belongs to no session."""


class CargoError(SchedulerError):
    pass


class FlightAborted(SchedulerError):
    """The shared run ended without an answer because its owner shut down under it."""


class AnalyzerError(SchedulerError):
    pass


class AnalyzerNotFound(AnalyzerError):
    hint = (
        "install rust-analyzer (e.g. `rustup component add rust-analyzer`, or the distro package) or start "
        "the server with the path of a rust-analyzer binary"
    )


class AnalyzerIndexing(AnalyzerError):
    """Still loading; `progress` is what rust-analyzer reported doing (for an explicit answer)."""

    def __init__(self, message: str, progress: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.progress = progress


class LspClosed(AnalyzerError):
    """The server's stdout closed (it exited or was killed) before the answer came."""


class LspResponseError(AnalyzerError):
    """The server answered a request with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"rust-analyzer could not answer {method}: {message} (code {code})")
        self.method = method
        self.code = code


class DaemonError(SchedulerError):
    pass


class RemoteError(SchedulerError):
    """The remote store could not do what was asked; the message says why, for the answer."""


class DaemonUnavailable(DaemonError):
    """No daemon could be reached or started; the message says where its log is."""


class UnsafeDirectory(DaemonError):
    """The runtime directory exists but is not ours alone: refusing beats leaking calls to another user."""


class UnsafeTokenFile(DaemonError):
    """The HTTP bearer token file is readable by others, owned by someone else, or too short."""


class ConfigError(SchedulerError):
    """A setting (an environment variable, see `_settings`) has a value we do not accept."""

    def __init__(self, variable: str, value: str, accepted: str) -> None:
        super().__init__(f"{variable}={value!r} is not accepted: it must be {accepted}")
        self.variable = variable
        self.value = value
