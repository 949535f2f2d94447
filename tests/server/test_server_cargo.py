"""The cargo tools end to end over MCP, against real cargo on generated path-only workspaces."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from mcp import Client
from server_env import call

from scheduler import GeneratedWorkspace, build_server

pytestmark = pytest.mark.anyio

TYPE_ERROR = '\npub fn broken() -> u32 { "not a number" }\n'
FAILING_TEST = "\n#[cfg(test)]\nmod failing {\n    #[test]\n    fn fails_on_purpose() { assert_eq!(1 + 1, 3); }\n}\n"


def _has_rustfmt() -> bool:
    if shutil.which("cargo") is None:
        return False
    return subprocess.run(["cargo", "fmt", "--version"], capture_output=True).returncode == 0


needs_rustfmt = pytest.mark.skipif(not _has_rustfmt(), reason="rustfmt is not installed")


@pytest.fixture
def ws(make_workspace: Callable[..., GeneratedWorkspace]) -> GeneratedWorkspace:
    return make_workspace(crates=6)


async def test_a_compile_error_is_a_normal_answer_with_success_false(ws: GeneratedWorkspace) -> None:
    lib = ws.lib_rs("leaf_000")
    lib.write_text(lib.read_text() + TYPE_ERROR)
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(client, "cargo_check", {"package": "leaf_000", "scope": "changed"})
        assert not is_error and data["success"] is False
        first = data["diagnostics"][0]
    assert first["level"] == "error" and first["file"].endswith("leaf_000/src/lib.rs")


async def test_a_small_token_budget_cuts_diagnostics_and_says_how_many(ws: GeneratedWorkspace) -> None:
    lib = ws.lib_rs("leaf_000")
    lib.write_text(lib.read_text() + "".join(f'\npub fn broken_{i}() -> u32 {{ "x" }}\n' for i in range(40)))
    async with Client(build_server(ws.root)) as client:
        _, data = await call(client, "cargo_check", {"package": "leaf_000", "scope": "changed", "max_tokens": 400})
    assert data["omitted"]["diagnostics"] > 0 and len(data["diagnostics"]) < 40


async def test_cargo_test_reports_a_failing_test_with_its_output(ws: GeneratedWorkspace) -> None:
    lib = ws.lib_rs("leaf_000")
    lib.write_text(lib.read_text() + FAILING_TEST)
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(client, "cargo_test", {"package": "leaf_000"})
    assert not is_error and data["success"] is False
    assert data["counts"]["failed"] == 1
    assert any("fails_on_purpose" in str(f) for f in data["failures"])


@needs_rustfmt
async def test_fmt_check_lists_unformatted_files_and_fmt_fixes_them(ws: GeneratedWorkspace) -> None:
    lib = ws.lib_rs("hub")
    lib.write_text(lib.read_text() + "\npub fn   badly ( )->u32{1}\n")
    before = lib.read_text()
    async with Client(build_server(ws.root)) as client:
        _, check = await call(client, "cargo_fmt_check", {"package": "hub"})
        assert check["formatted"] is False and "crates/hub/src/lib.rs" in check["unformatted_files"]
        assert lib.read_text() == before, "fmt_check must not change files"
        is_error, fmt = await call(client, "cargo_fmt", {"package": "hub"})
        assert not is_error and fmt["success"] and "crates/hub/src/lib.rs" in fmt["changed_files"]
        _, after = await call(client, "cargo_fmt_check", {"package": "hub"})
    assert after["formatted"] is True and after["unformatted_files"] == []
    assert "pub fn badly() -> u32" in lib.read_text()


async def test_cargo_run_passes_args_as_argv_and_answers_the_programs_output(ws: GeneratedWorkspace) -> None:
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(client, "cargo_run", {"package": "leaf_001", "args": ["$(id)", "a b"]})
    assert not is_error and data["success"] and data["exit_code"] == 0
    assert data["command"][-3:] == ["--", "$(id)", "a b"]
    assert data["stdout_tail"].strip()


async def test_cargo_remove_dry_run_leaves_the_manifest_alone(ws: GeneratedWorkspace) -> None:
    manifest = ws.crate_dir("leaf_001") / "Cargo.toml"
    before = manifest.read_text()
    dep = ws.deps["leaf_001"][0]
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(
            client, "cargo_remove", {"dependencies": [dep], "package": "leaf_001", "dry_run": True}
        )
    assert not is_error and "--dry-run" in data["command"], data
    assert manifest.read_text() == before


async def test_cargo_clean_of_one_package_succeeds(ws: GeneratedWorkspace) -> None:
    async with Client(build_server(ws.root)) as client:
        await call(client, "cargo_build", {"package": "hub"})
        is_error, data = await call(client, "cargo_clean", {"package": "hub"})
    assert not is_error and data["success"] and data["command"] == ["cargo", "clean", "-p", "hub"]


async def test_cargo_affected_names_owners_and_dependents_in_check_order(ws: GeneratedWorkspace) -> None:
    async with Client(build_server(ws.root)) as client:
        _, data = await call(client, "cargo_affected", {"files": [str(ws.lib_rs("hub")), "Cargo.toml"]})
    assert data["whole_workspace"] is True
    _, hub_only = await _affected(ws, ["crates/hub/src/lib.rs"])
    assert hub_only["owners"] == ["hub"] and hub_only["check_order"][0] == "hub"


async def _affected(ws: GeneratedWorkspace, files: list[str]) -> tuple[bool, dict[str, Any]]:
    async with Client(build_server(ws.root)) as client:
        return await call(client, "cargo_affected", {"files": files})


async def test_scheduler_status_names_the_session_workspace_and_engines(ws: GeneratedWorkspace) -> None:
    async with Client(build_server(ws.root)) as client:
        await call(client, "cargo_affected", {"files": ["crates/hub/src/lib.rs"]})
        is_error, data = await call(client, "scheduler_status")
    assert not is_error and data["session_workspace"] == str(ws.root.resolve())
    assert data["engines"][0]["root"] == str(ws.root.resolve())


def _has_clippy() -> bool:
    return shutil.which("cargo") is not None and (
        subprocess.run(["cargo", "clippy", "--version"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(not _has_clippy() or shutil.which("git") is None, reason="clippy or git is not installed")
async def test_clippy_fix_keeps_cargos_protection_of_uncommitted_work_unless_allow_dirty(
    make_workspace: Callable[..., GeneratedWorkspace],
) -> None:
    ws = make_workspace(crates=4)
    lib = ws.lib_rs("hub")
    fixable = "\npub fn needless() -> u32 {\n    return 1;\n}\n"  # clippy::needless_return, machine-applicable
    lib.write_text(lib.read_text() + fixable)
    before = lib.read_text()
    args: dict[str, Any] = {"fix": True, "package": "hub", "deny_warnings": False}
    async with Client(build_server(ws.root)) as client:
        is_error, data = await call(client, "cargo_clippy", args)  # no version control at all
        assert is_error and data["argument"] == "allow_dirty", data
        assert "allow_dirty: true" in data["error"] and "no VCS" in data["error"], data["error"]
        assert lib.read_text() == before

        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        await anyio.run_process(["cargo", "generate-lockfile", "--offline"], cwd=ws.root)
        for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
            await anyio.run_process(git + step, cwd=ws.root)
        lib.write_text(before + "// an uncommitted edit\n")
        is_error, data = await call(client, "cargo_clippy", args)
        assert is_error and "uncommitted changes" in data["error"] and "allow_dirty: true" in data["error"], data
        assert lib.read_text() == before + "// an uncommitted edit\n"

        is_error, data = await call(client, "cargo_clippy", {**args, "allow_dirty": True})
        assert not is_error and data["success"], data
        assert "return 1;" not in lib.read_text() and "// an uncommitted edit" in lib.read_text()


async def test_a_check_in_a_member_with_its_own_cargo_config_says_the_answer_is_for_the_roots(
    ws: GeneratedWorkspace,
) -> None:
    """cargo-mcp runs cargo in the directory it was given; the engine runs it at the root."""
    member = ws.crate_dir("leaf_000")
    (member / ".cargo").mkdir()
    (member / ".cargo" / "config.toml").write_text("[build]\nrustflags = []\n")
    async with Client(build_server(ws.root)) as client:
        _, at_member = await call(client, "cargo_check", {"workspace": str(member), "scope": "workspace"})
        _, at_root = await call(client, "cargo_check", {"scope": "workspace"})
    assert any(".cargo/config.toml" in n and "workspace root" in n for n in at_member.get("notes", [])), at_member
    assert not any(".cargo/config.toml" in n for n in at_root.get("notes", []))
