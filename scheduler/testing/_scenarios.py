"""A path-only workspace holding one instance of every input a cache key can miss (issue 12).

An answer is sound only if every input the compiler read is in its key: variables read with `env!`,
`option_env!` or a build script's `rerun-if-env-changed`; files outside the package's walk (outside
the workspace, in another member's directory, behind `#[path]`, symlinks and hard links, modules
`.gitignore` leaves out, path dependencies that are not members); every config file cargo reads;
the toolchain rustup resolves; features a crate gets from unification (a non-member's, and a
member's that another member's manifest asks for); and edits that keep a file's size and mtime,
which fool cargo's own mtime fingerprint. Each class here has one
*edit kind*: a flip that makes a diagnostic appear in a fresh `cargo check --workspace`, and that a
second flip undoes. The engine's tests and the differential test hold answers to a fresh run after
each flip, in the scenario's environment (`Scenario.env`: its own CARGO_HOME, never the user's).

Layout under `base`: the workspace in `ws/`, what lies outside it in `outside/`, a parent
`.cargo/config.toml` and `rust-toolchain.toml` in `base` itself, CARGO_HOME in `cargo-home/`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._generate import GeneratedWorkspace, generate_workspace
from ._scenario_sources import FEATREQ_DEPS, MEMBERS, OUTSIDE, warning

# Variables of the question that the scenario owns; anything the caller's shell sets for them (or
# that overrides config files: RUSTFLAGS beats build.rustflags) would hide what an edit changes.
_CLEARED = ("RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTUP_TOOLCHAIN", "CARGO_TARGET_DIR", "CARGO_BUILD_RUSTFLAGS")
_OLD_S = 30 * 24 * 3600
"""How far in the past the mtime-preserving edit's file is dated, so cargo's fingerprint trusts it."""


@dataclass(frozen=True)
class Variable:
    """An edit of the environment of the question: `name` unset (`off` None) or `off`, else `on`."""

    name: str
    off: str | None
    on: str

    def is_on(self, env: Mapping[str, str]) -> bool:
        return env.get(self.name) == self.on

    def set(self, env: dict[str, str], on: bool) -> None:
        if on:
            env[self.name] = self.on
        elif self.off is None:
            env.pop(self.name, None)
        else:
            env[self.name] = self.off


@dataclass
class EditKind:
    """One class of input, flipped by `Scenario.flip`: `on` after an odd number of flips."""

    name: str
    flips: str
    """What a fresh check says differently when the kind is on."""
    apply: Callable[[bool], None] | None = None
    """Writes the files for on (True) or off; None for an edit of the environment."""
    variable: Variable | None = None
    """The variable an edit of the environment flips."""
    on: bool = False
    keeps_mtime: bool = False
    """The edit keeps size and mtime: a reference run must use a fresh target dir (cargo is fooled)."""
    skipped: str | None = None
    """Why this machine cannot make the edit (then `flip` refuses it)."""


@dataclass
class Scenario:
    """What `build_scenario` wrote: the workspace `root`, and the environment of its questions."""

    base: Path
    root: Path
    cargo_home: Path
    env: dict[str, str]
    kinds: dict[str, EditKind] = field(default_factory=dict)
    generated: GeneratedWorkspace | None = None

    def flip(self, name: str, env: dict[str, str] | None = None) -> EditKind:
        """Flip kind `name`. An edit of the environment flips its variable in `env` (a caller's own
        environment; default `self.env`, and only then does `on` follow it)."""
        kind = self.kinds.get(name)
        if kind is None:
            raise KeyError(f"no edit kind {name!r}; the scenario has {', '.join(sorted(self.kinds))}")
        if kind.skipped:
            raise RuntimeError(f"edit kind {name!r} is skipped here: {kind.skipped}")
        if kind.variable is not None:
            target = self.env if env is None else env
            value = not kind.variable.is_on(target)
            kind.variable.set(target, value)
            if target is self.env:
                kind.on = value
        elif env is not None:
            raise ValueError(f"edit kind {name!r} edits files, not an environment")
        else:
            assert kind.apply is not None
            kind.on = not kind.on
            kind.apply(kind.on)
        return kind

    def available(self) -> list[str]:
        return [n for n, k in self.kinds.items() if not k.skipped]

    def env_items(self) -> tuple[tuple[str, str], ...]:
        """`env` as `CheckRequest.env` takes it."""
        return tuple(sorted(self.env.items()))

    @property
    def members(self) -> list[str]:
        return [*MEMBERS, *(self.generated.members if self.generated else [])]


def nightly_missing() -> str | None:
    """None when rustup lists a nightly toolchain, else why the toolchain kind is skipped."""
    if shutil.which("rustup") is None:
        return "rustup is not on PATH"
    try:
        listed = subprocess.run(["rustup", "toolchain", "list"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`rustup toolchain list` failed: {exc}"
    if not any(line.startswith("nightly") for line in listed.splitlines()):
        return "`rustup toolchain list` has no nightly toolchain"
    return None


def build_scenario(base: Path, *, generated_crates: int = 0, seed: int = 0, toolchain: bool = False) -> Scenario:
    """Write the scenario under `base` and return it with every kind off.

    `generated_crates`: that many generated members beside ours (for the differential test's own
    edits). `toolchain`: include the toolchain kinds (a `rust-toolchain.toml` above the workspace
    pinning stable, and a member using `#![feature]`, an error until the file or RUSTUP_TOOLCHAIN
    says nightly); off, they are skipped and every member compiles cleanly."""
    root, outside, cargo_home = base / "ws", base / "outside", base / "cargo-home"
    no_nightly = nightly_missing() if toolchain else "not asked for (build_scenario(toolchain=False))"
    generated = generate_workspace(root, generated_crates, seed=seed) if generated_crates else None
    for rel, text in OUTSIDE.items():
        _write(outside / rel, text)
    for member, files in MEMBERS.items():
        for rel, text in files.items():
            if member == "toolchained" and rel == "src/lib.rs" and not no_nightly:
                text = "#![feature(never_type)]\n" + text  # an error on stable, none on nightly
            _write(root / "crates" / member / rel, text)
    links = root / "crates" / "links" / "src"
    (links / "linked.rs").symlink_to(outside / "linked.rs")
    (links / "intree.rs").symlink_to("../../store/data/intree.rs")  # watched through its target
    (links / "linkdir").symlink_to(outside / "linkdir", target_is_directory=True)
    os.link(outside / "hard.rs", links / "hard.rs")
    ours = ", ".join(f'"crates/{m}"' for m in MEMBERS)
    theirs = ", ".join(f'"crates/{m}"' for m in generated.members) if generated else ""
    (root / "Cargo.toml").write_text(
        f'[workspace]\nresolver = "2"\nmembers = [{ours}{", " if theirs else ""}{theirs}]\n\n'
        '[workspace.package]\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (root / ".gitignore").write_text("/target\n")
    _write(base / ".cargo" / "config.toml", _rustflags("parent_a"))
    _write(cargo_home / "config.toml", _rustflags("homeoff"))
    if not no_nightly:
        _write(base / "rust-toolchain.toml", _channel(nightly=False))
    aged = root / "crates" / "store" / "src" / "aged.rs"
    old = time.time() - _OLD_S
    os.utime(aged, (old, old))

    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(CARGO_HOME=str(cargo_home), CARGO_TERM_COLOR="never")
    s = Scenario(base=base, root=root, cargo_home=cargo_home, env=env, generated=generated)

    def toggled(path: Path, off: str, on: str, *, keep_mtime: bool = False) -> Callable[[bool], None]:
        def apply(value: bool) -> None:
            _rewrite(path, on if value else off, keep_mtime=keep_mtime)

        return apply

    def warns(path: Path, tag: str) -> Callable[[bool], None]:
        base_text = path.read_text()
        return toggled(path, base_text, base_text + warning(tag))

    store, outuser = root / "crates" / "store", root / "crates" / "outuser"
    featreq_manifest = root / "crates" / "featreq" / "Cargo.toml"
    featreq_off = featreq_manifest.read_text()
    featreq_on = FEATREQ_DEPS.replace('"../featured" }', '"../featured", features = ["loud"] }')
    outdep = OUTSIDE["outdep/src/lib.rs"]
    aged_text = aged.read_text()
    long = "far too long for it\n"
    specs = [
        EditKind(
            "env_macro",
            "env!(SCEN_ENV_VALUE) fails a const assert",
            variable=Variable("SCEN_ENV_VALUE", "short", "too long!"),
        ),
        EditKind(
            "option_env", "option_env!(SCEN_OPTION) fails a const assert", variable=Variable("SCEN_OPTION", None, "1")
        ),
        EditKind(
            "build_script_env",
            "a warning under the build script's cfg",
            variable=Variable("SCEN_BUILD_FLAG", None, "1"),
        ),
        EditKind(
            "include_outside", "include_str! fails a const assert", toggled(outside / "data.txt", "short\n", long)
        ),
        EditKind(
            "include_other_member",
            "include_str! of another member's file fails a const assert",
            toggled(store / "data" / "shared.txt", "short\n", long),
        ),
        EditKind("path_module", "a warning in a #[path] module", warns(outside / "pathmod.rs", "path_module")),
        EditKind("symlink_file", "a warning in a symlinked file", warns(outside / "linked.rs", "symlink_file")),
        EditKind("symlink_dir", "a warning in a symlinked dir", warns(outside / "linkdir" / "mod.rs", "symlink_dir")),
        EditKind(
            "symlink_in_tree",
            "a warning in another member's file, read through a relative symlink",
            warns(root / "crates" / "store" / "data" / "intree.rs", "symlink_in_tree"),
        ),
        EditKind("hard_link", "a warning, edited through a hard link", warns(outside / "hard.rs", "hard_link")),
        EditKind(
            "ignored_module", "a warning in a git-ignored module", warns(links / "generated.rs", "ignored_module")
        ),
        EditKind(
            "path_dep_outside",
            "a deprecation warning from a non-member path dependency",
            toggled(outside / "outdep" / "src" / "lib.rs", outdep, "#[deprecated]\n" + outdep),
        ),
        EditKind(
            "cargo_home_config",
            "a warning under $CARGO_HOME/config.toml's cfg",
            toggled(cargo_home / "config.toml", _rustflags("homeoff"), _rustflags("home_on")),
        ),
        EditKind(
            "parent_config",
            "a warning under the parent .cargo/config.toml's cfg (same size and mtime)",
            toggled(base / ".cargo" / "config.toml", _rustflags("parent_a"), _rustflags("parent_b"), keep_mtime=True),
            keeps_mtime=True,
        ),
        EditKind(
            "same_size_and_mtime",
            "an unused variable, in an edit that keeps an old file's size and mtime",
            toggled(aged, aged_text, aged_text.replace("_aged", "aged_"), keep_mtime=True),
            keeps_mtime=True,
        ),
        EditKind(
            "toolchain_file",
            "E0554 (#![feature] on stable) goes: rust-toolchain.toml says nightly (same size and mtime)",
            toggled(base / "rust-toolchain.toml", _channel(nightly=False), _channel(nightly=True), keep_mtime=True),
            keeps_mtime=True,
            skipped=no_nightly,
        ),
        EditKind(
            "toolchain_env",
            "E0554 (#![feature] on stable) goes: the question's RUSTUP_TOOLCHAIN says nightly",
            variable=Variable("RUSTUP_TOOLCHAIN", None, "nightly"),
            skipped=no_nightly,
        ),
        EditKind(
            "outside_features",
            "a warning in a member that uses a feature only another member turns on",
            warns(outuser / "src" / "lib.rs", "outside_features"),
        ),
        EditKind(
            "member_features",
            "a warning in a member under a feature another member's manifest asks for",
            toggled(featreq_manifest, featreq_off, featreq_off.replace(FEATREQ_DEPS, featreq_on)),
        ),
    ]
    for kind in specs:
        s.kinds[kind.name] = kind
        if kind.variable is not None:
            kind.variable.set(s.env, False)
    return s


def _rustflags(cfg: str) -> str:
    return f'[build]\nrustflags = ["--cfg", "{cfg}"]\n'


def _channel(*, nightly: bool) -> str:
    return '[toolchain]\nchannel = "nightly"\n' if nightly else '[toolchain]\nchannel = "stable" \n'


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _rewrite(path: Path, text: str, *, keep_mtime: bool) -> None:
    """Write in place (same inode: a hard link's other name sees it), optionally keeping the mtime."""
    before = path.stat()
    with open(path, "r+", encoding="utf-8") as fh:
        fh.write(text)
        fh.truncate()
    if keep_mtime:
        if path.stat().st_size != before.st_size:
            raise ValueError(f"{path}: an mtime-preserving edit must keep the size")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
