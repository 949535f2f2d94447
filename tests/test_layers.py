"""Each subsystem stands on the ones below it only, and no two modules import each other in a circle.

Read from the sources (every import statement, function-local ones included), so a new arrow back up
fails here before it becomes a habit."""

from __future__ import annotations

import ast
from pathlib import Path

from scheduler.cargo import _graph

PACKAGE = Path(__file__).resolve().parents[1] / "scheduler"

# subsystem -> the subsystems it may import ("" is the shared bottom: _exceptions, _settings, ...)
ALLOWED: dict[str, set[str]] = {
    "": set(),
    "cargo": {""},
    "engine": {"", "cargo"},
    "analyzer": {"", "cargo"},
    "testing": {"", "cargo", "engine"},
    "server": {"", "cargo", "engine", "analyzer"},
    "shell": {"", "cargo", "engine"},
    "daemon": {"", "cargo", "server", "shell"},
    "cli": {"", "cargo", "engine", "server", "daemon", "testing", "shell"},
}
PUBLIC_API = "scheduler/__init__.py"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every `scheduler.*` module this file imports, resolved to dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("scheduler"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("scheduler"):
                continue
            for alias in node.names:  # `from . import _keys` names a module, not the package's body
                if (PACKAGE.parent / Path(*f"{target}.{alias.name}".split("."))).with_suffix(".py").is_file():
                    found.add(f"{target}.{alias.name}")
                else:
                    found.add(target)
    return found


def _subsystem(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and not parts[1].startswith("_")) else ""


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for path in _sources():
        if str(path.relative_to(PACKAGE.parent)) == PUBLIC_API:
            continue  # the public API re-exports from every subsystem, lazily
        here = _subsystem(_module_name(path))
        for target in _imports(path):
            there = _subsystem(target)
            if target != "scheduler" and there != here and there not in ALLOWED[here]:
                wrong.append(f"{_module_name(path)} -> {target}")
    assert wrong == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    modules = {_module_name(p): p for p in _sources()}
    edges = {m: {t for t in _imports(p) if t in modules and t != m} for m, p in modules.items()}
    circles = [c for c in _graph.strongly_connected(edges) if len(c) > 1]
    assert circles == []
