"""Which compiler a question is about is decided again at every question, from rustup's inputs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from scheduler.engine._cache import DiagnosticsCache
from scheduler.engine._toolchain import Toolchains, toolchain_inputs

pytestmark = pytest.mark.anyio


@pytest.fixture
def rustup_home(tmp_path: Path) -> Path:
    home = tmp_path / "rustup"
    (home / "toolchains" / "stable-x86_64-unknown-linux-gnu").mkdir(parents=True)
    (home / "settings.toml").write_text('default_toolchain = "stable-x86_64-unknown-linux-gnu"\n')
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"RUSTUP_HOME": str(home), "PATH": "/usr/bin", **extra}


def test_rustup_default_and_override_set_change_the_inputs_even_with_size_and_mtime_kept(
    rustup_home: Path, tmp_path: Path
) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    settings = rustup_home / "settings.toml"
    before = toolchain_inputs(root, _env(rustup_home), None)
    st = settings.stat()
    settings.write_text('default_toolchain = "nightly-x86_64-unknown-linux-gnu"\n'[: st.st_size].ljust(st.st_size))
    os.utime(settings, ns=(st.st_atime_ns, st.st_mtime_ns))
    after_default = toolchain_inputs(root, _env(rustup_home), None)
    settings.write_text(settings.read_text() + f'[overrides]\n"{root}" = "nightly"\n')
    after_override = toolchain_inputs(root, _env(rustup_home), None)
    assert len({before, after_default, after_override}) == 3


def test_a_toolchain_reinstalled_under_the_same_name_changes_the_inputs(rustup_home: Path, tmp_path: Path) -> None:
    before = toolchain_inputs(tmp_path, _env(rustup_home), None)
    stable = rustup_home / "toolchains" / "stable-x86_64-unknown-linux-gnu"
    stable.rename(rustup_home / "toolchains" / "old")
    (rustup_home / "toolchains" / "stable-x86_64-unknown-linux-gnu").mkdir()  # what `rustup update` does
    assert toolchain_inputs(tmp_path, _env(rustup_home), None) != before


def test_rustup_toolchain_in_the_environment_and_the_call_argument_change_the_inputs(
    rustup_home: Path, tmp_path: Path
) -> None:
    plain = toolchain_inputs(tmp_path, _env(rustup_home), None)
    assert toolchain_inputs(tmp_path, _env(rustup_home, RUSTUP_TOOLCHAIN="nightly"), None) != plain
    assert toolchain_inputs(tmp_path, _env(rustup_home), "nightly") != plain


async def test_the_compiler_is_asked_again_only_when_its_inputs_change(rustup_home: Path, tmp_path: Path) -> None:
    asked: list[list[str]] = []

    async def probe(argv: list[str], env: Mapping[str, str]) -> str:
        asked.append(argv)
        return f"rustc for {env.get('RUSTUP_TOOLCHAIN', 'default')}\n"

    toolchains = Toolchains(tmp_path, probe)
    first = await toolchains.identity(_env(rustup_home), None)
    assert await toolchains.identity(_env(rustup_home), None) == first and len(asked) == 1
    other = await toolchains.identity(_env(rustup_home, RUSTUP_TOOLCHAIN="nightly"), None)
    assert other != first and len(asked) == 2
    (rustup_home / "settings.toml").write_text('default_toolchain = "beta"\n')
    await toolchains.identity(_env(rustup_home), None)
    assert len(asked) == 3, "`rustup default` while the daemon runs is seen at the next question"


async def test_a_new_process_reuses_the_remembered_identity_until_an_input_changes(
    rustup_home: Path, tmp_path: Path
) -> None:
    asked: list[list[str]] = []

    async def probe(argv: list[str], env: Mapping[str, str]) -> str:
        asked.append(argv)
        return f"rustc 1.0.0 ({len(asked)})\n"

    def process() -> Toolchains:  # what each CLI invocation builds: a new engine, the same cache dir
        return Toolchains(tmp_path, probe, DiagnosticsCache(tmp_path / "cache"))

    first = await process().identity(_env(rustup_home), None)
    assert await process().identity(_env(rustup_home), None) == first and len(asked) == 1
    os.rename(rustup_home / "toolchains" / "stable-x86_64-unknown-linux-gnu", rustup_home / "gone")
    (rustup_home / "toolchains" / "stable-x86_64-unknown-linux-gnu").mkdir()  # `rustup update`: a new dir
    assert await process().identity(_env(rustup_home), None) != first and len(asked) == 2


async def test_concurrent_questions_share_one_probe(rustup_home: Path, tmp_path: Path) -> None:
    asked: list[list[str]] = []
    release = anyio.Event()

    async def probe(argv: list[str], env: Mapping[str, str]) -> str:
        asked.append(argv)
        await release.wait()
        return "rustc 1.0.0\n"

    toolchains = Toolchains(tmp_path, probe)
    answers: list[str] = []

    async def ask() -> None:
        answers.append(await toolchains.identity(_env(rustup_home), None))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            tg.start_soon(ask)
            await anyio.wait_all_tasks_blocked()
            release.set()
    assert answers == ["rustc 1.0.0\n"] * 2 and len(asked) == 1
