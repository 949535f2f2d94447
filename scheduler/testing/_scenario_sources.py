"""The Rust sources of the soundness scenario (`_scenarios`): members, and what lies outside them.

Every member compiles without a diagnostic while every edit kind is off (except `toolchained` on
stable, where `#![feature]` is an error until the toolchain kind switches to nightly). Relative
paths are from the member's file to the scenario's `outside/` directory, beside the workspace.
"""

from __future__ import annotations

_OUT = "../../../../outside"  # from crates/<member>/src/ to the scenario's outside/
CFGS = ("parent_a", "parent_b", "homeoff", "home_on", "scen_build_flag")


def warning(tag: str) -> str:
    """A function that draws one `unused variable` warning, named after its edit kind."""
    return f"\npub fn warn_{tag}() -> u32 {{\n    let unused_{tag} = 1;\n    0\n}}\n"


def _manifest(name: str, deps: str = "", extra: str = "") -> str:
    return (
        f'[package]\nname = "{name}"\nversion.workspace = true\nedition.workspace = true\npublish = false\n'
        f"{extra}\n[dependencies]\n{deps}"
    )


_EXPECTED = ", ".join(f'"cfg({c})"' for c in CFGS)
_CHECK_CFG = f'[lints.rust]\nunexpected_cfgs = {{ level = "warn", check-cfg = [{_EXPECTED}] }}\n'

FEATREQ_DEPS = (
    f'outfeat = {{ path = "{_OUT[3:]}/outfeat", features = ["extra"] }}\nfeatured = {{ path = "../featured" }}\n'
)
"""featreq's dependencies; the `member_features` kind asks `featured` for its `loud` feature."""

MEMBERS: dict[str, dict[str, str]] = {
    "envs": {
        "Cargo.toml": _manifest("envs", extra=_CHECK_CFG),
        "build.rs": """fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SCEN_BUILD_FLAG");
    if std::env::var_os("SCEN_BUILD_FLAG").is_some() {
        println!("cargo:rustc-cfg=scen_build_flag");
    }
}
""",
        "src/lib.rs": """//! Reads the environment: env!, option_env!, and a build script's variable.
pub const VALUE: &str = env!("SCEN_ENV_VALUE");
const _: () = assert!(VALUE.len() < 8, "SCEN_ENV_VALUE must stay under 8 bytes");
const _: () = assert!(option_env!("SCEN_OPTION").is_none(), "SCEN_OPTION must not be set");

#[cfg(scen_build_flag)]
pub fn flagged() -> u32 {
    let unused_flag = 1;
    0
}
""",
    },
    "includes": {
        "Cargo.toml": _manifest("includes"),
        "src/lib.rs": f"""//! Reads files outside its own directory: outside the workspace, and in another member's.
pub const OUTSIDE: &str = include_str!("{_OUT}/data.txt");
const _: () = assert!(OUTSIDE.len() < 10, "outside/data.txt must stay short");
pub const SHARED: &str = include_str!("../../store/data/shared.txt");
const _: () = assert!(SHARED.len() < 10, "store's data/shared.txt must stay short");

#[path = "{_OUT}/pathmod.rs"]
pub mod pathmod;
""",
    },
    "store": {
        "Cargo.toml": _manifest("store"),
        "data/shared.txt": "short\n",
        "data/intree.rs": "pub fn intree() -> u32 {\n    1\n}\n",
        "src/lib.rs": "//! Holds data another member includes, and a file dated in the past.\npub mod aged;\n",
        "src/aged.rs": "pub fn aged() -> u32 {\n    let _aged = 1;\n    0\n}\n",
    },
    "links": {
        "Cargo.toml": _manifest("links"),
        ".gitignore": "/src/generated.rs\n",
        "src/lib.rs": """//! Sources behind a file symlink, a directory symlink, a hard link, a symlink to another
//! member's file, and a git-ignored module.
pub mod generated;
pub mod hard;
pub mod intree;
pub mod linkdir;
pub mod linked;
""",
        "src/generated.rs": "pub fn generated() -> u32 {\n    1\n}\n",
    },
    "outuser": {
        "Cargo.toml": _manifest(
            "outuser", f'outdep = {{ path = "{_OUT[3:]}/outdep" }}\noutfeat = {{ path = "{_OUT[3:]}/outfeat" }}\n'
        ),
        "src/lib.rs": """//! Uses a non-member path dependency, and a feature of one that only `featreq` turns on.
pub fn total() -> u32 {
    outdep::value() + outfeat::extra()
}
""",
    },
    "featreq": {
        "Cargo.toml": _manifest("featreq", FEATREQ_DEPS),
        "src/lib.rs": "pub fn more() -> u32 {\n    outfeat::extra() + featured::quiet()\n}\n",
    },
    "featured": {
        "Cargo.toml": _manifest("featured", extra="[features]\nloud = []\n"),
        "src/lib.rs": """//! Code that only a feature another member's manifest may ask for turns on.
pub fn quiet() -> u32 {
    0
}

#[cfg(feature = "loud")]
pub fn loud() -> u32 {
    let unused_member_features = 1;
    0
}
""",
    },
    "configured": {
        "Cargo.toml": _manifest("configured", extra=_CHECK_CFG),
        "src/lib.rs": """//! Code that only config files' rustflags turn on.
#[cfg(home_on)]
pub fn home() -> u32 {
    let unused_home = 1;
    0
}

#[cfg(parent_b)]
pub fn parent() -> u32 {
    let unused_parent = 1;
    0
}
""",
    },
    "toolchained": {
        "Cargo.toml": _manifest("toolchained"),
        "src/lib.rs": "pub fn plain() -> u32 {\n    4\n}\n",
    },
}

OUTSIDE: dict[str, str] = {
    "data.txt": "short\n",
    "pathmod.rs": "pub fn path_module() -> u32 {\n    1\n}\n",
    "linked.rs": "pub fn linked() -> u32 {\n    1\n}\n",
    "linkdir/mod.rs": "pub fn linkdir() -> u32 {\n    1\n}\n",
    "hard.rs": "pub fn hard() -> u32 {\n    1\n}\n",
    "outdep/Cargo.toml": '[package]\nname = "outdep"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n',
    "outdep/src/lib.rs": "pub fn value() -> u32 {\n    1\n}\n",
    "outfeat/Cargo.toml": (
        '[package]\nname = "outfeat"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n[features]\nextra = []\n'
    ),
    "outfeat/src/lib.rs": '#[cfg(feature = "extra")]\npub fn extra() -> u32 {\n    2\n}\n',
}
