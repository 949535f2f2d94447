"""Merkle cache keys over Workspace and Snapshot objects built directly (no cargo, no disk)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cargo import _graph
from scheduler.cargo._workspace import Package, Workspace
from scheduler.engine._fingerprint import Snapshot, TreeHasher
from scheduler.engine._keys import Command, cargo_environment, global_digest, package_keys

_SETTINGS = settings(max_examples=60, deadline=None)
ROOT = Path("/virtual/cargo-scheduler-keys/ws")
RUSTC = "rustc 1.95.0 (abc 2026-03-21)\nhost: x86_64-unknown-linux-gnu"
ENV = {"PATH": "/usr/bin", "EDITOR": "vi", "RUSTFLAGS": "-Dwarnings"}
CHECK = Command(kind="check")
TEST = Command(kind="test")


def _workspace(deps: dict[str, set[str]], dev: dict[str, set[str]] | None = None, root: Path = ROOT) -> Workspace:
    dev = dev or {}
    packages = {
        name: Package(
            name=name,
            id=f"path+file://{root}/crates/{name}#0.1.0",
            root=root / "crates" / name,
            manifest=root / "crates" / name / "Cargo.toml",
            deps=frozenset(deps[name]),
            dev_deps=frozenset(dev.get(name, set()) - deps[name]),
        )
        for name in deps
    }
    return Workspace(root=root, target_dir=root / "target", packages=packages)


def _snapshot(names: list[str], salt: str = "") -> Snapshot:
    snap = Snapshot()
    for name in names:
        snap.by_owner[name] = {
            f"crates/{name}/Cargo.toml": f"manifest of {name}".encode(),
            f"crates/{name}/src/lib.rs": f"code of {name}{salt}".encode(),
        }
    snap.by_owner[None] = {"Cargo.toml": b"[workspace]", "Cargo.lock": b"lock v1"}
    return snap


def _keys(
    ws: Workspace,
    snap: Snapshot,
    command: Command = CHECK,
    env: dict[str, str] | None = None,
    rustc: str = RUSTC,
) -> dict[str, str]:
    g = global_digest(ws, snap, rustc, ENV if env is None else env, command)
    return package_keys(ws, snap, g, command)


def _with_file(snap: Snapshot, owner: str | None, rel: str, content: bytes) -> Snapshot:
    by_owner = {o: dict(files) for o, files in snap.by_owner.items()}
    by_owner.setdefault(owner, {})[rel] = content
    return Snapshot(by_owner=by_owner)


@st.composite
def workspaces(draw: st.DrawFn) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Normal deps form a DAG (cargo rejects cycles there); dev-deps may point anywhere."""
    n = draw(st.integers(min_value=1, max_value=9))
    names = [f"c{i}" for i in range(n)]
    deps: dict[str, set[str]] = {name: set() for name in names}
    dev: dict[str, set[str]] = {name: set() for name in names}
    for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n)):
        if a != b:
            deps[names[max(a, b)]].add(names[min(a, b)])
    for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n)):
        if a != b:
            dev[names[a]].add(names[b])
    return deps, dev


def _changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    assert before.keys() == after.keys()
    return {n for n in before if before[n] != after[n]}


@_SETTINGS
@given(workspaces(), st.data(), st.sampled_from([CHECK, TEST, Command(kind="check", all_targets=True)]))
def test_an_edit_to_one_package_changes_the_keys_of_exactly_it_and_its_dependents(
    shape: tuple[dict[str, set[str]], dict[str, set[str]]], data: st.DataObject, command: Command
) -> None:
    deps, dev = shape
    ws = _workspace(deps, dev)
    snap = _snapshot(ws.members)
    edited = data.draw(st.sampled_from(ws.members))
    after = _with_file(snap, edited, f"crates/{edited}/src/lib.rs", b"edited")
    expected = ws.dependents([edited], dev=command.includes_tests)
    assert _changed(_keys(ws, snap, command), _keys(ws, after, command)) == expected


@_SETTINGS
@given(workspaces())
def test_identical_inputs_give_identical_keys(shape: tuple[dict[str, set[str]], dict[str, set[str]]]) -> None:
    deps, dev = shape
    first = _keys(_workspace(deps, dev), _snapshot(sorted(deps)), TEST)
    again = _keys(_workspace(deps, dev), _snapshot(sorted(deps)), TEST)
    assert first == again
    assert len(set(first.values())) == len(first), "no two members share a key"


_COMMAND_CHANGES = [
    pytest.param(replace(CHECK, kind="clippy"), id="kind"),
    pytest.param(replace(CHECK, features=("extra",)), id="features"),
    pytest.param(replace(CHECK, all_features=True), id="all_features"),
    pytest.param(replace(CHECK, no_default_features=True), id="no_default_features"),
    pytest.param(replace(CHECK, release=True), id="release"),
    pytest.param(replace(CHECK, all_targets=True), id="all_targets"),
    pytest.param(replace(CHECK, toolchain="nightly"), id="toolchain"),
    pytest.param(replace(CHECK, extra_env=(("BUILD_MODE", "fast"),)), id="extra_env"),
]


@pytest.mark.parametrize("other", _COMMAND_CHANGES)
@_SETTINGS
@given(shape=workspaces())
def test_changing_the_command_changes_every_key(
    other: Command, shape: tuple[dict[str, set[str]], dict[str, set[str]]]
) -> None:
    deps, dev = shape
    ws, snap = _workspace(deps, dev), _snapshot(sorted(deps))
    assert _changed(_keys(ws, snap, CHECK), _keys(ws, snap, other)) == set(deps)


def test_feature_order_and_extra_env_order_do_not_change_the_key() -> None:
    a = Command(kind="check", features=("a", "b"), extra_env=(("X", "1"), ("Y", "2")))
    b = Command(kind="check", features=("b", "a"), extra_env=(("Y", "2"), ("X", "1")))
    assert a.encode() == b.encode()


@_SETTINGS
@given(workspaces())
def test_the_same_sources_in_another_checkout_give_the_same_keys(
    shape: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    """Path-free keys: answers are shared across worktrees and machines (their target dirs are not;
    stored messages carry placeholders for the checkout's paths)."""
    deps, dev = shape
    snap = _snapshot(sorted(deps))
    here = _keys(_workspace(deps, dev), snap)
    worktree = _keys(_workspace(deps, dev, root=ROOT.parent / "ws-worktree"), snap)
    assert here == worktree


@_SETTINGS
@given(workspaces())
def test_another_rustc_version_changes_every_key(shape: tuple[dict[str, set[str]], dict[str, set[str]]]) -> None:
    deps, dev = shape
    ws, snap = _workspace(deps, dev), _snapshot(sorted(deps))
    assert _changed(_keys(ws, snap), _keys(ws, snap, rustc=RUSTC.replace("1.95.0", "1.96.0"))) == set(deps)


@pytest.mark.parametrize(
    ("rel", "content"),
    [
        ("Cargo.lock", b"lock v2"),
        ("Cargo.toml", b"[workspace]\nresolver = '2'"),
        (".cargo/config.toml", b"[build]\nrustflags = ['-Dwarnings']"),
        ("rust-toolchain.toml", b"[toolchain]\nchannel = 'nightly'"),
    ],
)
@_SETTINGS
@given(shape=workspaces())
def test_a_change_to_a_workspace_wide_file_changes_every_key(
    rel: str, content: bytes, shape: tuple[dict[str, set[str]], dict[str, set[str]]]
) -> None:
    deps, dev = shape
    ws, snap = _workspace(deps, dev), _snapshot(sorted(deps))
    assert _changed(_keys(ws, snap), _keys(ws, _with_file(snap, None, rel, content))) == set(deps)


@pytest.mark.parametrize(
    "env_change",
    [
        {"RUSTFLAGS": "-Awarnings"},
        {"CARGO_ENCODED_RUSTFLAGS": "--cfg\x1ffoo"},
        {"RUSTC_WRAPPER": "/usr/bin/my-wrapper"},
        {"CARGO_PROFILE_DEV_OPT_LEVEL": "1"},
        {"CARGO_BUILD_TARGET": "wasm32-unknown-unknown"},
        {"CLIPPY_CONF_DIR": "/etc/clippy"},
    ],
    ids=lambda e: next(iter(e)),
)
@_SETTINGS
@given(shape=workspaces())
def test_a_change_to_cargo_relevant_environment_changes_every_key(
    env_change: dict[str, str], shape: tuple[dict[str, set[str]], dict[str, set[str]]]
) -> None:
    deps, dev = shape
    ws, snap = _workspace(deps, dev), _snapshot(sorted(deps))
    assert _changed(_keys(ws, snap), _keys(ws, snap, env={**ENV, **env_change})) == set(deps)


@pytest.mark.parametrize(
    "env_change",
    [
        {"EDITOR": "emacs"},
        {"PATH": "/opt/bin:/usr/bin"},
        {"RUST_BACKTRACE": "1"},
        {"HOME": "/elsewhere"},
        {"RUSTC_WRAPPER": "sccache"},
        {"RUSTC_WRAPPER": "/usr/local/bin/sccache"},
        {"SCCACHE_DIR": "/var/cache/sccache"},
    ],
    ids=lambda e: "=".join(next(iter(e.items()))),
)
@_SETTINGS
@given(shape=workspaces())
def test_a_change_to_environment_cargo_does_not_read_changes_no_key(
    env_change: dict[str, str], shape: tuple[dict[str, set[str]], dict[str, set[str]]]
) -> None:
    deps, dev = shape
    ws, snap = _workspace(deps, dev), _snapshot(sorted(deps))
    assert _keys(ws, snap) == _keys(ws, snap, env={**ENV, **env_change})


def test_cargo_environment_keeps_cargo_variables_and_drops_the_rest() -> None:
    env = {"RUSTFLAGS": "x", "CARGO_TARGET_DIR": "t", "CARGO_PROFILE_DEV_DEBUG": "0", "EDITOR": "vi", "PATH": "/"}
    assert cargo_environment(env) == (
        ("CARGO_PROFILE_DEV_DEBUG", "0"),
        ("CARGO_TARGET_DIR", "t"),
        ("RUSTFLAGS", "x"),
    )


def test_an_edit_to_the_hub_changes_the_keys_of_exactly_it_and_its_dependents() -> None:
    deps = {"hub": set(), "mid": {"hub"}, "leaf": {"mid"}, "solo": set()}
    ws, snap = _workspace(deps), _snapshot(sorted(deps))
    after = _with_file(snap, "hub", "crates/hub/data/greeting.txt", b"hi")
    assert _changed(_keys(ws, snap), _keys(ws, after)) == {"hub", "mid", "leaf"}


def test_a_renamed_file_with_the_same_content_changes_the_key() -> None:
    deps: dict[str, set[str]] = {"a": set()}
    ws, snap = _workspace(deps), _snapshot(["a"])
    files = snap.by_owner["a"]
    renamed = Snapshot(by_owner={**snap.by_owner, "a": {k.replace("lib.rs", "other.rs"): v for k, v in files.items()}})
    assert _keys(ws, snap) != _keys(ws, renamed)


def test_a_dev_dependency_cycle_is_keyed_when_tests_are_built() -> None:
    # a's tests use b; b depends on a: a cycle only when dev-dependencies count.
    deps = {"a": set(), "b": {"a"}, "app": {"b"}}
    ws = _workspace(deps, dev={"a": {"b"}})
    assert _graph.cycles(ws.dep_edges(dev=True)) == [["a", "b"]]
    snap = _snapshot(ws.members)
    test_keys = _keys(ws, snap, TEST)
    assert len(set(test_keys.values())) == 3
    # An edit to b reaches a through the dev edge when tests are built, not for a plain check.
    after = _with_file(snap, "b", "crates/b/src/lib.rs", b"edited")
    assert _changed(test_keys, _keys(ws, after, TEST)) == {"a", "b", "app"}
    assert _changed(_keys(ws, snap, CHECK), _keys(ws, after, CHECK)) == {"b", "app"}
    # An edit to a changes the whole cycle and its dependents either way.
    after_a = _with_file(snap, "a", "crates/a/src/lib.rs", b"edited")
    assert _changed(test_keys, _keys(ws, after_a, TEST)) == {"a", "b", "app"}


def test_a_global_config_above_the_workspace_root_is_part_of_the_key(tmp_path: Path) -> None:
    root = tmp_path / "outer" / "ws"
    root.mkdir(parents=True)
    ws, snap = _workspace({"a": set()}, root=root), _snapshot(["a"])
    before = _keys(ws, snap)
    (tmp_path / "outer" / ".cargo").mkdir()
    (tmp_path / "outer" / ".cargo" / "config.toml").write_text("[build]\nrustflags = ['--cfg', 'x']\n")
    assert _keys(ws, snap) != before


def _disk_workspace(tmp_path: Path, *, root_package: bool) -> tuple[Workspace, dict[str, str]]:
    """A real tree: a member under crates/a and, optionally, a package at the workspace root."""
    root = tmp_path / "ws"
    (root / "crates" / "a" / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        '[workspace]\nmembers = ["crates/a"]\n' + ('[package]\nname = "app"\n' if root_package else "")
    )
    (root / "Cargo.lock").write_text("version = 4\n")
    (root / "crates" / "a" / "Cargo.toml").write_text('[package]\nname = "a"\n')
    (root / "crates" / "a" / "src" / "lib.rs").write_text("")
    deps: dict[str, set[str]] = {"a": set(), **({"app": set()} if root_package else {})}
    ws = _workspace(deps, root=root)
    if root_package:
        app = replace(ws.packages["app"], root=root, manifest=root / "Cargo.toml")
        ws = Workspace(root=root, target_dir=root / "target", packages={**ws.packages, "app": app})
    roots = {"" if p.root == root else str(p.root.relative_to(root)): n for n, p in ws.packages.items()}
    return ws, roots


def _disk_keys(ws: Workspace, roots: dict[str, str], hasher: TreeHasher | None = None) -> dict[str, str]:
    snap = (hasher or TreeHasher(ws.root)).snapshot(roots)
    return _keys(ws, snap)


@pytest.mark.parametrize("root_package", [False, True], ids=["virtual-root", "root-package"])
@pytest.mark.parametrize(
    ("rel", "content"),
    [
        ("Cargo.lock", "version = 4\n# serde 1.0.200 -> 1.0.201\n"),
        (".cargo/config.toml", "[build]\nrustflags = ['-Dwarnings']\n"),
        ("rust-toolchain.toml", "[toolchain]\nchannel = 'nightly'\n"),
    ],
)
def test_a_change_to_a_workspace_wide_file_on_disk_changes_every_members_key(
    tmp_path: Path, root_package: bool, rel: str, content: str
) -> None:
    """With a package at the root, the walk gives it Cargo.lock and .cargo/: every member still reads them."""
    ws, roots = _disk_workspace(tmp_path, root_package=root_package)
    before = _disk_keys(ws, roots)
    (ws.root / rel).parent.mkdir(parents=True, exist_ok=True)
    (ws.root / rel).write_text(content)
    assert _changed(before, _disk_keys(ws, roots)) == set(ws.packages)


def test_a_gitignored_lockfile_is_still_part_of_every_key(tmp_path: Path) -> None:
    ws, roots = _disk_workspace(tmp_path, root_package=False)
    (ws.root / ".gitignore").write_text("Cargo.lock\n/target\n")
    before = _disk_keys(ws, roots)
    (ws.root / "Cargo.lock").write_text("version = 4\n# another resolution\n")
    assert _changed(before, _disk_keys(ws, roots)) == {"a"}
