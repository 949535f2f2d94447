"""The exception tree is the package's only one, and nothing in it is dead weight."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import scheduler
from scheduler import _exceptions
from scheduler._exceptions import SchedulerError

PACKAGE = Path(scheduler.__file__).parent
TREE = {
    name: cls
    for name, cls in vars(_exceptions).items()
    if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == _exceptions.__name__
}


def _modules() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py")}


def test_every_exception_class_of_the_package_is_in_the_tree() -> None:
    elsewhere = [
        f"{path.relative_to(PACKAGE)}: {node.name}"
        for path, module in _modules().items()
        if path.name != "_exceptions.py"
        for node in ast.walk(module)
        if isinstance(node, ast.ClassDef)
        and any(isinstance(b, ast.Name) and (b.id in TREE or b.id.endswith(("Error", "Exception"))) for b in node.bases)
    ]
    assert elsewhere == []
    assert all(issubclass(cls, SchedulerError) for cls in TREE.values())


def test_every_exception_in_the_tree_is_raised_itself_or_through_a_subclass() -> None:
    made = {
        node.func.id
        for path, module in _modules().items()
        if path.name != "_exceptions.py"
        for node in ast.walk(module)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in TREE
    }
    unused = [
        name
        for name, cls in TREE.items()
        if not any(issubclass(TREE[m], cls) for m in made) and cls is not SchedulerError
    ]
    assert unused == []


def test_the_tree_drawn_in_the_docstring_is_the_tree() -> None:
    drawn = {line.split("── ")[1].split()[0] for line in (_exceptions.__doc__ or "").splitlines() if "── " in line}
    assert drawn | {"SchedulerError"} == set(TREE)


def test_an_error_with_a_hint_answers_the_message_then_the_next_good_call() -> None:
    exc = _exceptions.MetadataError("cargo metadata failed")
    assert exc.for_agent("cargo_check") == "cargo metadata failed; fix the manifest (Cargo.toml) and call again"
    assert _exceptions.CargoError("no cargo").for_agent("cargo_check") == "cargo_check: no cargo"
    outside = _exceptions.PathOutsideWorkspace("file_path", "../x.rs", "/ws")
    assert outside.for_agent("t") == "file_path '../x.rs' is outside the workspace /ws; pass a path inside it"
    assert outside.argument == "file_path"
    bad = _exceptions.InvalidArgument("line", "must be 0 or more")
    assert bad.for_agent("rust_analyzer_hover") == "rust_analyzer_hover: argument 'line': must be 0 or more"
