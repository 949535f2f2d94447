"""The shim: a `cargo` on PATH that answers check/clippy/build from the daemon, as the real cargo would.

Real parts only: the installed script run by the shell's PATH lookup, the daemon it starts, the real
cargo beside it, and a parser of cargo's JSON reading both."""

from __future__ import annotations

import os
import pty
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cargo_json import CargoMessages, warn_everywhere
from daemon_env import Env, isolated_env

from scheduler import generate_workspace
from scheduler.cargo import _shimless
from scheduler.cli import _shim

REAL_CARGO = _shimless.real_cargo(os.environ["PATH"])


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scheduler.cli._main", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def shell(*argv: str, cwd: Path, shim: Path) -> subprocess.CompletedProcess[str]:
    """`argv` as a shell with the shim first on PATH runs it."""
    path = f"{shim}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": path}
    )


@pytest.mark.parametrize("form", ["native", "python"])
def test_cargo_through_the_shim_gives_a_json_parser_the_same_diagnostics_as_the_real_cargo(
    env: Env, tmp_path: Path, form: str
) -> None:
    ws = generate_workspace(env.workspace, crates=6)
    warn_everywhere(ws)
    lib = ws.lib_rs(ws.leaves[0])
    lib.write_text(lib.read_text() + '\npub fn broken() -> u32 { "no" }\n')
    shim = tmp_path / "shim"
    installed = cli("shim", "install", "--dir", str(shim), *(["--python"] if form == "python" else []), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.strip() == f'export PATH={shim}:"$PATH"'
    assert _shim.status(shim)["native"] is (form == "native"), installed.stderr

    first = shell("cargo", "check", "--message-format=json", cwd=ws.root, shim=shim)  # no daemon: the real cargo
    env.wait_status()  # ... and the shim started one for the next command
    theirs = subprocess.run(
        [str(REAL_CARGO), "check", "--message-format=json"], cwd=ws.root, capture_output=True, text=True, timeout=300
    )
    mine = shell("cargo", "check", "--message-format=json", cwd=ws.root, shim=shim)
    again = shell("cargo", "c", "-v", cwd=ws.root, shim=shim)

    assert first.returncode == theirs.returncode == mine.returncode == again.returncode == 101
    assert "note: cargo-scheduler answered" in again.stderr, again.stderr  # the daemon's answer, not cargo's
    assert "rust-analyzer" not in _descendants(int(env.wait_status()["pid"]))  # a shell's cargo never asks it
    expected = sorted(CargoMessages(theirs.stdout).diagnostics)
    # The first run is the real cargo's, compiling from scratch: without --keep-going which units it
    # still finishes after the error is a race, so its warnings are some of the full set.
    assert expected and set(CargoMessages(first.stdout).diagnostics) <= set(expected)
    assert sorted(CargoMessages(mine.stdout).diagnostics) == expected
    assert CargoMessages(mine.stdout).finished is False


def on_a_terminal(argv: list[str], cwd: Path, shim: Path) -> tuple[int, str]:
    """Run `argv` with its stderr on a pseudo-terminal; its exit code and what the terminal showed."""
    master, slave = pty.openpty()
    path = f"{shim}{os.pathsep}{os.environ['PATH']}"
    child = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=slave, env={**os.environ, "PATH": path})
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return child.wait(timeout=300), shown.decode(errors="replace")


@pytest.mark.parametrize("form", ["native", "python"])
def test_on_a_terminal_the_daemons_answer_shows_cargos_progress_first(env: Env, tmp_path: Path, form: str) -> None:
    ws = generate_workspace(env.workspace, crates=6)
    shim = tmp_path / "shim"
    _shim.install(shim, native=form == "native")
    shell("cargo", "check", cwd=ws.root, shim=shim)
    env.wait_status()
    lib = ws.lib_rs(ws.hub)
    lib.write_text(lib.read_text() + "\npub fn fresh_for_the_progress_test() {}\n")
    code, shown = on_a_terminal(["cargo", "check", "-v"], ws.root, shim)
    assert code == 0
    assert "note: cargo-scheduler answered" in shown  # through the daemon
    assert "\r\x1b[2K    Building 1 unit(s) done: " in shown
    assert shown.index("Building") < shown.index("Finished")


def test_on_a_terminal_the_cli_in_process_shows_cargos_progress_too(env: Env, tmp_path: Path) -> None:
    code, shown = on_a_terminal([sys.executable, "-m", "scheduler.cli._main", "check"], env.workspace, tmp_path)
    assert code == 0
    assert "\r\x1b[2K    Building 1 unit(s) done: " in shown
    assert shown.index("Building") < shown.index("Finished")
    assert env.status() is None  # answered in process: no daemon was asked or started


def test_the_cli_answering_in_process_starts_a_daemon_that_answers_its_next_question(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARGO_SCHEDULER_START_DAEMON", "1")
    first = cli("check", cwd=env.workspace)
    assert first.returncode == 0, first.stderr
    assert env.wait_status()["cli_answers"] == 0  # the first question was answered in process
    second = cli("check", "-v", cwd=env.workspace)
    assert second.returncode == 0, second.stderr
    assert "from the cache" in second.stderr
    status = env.status()
    assert status is not None and status["cli_answers"] == 1


def test_a_bad_start_daemon_value_is_an_error_naming_it_before_anything_runs(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARGO_SCHEDULER_START_DAEMON", "sometimes")
    result = cli("check", cwd=env.workspace)
    assert result.returncode == 101
    assert "CARGO_SCHEDULER_START_DAEMON" in result.stderr and "sometimes" in result.stderr
    assert not (env.workspace / "target").exists()  # no cargo ran


def _descendants(pid: int) -> list[str]:
    """The command names of every process below `pid` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            names[int(entry.name)] = stat[stat.index("(") + 1 : stat.rindex(")")]
            children.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(names.get(child, "?"))
        todo += children.get(child, [])
    return found


@pytest.mark.parametrize("form", ["native", "python"])
def test_a_socket_a_killed_daemon_left_behind_does_not_stop_the_shim_starting_one(
    env: Env, tmp_path: Path, form: str
) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(env.paths.socket)
    stale.close()  # the file stays, nobody listens
    shim = tmp_path / "shim"
    _shim.install(shim, native=form == "native")
    first = shell("cargo", "check", cwd=env.workspace, shim=shim)
    assert first.returncode == 0, first.stderr
    env.wait_status()
    assert "note: cargo-scheduler answered" in shell("cargo", "check", "-v", cwd=env.workspace, shim=shim).stderr


def test_the_shim_hands_other_subcommands_and_unkeyed_flags_to_the_real_cargo(env: Env, tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    _shim.install(shim, start=False)
    metadata = shell("cargo", "metadata", "--no-deps", "--format-version", "1", cwd=env.workspace, shim=shim)
    assert metadata.returncode == 0 and '"packages"' in metadata.stdout
    elsewhere = tmp_path / "elsewhere"
    falls = shell("cargo", "check", "--target-dir", str(elsewhere), cwd=env.workspace, shim=shim)
    assert falls.returncode == 0, falls.stderr
    assert (elsewhere / "debug").is_dir()  # the real cargo honoured the flag the engine does not take
    assert not Path(env.paths.log).exists()  # installed with --no-start: no daemon was started


def test_our_own_cargo_never_runs_a_shim_on_path(env: Env, tmp_path: Path) -> None:
    """A daemon whose cargo came back to the shim would wait for its own answer."""
    trap = tmp_path / "trap"
    _shim.install(trap)
    touched = tmp_path / "touched"
    (trap / "cargo").write_text(f"#!/bin/sh\ntouch {touched}\nexit 1\n")
    checked = shell(sys.executable, "-m", "scheduler.cli._main", "check", cwd=env.workspace, shim=trap)
    assert checked.returncode == 0, checked.stderr
    assert not touched.exists()
    assert _shimless.real_cargo(f"{trap}{os.pathsep}{os.environ['PATH']}") == REAL_CARGO


def test_install_replaces_only_its_own_script_and_uninstall_removes_only_its_files(tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "cargo").write_text("#!/bin/sh\necho mine\n")
    refused = cli("shim", "install", "--dir", str(shim), cwd=tmp_path)
    assert refused.returncode == 2 and "is not a cargo-scheduler shim" in refused.stderr
    assert (shim / "cargo").read_text() == "#!/bin/sh\necho mine\n"
    (shim / "cargo").unlink()
    (shim / "keep").write_text("x")
    _shim.install(shim)
    _shim.install(shim)  # again: replaces its own script
    assert _shim.status(shim)["installed"] is True
    assert sorted(p.name for p in _shim.uninstall(shim)) == sorted([_shim.PYTHON, _shimless.MARKER, "cargo"])
    assert sorted(p.name for p in shim.iterdir()) == ["keep"]


def test_the_native_shim_is_linked_statically_where_the_c_library_allows_it(tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    _shim.install(shim)
    status = _shim.status(shim)
    assert status["native"] is True and status["static"] is True, "no static glibc (libc6-dev's libc.a) here?"
    assert not _shim.linked_statically(Path(os.path.realpath(sys.executable)))  # Python's is dynamic
    ran = shell("cargo", "--version", cwd=tmp_path, shim=shim)  # handed to the real cargo
    assert ran.returncode == 0 and ran.stdout.startswith("cargo "), ran.stderr


def test_without_a_static_c_library_the_native_shim_is_linked_dynamically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rustc = shutil.which("rustc")
    assert rustc is not None
    fake = tmp_path / "toolchain"
    fake.mkdir()
    (fake / "rustc").write_text(  # a C library without libc.a: the static link fails, as cc says it
        '#!/bin/sh\ncase "$*" in *crt-static*)\n'
        '  echo "error: linking with `cc` failed: cannot find -lc" >&2; exit 1;;\nesac\n'
        f'exec {shlex.quote(rustc)} "$@"\n'
    )
    (fake / "rustc").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    shim = tmp_path / "bin"
    _shim.install(shim)
    status = _shim.status(shim)
    assert status["native"] is True and status["static"] is False
    ran = shell("cargo", "--version", cwd=tmp_path, shim=shim)
    assert ran.returncode == 0 and ran.stdout.startswith("cargo "), ran.stderr


def test_a_torn_binary_reads_as_not_static_instead_of_failing_status(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    _shim.install(whole)
    torn = tmp_path / "torn"
    torn.write_bytes((whole / "cargo").read_bytes()[:80])  # the header, not the program headers
    assert _shim.linked_statically(whole / "cargo") is True
    assert _shim.linked_statically(torn) is False
    assert _shim.linked_statically(tmp_path / "absent") is False


@pytest.mark.parametrize("form", ["native", "python"])
def test_cargo_typed_in_a_member_with_its_own_cargo_config_gets_the_real_cargos_answer(
    env: Env, tmp_path: Path, form: str
) -> None:
    """cargo reads `.cargo/config.toml` from where it is typed; the engine runs at the root."""
    shim = tmp_path / "shim"
    _shim.install(shim, native=form == "native")
    assert shell("cargo", "check", cwd=env.workspace, shim=shim).returncode == 0
    env.wait_status()  # the shim started the workspace's daemon
    assert "note: cargo-scheduler answered" in shell("cargo", "check", "-v", cwd=env.workspace, shim=shim).stderr
    member = env.workspace / "crates" / "hub"
    (member / ".cargo").mkdir()
    (member / ".cargo" / "config.toml").write_text(
        '[build]\nrustflags = ["--cfg", "member_config", "--check-cfg", "cfg(member_config)"]\n'
    )
    lib = member / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\n#[cfg(member_config)]\npub fn configured() { let seen_here = 1; }\n")

    typed = shell("cargo", "check", "-v", cwd=member, shim=shim)
    through_cli = cli("check", cwd=member)
    at_root = shell("cargo", "check", cwd=env.workspace, shim=shim)

    assert typed.returncode == 0 and "seen_here" in typed.stderr, typed.stderr
    assert "note: cargo-scheduler answered" not in typed.stderr
    assert through_cli.returncode == 0 and "seen_here" in through_cli.stderr, through_cli.stderr
    assert "seen_here" not in at_root.stderr  # at the root, cargo does not read the member's config
