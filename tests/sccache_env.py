"""A real sccache (Debian's package) per test: its own port and disk cache in tmp, and no server left.

The fixture gives the environment; the engine under test starts its server (cargo-scheduler owns
it, `cargo/_sccache_server.py`) or `start()` starts one as a user's shell would. The finaliser stops
whatever listens on the port and checks that nothing does any more.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from remote_env import free_port

SCCACHE = shutil.which("sccache")


@dataclass
class SccacheEnv:
    binary: str
    port: int
    directory: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SCCACHE_SERVER_PORT": str(self.port), "SCCACHE_DIR": str(self.directory)}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**_base_env(), **self.env}
        return subprocess.run([self.binary, *args], env=env, capture_output=True, text=True, timeout=60, check=False)

    def start(self) -> None:
        assert self.run("--start-server").returncode == 0

    def stats(self) -> dict[str, int]:
        """Counters by name (hits and misses summed over languages)."""
        raw = json.loads(self.run("--show-stats", "--stats-format", "json").stdout)["stats"]
        out: dict[str, int] = {}
        for name, value in raw.items():
            if isinstance(value, int):
                out[name] = value
            elif isinstance(value, dict) and isinstance(value.get("counts"), dict):
                out[name] = sum(v for v in value["counts"].values() if isinstance(v, int))
        return out

    def listening(self) -> bool:
        with socket.socket() as s:
            s.settimeout(2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SCCACHE_")}


@pytest.fixture
def sccache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SccacheEnv]:
    if SCCACHE is None:
        pytest.skip("sccache is not installed (Debian: apt-get install sccache)")
    found = SccacheEnv(SCCACHE, free_port(), tmp_path / "sccache")
    for name, value in found.env.items():
        monkeypatch.setenv(name, value)
    try:
        yield found
    finally:
        if found.listening():
            found.run("--stop-server")
        assert not found.listening(), "an sccache server outlived the test"
