"""Argument checks: paths stay inside the workspace, names stay names, env stays harmless."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler._exceptions import InvalidArgument, PathOutsideWorkspace, UnknownPackage
from scheduler.server import _paths


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "Cargo.toml").write_text('[package]\nname = "ws"\nversion = "0.1.0"\n')
    (ws / "src" / "lib.rs").write_text("")
    return ws


def test_a_relative_absolute_or_file_uri_path_resolves_to_the_same_file(root: Path) -> None:
    lib = root / "src" / "lib.rs"
    assert _paths.resolve_file("src/lib.rs", root) == lib
    assert _paths.resolve_file(str(lib), root) == lib
    assert _paths.resolve_file(lib.as_uri(), root) == lib
    assert _paths.resolve_file("file://localhost" + str(lib), root) == lib


def test_a_file_uri_naming_another_host_is_refused(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="host 'elsewhere'") as info:
        _paths.resolve_file("file://elsewhere/src/lib.rs", root)
    assert info.value.argument == "file_path"


def test_a_dotdot_path_out_of_the_workspace_is_refused_naming_the_argument(root: Path) -> None:
    with pytest.raises(PathOutsideWorkspace) as info:
        _paths.resolve_file("../outside.rs", root, must_exist=False)
    assert "file_path '../outside.rs' is outside the workspace" in str(info.value)


def test_a_symlink_leading_out_of_the_workspace_is_refused(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.rs"
    secret.write_text("")
    (root / "src" / "link.rs").symlink_to(secret)
    with pytest.raises(PathOutsideWorkspace):
        _paths.resolve_file("src/link.rs", root)


def test_a_symlink_inside_the_workspace_is_followed(root: Path) -> None:
    (root / "src" / "alias.rs").symlink_to(root / "src" / "lib.rs")
    assert _paths.resolve_file("src/alias.rs", root) == root / "src" / "lib.rs"


def test_a_missing_file_is_refused_unless_allowed(root: Path) -> None:
    with pytest.raises(InvalidArgument, match="was not found"):
        _paths.resolve_file("src/gone.rs", root)
    assert _paths.resolve_file("src/gone.rs", root, must_exist=False) == root / "src" / "gone.rs"


def test_a_workspace_must_contain_a_manifest(root: Path) -> None:
    assert _paths.resolve_workspace(str(root), base=None) == root
    assert _paths.resolve_workspace("ws", base=root.parent) == root
    with pytest.raises(InvalidArgument, match=r"no Cargo\.toml"):
        _paths.resolve_workspace(str(root / "src"), base=None)
    with pytest.raises(InvalidArgument, match="not a directory"):
        _paths.resolve_workspace(str(root / "nope"), base=None)


def test_a_package_must_be_a_member() -> None:
    assert _paths.check_package("hub", ["hub", "leaf"]) == "hub"
    assert _paths.check_package(None, ["hub"]) is None
    with pytest.raises(UnknownPackage):
        _paths.check_package("nope", ["hub"])
    with pytest.raises(InvalidArgument):
        _paths.check_package("--config=x", [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a,b", ("a", "b")), ("a b  c", ("a", "b", "c")), (["x/y", "z"], ("x/y", "z")), (None, ()), ("a,a", ("a",))],
)
def test_features_split_on_commas_and_spaces(value: str | list[str] | None, expected: tuple[str, ...]) -> None:
    assert _paths.split_features(value) == expected


@pytest.mark.parametrize("value", ["a;rm -rf /", "$(id)", "--config=build.rustc='x'", "a|b", "`x`"])
def test_features_with_shell_or_flag_syntax_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _paths.split_features(value)
    assert info.value.argument == "features"


@pytest.mark.parametrize("spec", ["serde", "serde@1.0", "tokio@^1.38", "foo-bar@=0.2.1"])
def test_a_dependency_spec_is_a_name_with_an_optional_version(spec: str) -> None:
    assert _paths.check_dependency(spec) == spec


@pytest.mark.parametrize(
    "spec", ["--git=https://x", "../local", "https://github.com/x/y", "serde@", "a b", "serde --path ..", "", "@1"]
)
def test_a_dependency_spec_with_a_path_url_or_flag_is_refused(spec: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _paths.check_dependency(spec)
    assert info.value.argument == "dependencies"


def test_test_and_bench_filters_are_names_not_flags() -> None:
    assert _paths.check_test_filter("tests::parses_empty") == "tests::parses_empty"
    with pytest.raises(InvalidArgument):
        _paths.check_test_filter("--ignored")
    with pytest.raises(InvalidArgument):
        _paths.check_test_filter("--exact", "bench_name")


def test_run_args_are_kept_verbatim_as_argv() -> None:
    assert _paths.check_run_args(["--verbose", "a b", "$(x)"]) == ["--verbose", "a b", "$(x)"]
    with pytest.raises(InvalidArgument):
        _paths.check_run_args(["a\0b"])


@pytest.mark.parametrize("name", ["stable", "nightly", "1.85.0", "nightly-2025-01-01", "+nightly"])
def test_a_toolchain_name_is_accepted(name: str) -> None:
    assert _paths.check_toolchain(name) == name.lstrip("+")


@pytest.mark.parametrize("name", ["--config", "stable;id", "../x", "a b"])
def test_a_toolchain_with_other_syntax_is_refused(name: str) -> None:
    with pytest.raises(InvalidArgument):
        _paths.check_toolchain(name)


@pytest.mark.parametrize(
    "name",
    [
        "RUSTC_WRAPPER",
        "RUSTC",
        "LD_PRELOAD",
        "DYLD_INSERT_LIBRARIES",
        "PATH",
        "CARGO_HOME",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
    ],
)
def test_env_that_changes_what_runs_is_refused_unless_allowed(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _paths.check_env({name: "x"})
    assert info.value.argument == "cargo_env" and name in info.value.problem
    assert _paths.check_env({name: "x"}, allow_unsafe=True) == {name: "x"}


def test_plain_env_and_safe_rustflags_pass_but_a_linker_flag_does_not() -> None:
    env = {"RUST_BACKTRACE": "1", "RUSTFLAGS": "-D warnings --cfg foo", "CARGO_PROFILE_DEV_DEBUG": "0"}
    assert _paths.check_env(env) == env
    with pytest.raises(InvalidArgument, match="linker"):
        _paths.check_env({"RUSTFLAGS": "-C linker=/tmp/evil"})


@pytest.mark.parametrize(
    "name",
    [
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GIT_CONFIG_GLOBAL",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PATH",
        "RUSTC_WRAPPER",
        "CC",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER",
        "CARGO_PROFILE_RELEASE_STRIP",
        "CARGO_PROFILE_DEV_RUSTFLAGS",
        "CARGO_UNSTABLE_BUILD_STD",
        "HOME",
        "SOME_VARIABLE_NOBODY_LISTED",
    ],
)
def test_a_variable_off_the_allow_list_is_refused_naming_it_and_how_to_allow_it(name: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        _paths.check_env({name: "1"})
    assert info.value.argument == "cargo_env"
    assert f"--allow-env {name}" in info.value.problem and "--allow-unsafe-env" in info.value.problem
    assert _paths.check_env({name: "1"}, allow=(name,)) == {name: "1"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RUSTFLAGS", "-D warnings --cfg foo"),
        ("RUSTDOCFLAGS", "--cfg docs"),
        ("CARGO_ENCODED_RUSTFLAGS", "--cfg\x1ffoo"),
        ("CARGO_BUILD_RUSTFLAGS", "-C opt-level=1"),
        ("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-cpu=native"),
        ("CARGO_PROFILE_DEV_OPT_LEVEL", "1"),
        ("CARGO_PROFILE_DEV_DEBUG", "0"),
        ("CARGO_PROFILE_RELEASE_LTO", "thin"),
        ("CARGO_PROFILE_DEV_BUILD_OVERRIDE_OPT_LEVEL", "3"),
        ("CARGO_PROFILE_DEV_PACKAGE_FOO_CODEGEN_UNITS", "1"),
        ("CARGO_BUILD_JOBS", "2"),
        ("CARGO_INCREMENTAL", "0"),
        ("CARGO_TERM_COLOR", "always"),
        ("CARGO_NET_OFFLINE", "true"),
        ("RUST_BACKTRACE", "1"),
        ("RUST_LOG", "debug"),
        ("RUST_TEST_THREADS", "1"),
        ("RUST_MIN_STACK", "8388608"),
        ("NO_COLOR", "1"),
    ],
)
def test_a_variable_that_only_changes_what_the_build_sees_is_accepted(name: str, value: str) -> None:
    assert _paths.check_env({name: value}) == {name: value}


def test_allowing_a_prefix_allows_its_variables_and_no_others() -> None:
    assert _paths.check_env({"MYAPP_MODE": "x"}, allow=("MYAPP_*",)) == {"MYAPP_MODE": "x"}
    with pytest.raises(InvalidArgument, match="MYAPPX"):
        _paths.check_env({"MYAPPX": "x"}, allow=("MYAPP_*",))


def test_allowing_rustflags_by_name_still_refuses_a_linker_flag() -> None:
    with pytest.raises(InvalidArgument, match="linker"):
        _paths.check_env({"RUSTFLAGS": "-C linker=/tmp/evil"}, allow=("RUSTFLAGS",))
    assert _paths.check_env({"RUSTFLAGS": "-C linker=/tmp/x"}, allow_unsafe=True)


@pytest.mark.parametrize("bad", ["A=B", "1X", "", "X Y", "*"])
def test_a_name_to_allow_that_is_not_a_variable_name_is_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument, match="--allow-env"):
        _paths.check_allow_names([bad], "--allow-env")
