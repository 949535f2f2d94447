"""The workspace model from real `cargo metadata` output, root discovery and file ownership."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scheduler import GeneratedWorkspace, generate_workspace
from scheduler._exceptions import MetadataError, NotAWorkspace, UnknownPackage
from scheduler.cargo import _graph
from scheduler.cargo._workspace import (
    Package,
    Workspace,
    find_root,
    load_metadata_json,
    parse_metadata,
)

needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="needs cargo")


def _metadata(root: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return load_metadata_json(out.stdout)


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _add_member(g: GeneratedWorkspace, rel: str) -> None:
    manifest = g.root / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace("members = [", f'members = ["{rel}", ', 1))


@pytest.fixture
def generated(tmp_path: Path) -> GeneratedWorkspace:
    return generate_workspace(tmp_path / "ws", crates=6)


@needs_cargo
def test_parse_metadata_reads_members_roots_and_path_dependencies_from_real_cargo(
    generated: GeneratedWorkspace,
) -> None:
    g = generated
    ws = parse_metadata(_metadata(g.root))
    root = g.root.resolve()
    assert ws.root == root
    assert ws.target_dir == root / "target"
    assert ws.members == sorted(g.members)
    for name in g.members:
        pkg = ws.packages[name]
        assert pkg.root == root / "crates" / name
        assert pkg.manifest == pkg.root / "Cargo.toml"
        assert pkg.deps == frozenset(g.deps[name]), name
        assert pkg.dev_deps == frozenset()
        assert name in pkg.id
    assert "proc-macro" in ws.packages["macros"].target_kinds
    assert "custom-build" in ws.packages["buildinfo"].target_kinds
    order = ws.order()
    for name, deps in g.deps.items():
        assert all(order.index(d) < order.index(name) for d in deps)
    assert ws.dependents([g.hub]) == set(g.members) - {"macros", "buildinfo"}


@needs_cargo
def test_a_dev_dependency_cycle_among_members_is_parsed(generated: GeneratedWorkspace) -> None:
    g = generated
    mid = g.mids[0]
    # The hub's tests use mid_00, which depends on the hub: legal for cargo, a cycle for us.
    _append(g.crate_dir(g.hub) / "Cargo.toml", f'\n[dev-dependencies]\n{mid} = {{ path = "../{mid}" }}\n')
    ws = parse_metadata(_metadata(g.root))
    hub = ws.packages[g.hub]
    assert hub.deps == frozenset()
    assert hub.dev_deps == frozenset({mid})
    assert _graph.cycles(ws.dep_edges(dev=False)) == []
    assert _graph.cycles(ws.dep_edges(dev=True)) == [sorted([g.hub, mid])]
    assert ws.order(dev=True).index(g.hub) < ws.order(dev=True).index(g.leaves[0])
    assert g.hub in ws.dependents([mid], dev=True)
    assert g.hub not in ws.dependents([mid], dev=False)


@needs_cargo
def test_build_dependencies_are_normal_dependencies_and_renames_resolve_by_path(
    generated: GeneratedWorkspace,
) -> None:
    g = generated
    leaf = g.leaves[0]
    _append(
        g.crate_dir(leaf) / "Cargo.toml",
        '\n[build-dependencies]\nbuildinfo = { path = "../buildinfo" }\n'
        '\n[dev-dependencies]\nthe_macros = { package = "macros", path = "../macros" }\n'
        f'{g.mids[0]} = {{ path = "../{g.mids[0]}" }}\n',
    )
    ws = parse_metadata(_metadata(g.root))
    pkg = ws.packages[leaf]
    assert "buildinfo" in pkg.deps
    assert pkg.dev_deps == frozenset({"macros"}), "a dev-dependency that is also a normal one is a normal one"


@needs_cargo
def test_a_crates_io_style_dependency_is_not_a_workspace_edge(generated: GeneratedWorkspace) -> None:
    data = _metadata(generated.root)
    pkg = next(p for p in data["packages"] if p["name"] == generated.leaves[0])
    pkg["dependencies"].append(
        {"name": "serde", "source": "registry+https://github.com/rust-lang/crates.io-index", "req": "^1", "kind": None}
    )
    ws = parse_metadata(data)
    assert ws.packages[generated.leaves[0]].deps == frozenset(generated.deps[generated.leaves[0]])


def test_malformed_metadata_raises_a_metadata_error() -> None:
    with pytest.raises(MetadataError, match="workspace_root"):
        parse_metadata({"packages": []})
    with pytest.raises(MetadataError, match="cargo metadata output is not understood"):
        parse_metadata(
            {"workspace_root": "/w", "workspace_members": ["x"], "target_directory": "/w/t", "packages": [{"id": "x"}]}
        )


def test_load_metadata_json_skips_warning_lines_and_rejects_no_or_bad_json() -> None:
    text = "warning: something\n" + json.dumps({"packages": []}) + "\n"
    assert load_metadata_json(text) == {"packages": []}
    with pytest.raises(MetadataError, match="no JSON"):
        load_metadata_json("error: could not find Cargo.toml\n")
    with pytest.raises(MetadataError, match="invalid JSON"):
        load_metadata_json("{not json\n")


def test_find_root_from_a_nested_directory_is_the_workspace_root(generated: GeneratedWorkspace) -> None:
    g = generated
    assert find_root(g.crate_dir(g.hub) / "src") == g.root.resolve()
    assert find_root(g.crate_dir(g.hub) / "data") == g.root.resolve()
    assert find_root(g.root) == g.root.resolve()


def test_find_root_of_a_single_package_is_its_directory(tmp_path: Path) -> None:
    (tmp_path / "solo" / "src").mkdir(parents=True)
    (tmp_path / "solo" / "Cargo.toml").write_text('[package]\nname = "solo"\nversion = "0.1.0"\n')
    assert find_root(tmp_path / "solo" / "src") == (tmp_path / "solo").resolve()


def test_find_root_takes_the_nearest_workspace_as_cargo_does(tmp_path: Path) -> None:
    (tmp_path / "outer" / "inner" / "src").mkdir(parents=True)
    (tmp_path / "outer" / "Cargo.toml").write_text("[workspace]\nmembers = []\n")
    (tmp_path / "outer" / "inner" / "Cargo.toml").write_text("[workspace]\n[package]\nname = 'inner'\n")
    assert find_root(tmp_path / "outer" / "inner" / "src") == (tmp_path / "outer" / "inner").resolve()


def test_find_root_skips_an_unparsable_manifest_and_fails_outside_any_workspace(tmp_path: Path) -> None:
    (tmp_path / "ws" / "broken" / "src").mkdir(parents=True)
    (tmp_path / "ws" / "Cargo.toml").write_text("[workspace]\n")
    (tmp_path / "ws" / "broken" / "Cargo.toml").write_text("[package\n")
    assert find_root(tmp_path / "ws" / "broken" / "src") == (tmp_path / "ws").resolve()
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotAWorkspace):
        find_root(tmp_path / "empty")


@needs_cargo
def test_owner_is_the_closest_package_root_for_files_in_nested_packages(generated: GeneratedWorkspace) -> None:
    g = generated
    inner = g.crate_dir(g.hub) / "inner"
    (inner / "src").mkdir(parents=True)
    (inner / "Cargo.toml").write_text('[package]\nname = "inner"\nversion.workspace = true\nedition.workspace = true\n')
    (inner / "src" / "lib.rs").write_text("")
    _add_member(g, "crates/hub/inner")
    ws = parse_metadata(_metadata(g.root))
    root = g.root.resolve()
    hub_dir = root / "crates" / "hub"
    assert ws.owner(hub_dir / "inner" / "src" / "lib.rs") == "inner"
    assert ws.owner(hub_dir / "inner" / "Cargo.toml") == "inner"
    assert ws.owner(hub_dir / "inner") == "inner"
    assert ws.owner(hub_dir / "src" / "lib.rs") == "hub"
    assert ws.owner(hub_dir / "data" / "greeting.txt") == "hub"
    assert ws.owner(hub_dir / "innerx" / "file.rs") == "hub", "a sibling with a common prefix is not inner's"
    assert ws.owner(root / "Cargo.lock") is None
    assert ws.owner(root / "crates") is None
    assert ws.owner(root.parent / "elsewhere.rs") is None


def test_require_names_the_first_unknown_package() -> None:
    pkg = Package(
        name="a", id="a", root=Path("/w/a"), manifest=Path("/w/a/Cargo.toml"), deps=frozenset(), dev_deps=frozenset()
    )
    ws = Workspace(root=Path("/w"), target_dir=Path("/w/target"), packages={"a": pkg})
    assert ws.require(["a"]) == ["a"]
    with pytest.raises(UnknownPackage, match="nope"):
        ws.require(["a", "nope"])


def _unification_workspace() -> Workspace:
    """top -> mid -> low (mid takes low without defaults) and top -> low2 under a rename."""

    def pkg(
        name: str,
        deps: set[str],
        features: set[str],
        by: dict[str, dict[str, frozenset[str]]],
        renamed: frozenset[str] = frozenset(),
    ) -> Package:
        return Package(
            name,
            f"{name} 0.1.0",
            Path(f"/w/{name}"),
            Path(f"/w/{name}/Cargo.toml"),
            frozenset(deps),
            frozenset(),
            declared_features=frozenset(features),
            requested_by=by,
            renamed_by=renamed,
        )

    return Workspace(
        Path("/w"),
        Path("/w/target"),
        {
            "top": pkg("top", {"mid", "low2"}, set(), {}),
            "mid": pkg("mid", {"low"}, {"default", "x"}, {"top": {"normal": frozenset({"default"})}}),
            "low": pkg("low", set(), {"default", "fast"}, {"mid": {"normal": frozenset()}}),
            "low2": pkg("low2", set(), {"default"}, {"top": {"normal": frozenset()}}, renamed=frozenset({"top"})),
            "other": pkg("other", {"mid"}, set(), {}),
        },
    )


def test_unification_names_only_features_a_narrowed_build_would_miss_and_which_need_selecting() -> None:
    ws = _unification_workspace()
    # -p top: mid gets its defaults from top (nothing to add); low and low2 miss theirs. low is no
    # direct dependency of top, low2 is one under another name: cargo takes neither flag unless selected.
    assert ws.unification(["top"], dev=False) == (["low/default", "low2/default"], ["low", "low2"])
    # -p mid: a selected member gets its own defaults; mid's direct dependency low can be named.
    assert ws.unification(["mid"], dev=False) == (["low/default"], [])
    assert ws.unification(["low"], dev=False) == ([], [])  # a selected leaf: nothing differs
