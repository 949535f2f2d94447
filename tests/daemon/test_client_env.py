"""Each session's cargo runs in the environment of the client that spawned its front, on one daemon.

Proved through cargo itself: a crate whose compile error spells out `env!("FOO")`, a binary that
prints the FOO it was compiled with and the FOO it runs with, a crate that only fails under a cfg the
client's RUSTFLAGS sets. And `cargo_env` permissions are per session: `--allow-env` on one front
never lets another front's agent set that variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_env import Env, Front, isolated_env

from scheduler.daemon import _control, _socket


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from isolated_env(tmp_path, monkeypatch)


def write_probe(root: Path) -> Path:
    """A path-only workspace: `reads_foo` (an error naming FOO's value), `app` (prints FOO), `flags`."""
    crates = {
        "reads_foo": ("lib.rs", 'compile_error!(concat!("FOO is ", env!("FOO")));\n'),
        "flags": ("lib.rs", '#[cfg(probe_a)]\ncompile_error!("built with cfg probe_a");\npub fn f() {}\n'),
        "app": (
            "main.rs",
            'fn main() {\n    let now = std::env::var("FOO").unwrap_or_else(|_| "unset".into());\n'
            '    println!("compiled with FOO={} running with FOO={now}", option_env!("FOO").unwrap_or("unset"));\n}\n',
        ),
    }
    members = ", ".join(f'"{name}"' for name in crates)
    root.mkdir()
    (root / "Cargo.toml").write_text(f'[workspace]\nmembers = [{members}]\nresolver = "2"\n')
    for name, (file, text) in crates.items():
        (root / name / "src").mkdir(parents=True)
        (root / name / "Cargo.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\n')
        (root / name / "src" / file).write_text(text)
    return root


def environ(**extra: str) -> dict[str, str]:
    """Our environment (the isolated runtime dir included) without FOO and RUSTFLAGS, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if k not in ("FOO", "RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS")}
    return {**base, **extra}


def answer(reply: dict[str, Any]) -> dict[str, Any]:
    assert "result" in reply, reply
    data = reply["result"]["structuredContent"]
    assert isinstance(data, dict)
    return data


def two_sessions(env: Env, root: Path, with_a: dict[str, str], *args_a: str) -> tuple[Front, Front]:
    """Front A in our environment plus `with_a`, front B in ours: both initialised, on one daemon."""
    a = env.front(*args_a, workspace=root, environ=environ(**with_a))
    a.initialize()
    b = env.front(workspace=root, environ=environ())
    b.initialize()
    return a, b


def test_each_session_runs_cargo_in_its_own_clients_environment(env: Env, tmp_path: Path) -> None:
    root = write_probe(tmp_path / "probe")
    a, b = two_sessions(env, root, {"FOO": "1"})
    run_a = answer(a.call("cargo_run", {"package": "app", "timeout_s": 600}))
    run_b = answer(b.call("cargo_run", {"package": "app", "timeout_s": 600}))
    assert run_a["success"] and run_b["success"], (run_a, run_b)
    assert "compiled with FOO=1 running with FOO=1" in run_a["stdout_tail"]
    assert "compiled with FOO=unset running with FOO=unset" in run_b["stdout_tail"]
    again = answer(a.call("cargo_run", {"package": "app", "timeout_s": 600}))
    assert "compiled with FOO=1 running with FOO=1" in again["stdout_tail"]  # B's run did not stick
    status = _control.control(_paths_for(root), "status")
    assert status is not None and status["sessions"] == 2  # one daemon served both


def test_each_sessions_check_sees_its_clients_rustflags(env: Env, tmp_path: Path) -> None:
    root = write_probe(tmp_path / "probe")
    a, b = two_sessions(env, root, {"RUSTFLAGS": "--cfg probe_a"})
    check_a = answer(a.call("cargo_check", {"package": "flags", "scope": "changed", "timeout_s": 600}))
    check_b = answer(b.call("cargo_check", {"package": "flags", "scope": "changed", "timeout_s": 600}))
    assert check_a["success"] is False and "built with cfg probe_a" in json.dumps(check_a)
    assert check_b["success"] is True and "built with cfg probe_a" not in json.dumps(check_b)


def test_a_variable_read_by_env_macro_is_answered_per_session(env: Env, tmp_path: Path) -> None:
    root = write_probe(tmp_path / "probe")
    a, b = two_sessions(env, root, {"FOO": "1"})
    check_a = answer(a.call("cargo_check", {"package": "reads_foo", "scope": "changed", "timeout_s": 600}))
    check_b = answer(b.call("cargo_check", {"package": "reads_foo", "scope": "changed", "timeout_s": 600}))
    assert "FOO is 1" in json.dumps(check_a)
    assert "FOO is 1" not in json.dumps(check_b)
    assert "not defined at compile time" in json.dumps(check_b)


def test_allow_env_on_one_front_does_not_let_another_sessions_cargo_env_set_it(env: Env, tmp_path: Path) -> None:
    root = write_probe(tmp_path / "probe")
    a, b = two_sessions(env, root, {}, "--allow-env", "PROBE_SETTING")
    args = {"cargo_env": {"PROBE_SETTING": "1"}, "timeout_s": 600}
    allowed = a.call("cargo_fmt_check", args)
    refused = b.call("cargo_fmt_check", args)
    assert allowed["result"]["isError"] is False, allowed
    assert refused["result"]["isError"] is True
    text = json.dumps(refused["result"])
    assert "PROBE_SETTING" in text and "--allow-env PROBE_SETTING" in text


def test_a_malformed_session_is_refused_without_echoing_its_environment(env: Env, tmp_path: Path) -> None:
    root = write_probe(tmp_path / "probe")
    a = env.front(workspace=root)
    a.initialize()
    assert "result" in a.call("scheduler_status")
    paths = _paths_for(root)
    hello = {"control": "hello", **_control.expected(paths), "session": {"env": {"SECRET": 42}}}
    opened = _control.open_control(paths, hello)
    assert opened is not None
    opened[1].close()
    opened[0].close()
    reply = opened[2]
    assert "session.env" in reply["error"] and "42" not in reply["error"] and "SECRET" not in reply["error"]


def _paths_for(root: Path) -> _socket.Paths:
    return _socket.Paths(_socket.workspace_root(str(root)))
