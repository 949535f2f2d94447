"""Answers and the manifests that make them sound, in the diagnostics cache.

Three kinds of entries, all keyed by content (see docs/cache-keys.md):
- `ml:<base key>` and `ma:<base key>`: the library and answer manifests of a member (`_record`);
- `<answer key>`: what cargo said for the member, stored only together with its answer manifest;
- `unit:<dep-info>`: what a unit's inputs hashed to when its dep-info was written (`_record`).

A lookup is a hit only when the member's walk, its shared inputs, its dependencies' library keys, the
current content of every file its compiler recorded and the question's value of every variable it read
are what they were: a different value of any of them is a different key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..cargo._config import cargo_home
from ..cargo._run import CargoOutcome
from ..cargo._workspace import Workspace
from . import _clippy_config, _keys
from ._cache import DiagnosticsCache
from ._external import ExternalFiles
from ._fingerprint import Snapshot
from ._inputs import Locator, Manifest
from ._keys import Keys
from ._record import Recorded, Recorder

_KIND_PREFIX = {"lib": "ml:", "answer": "ma:"}


class AnswerStore:
    """One engine's view of the shared cache: manifests, answers, unit records, external files."""

    def __init__(self, root: Path, cache: DiagnosticsCache) -> None:
        self.root = root
        self.cache = cache
        self.external = ExternalFiles()
        self.version = 0
        """Bumped at every store: memoised keys computed before it may be missing a manifest."""
        self.watched_env: set[str] = set()
        """Every variable some recorded manifest of this workspace reads."""
        self._locators: dict[Path, Locator] = {}

    def locator(self, env: Mapping[str, str]) -> Locator:
        home = cargo_home(env)
        found = self._locators.get(home)
        if found is None:
            found = self._locators[home] = Locator(self.root, home)
        return found

    def manifest(self, kind: str, name: str, base: str) -> Manifest | None:
        if base.startswith("?"):
            return None
        key = _KIND_PREFIX[kind] + base
        value = self.cache.get_many([key]).get(key)
        if value is None:
            return None
        m = Manifest.from_json(value)
        if m is not None and m.env:
            self.watched_env.update(m.env)
        return m

    def digest_of(self, ws: Workspace, snap: Snapshot, locator: Locator) -> Callable[[str], bytes]:
        """The current content digest of an input, by locator: the snapshot's for walked files, else
        read (stat-cached) from the disk."""

        def digest(loc: str) -> bytes:
            if loc.startswith("d:"):
                return self.external.directory_digest(locator.path(loc[2:]))
            if loc.startswith("w:"):
                rel = loc[2:]
                owner = ws.owner(ws.root / rel)
                found = snap.by_owner.get(owner, {}).get(rel)
                if found is not None:
                    return found
            return self.external.digest(locator.path(loc))

        return digest

    def keys(
        self,
        ws: Workspace,
        snap: Snapshot,
        global_key: bytes,
        command: _keys.Command,
        env: Mapping[str, str],
        overlay: Recorded | None = None,
    ) -> Keys:
        lookup = self.manifest
        if overlay is not None:

            def lookup(kind: str, name: str, base: str) -> Manifest | None:
                recorded = (overlay.lib if kind == "lib" else overlay.answer).get(name)
                return recorded if recorded is not None else self.manifest(kind, name, base)

        digest = self.digest_of(ws, snap, self.locator(env))
        return _keys.manifest_keys(ws, snap, global_key, command, lookup, digest, env)

    def record(
        self,
        ws: Workspace,
        snap: Snapshot,
        env: Mapping[str, str],
        outcome: CargoOutcome,
        answered: Iterable[str],
        *,
        target_dir: Path,
        started_ns: int,
        blocked: Iterable[str],
        failed: Iterable[str] = (),
        kind: str = "check",
    ) -> Recorded:
        locator = self.locator(env)
        extra = _clippy_config.unit_inputs(ws, env) if kind == "clippy" else None
        recorder = Recorder(ws, snap, locator, self.digest_of(ws, snap, locator), self.cache.get, extra)
        return recorder.record(
            outcome, answered, target_dir=target_dir, started_ns=started_ns, blocked=blocked, failed=failed
        )

    def store(
        self,
        keys: Keys,
        recorded: Recorded,
        answers: Mapping[str, dict[str, Any]],
        extra: Mapping[str, Mapping[str, Any]] = {},
    ) -> list[str]:
        """Store the run's manifests and answers under `keys` (computed with `recorded` as overlay),
        and `extra` entries by member under a key derived from its answer key (test passes); returns
        the members whose answer could not be stored (no sound key)."""
        entries: dict[str, dict[str, Any]] = dict(recorded.units)
        for name, m in recorded.lib.items():
            if not keys.base[name].startswith("?"):
                entries["ml:" + keys.base[name]] = m.to_json()
                self.watched_env.update(m.env)
        unstored = []
        for name, entry in answers.items():
            key = keys.answer.get(name)
            answer = recorded.answer.get(name)
            if key is None or answer is None:
                unstored.append(name)
                continue
            entries["ma:" + keys.base[name]] = answer.to_json()
            if entry:
                entries[key] = entry
            for derive, value in extra.get(name, {}).items():
                entries[derive + key] = dict(value)
            self.watched_env.update(answer.env)
        self.cache.put_many(entries)
        self.version += 1
        return unstored
