"""Generate path-only Rust workspaces shaped like real ones.

The demo, the tests and the benchmark all need workspaces that build offline (no crates.io) and look
like the ones agents work in: a hub crate most others depend on, a middle layer, many leaves, a
proc-macro crate, a build script, features that differ between members, binaries and tests.
Generation is deterministic for a given size and seed, so benchmark runs are comparable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

HUB = "hub"
MACROS = "macros"
BUILDINFO = "buildinfo"


@dataclass(frozen=True)
class GeneratedWorkspace:
    """What was generated, so callers can pick crates to edit without parsing manifests."""

    root: Path
    hub: str
    mids: list[str]
    leaves: list[str]
    deps: dict[str, list[str]] = field(default_factory=dict)

    @property
    def members(self) -> list[str]:
        return [HUB, MACROS, BUILDINFO, *self.mids, *self.leaves]

    def lib_rs(self, crate: str) -> Path:
        return self.root / "crates" / crate / "src" / "lib.rs"

    def crate_dir(self, crate: str) -> Path:
        return self.root / "crates" / crate


def generate_workspace(root: Path, crates: int = 12, *, seed: int = 0) -> GeneratedWorkspace:
    """Write a workspace of `crates` members (at least 4) under `root` and return its shape."""
    if crates < 4:
        raise ValueError(f"a generated workspace needs at least 4 crates, got {crates}")
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    n_mid = max(1, (crates - 3) // 8)
    n_leaf = crates - 3 - n_mid
    mids = [f"mid_{i:02d}" for i in range(n_mid)]
    leaves = [f"leaf_{i:03d}" for i in range(n_leaf)]
    deps: dict[str, list[str]] = {HUB: [], MACROS: [], BUILDINFO: []}

    _write_hub(root)
    _write_macros(root)
    _write_buildinfo(root)
    for i, mid in enumerate(mids):
        mid_deps = [HUB, MACROS] + ([mids[i - 1]] if i > 0 else [])
        deps[mid] = mid_deps
        # Every other mid crate turns on the hub's `extra` feature: features then differ by member.
        _write_member(root, mid, mid_deps, hub_extra=(i % 2 == 0), with_test=True, with_bin=False)
    for i, leaf in enumerate(leaves):
        leaf_deps = [HUB, rng.choice(mids)]
        if i % 7 == 3:
            leaf_deps.append(BUILDINFO)
        deps[leaf] = leaf_deps
        _write_member(root, leaf, leaf_deps, hub_extra=False, with_test=(i % 5 == 0), with_bin=(i % 6 == 1))

    members = ", ".join(f'"crates/{m}"' for m in [HUB, MACROS, BUILDINFO, *mids, *leaves])
    (root / "Cargo.toml").write_text(
        f'[workspace]\nresolver = "2"\nmembers = [{members}]\n\n'
        '[workspace.package]\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (root / ".gitignore").write_text("/target\n")
    return GeneratedWorkspace(root=root, hub=HUB, mids=mids, leaves=leaves, deps=deps)


def _manifest(name: str, deps: list[str], extra: str = "") -> str:
    lines = [
        "[package]",
        f'name = "{name}"',
        "version.workspace = true",
        "edition.workspace = true",
        "publish = false",
        extra,
        "[dependencies]",
    ]
    lines += [f'{d} = {{ path = "../{d}" }}' for d in deps]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _write_hub(root: Path) -> None:
    crate = root / "crates" / HUB
    _write(crate / "Cargo.toml", _manifest(HUB, []) + "\n[features]\ndefault = []\nextra = []\n")
    _write(crate / "data" / "greeting.txt", "hello from the hub\n")
    _write(
        crate / "src" / "lib.rs",
        """//! The crate everything depends on.
pub const GREETING: &str = include_str!("../data/greeting.txt");
// Data read at compile time: editing data/greeting.txt can break the build.
const _: () = assert!(GREETING.len() < 64, "data/greeting.txt must stay under 64 bytes");

pub fn hub_value(x: u32) -> u32 {
    x.wrapping_mul(31).wrapping_add(7)
}

pub trait Describe {
    fn describe(&self) -> String;
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u32,
    pub name: String,
}

impl Describe for Record {
    fn describe(&self) -> String {
        format!("{}:{}", self.id, self.name)
    }
}

#[cfg(feature = "extra")]
pub fn extra_value() -> u32 {
    hub_value(1) + 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn hub_value_is_stable() {
        assert_eq!(super::hub_value(1), 38);
    }
}
""",
    )


def _write_macros(root: Path) -> None:
    crate = root / "crates" / MACROS
    _write(crate / "Cargo.toml", _manifest(MACROS, [], "[lib]\nproc-macro = true\n"))
    _write(
        crate / "src" / "lib.rs",
        """//! A proc-macro crate with no dependencies beyond proc_macro itself.
use proc_macro::TokenStream;

/// Expands to a `u32` literal: the number of tokens it was given, times 3.
#[proc_macro]
pub fn triple_count(input: TokenStream) -> TokenStream {
    let n = input.into_iter().count() as u32 * 3;
    format!("{n}u32").parse().unwrap()
}
""",
    )


def _write_buildinfo(root: Path) -> None:
    crate = root / "crates" / BUILDINFO
    _write(crate / "Cargo.toml", _manifest(BUILDINFO, []))
    _write(
        crate / "build.rs",
        """use std::{env, fs, path::Path};

fn main() {
    let out = env::var("OUT_DIR").unwrap();
    fs::write(Path::new(&out).join("stamp.rs"), "pub const STAMP: u32 = 7;\\n").unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
""",
    )
    _write(
        crate / "src" / "lib.rs",
        """//! A crate with a build script.
include!(concat!(env!("OUT_DIR"), "/stamp.rs"));

pub fn stamp() -> u32 {
    STAMP
}
""",
    )


def _write_member(root: Path, name: str, deps: list[str], *, hub_extra: bool, with_test: bool, with_bin: bool) -> None:
    crate = root / "crates" / name
    manifest_deps = [d for d in deps if d != HUB]
    manifest = _manifest(name, manifest_deps)
    hub_line = f'{HUB} = {{ path = "../{HUB}"' + (', features = ["extra"]' if hub_extra else "") + " }\n"
    _write(crate / "Cargo.toml", manifest + hub_line)
    calls = []
    for dep in deps:
        if dep == HUB:
            calls.append("hub::hub_value(x)")
        elif dep == MACROS:
            calls.append("macros::triple_count!(a b)")
        elif dep == BUILDINFO:
            calls.append("buildinfo::stamp()")
        else:
            calls.append(f"{dep}::value(x)")
    body = " + ".join(calls) or "0"
    _write(
        crate / "src" / "lib.rs",
        f"""//! Generated member `{name}`.
use hub::Describe;

pub fn value(x: u32) -> u32 {{
    {body}
}}

pub fn describe(id: u32) -> String {{
    let record = hub::Record {{ id, name: String::from("{name}") }};
    record.describe()
}}

pub fn sum_values(items: &[u32]) -> u32 {{
    items.iter().map(|&i| value(i)).fold(0u32, |acc, v| acc.wrapping_add(v))
}}
""",
    )
    if with_test:
        _write(
            crate / "tests" / "it.rs",
            f"""#[test]
fn value_is_deterministic() {{
    assert_eq!({name}::value(3), {name}::value(3));
}}
""",
        )
    if with_bin:
        _write(
            crate / "src" / "main.rs",
            f"""fn main() {{
    println!("{{}}", {name}::value(1));
}}
""",
        )
