"""Everything an agent names (workspaces, files, packages, features, env...) checked before use.

Agents send paths in three spellings (workspace-relative, absolute, `file://` URI, as
rust-analyzer-mcp accepted) and arguments that end up on a cargo command line. Nothing here reaches a
shell (argv only), so the danger is not quoting but meaning: a path that escapes the workspace
through `..` or a symlink, a "feature" or "test name" that is really a flag (`--config=...`), a
dependency spec that is a path or URL, or an environment variable that swaps the compiler for
another program (`RUSTC_WRAPPER`). Each check raises an `InvalidArgument` naming the argument and
saying what a good value looks like, so the agent's next call can be right.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .._exceptions import InvalidArgument, PathOutsideWorkspace, UnknownPackage

_FEATURE = re.compile(r"[A-Za-z0-9_\-/+.]+")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")
"""Package, binary, example and crate names (cargo allows letters, digits, `_` and `-`)."""
_TEST_FILTER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:.\-]*")
"""A libtest filter: a substring of a test path such as `tests::parses_empty` or `it_works`."""
_VERSION_REQ = re.compile(r"[0-9A-Za-z.\-+^~=<>*]+")
_TOOLCHAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# `cargo_env` is an allow-list: the variables below only change what the build sees (flags, profile
# knobs, parallelism, output style, the tests' and panics' behaviour), never which program runs or
# where cargo reads its configuration from. docs/mcp.md lists each with its reason. Anything else is
# refused naming the variable, unless the server allows it by name (`serve --allow-env NAME`,
# CARGO_SCHEDULER_ALLOW_ENV) or allows everything (`--allow-unsafe-env`).
SAFE_ENV = frozenset(
    {
        # Compiler flags: lints, cfgs, codegen knobs. Their values are checked (`_unsafe_rustflags`).
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_RUSTDOCFLAGS",
        "CARGO_BUILD_JOBS",  # how many units build at once
        "CARGO_INCREMENTAL",  # whether rustc keeps incremental state (inside the target dir)
        "CARGO_BUILD_INCREMENTAL",
        "CARGO_NET_OFFLINE",  # only ever forbids the network
        "CARGO_LOG",  # cargo's own tracing, to stderr
        "RUST_BACKTRACE",  # what a panic prints (rustc's, a build script's, a test's)
        "RUST_LIB_BACKTRACE",
        "RUST_LOG",  # log filter of env_logger/tracing in build scripts and tests
        "RUST_MIN_STACK",  # stack size of spawned threads
        "NO_COLOR",  # output style only
    }
)
SAFE_ENV_PREFIXES = (
    "CARGO_TERM_",  # colour, verbosity, progress bar, unicode, hyperlinks: output only
    "RUST_TEST_",  # libtest: threads, nocapture, shuffle, time thresholds
)
SAFE_ENV_PATTERNS = (
    # Per-target flags, checked like RUSTFLAGS; the triple is only a key (never LINKER/RUNNER/AR).
    re.compile(r"CARGO_TARGET_[A-Z0-9_]+_(RUSTFLAGS|RUSTDOCFLAGS)"),
    # Profile keys that only tune the compiler's output (also per package and for build overrides).
    # Not STRIP (may run a `strip` program), SPLIT_DEBUGINFO (runs dsymutil on macOS), RPATH (where
    # built binaries load libraries from), RUSTFLAGS (unchecked, unstable), CODEGEN_BACKEND (loads code
    # into rustc).
    re.compile(
        r"CARGO_PROFILE_[A-Z0-9_]+_(OPT_LEVEL|DEBUG|DEBUG_ASSERTIONS|OVERFLOW_CHECKS|CODEGEN_UNITS|PANIC|INCREMENTAL|LTO)"
    ),
)

# Variables known to change *what runs* (the compiler, a wrapper around it, the loader, where cargo and
# its config come from, a runner for built binaries, the programs git and build scripts start). They
# are refused like every variable off the allow-list; this list only makes the refusal say why.
UNSAFE_ENV = frozenset(
    {
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTDOC",
        "RUSTDOC_WRAPPER",
        "CARGO",
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_BUILD_RUSTC",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTDOC",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
        "GIT_CONFIG_GLOBAL",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_UNSTABLE_CONFIG_INCLUDE",
        "BASH_ENV",
        "ENV",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "NODE_OPTIONS",
        "CARGO_NET_GIT_FETCH_WITH_CLI",
        "SHELL",
        "HOME",
        # The C toolchain that build scripts run (the `cc`, `cmake` and `pkg-config` crates read these):
        # a compiler, archiver or plugin named here runs during a read-only check.
        "CC",
        "CXX",
        "AR",
        "LD",
        "RANLIB",
        "NM",
        "CFLAGS",
        "CXXFLAGS",
        "CPPFLAGS",
        "LDFLAGS",
        "PKG_CONFIG",
        "PKG_CONFIG_PATH",
        "CMAKE",
        "PROTOC",
        "MAKE",
        "MAKEFLAGS",
        "CARGO_MAKEFLAGS",
    }
)
UNSAFE_ENV_PREFIXES = (
    "LD_",
    "DYLD_",
    "GIT_",  # GIT_CONFIG_*, GIT_SSH*, GIT_EXEC_PATH: programs a build script's `git` call runs
    "RUSTUP_",
    "CARGO_BUILD_RUSTC",
    "CARGO_REGISTRIES_",
    "CARGO_SOURCE_",
    "CARGO_ALIAS_",
    "CARGO_CREDENTIAL_",
    "CARGO_UNSTABLE_",
    "CC_",
    "CXX_",
    "AR_",
    "CFLAGS_",
    "CXXFLAGS_",
    "LDFLAGS_",
    "TARGET_C",
    "TARGET_AR",
    "HOST_C",
    "HOST_AR",
    "CMAKE_",
    "PKG_CONFIG",
)
UNSAFE_ENV_PATTERNS = (
    re.compile(r"CARGO_TARGET_[A-Z0-9_]+_(RUNNER|LINKER|AR)"),
    re.compile(r"CARGO_HOST_(RUNNER|LINKER)"),
)
# Compiler flags are fine (`-D warnings`, `--cfg x`) except those that pick a program to run, load
# code into rustc, or read or write files outside the build (`@argfile`, `--emit=link=/path`, `-o`).
# rustc accepts `-C link_arg` for `-C link-arg`, so flags are matched with `_` read as `-`.
_UNSAFE_RUSTFLAG = re.compile(
    r"linker|link-arg|link-self-contained|sysroot|codegen-backend|plugin|incremental"
    r"|profile-generate|profile-use|extern"
)
_UNSAFE_RUSTFLAG_TOKEN = re.compile(r"-Z|--emit|--out-dir|-o|@|--print|-L")
_FLAGS_VARIABLE = ("RUSTFLAGS", "RUSTDOCFLAGS")


# -- workspaces and files ------------------------------------------------------------------------
def as_local_path(value: str, argument: str) -> Path:
    """A path from a plain path or a `file://` URI. A URI naming another host is refused: the file
    is not on this machine, and reading a same-named local file instead would answer wrongly."""
    if not value or "\0" in value:
        raise InvalidArgument(argument, "must be a non-empty path without NUL bytes")
    if value.startswith("file:"):
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost"):
            raise InvalidArgument(
                argument, f"the URI {value!r} names host {parts.netloc!r}; only local files (file:///path) work"
            )
        return Path(unquote(parts.path))
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", value):
        raise InvalidArgument(argument, f"{value!r} is a URL; pass a filesystem path or a file:// URI")
    return Path(os.path.expanduser(value))


def resolve_workspace(value: str, *, base: Path | None, argument: str = "workspace") -> Path:
    """A workspace root an agent named: resolved (symlinks too) and containing Cargo.toml."""
    path = as_local_path(value, argument)
    if not path.is_absolute():
        if base is None:
            raise InvalidArgument(argument, f"{value!r} is relative and no workspace is set; pass an absolute path")
        path = base / path
    root = _resolved(path, value, argument)
    try:
        is_dir = root.is_dir()
    except OSError as exc:
        raise InvalidArgument(argument, f"{value!r} cannot be used: {exc.strerror or exc}") from exc
    if not is_dir:
        raise InvalidArgument(argument, f"{str(root)!r} is not a directory; pass a directory containing Cargo.toml")
    if not (root / "Cargo.toml").is_file():
        raise InvalidArgument(argument, f"{str(root)!r} has no Cargo.toml; pass a Cargo workspace or package root")
    return root


def _resolved(path: Path, value: str, argument: str) -> Path:
    """`path` with symlinks and `..` resolved; a symlink loop or an unreadable link is the agent's
    argument to fix, not an internal error."""
    try:
        return path.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: "Symlink loop from ..." (Python < 3.13)
        raise InvalidArgument(argument, f"{value!r} cannot be resolved ({exc}); pass a real path") from exc


def resolve_file(value: str, root: Path, *, argument: str = "file_path", must_exist: bool = True) -> Path:
    """A file inside `root`, from a workspace-relative path, an absolute path or a file:// URI.

    Confinement is checked on the fully resolved path, so `..` segments and symlinks that lead out
    of the workspace are refused even when the spelled path looks inside it.
    """
    path = as_local_path(value, argument)
    real_root = root.resolve()
    full = _resolved(path if path.is_absolute() else real_root / path, value, argument)
    if not full.is_relative_to(real_root):
        raise PathOutsideWorkspace(argument, value, str(real_root))
    try:
        missing = must_exist and not full.exists()
    except OSError as exc:  # ENAMETOOLONG and friends: still the agent's path to fix
        raise InvalidArgument(argument, f"{value!r} cannot be used: {exc.strerror or exc}") from exc
    if missing:
        raise InvalidArgument(argument, f"{value!r} was not found under {real_root}; check the path")
    return full


def resolve_files(values: Iterable[str], root: Path, *, argument: str = "files") -> list[Path]:
    """Several files; deleted files are allowed (their packages are still affected)."""
    return [resolve_file(v, root, argument=argument, must_exist=False) for v in values]


# -- names on a cargo command line -------------------------------------------------------------
def check_package(name: str | None, members: list[str]) -> str | None:
    """A workspace member, or None. With no member list (metadata not loaded), the syntax only."""
    if name is None or name == "":
        return None
    _match(_NAME, name, "package", "a package name such as 'my_crate'")
    if members and name not in members:
        raise UnknownPackage(name, members)
    return name


def split_features(value: str | Iterable[str] | None, argument: str = "features") -> tuple[str, ...]:
    """Features from a comma/space separated string or a list (each item may itself be a list)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidArgument(argument, "must be a string or a list of strings")
        for feature in re.split(r"[,\s]+", item.strip()):
            if feature:
                _match(_FEATURE, feature, argument, "feature names like 'serde' or 'dep/feature', comma separated")
                if feature.startswith("-"):
                    raise InvalidArgument(argument, f"{feature!r} looks like a flag; pass feature names only")
                out.append(feature)
    return tuple(dict.fromkeys(out))


def check_name(value: str | None, argument: str) -> str | None:
    """A binary, example or bench target name."""
    if value is None or value == "":
        return None
    _match(_NAME, value, argument, "a target name such as 'my_bin'")
    return value


def check_test_filter(value: str | None, argument: str = "test_name") -> str | None:
    if value is None or value == "":
        return None
    _match(_TEST_FILTER, value, argument, "a test name or path filter such as 'tests::parses' (no leading '-')")
    return value


def check_dependency(spec: str, argument: str = "dependencies") -> str:
    """`name` or `name@version` from crates.io; paths, git URLs and flags go through other channels."""
    if not isinstance(spec, str) or not spec:
        raise InvalidArgument(argument, "each dependency must be a non-empty string like 'serde' or 'serde@1.0'")
    name, _, version = spec.partition("@")
    if (
        spec.startswith("-")
        or not _NAME.fullmatch(name)
        or (version and not _VERSION_REQ.fullmatch(version))
        or spec.endswith("@")
    ):
        raise InvalidArgument(
            argument, f"{spec!r} is not 'name' or 'name@version' (paths, URLs and flags are not accepted)"
        )
    return spec


def check_dependencies(specs: Iterable[str] | None, argument: str = "dependencies", *, required: bool) -> list[str]:
    out = [check_dependency(s, argument) for s in (specs or [])]
    if required and not out:
        raise InvalidArgument(argument, "give at least one dependency name, e.g. ['serde']")
    return out


def check_run_args(args: Iterable[str] | None) -> list[str]:
    """Arguments for the program `cargo run` starts: passed after `--` as argv, never to a shell."""
    out = []
    for arg in args or []:
        if not isinstance(arg, str) or "\0" in arg:
            raise InvalidArgument("args", "each argument must be a string without NUL bytes")
        out.append(arg)
    return out


def check_toolchain(value: str | None) -> str | None:
    """A rustup toolchain name (`stable`, `nightly-2025-01-01`, `1.85.0`, `+nightly`)."""
    if value is None or value == "":
        return None
    name = value[1:] if value.startswith("+") else value
    _match(_TOOLCHAIN, name, "toolchain", "a rustup toolchain such as 'stable', 'nightly' or '1.85.0'")
    return name


def is_safe_env(name: str) -> bool:
    """On the allow-list: changes only what the build sees (RUSTFLAGS-style values still checked)."""
    return name in SAFE_ENV or name.startswith(SAFE_ENV_PREFIXES) or any(p.fullmatch(name) for p in SAFE_ENV_PATTERNS)


def is_unsafe_env(name: str) -> bool:
    """Known to change which program runs (only used to say why a variable is refused)."""
    return (
        name in UNSAFE_ENV
        or name.startswith(UNSAFE_ENV_PREFIXES)
        or any(p.fullmatch(name) for p in UNSAFE_ENV_PATTERNS)
    )


def check_allow_names(names: Iterable[str], argument: str) -> tuple[str, ...]:
    """Names the server adds to the allow-list: variable names, or a prefix ending in `*` (`MYAPP_*`)."""
    out = []
    for name in names:
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name.removesuffix("*")):
            raise InvalidArgument(argument, f"{name!r} is not a variable name (or a prefix ending in '*', 'MYAPP_*')")
        out.append(name)
    return tuple(dict.fromkeys(out))


def _allowed_by(name: str, allow: Iterable[str]) -> bool:
    return any(name.startswith(a[:-1]) if a.endswith("*") else name == a for a in allow)


def check_env(
    env: Mapping[str, str] | None, *, allow_unsafe: bool = False, allow: Iterable[str] = ()
) -> dict[str, str]:
    """`cargo_env`: variables on the allow-list (or that the server allows by name, or all with
    `allow_unsafe`); compiler flags that pick a program or a path outside the build are refused even
    then, unless `allow_unsafe`."""
    allow = tuple(allow)
    out: dict[str, str] = {}
    for name, value in (env or {}).items():
        if not _ENV_NAME.fullmatch(name):
            raise InvalidArgument("cargo_env", f"{name!r} is not an environment variable name")
        if not isinstance(value, str) or "\0" in value:
            raise InvalidArgument("cargo_env", f"the value of {name} must be a string without NUL bytes")
        if not allow_unsafe and not is_safe_env(name) and not _allowed_by(name, allow):
            why = (
                f"{name} can change which programs run or where cargo reads and writes"
                if is_unsafe_env(name)
                else f"{name} is not on this server's list of variables that only change what the build sees "
                "(RUSTFLAGS, CARGO_PROFILE_*_OPT_LEVEL, CARGO_BUILD_JOBS, RUST_BACKTRACE, RUST_TEST_*...: docs/mcp.md)"
            )
            raise InvalidArgument(
                "cargo_env",
                f"{why}, so this server refuses it. To allow it, start the server with `--allow-env {name}` "
                f"(or set CARGO_SCHEDULER_ALLOW_ENV={name}; `--allow-unsafe-env` allows every variable); "
                "otherwise drop it and call again",
            )
        if not allow_unsafe and name.endswith(_FLAGS_VARIABLE) and _unsafe_rustflags(value):
            raise InvalidArgument(
                "cargo_env",
                f"{name} sets a linker, sysroot, unstable option, argfile or output path, which can run other "
                "programs or reach files outside the build; "
                "keep to flags like '-D warnings' or '--cfg name' (or start the server with --allow-unsafe-env)",
            )
        out[name] = value
    return out


def _unsafe_rustflags(value: str) -> bool:
    """True when a RUSTFLAGS-style value (space or \\x1f separated) has a flag that is not just a lint,
    cfg or codegen knob."""
    normal = value.replace("_", "-")
    tokens = re.split(r"[\s\x1f]+", normal)
    return bool(_UNSAFE_RUSTFLAG.search(normal)) or any(_UNSAFE_RUSTFLAG_TOKEN.match(t) for t in tokens)


def _match(pattern: re.Pattern[str], value: str, argument: str, good: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidArgument(argument, f"{value!r} is not valid; expected {good}")
