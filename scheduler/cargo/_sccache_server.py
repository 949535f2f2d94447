"""The sccache server of the engine's cargo runs: started by us, ended with us.

Why not let cargo's first `sccache rustc` start it, as a shell does: every cargo run is a session of
its own that `_process` kills whole when cargo exits, so a server started inside it would be killed
after every run, with the cache writes it had queued. So the pool starts one in the foreground
(`SCCACHE_START_SERVER=1 SCCACHE_NO_DAEMON=1`) through `owned_process`, with the environment the
wiring chose (the Redis variables take effect only at a server's start), and stops it with
`--stop-server` before the daemon exits. Readiness is the server's own "listening on port" log line,
read with a deadline. If a server already listens on the port (the user's own), ours exits at once and
cargo's runs use that one, with the configuration it was started with: the status says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
from anyio.streams.text import TextReceiveStream

from ._process import owned_process, run_bounded

START_S = 10.0
DEFAULT_PORT = "4226"


class SccacheServer:
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self._started: tuple[str, str] | None = None
        self._done = anyio.Event()
        self._settled = anyio.Event()
        self._env: dict[str, str] = {}
        self._ours = False

    async def ensure(self, tg: anyio.abc.TaskGroup, binary: str, env: Mapping[str, str]) -> None:
        """Start a server for `env` on its port once; a second call (any environment) does nothing."""
        if self._started is not None:
            with anyio.move_on_after(START_S):
                await self._settled.wait()  # a concurrent first call is starting it
            return
        port = env.get("SCCACHE_SERVER_PORT") or DEFAULT_PORT
        self._started = (binary, port)
        self._env = {**env, "SCCACHE_START_SERVER": "1", "SCCACHE_NO_DAEMON": "1", "SCCACHE_LOG": "info"}
        ok: bool | None = None
        try:
            with anyio.move_on_after(START_S):
                ok = await tg.start(self._serve, binary)
        finally:
            self._settled.set()
        if ok:
            self.status = {"port": port, "server": "started by cargo-scheduler, with the configuration shown"}
        elif ok is None:
            self.status = {"port": port, "server": f"not ready after {START_S:.0f} s: cargo's runs start their own"}
        else:
            self.status = {
                "port": port,
                "server": "another sccache server already listens on this port: it keeps the configuration it "
                "was started with (`sccache --stop-server` to let cargo-scheduler start one with this one)",
            }

    async def _serve(self, binary: str, *, task_status: anyio.abc.TaskStatus[bool]) -> None:
        told, seen = False, ""
        try:
            async with owned_process([binary], env=self._env, exit_wait_s=5.0) as child:
                assert child.process.stdout is not None and child.process.stderr is not None
                async with anyio.create_task_group() as drain:
                    drain.start_soon(_discard, child.process.stdout)
                    # Read to the end: a server whose log nobody reads blocks on a full pipe.
                    async for text in TextReceiveStream(child.process.stderr, errors="replace"):
                        seen = (seen + text)[-4096:] if not told else ""
                        if not told and "listening on port" in seen:
                            told = self._ours = True
                            task_status.started(True)
        finally:
            if not told:
                with contextlib.suppress(RuntimeError):  # `start` gave up already (its deadline)
                    task_status.started(False)
            self._done.set()

    async def stop(self) -> None:
        """Ask our server to stop (it finishes its cache writes first), then wait for it, bounded."""
        if self._started is None or not self._ours:
            return
        binary, port = self._started
        env = {k: v for k, v in self._env.items() if k not in ("SCCACHE_START_SERVER", "SCCACHE_NO_DAEMON")}
        with anyio.CancelScope(shield=True):
            try:
                await run_bounded([binary, "--stop-server"], env={**env, "SCCACHE_SERVER_PORT": port}, timeout_s=10)
            except OSError:
                return
            with anyio.move_on_after(10):
                await self._done.wait()


async def _discard(stream: anyio.abc.ByteReceiveStream) -> None:
    async for _ in stream:
        pass
