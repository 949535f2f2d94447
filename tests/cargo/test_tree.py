"""The decision functions of feature unification, on canned `cargo tree -e features` output."""

from __future__ import annotations

from pathlib import Path

from scheduler.cargo._features import outside_packages
from scheduler.cargo._tree import compare, parse_tree, plan_step
from scheduler.cargo._workspace import Package, Workspace

# `cargo tree -e features,normal,build --workspace --prefix indent --charset ascii --format "{p} ;; {f}"`
# of a workspace where `a` asks the outside crate `extcrate` for `extra` (and its build script for
# `hostonly`), `b` asks for nothing, `c` reaches it through the proc-macro `pm`, and `d` through the
# member `via`.
WHOLE = """\
a v0.1.0 (/x/ws/a) ;;
|-- extcrate feature "default"
|   `-- extcrate v0.1.0 (/x/extcrate) ;; default,extra
`-- extcrate feature "extra"
    `-- extcrate v0.1.0 (/x/extcrate) ;; default,extra
[build-dependencies]
|-- extcrate feature "default"
|   `-- extcrate v0.1.0 (/x/extcrate) ;; default,hostonly
`-- extcrate feature "hostonly"
    `-- extcrate v0.1.0 (/x/extcrate) ;; default,hostonly

b v0.1.0 (/x/ws/b) ;;
`-- extcrate feature "default" (*)

c v0.1.0 (/x/ws/c) ;;
`-- pm feature "default"
    `-- pm v0.1.0 (proc-macro) (/x/pm) ;;
        |-- extcrate feature "default" (*)
        `-- extcrate feature "hostonly" (*)

d v0.1.0 (/x/ws/d) ;;
`-- via feature "default" (command-line)
    `-- via v0.1.0 (/x/ws/via) ;;
        `-- extcrate feature "default" (*)

via v0.1.0 (/x/ws/via) ;;  (*)
""".splitlines()

ONLY_B = """\
b v0.1.0 (/x/ws/b) ;;
`-- extcrate feature "default"
    `-- extcrate v0.1.0 (/x/extcrate) ;; default
""".splitlines()

ONLY_D = """\
d v0.1.0 (/x/ws/d) ;;
`-- via feature "default"
    `-- via v0.1.0 (/x/ws/via) ;;
        `-- extcrate feature "default"
            `-- extcrate v0.1.0 (/x/extcrate) ;; default
""".splitlines()

ONLY_C = """\
c v0.1.0 (/x/ws/c) ;;
`-- pm feature "default"
    `-- pm v0.1.0 (proc-macro) (/x/pm) ;;
        |-- extcrate feature "default"
        |   `-- extcrate v0.1.0 (/x/extcrate) ;; default,hostonly
        `-- extcrate feature "hostonly"
            `-- extcrate v0.1.0 (/x/extcrate) ;; default,hostonly
""".splitlines()

EXT = "extcrate v0.1.0 (/x/extcrate)"
MEMBERS = {name: object() for name in ("a", "b", "c", "d", "via")}


def test_a_build_dependency_and_a_proc_macro_dependency_are_host_units_apart_from_the_target_one() -> None:
    whole = parse_tree(WHOLE)
    assert whole.units[(EXT, False)] == {frozenset({"default", "extra"})}
    assert whole.units[(EXT, True)] == {frozenset({"default", "hostonly"})}
    assert set(whole.roots) == {"a", "b", "c", "d", "via"}
    # The proc-macro's copy is the host unit, so its `(*)` lines point at the host feature nodes.
    assert ("f", "extcrate", "hostonly", True) in whole.edges[("p", "pm v0.1.0 (proc-macro) (/x/pm)", "", True)]


def test_a_narrowed_tree_that_builds_an_outside_crate_with_fewer_features_names_what_is_missing() -> None:
    diff = compare(parse_tree(WHOLE), parse_tree(ONLY_B))
    assert diff.missing == {(EXT, False): frozenset({"extra"})}
    assert not diff.over and not diff.equal


def test_a_selection_whose_units_all_match_is_equal_even_when_it_reaches_only_the_host_copy() -> None:
    assert compare(parse_tree(WHOLE), parse_tree(ONLY_C)).equal


def test_a_unit_with_a_feature_workspace_does_not_give_it_cannot_be_fixed_by_adding() -> None:
    over = [line.replace("default,hostonly", "default,hostonly,extra") for line in ONLY_C]
    assert compare(parse_tree(WHOLE), parse_tree(over)).over
    assert plan_step(parse_tree(WHOLE), parse_tree(over), compare(parse_tree(WHOLE), parse_tree(over)),
                     {"c"}, MEMBERS, flags=True, members=True) is None  # fmt: skip


def test_a_direct_dependency_of_the_selection_gets_a_weak_dependency_flag_not_another_member() -> None:
    whole, narrowed = parse_tree(WHOLE), parse_tree(ONLY_B)
    step = plan_step(whole, narrowed, compare(whole, narrowed), {"b"}, MEMBERS, flags=True, members=True)
    assert step is not None
    assert step.flags == frozenset({"extcrate?/extra"}) and step.members == frozenset()


def test_a_crate_reached_only_through_another_member_is_fixed_by_selecting_the_member_that_asks() -> None:
    whole, narrowed = parse_tree(WHOLE), parse_tree(ONLY_D)
    step = plan_step(whole, narrowed, compare(whole, narrowed), {"d"}, MEMBERS, flags=True, members=True)
    assert step is not None
    assert step.flags == frozenset() and step.members == frozenset({"a"})


def test_a_test_run_may_not_select_members_so_an_unreachable_request_gets_nothing() -> None:
    whole, narrowed = parse_tree(WHOLE), parse_tree(ONLY_D)
    step = plan_step(whole, narrowed, compare(whole, narrowed), {"d"}, MEMBERS, flags=True, members=False)
    assert step is not None
    assert step.flags == frozenset() and step.members == frozenset()


# `u`'s default feature turns on the member `h`'s `fast` (`default = ["h/fast"]`): `--workspace`
# builds `h` with it, `-p h` without, and no dependency declaration says so.
FORWARDED = """\
h v0.1.0 (/x/ws/h) ;; fast

u v0.1.0 (/x/ws/u) ;; default
|-- h feature "default"
|   `-- h v0.1.0 (/x/ws/h) ;; fast
`-- h feature "fast"
    `-- h v0.1.0 (/x/ws/h) ;; fast
""".splitlines()
ONLY_H = ["h v0.1.0 (/x/ws/h) ;;"]


def test_a_selected_member_missing_a_forwarded_feature_is_asked_for_it_not_joined_by_its_dependents() -> None:
    whole, narrowed = parse_tree(FORWARDED), parse_tree(ONLY_H)
    diff = compare(whole, narrowed)
    assert diff.missing == {("h v0.1.0 (/x/ws/h)", False): frozenset({"fast"})}
    for flags, members in ((True, True), (False, True), (True, False)):
        step = plan_step(whole, narrowed, diff, {"h"}, {"h": object(), "u": object()}, flags=flags, members=members)
        assert step is not None
        assert step.flags == frozenset({"h/fast"}) and step.members == frozenset()


def test_path_crates_outside_the_workspace_are_found_for_the_cache_key() -> None:
    def package(name: str) -> Package:
        root = Path("/x/ws") / name
        return Package(name, name, root, root / "Cargo.toml", frozenset(), frozenset())

    ws = Workspace(Path("/x/ws"), Path("/x/ws/target"), {n: package(n) for n in MEMBERS})
    assert parse_tree(WHOLE).outside_manifests(ws) == (Path("/x/extcrate/Cargo.toml"), Path("/x/pm/Cargo.toml"))


def test_a_lockfile_naming_only_members_needs_no_resolve_and_any_other_package_does() -> None:
    members = {"a": object(), "b": object()}
    only = '[[package]]\nname = "a"\nversion = "0.1.0"\n\n[[package]]\nname = "b"\nversion = "0.1.0"\n'
    assert not outside_packages(only, members)
    assert outside_packages(only + '\n[[package]]\nname = "serde"\nversion = "1.0.0"\nsource = "registry"\n', members)
    assert outside_packages(only + '\n[[package]]\nname = "a"\nversion = "0.2.0"\n', members)  # same name
    assert outside_packages("not toml [", members)
