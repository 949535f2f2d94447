"""After a cargo run: what each package's compiler read, and which "fresh" units cargo was fooled about.

Two manifests per member (see `_inputs.Manifest`), both keyed by the member's walk key:
- the *library* manifest: inputs of the units a dependent builds against (lib, proc-macro, build
  script and its output), recorded by any run that builds them, also as a dependency;
- the *answer* manifest: inputs of every unit of the member's own answer (its bins, tests, ...).
Crates from outside the workspace that are not pinned by Cargo.lock (path dependencies that are not
members) are mutable inputs too: their sources and manifest go into the manifests of the members that
depend on a path outside the workspace.

Cargo decides freshness by mtime, so an edit that keeps a file's mtime (a restore, `touch -d`, some
checkouts) makes it replay the messages of the old content. A unit record keeps the digests of a
unit's inputs as they were when its dep-info was written; a unit cargo calls fresh whose record
disagrees with the current digests was not compiled from these sources. Its fingerprint directory is
removed (cargo then compiles it again) and the run is repeated; its replay is never stored. The
same holds for inputs no dep-info names: a clippy unit's record keeps the configuration clippy would
read for its member (`_clippy_config.unit_inputs`), which a new `clippy.toml` changes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from ..cargo._run import CargoOutcome, Unit
from ..cargo._workspace import Workspace, path_of_id
from . import _inputs
from ._fingerprint import Snapshot
from ._inputs import Locator, Manifest

LIB_KINDS = frozenset({"lib", "rlib", "dylib", "cdylib", "staticlib", "proc-macro", "custom-build"})


@dataclass
class _Reads:
    files: set[str] = field(default_factory=set)
    env: set[str] = field(default_factory=set)

    def add(self, other: _Reads) -> None:
        self.files |= other.files
        self.env |= other.env


@dataclass
class Recorded:
    lib: dict[str, Manifest] = field(default_factory=dict)
    answer: dict[str, Manifest] = field(default_factory=dict)
    units: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Unit records to store, by key."""
    fooled: list[Path] = field(default_factory=list)
    """Fingerprint directories removed: cargo replayed units these sources did not produce."""
    fooled_packages: set[str] = field(default_factory=set)
    changed_during_run: set[str] = field(default_factory=set)
    """Members that read a file outside the workspace which changed while cargo ran: what the
    compiler read is not what is there now, so they get no manifest (and no stored answer)."""


def unit_key(dep_info_locator: str) -> str:
    return "unit:" + xxhash.xxh3_64_hexdigest(dep_info_locator.encode("utf-8", "surrogateescape"))


class Recorder:
    """Reads one run's dep-info and build-script outputs for one workspace."""

    def __init__(
        self,
        ws: Workspace,
        snap: Snapshot,
        locator: Locator,
        digest: Callable[[str], bytes],
        lookup_unit: Callable[[str], dict[str, Any] | None],
        unit_inputs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.ws = ws
        self.unit_inputs = unit_inputs or {}
        """By member, inputs no dep-info names that a unit record keeps too (clippy's configuration)."""
        self.snap = snap
        self.locator = locator
        self.digest = digest
        self.lookup_unit = lookup_unit
        self._by_id = {p.id: n for n, p in ws.packages.items()}
        self._outputs: tuple[str, ...] = ()

    def record(
        self,
        outcome: CargoOutcome,
        answered: Iterable[str],
        *,
        target_dir: Path,
        started_ns: int,
        blocked: Iterable[str] = (),
        failed: Iterable[str] = (),
    ) -> Recorded:
        """Manifests for `answered` and for every member library the run built. A unit that failed
        has no `compiler-artifact`, but rustc wrote its dep-info all the same (type and name errors
        come after it): found by crate name among the dep-info files this run wrote."""
        answered = list(answered)
        out = Recorded()
        # Files under a target dir (a build script's OUT_DIR) are outputs of inputs recorded anyway,
        # and their paths hold per-checkout unit hashes: they are not inputs of the key.
        self._outputs = tuple(
            {self.locator.locate(str(d), self.ws.root) + "/" for d in (self.ws.target_dir, target_dir)}
        )
        lib: dict[str, _Reads] = {}
        full: dict[str, _Reads] = {}
        outside = _Reads()
        for unit in outcome.units:
            name = self._by_id.get(unit.package_id)
            if name is None and not unit.package_id.startswith("path+"):
                continue  # registry and git crates: pinned by Cargo.lock, read-only
            reads = self._unit_reads(unit, name, outcome, out)
            if name is None:
                outside.add(reads)
                outside.files.add(self._outside_manifest(unit.package_id))
                continue
            full.setdefault(name, _Reads()).add(reads)
            if LIB_KINDS.intersection(unit.kinds):
                lib.setdefault(name, _Reads()).add(reads)
        for package_id, script in outcome.build_scripts.items():
            name = self._by_id.get(package_id)
            if name is None and not package_id.startswith("path+"):
                continue
            reads = self._build_script_reads(package_id, script.out_dir)
            if name is None:
                outside.add(reads)
            else:
                full.setdefault(name, _Reads()).add(reads)
                lib.setdefault(name, _Reads()).add(reads)
        # Compiled: a unit of its own code reported (a build script's artifact does not count).
        built = {self._by_id.get(u.package_id) for u in outcome.units if "custom-build" not in u.kinds}
        blocked = set(blocked)
        failed = set(failed)
        incomplete: set[str] = set()
        for name in answered:
            if name in built and name not in failed:
                continue
            if name in blocked:
                # Not compiled because a dependency failed: the answer is that dependency's, and the
                # base key (which holds the dependency's library key) says when that changes.
                lib.setdefault(name, _Reads())
                full.setdefault(name, _Reads())
                continue
            # A unit that failed reports no artifact (its lib may have, its bin not): every dep-info
            # of the package's crates written by this run is what the failed units read.
            written = self._failed_reads(name, target_dir, started_ns, out)
            if written is None:
                incomplete.add(name)  # what it read is unknown: its answer gets no manifest
                continue
            full.setdefault(name, _Reads()).add(written)
            lib.setdefault(name, _Reads()).add(written)
        for name, reads in lib.items():
            if name not in incomplete:
                out.lib[name] = self._manifest(name, reads, outside)
        for name in answered:
            if name in full and name not in incomplete:
                out.answer[name] = self._manifest(name, full[name], outside)
        for manifests in (out.lib, out.answer):
            for name in [n for n, m in manifests.items() if _changed_since(m, self.locator, started_ns)]:
                del manifests[name]
                out.changed_during_run.add(name)
        return out

    def _manifest(self, name: str, reads: _Reads, outside: _Reads) -> Manifest:
        files = set(reads.files)
        env = set(reads.env)
        if self.ws.packages[name].outside_path_deps:
            files |= outside.files
            env |= outside.env
        own = self.snap.by_owner.get(name, {})
        files = {f for f in files if not (f.startswith("w:") and f[2:] in own) and not f.startswith(self._outputs)}
        files |= {twin for f in files if (twin := self.locator.relative_twin(f)) is not None}
        return Manifest(tuple(sorted(files)), tuple(sorted(env)))

    def _unit_reads(self, unit: Unit, name: str | None, outcome: CargoOutcome, out: Recorded) -> _Reads:
        reads = _Reads()
        script = outcome.build_scripts.get(unit.package_id)
        set_by_script = set(script.env) if script is not None else set()
        for filename in unit.filenames:
            dep_info = _inputs.dep_info_of(filename)
            if dep_info is None:
                continue
            try:
                text = dep_info.read_text(encoding="utf-8", errors="surrogateescape")
                mtime = dep_info.stat().st_mtime_ns
            except OSError:
                continue
            info = _inputs.parse_dep_info(text)
            files = [self.locator.locate(f, self.ws.root) for f in info.files]
            reads.files.update(files)
            reads.env.update(n for n in info.env if not _inputs.cargo_sets(n) and n not in set_by_script)
            self._check_unit(dep_info, mtime, files, unit, name, out)
            break  # one dep-info per unit; the other filenames are the same unit's outputs
        return reads

    def _check_unit(
        self, dep_info: Path, mtime: int, files: list[str], unit: Unit, name: str | None, out: Recorded
    ) -> None:
        key = unit_key(self.locator.locate(str(dep_info), self.ws.root))
        now = {f: self.digest(f).hex() for f in files}
        if name is not None:
            now.update(self.unit_inputs.get(name, {}))
        record = self.lookup_unit(key)
        if unit.fresh and record is not None and record.get("m") == mtime and record.get("i") != now:
            fingerprint = _inputs.fingerprint_dir(dep_info)
            if fingerprint is not None:
                with contextlib.suppress(OSError):
                    shutil.rmtree(fingerprint)
                out.fooled.append(fingerprint)
                if name is not None:
                    out.fooled_packages.add(name)
                return
        if record is None or record.get("m") != mtime or record.get("i") != now:
            out.units[key] = {"m": mtime, "i": now}

    def _failed_reads(self, name: str, target_dir: Path, started_ns: int, out: Recorded) -> _Reads | None:
        found: list[Path] = []
        for crate in self.ws.packages[name].crate_names:
            for pattern in (f"*/deps/{crate}-*.d", f"*/*/deps/{crate}-*.d"):
                for path in target_dir.glob(pattern):
                    with contextlib.suppress(OSError):
                        if path.stat().st_mtime_ns >= started_ns:
                            found.append(path)
        if not found:
            return None
        reads = _Reads()
        for dep_info in found:
            try:
                info = _inputs.parse_dep_info(dep_info.read_text(encoding="utf-8", errors="surrogateescape"))
                mtime = dep_info.stat().st_mtime_ns
            except OSError:
                return None
            files = [self.locator.locate(f, self.ws.root) for f in info.files]
            reads.files.update(files)
            reads.env.update(n for n in info.env if not _inputs.cargo_sets(n))
            key = unit_key(self.locator.locate(str(dep_info), self.ws.root))
            inputs = {f: self.digest(f).hex() for f in files}
            out.units[key] = {"m": mtime, "i": {**inputs, **self.unit_inputs.get(name, {})}}
        return reads

    def _build_script_reads(self, package_id: str, out_dir: str) -> _Reads:
        reads = _Reads()
        if not out_dir:
            return reads
        try:
            text = (Path(out_dir).parent / "output").read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            return reads
        parsed = _inputs.parse_build_output(text)
        base = self._package_root(package_id)
        for path in parsed.files:
            loc = self.locator.locate(path, base)
            reads.files.add(("d:" + loc) if os.path.isdir(self.locator.path(loc)) else loc)
        reads.env.update(n for n in parsed.env if not _inputs.cargo_sets(n))
        return reads

    def _package_root(self, package_id: str) -> Path:
        name = self._by_id.get(package_id)
        if name is not None:
            return self.ws.packages[name].root
        return Path(path_of_id(package_id))

    def _outside_manifest(self, package_id: str) -> str:
        return self.locator.locate(os.path.join(path_of_id(package_id), "Cargo.toml"), self.ws.root)


def _changed_since(manifest: Manifest, locator: Locator, started_ns: int) -> bool:
    """A recorded file outside the workspace (no walk key guards it) written after the run began:
    its digest, taken now, may not be what the compiler read. Inside the workspace the walk keys
    before and after the run decide; `$CARGO_HOME`'s sources are pinned by the lockfile."""
    for loc in manifest.files:
        if not loc.startswith("a:"):
            continue
        try:
            st = os.stat(locator.path(loc))
        except OSError:
            continue  # gone: its digest says so, and a fresh run finds it missing as well
        if max(st.st_mtime_ns, st.st_ctime_ns) >= started_ns:
            return True
    return False
