"""What a session's command line asks rust-analyzer to analyse: features and settings.

rust-analyzer-mcp 0.4.0 is started as `rust-analyzer-mcp [--all-features] [--features LIST]...
[--no-default-features] [--config KEY=VALUE]... [WORKSPACE]`, and a user who swaps its command for
`cargo-scheduler serve` keeps those flags: they mean here what they mean there. rust-analyzer then
analyses the code those features enable (without them, feature-gated code is only an "inactive
code" hint, and go-to-definition, hover and references know nothing inside it).

One rust-analyzer serves every session that asks for the same options (the pool is keyed by them);
a session with other features gets a rust-analyzer of its own, since one rust-analyzer analyses one
feature set. The rules (which flags combine, how values are read) are the peer's, so a command line
it refuses is refused here too, with a message naming the flag.

Standard library only: the stdio front parses these flags (importing this module only when one is
given: `dataclasses` costs milliseconds on the handshake's path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from ._exceptions import InvalidArgument


@dataclass(frozen=True)
class AnalyzerOptions:
    """A session's analysis options; hashable, so sessions with equal options share a rust-analyzer."""

    all_features: bool = False
    features: tuple[str, ...] = ()
    no_default_features: bool = False
    overrides: tuple[tuple[str, str], ...] = field(default=())
    """`--config KEY=VALUE` settings, in order: the dotted key and the value as JSON text."""

    @property
    def is_default(self) -> bool:
        return self == AnalyzerOptions()

    # -- the command line --------------------------------------------------------------------
    def with_all_features(self) -> AnalyzerOptions:
        if self.features:
            raise InvalidArgument("--all-features", "cannot be combined with --features")
        if self.no_default_features:
            raise InvalidArgument("--no-default-features", "cannot be combined with --all-features")
        return replace(self, all_features=True)

    def with_features(self, listed: str) -> AnalyzerOptions:
        """Features named comma- or space-separated; `pkg/feature` as cargo spells it."""
        named = tuple(f for f in listed.replace(",", " ").replace("\t", " ").split(" ") if f)
        if not named:
            raise InvalidArgument("--features", "needs at least one feature name")
        if self.all_features:
            raise InvalidArgument("--features", "cannot be combined with --all-features")
        return replace(self, features=(*self.features, *named))

    def without_default_features(self) -> AnalyzerOptions:
        if self.all_features:
            raise InvalidArgument("--no-default-features", "cannot be combined with --all-features")
        return replace(self, no_default_features=True)

    def with_setting(self, assignment: str) -> AnalyzerOptions:
        """`KEY=VALUE`: VALUE is read as JSON, else taken for a string (`check.command=clippy`)."""
        key, sep, value = assignment.partition("=")
        if not sep:
            raise InvalidArgument("--config", "needs a KEY=VALUE, such as check.command=clippy")
        if not key or any(not part for part in key.split(".")):
            raise InvalidArgument("--config", f"{key!r} is not a setting name")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        return replace(self, overrides=(*self.overrides, (key, json.dumps(parsed))))

    # -- the wire (front -> daemon) ------------------------------------------------------------
    def to_wire(self) -> dict[str, Any]:
        return {
            "all_features": self.all_features,
            "features": list(self.features),
            "no_default_features": self.no_default_features,
            "config": [[k, v] for k, v in self.overrides],
        }

    @classmethod
    def from_wire(cls, data: object) -> AnalyzerOptions:
        """From a hello's `session.analyzer`; ValueError names what is malformed."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("session.analyzer must be an object")
        features, config = data.get("features", []), data.get("config", [])
        if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
            raise ValueError("session.analyzer.features must be a list of feature names")
        if not isinstance(config, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p) for p in config
        ):
            raise ValueError("session.analyzer.config must be a list of [key, json] pairs")
        flags = {k: data.get(k, False) for k in ("all_features", "no_default_features")}
        if not all(isinstance(v, bool) for v in flags.values()):
            raise ValueError("session.analyzer's all_features and no_default_features must be booleans")
        try:
            overrides = tuple((k, json.dumps(json.loads(v))) for k, v in config)
        except ValueError:
            raise ValueError("session.analyzer.config holds a value that is not JSON") from None
        return cls(flags["all_features"], tuple(features), flags["no_default_features"], overrides)

    # -- rust-analyzer's settings ------------------------------------------------------------------
    def apply(self, settings: dict[str, Any]) -> dict[str, Any]:
        """`settings` (rust-analyzer's initialization options) with these options on top. `check.*`
        falls back to `cargo.*` for features, so one setting covers analysis and rust-analyzer's own
        check. An override may contradict a setting of ours: what the user asked for wins."""
        cargo = settings.setdefault("cargo", {})
        if self.all_features:
            cargo["features"] = "all"  # the bare word: a list would name a feature called "all"
        elif self.features:
            cargo["features"] = list(self.features)
        if self.no_default_features:
            cargo["noDefaultFeatures"] = True
        for key, value in self.overrides:
            at = settings
            *parents, last = key.split(".")
            for name in parents:
                if not isinstance(at.get(name), dict):
                    at[name] = {}
                at = at[name]
            at[last] = json.loads(value)
        return settings

    def describe(self) -> dict[str, Any]:
        """For status: what this rust-analyzer was asked to analyse."""
        out: dict[str, Any] = {}
        if self.all_features:
            out["features"] = "all"
        elif self.features:
            out["features"] = list(self.features)
        if self.no_default_features:
            out["no_default_features"] = True
        if self.overrides:
            out["config"] = {k: json.loads(v) for k, v in self.overrides}
        return out


DEFAULT_OPTIONS = AnalyzerOptions()
"""The manifest's default features and no overrides: what a session without flags analyses."""
