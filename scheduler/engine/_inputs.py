"""What the compiler read: dep-info files, build-script outputs, and where each input lives.

The walk of a package's directory is a guess at its inputs made before anything was compiled. After a
cargo run the compiler has written down what it really read, and that record is the key's second half
(as ccache's direct mode keeps a manifest of a compile's inputs):

- rustc's dep-info, `<target>/<profile>/deps/<crate>-<hash>.d`, written for every unit (even one with
  errors): every source file opened, wherever it lies and through whatever link
  (`src/../../outside/data.txt`), and `# env-dep:NAME[=VALUE]` for each `env!`/`option_env!`;
- a build script's `output` file: its `cargo:rerun-if-changed=PATH` (relative to the package root;
  a directory means everything under it) and `cargo:rerun-if-env-changed=NAME` lines.

Variables cargo itself sets for the compiler (`CARGO_PKG_*`, `OUT_DIR`, a build script's
`cargo:rustc-env`) come from the manifest and the build, not from the caller: they are not inputs of
the question. Every other variable read is, whatever its value (unset included).

An input is named by a *locator*, relative where it can be, so that keys and records do not depend on
where this checkout lives: `w:<path>` under the workspace root, `h:<path>` under `$CARGO_HOME`, `a:<path>`
anywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Set by cargo for rustc (and build scripts), never taken from the caller's environment.
_CARGO_SET_PREFIXES = ("CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_EXE_", "CARGO_CFG_", "DEP_")
_CARGO_SET = frozenset(
    {
        "CARGO",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
        "CARGO_SBOM_PATH",
    }
)


def cargo_sets(name: str) -> bool:
    """True for a variable whose value cargo gives the compiler itself."""
    return name in _CARGO_SET or name.startswith(_CARGO_SET_PREFIXES)


@dataclass
class DepInfo:
    files: list[str] = field(default_factory=list)
    """Paths as rustc wrote them (relative to the directory rustc ran in, or absolute)."""
    env: dict[str, str | None] = field(default_factory=dict)


def parse_dep_info(text: str) -> DepInfo:
    """rustc's Makefile-style dep-info: each input once more as a rule of its own (`path:`), then the
    env-deps as comments. Spaces in paths are escaped with a backslash; env values escape newlines."""
    info = DepInfo()
    seen: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# env-dep:"):
            name, sep, value = line[len("# env-dep:") :].partition("=")
            info.env[name] = _unescape(value) if sep else None
        elif line.endswith(":") and not line.startswith("#") and ": " not in line:
            path = line[:-1].replace("\\ ", " ")
            if path and path not in seen:
                seen.add(path)
                info.files.append(path)
    return info


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace("\\r", "\r").replace("\\\\", "\\")


@dataclass
class BuildOutput:
    files: list[str] = field(default_factory=list)
    """`rerun-if-changed` paths, relative to the package root unless absolute."""
    env: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """`cargo::warning=` texts: cargo prints each for a path package, at every run."""


def parse_build_output(text: str) -> BuildOutput:
    out = BuildOutput()
    for line in text.splitlines():
        for prefix in ("cargo::", "cargo:"):
            if line.startswith(prefix):
                key, _, value = line[len(prefix) :].partition("=")
                if key == "rerun-if-changed" and value:
                    out.files.append(value)
                elif key == "rerun-if-env-changed" and value:
                    out.env.append(value)
                elif key == "warning":
                    out.warnings.append(value)
                break
    return out


def dep_info_of(filename: str) -> Path | None:
    """The dep-info file rustc wrote next to an artifact cargo reported (`compiler-artifact`
    `filenames`): `deps/libfoo-HASH.rmeta` -> `deps/foo-HASH.d`; a build script's
    `build/foo-HASH/build-script-build` -> `build/foo-HASH/build_script_build-HASH.d`."""
    path = Path(filename)
    if path.name.startswith("build-script-") and "-" in path.parent.name:
        digest = path.parent.name.rsplit("-", 1)[1]
        candidate = path.parent / f"build_script_build-{digest}.d"
        return candidate if candidate.is_file() else None
    stem = path.name.split(".", 1)[0]
    for name in (stem, stem[3:] if stem.startswith("lib") else None):
        if name:
            candidate = path.with_name(f"{name}.d")
            if candidate.is_file():
                return candidate
    return None


def fingerprint_dir(dep_info: Path) -> Path | None:
    """Cargo's fingerprint directory for the unit that wrote `dep_info` (`<profile>/.fingerprint/
    foo-HASH`). Removing it makes cargo compile that unit again, whatever the mtimes say."""
    stem = dep_info.name[: -len(".d")]
    if dep_info.parent.name == "deps":
        profile = dep_info.parent.parent
    elif dep_info.parent.parent.name == "build":
        profile = dep_info.parent.parent.parent
        stem = dep_info.parent.name
    else:
        return None
    candidate = profile / ".fingerprint" / stem
    return candidate if candidate.is_dir() else None


class Locator:
    """Turns paths into locators and back for one workspace root and one `$CARGO_HOME`."""

    def __init__(self, root: Path, cargo_home: Path | None) -> None:
        self.root = root
        self.cargo_home = cargo_home
        self._root_s = str(root)
        self._home_s = str(cargo_home) if cargo_home is not None else None

    def locate(self, path: str, base: Path) -> str:
        """The locator of `path` as a tool running in `base` would open it (normalised lexically:
        `a/../b` is `b`; links are followed when the file is read, not here)."""
        joined = path if os.path.isabs(path) else os.path.join(base, path)
        if ".." in joined.split(os.sep):
            # `..` after a linked directory leaves the link's target, not its parent (`a -> else/a`:
            # `a/src/../../x.rs` is `else/x.rs`): the directory is resolved as the system does.
            joined = os.path.join(os.path.realpath(os.path.dirname(joined)), os.path.basename(joined))
        full = os.path.normpath(joined)
        if full == self._root_s or full.startswith(self._root_s + os.sep):
            return "w:" + os.path.relpath(full, self._root_s)
        if self._home_s is not None and full.startswith(self._home_s + os.sep):
            return "h:" + os.path.relpath(full, self._home_s)
        return "a:" + full

    def path(self, locator: str) -> str:
        kind, rel = locator[:2], locator[2:]
        if kind == "w:":
            return os.path.join(self._root_s, rel)
        if kind == "h:" and self._home_s is not None:
            return os.path.join(self._home_s, rel)
        if kind == "o:":
            return os.path.normpath(os.path.join(self._root_s, rel))
        return rel

    def relative_twin(self, locator: str) -> str | None:
        """For a file outside the root and `$CARGO_HOME` (`a:`, by absolute path), the same place
        relative to the root (`o:`), read in the checkout asking: `include!("../../x.rs")` in
        another checkout reads that checkout's neighbour, while the absolute path names the one
        where it was recorded. A key holding both is equal only where both files are."""
        if locator.startswith("d:"):
            twin = self.relative_twin(locator[2:])
            return None if twin is None else "d:" + twin
        if not locator.startswith("a:"):
            return None
        return "o:" + os.path.relpath(locator[2:], self._root_s)


@dataclass(frozen=True)
class Manifest:
    """What the compiler read for one package's answer, beyond the package's own walked files."""

    files: tuple[str, ...] = ()
    """Locators of inputs outside the package's walk (other members' files, ignored files, files
    outside the workspace, path dependencies that are not members); `d:` prefix: a whole directory."""
    env: tuple[str, ...] = ()
    """Names of the caller's variables the compiler or a build script read."""

    def to_json(self) -> dict[str, list[str]]:
        return {"f": list(self.files), "e": list(self.env)}

    @staticmethod
    def from_json(value: Mapping[str, object]) -> Manifest | None:
        files, env = value.get("f"), value.get("e")
        if not isinstance(files, list) or not isinstance(env, list):
            return None
        return Manifest(tuple(str(f) for f in files), tuple(str(e) for e in env))
