"""The public API is a deliberate list: adding or removing a name is a decision, made here."""

from __future__ import annotations

import subprocess
import sys

import scheduler

PUBLIC = {
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
}


def test_the_package_exports_exactly_the_pinned_names() -> None:
    assert set(scheduler.__all__) == PUBLIC


def test_every_exported_name_resolves_to_an_object() -> None:
    for name in sorted(PUBLIC):
        assert getattr(scheduler, name) is not None, name


def test_exported_exceptions_belong_to_the_one_exception_tree() -> None:
    errors = [getattr(scheduler, n) for n in PUBLIC if n.endswith("Error")]
    assert errors and all(issubclass(e, scheduler.SchedulerError) for e in errors)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    try:
        scheduler.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("scheduler.NoSuchThing resolved")


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = (
        "import sys, scheduler\n"
        "heavy = {'mcp', 'anyio', 'diskcache', 'xxhash', 'pydantic', 'subprocess'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=30)
    assert out.stdout.strip() == b"[]"
