"""What an answer is made of, and how it is cut to fit an agent's token budget.

A report is explicit about provenance: each package is listed as run (cargo ran it now), cached
(answered from the diagnostics cache for these exact sources), pending (a dependent whose result for
the current sources is not known yet) or skipped (with the reason). Diagnostics come errors first.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .._settings import Scope

Kind = Literal["check", "clippy", "test", "build"]
KINDS: tuple[Kind, ...] = ("check", "clippy", "test", "build")
SCOPES: tuple[Scope, ...] = ("auto", "changed", "affected", "workspace")

_LEVEL_ORDER = {"error": 0, "warning": 1}
# A token is about four bytes of JSON; the budget is enforced on the serialised size.
BYTES_PER_TOKEN = 4
DEFAULT_TOKEN_BUDGET = 6000


class Paging(NamedTuple):
    """How the call being answered wants lists cut (set by the server around each tool call)."""

    cap: int | None
    """The most tokens the host keeps of one answer (a larger budget is clamped to it)."""
    keep: Callable[[dict[str, Any], str, list[dict[str, Any]]], str] | None
    """Stores what was left out and returns its cursor (`scheduler_more`)."""


PAGING: contextvars.ContextVar[Paging | None] = contextvars.ContextVar("cargo_scheduler.paging", default=None)


@dataclass(frozen=True)
class Diagnostic:
    """One rustc diagnostic, flattened for agents; `raw` keeps cargo's JSON for exact replay."""

    package: str
    level: str
    message: str
    code: str | None
    file: str | None
    line: int | None
    column: int | None
    rendered: str
    raw: dict[str, Any] = field(compare=False, repr=False, hash=False)

    @classmethod
    def from_cargo(cls, package: str, message: dict[str, Any]) -> Diagnostic:
        """Build from a `compiler-message`'s inner `message` object (rustc's JSON)."""
        code = message.get("code") or {}
        spans = message.get("spans") or []
        primary = next((s for s in spans if s.get("is_primary")), spans[0] if spans else None)
        return cls(
            package=package,
            level=str(message.get("level", "")),
            message=str(message.get("message", "")),
            code=code.get("code") if isinstance(code, dict) else None,
            file=primary.get("file_name") if primary else None,
            line=primary.get("line_start") if primary else None,
            column=primary.get("column_start") if primary else None,
            rendered=_strip_ansi(str(message.get("rendered") or "")),
            raw=message,
        )

    def identity(self) -> tuple[str, str, str | None, str, str | None, int | None, int | None]:
        """What the differential test compares: package, level, code, message, primary span."""
        return (self.package, self.level, self.code, self.message, self.file, self.line, self.column)

    def compact(self, snippet_lines: int = 6) -> dict[str, Any]:
        lines = self.rendered.rstrip().splitlines()
        snippet = "\n".join(lines[:snippet_lines]) + ("\n..." if len(lines) > snippet_lines else "")
        out: dict[str, Any] = {"package": self.package, "level": self.level}
        if self.code:
            out["code"] = self.code
        out["message"] = self.message
        if self.file:
            out["file"] = self.file
            out["line"] = self.line
            out["column"] = self.column
        out["rendered"] = snippet
        return out


@dataclass
class PackageResult:
    """The answer for one package under one key: what cargo said, or that it could not say."""

    name: str
    success: bool
    diagnostics: list[Diagnostic]
    source: Literal["run", "cache"]
    duration_ms: float = 0.0
    blocked_by: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    kind: Kind
    scope: Scope
    results: dict[str, PackageResult] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cache_available: bool = True
    remote: dict[str, Any] | None = None
    """The shared tier's part in this answer (hit, miss or skipped and why), when one is configured."""
    command: list[str] = field(default_factory=list)
    error: str | None = None
    """Set when the run did not reach an answer (timeout, cargo failing before it built anything)."""

    @property
    def success(self) -> bool:
        return self.error is None and all(r.success for r in self.results.values())

    @property
    def diagnostics(self) -> list[Diagnostic]:
        diags: list[Diagnostic] = []
        seen: set[tuple[Any, ...]] = set()
        for r in self.results.values():
            for d in r.diagnostics:
                if d.package != r.name:  # a path crate outside the workspace: every member using it has it
                    if d.identity() in seen:
                        continue
                    seen.add(d.identity())
                diags.append(d)
        return sorted(diags, key=lambda d: (_LEVEL_ORDER.get(d.level, 2), d.package, d.file or "", d.line or 0))

    def ran(self) -> list[str]:
        return sorted(n for n, r in self.results.items() if r.source == "run")

    def cached(self) -> list[str]:
        return sorted(n for n, r in self.results.items() if r.source == "cache")

    def to_dict(self, token_budget: int = DEFAULT_TOKEN_BUDGET) -> dict[str, Any]:
        """Compact JSON for agents, errors first, cut to `token_budget` with counts of what was left out."""
        diags = self.diagnostics
        counts: dict[str, int] = {}
        for d in diags:
            counts[d.level] = counts.get(d.level, 0) + 1
        blocked = {n: r.blocked_by for n, r in self.results.items() if r.blocked_by}
        head: dict[str, Any] = {
            "success": self.success,
            "kind": self.kind,
            "scope": self.scope,
            "counts": counts,
            "packages": {
                "ran": self.ran(),
                "cached": self.cached(),
                "pending": sorted(self.pending),
                "skipped": dict(sorted(self.skipped.items())),
                **({"blocked": blocked} if blocked else {}),
            },
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }
        if not self.cache_available:
            head["cache"] = "unavailable: answered without the diagnostics cache"
        if self.remote is not None:
            head["remote"] = self.remote
        if self.error:
            head["error"] = self.error
        if self.notes:
            head["notes"] = [n for n in self.notes if n != self.error]
        return fit_to_budget(head, "diagnostics", [d.compact() for d in diags], token_budget)


def fit_to_budget(head: dict[str, Any], key: str, items: list[dict[str, Any]], token_budget: int) -> dict[str, Any]:
    """Put as many `items` under `key` as fit in the budget (in order), and say how many were omitted.

    The one place answers are cut: under a server call (`PAGING`), a budget above the host's limit
    is clamped to it, and what is left out is kept for `scheduler_more`'s cursor (`next_cursor`)."""
    paging = PAGING.get()
    reason = f"token budget {token_budget}"
    if paging is not None and paging.cap is not None and token_budget > paging.cap:
        token_budget = paging.cap
        reason = f"the host keeps about {paging.cap} tokens of an answer"
    limit = max(token_budget, 200) * BYTES_PER_TOKEN
    # Room for what is added to the head besides the items: the key, the omitted counts, a cursor.
    wrapper: dict[str, Any] = {key: [], "omitted": {key: len(items), "reason": reason}}
    if paging is not None and paging.keep is not None:
        wrapper["next_cursor"] = "page-0123456789abcdef"
    used = len(json.dumps(head, separators=(",", ":"))) + len(json.dumps(wrapper, separators=(",", ":")))
    kept: list[dict[str, Any]] = []
    for item in items:
        size = len(json.dumps(item, separators=(",", ":"))) + 1
        if used + size > limit:
            break
        kept.append(item)
        used += size
    out = dict(head)
    out[key] = kept
    if len(kept) < len(items):
        out["omitted"] = {key: len(items) - len(kept), "reason": reason}
        if paging is not None and paging.keep is not None:
            out["next_cursor"] = paging.keep({"page_of": key}, key, items[len(kept) :])
    return out


def _strip_ansi(text: str) -> str:
    if "\x1b[" not in text:
        return text
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
