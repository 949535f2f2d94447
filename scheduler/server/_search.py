"""What a host's tool search must find: the words an agent types, put first in each tool's description.

Claude Code defers MCP tools behind a tool search by default and Codex always searches: a model that
wants "compile errors" or "the type of this expression" searches for those words, and a tool whose
description says only "Type and docs of the item at a 0-based position" is never found. So every tool's
advertised description starts with a lead written in the searcher's words (the cargo command it stands
for, the question it answers, its common synonyms), followed by the tool's own description of what it
does and answers (its docstring, kept next to its code). The leads live here, in one place, so they are
written and reviewed against each other: two tools that claim the same words split the search.

`apply` runs when the server is built, so the shipped handshake table (`_toollist.py`) carries them;
tests/server/test_server_search.py runs a search over the listed tools and fails when a query a model
would type does not find its tool first.
"""

from __future__ import annotations

import inspect
from typing import Any

from .. import _compat

LEADS: dict[str, str] = {
    "cargo_check": "cargo check: type-check Rust code for compile errors, borrow checker errors and "
    "warnings, from a cache; check after each edit.",
    "cargo_clippy": "cargo clippy: Rust lints and lint warnings; fix=true applies clippy's automatic fixes.",
    "cargo_test": "cargo test: run Rust unit tests, integration tests and doc tests, or one test by name; "
    "failing tests with their output.",
    "cargo_build": "cargo build: build a binary or library, a debug or release build; build and link errors.",
    "cargo_fmt_check": "Is the Rust code formatted? rustfmt, dry run.",
    "cargo_fmt": "cargo fmt: format Rust code with rustfmt, in place.",
    "cargo_bench": "cargo bench: run Rust benchmarks.",
    "cargo_add": "cargo add: add a dependency (a crate) to Cargo.toml.",
    "cargo_remove": "cargo remove: remove a dependency (a crate) from Cargo.toml.",
    "cargo_update": "cargo update: update dependency versions in Cargo.lock.",
    "cargo_clean": "cargo clean: delete build artifacts (target/).",
    "cargo_run": "cargo run: build and run a Rust binary or example and see its output.",
    "cargo_affected": "Which crates does a change to these files affect? Owning packages, their dependents "
    "(reverse dependencies) and the workspace dependency graph.",
    "scheduler_status": "Status of cargo-scheduler: running and queued cargo jobs, background checks, "
    "what is cached, rust-analyzer indexing progress.",
    "scheduler_job": "Wait for or poll a long-running cargo test, build or check job (background job status) "
    "and get its answer.",
    "scheduler_more": "The next page of a long answer that was cut (more diagnostics, references, symbols).",
    "scheduler_job_cancel": "Cancel a long-running cargo test, build or check job and kill its processes.",
    "set_working_directory": "Change the Rust project (Cargo workspace) directory this session works in.",
    "rust_analyzer_hover": "Type of this expression or variable, and the signature and documentation of a "
    "symbol (hover).",
    "rust_analyzer_definition": "Go to definition: where a function, type, trait, method or variable is defined.",
    "rust_analyzer_references": "Find all references: every usage of a function, type or variable, and who calls "
    "it (callers).",
    "rust_analyzer_completion": "Code completion: the methods, fields and names available at a position.",
    "rust_analyzer_symbols": "Outline of a Rust file: the functions, structs, enums, traits, impls and fields "
    "it defines (document symbols).",
    "rust_analyzer_format": "Preview rustfmt's edits for one file without applying them.",
    "rust_analyzer_diagnostics": "Errors and warnings in one file (rust-analyzer and cargo check).",
    "rust_analyzer_workspace_diagnostics": "Is the whole workspace clean? Errors and warnings of every file "
    "of every member.",
    "rust_analyzer_code_actions": "Quick fixes and refactorings (code actions) for a range: fix an error, "
    "import a missing item, fill match arms.",
    "rust_analyzer_rename": "Rename a symbol (function, type, field, variable) everywhere it is used.",
    "rust_analyzer_set_workspace": "Open another Rust workspace in rust-analyzer for this session.",
}
"""tool name -> the words a model searches for. Every registered tool has one (a test checks)."""


def apply(server: Any) -> None:
    """Put each tool's lead before its own description (dedented: docstring indentation is tokens)."""
    for tool in _compat.registered_tools(server):
        own = inspect.cleandoc(tool.description or "")
        lead = LEADS.get(tool.name)
        tool.description = f"{lead}\n{own}" if lead else own
