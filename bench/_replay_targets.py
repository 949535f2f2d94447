"""The servers a trace is replayed against (bench/_replay.py): ours over stdio, or the two peers.

- "cargo-scheduler": the real `cargo-scheduler serve --workspace ROOT` through the mcp SDK's stdio
  client, with XDG_RUNTIME_DIR / XDG_STATE_HOME / XDG_CACHE_HOME / CARGO_SCHEDULER_CACHE_DIR under
  bench/.work/replay/ (as bench/bench_daemon.py isolates them), extra env for tuning knobs, and a
  cold start (daemon stopped, cache emptied) unless `warm`; the daemon is stopped afterwards unless
  `keep_daemon`.
- "peers": `cargo-mcp serve` and `rust-analyzer-mcp ROOT`, installed from crates.io into
  bench/.work/peers/ by `ensure_peers()`; calls are routed by tool name and cargo-mcp's
  `set_working_directory` is called first, untimed. rust-analyzer-mcp starts `rust-analyzer` from
  PATH, and the first one on PATH here is rustup's proxy that fails, so a shim dir holding only the
  real one (found as scheduler/analyzer/_setup.py finds it) goes first; /usr/bin itself cannot go
  first, it also holds a different cargo. RUST_SRC_PATH is set as that module finds std's sources.
Time from spawn to the `initialize` and `tools/list` answers is recorded per server; rust-analyzer's
readiness is not awaited (agents do not wait either).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, types
from mcp.client.stdio import StdioServerParameters, stdio_client

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK = BENCH_DIR / ".work"
PEERS = WORK / "peers"
PEER_VERSIONS = {"cargo-mcp": "0.2.0", "rust-analyzer-mcp": "0.4.0"}
CLIENT = types.Implementation(name="codex-mcp-client", version="0.169.0")
HANDSHAKE_TIMEOUT_S = 60.0
for _p in (str(BENCH_DIR), str(REPO)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _replay import CALL_TIMEOUT_S, replay, table  # noqa: E402
from _traces import Trace, load_trace  # noqa: E402


class Sessions:
    """One or more MCP sessions as one target: calls routed by tool name, read-only from annotations."""

    def __init__(self) -> None:
        self.routes: dict[str, ClientSession] = {}
        self.readonly: set[str] = set()
        self.default: dict[str, ClientSession] = {}
        self.handshake: list[dict[str, Any]] = []

    def read_only(self, tool: str) -> bool:
        return tool in self.readonly

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        session = self.routes.get(tool) or self.default["rust_analyzer_" if tool.startswith("rust_analyzer_") else ""]
        return await session.call_tool(tool, arguments)

    @contextlib.asynccontextmanager
    async def spawn(
        self,
        stack: contextlib.AsyncExitStack,
        name: str,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        errlog: Path,
        prefixes: tuple[str, ...],
    ) -> AsyncIterator[ClientSession]:
        """Start one stdio server, handshake like Codex, absorb its tool list; yields its session."""
        start = time.perf_counter()
        log = stack.enter_context(errlog.open("a"))
        params = StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=str(cwd))
        read, write = await stack.enter_async_context(stdio_client(params, errlog=log))
        session = await stack.enter_async_context(ClientSession(read, write, client_info=CLIENT))
        with anyio.fail_after(HANDSHAKE_TIMEOUT_S):
            await session.initialize()
            init_ms = round((time.perf_counter() - start) * 1000, 1)
            listing = await session.list_tools()
        self.handshake.append(
            {
                "server": name,
                "initialize_ms": init_ms,
                "tools_list_ms": round((time.perf_counter() - start) * 1000, 1),
                "tools": len(listing.tools),
            }
        )
        for tool in listing.tools:
            self.routes[tool.name] = session
            if tool.annotations is not None and tool.annotations.read_only_hint:
                self.readonly.add(tool.name)
        for prefix in prefixes:
            self.default[prefix] = session
        yield session


def ensure_peers(log: Any = print) -> dict[str, Path]:
    """The peers' binaries, `cargo install --locked` from crates.io into bench/.work/peers if missing
    (under a lock: a second bench run waits for the first one's install instead of racing it)."""
    PEERS.mkdir(parents=True, exist_ok=True)
    bins = {name: PEERS / "bin" / name for name in PEER_VERSIONS}
    with open(PEERS / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name, version in PEER_VERSIONS.items():
            if bins[name].exists():
                continue
            log(f"installing {name} {version} into {PEERS} (a minute or two)...")
            with open(PEERS / f"{name}.log", "ab") as out:
                subprocess.run(
                    ["cargo", "install", "--locked", "--root", str(PEERS), name, "--version", version],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                    timeout=1800,
                )
    return bins


async def peer_env() -> dict[str, str]:
    """Our environment with the real rust-analyzer first on PATH (via a shim dir) and RUST_SRC_PATH set."""
    from scheduler.analyzer._setup import find_rust_analyzer, find_sysroot_src

    analyzer = (await find_rust_analyzer()).resolve()
    src = (await find_sysroot_src(REPO)).src
    shim = PEERS / "ra-path"
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "rust-analyzer"
    if not link.is_symlink() or link.resolve() != analyzer:
        link.unlink(missing_ok=True)
        link.symlink_to(analyzer)
    env = dict(os.environ, PATH=f"{shim}{os.pathsep}{os.environ.get('PATH', '')}")
    if src is not None:
        env["RUST_SRC_PATH"] = str(src)
    return env


def ours_env(base: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Isolated dirs for our server and its daemon (socket path kept short: under 108 bytes)."""
    dirs = {
        "XDG_RUNTIME_DIR": base / "rt",
        "XDG_STATE_HOME": base / "state",
        "XDG_CACHE_HOME": base / "xdg-cache",
        "CARGO_SCHEDULER_CACHE_DIR": base / "cache",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(dirs["XDG_RUNTIME_DIR"], 0o700)
    return {**os.environ, **{k: str(v) for k, v in dirs.items()}, **(extra or {})}


def serve_command() -> list[str]:
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("cargo-scheduler", path=venv_bin) or shutil.which("cargo-scheduler")
    if found is None:
        raise RuntimeError("cargo-scheduler is not installed (activate the venv: `. .venv/bin/activate`)")
    return [found]


def stop_daemon(root: Path, env: dict[str, str]) -> None:
    """`cargo-scheduler daemon stop` in the isolated dirs (a no-op when none runs)."""
    subprocess.run(
        [*serve_command(), "daemon", "stop", "--workspace", str(root)],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )


async def replay_ours(
    trace: Trace,
    root: Path,
    *,
    base: Path,
    extra_env: dict[str, str] | None = None,
    warm: bool = False,
    keep_daemon: bool = False,
    call_timeout_s: float = CALL_TIMEOUT_S,
    think: bool = False,
) -> dict[str, Any]:
    """One replay against `cargo-scheduler serve`; cold (daemon stopped, cache emptied) unless `warm`."""
    env = ours_env(base, extra_env)
    if not warm:
        await anyio.to_thread.run_sync(stop_daemon, root, env)
        shutil.rmtree(base / "cache", ignore_errors=True)
        (base / "cache").mkdir()
    target = Sessions()
    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(
                target.spawn(
                    stack,
                    "cargo-scheduler",
                    [*serve_command(), "serve", "--workspace", str(root)],
                    env,
                    root,
                    base / "serve.stderr.log",
                    ("", "rust_analyzer_"),
                )
            )
            result = await replay(trace, root, target, call_timeout_s=call_timeout_s, think=think)
    finally:
        if not keep_daemon:
            await anyio.to_thread.run_sync(stop_daemon, root, env)
    return {
        "handshake": target.handshake,
        "read_only_tools": sorted(target.readonly),
        "replay": result,
        "cold": not warm,
    }


async def replay_peers(
    trace: Trace,
    root: Path,
    *,
    base: Path,
    call_timeout_s: float = CALL_TIMEOUT_S,
    think: bool = False,
    rounds: int = 1,
) -> dict[str, Any]:
    """Replays against cargo-mcp 0.2.0 + rust-analyzer-mcp 0.4.0, started fresh: `rounds` replays in
    the same two processes (the later ones see the peers warm), all in `replays`, the first in `replay`."""
    bins = await anyio.to_thread.run_sync(ensure_peers)
    env = await peer_env()
    await anyio.Path(base).mkdir(parents=True, exist_ok=True)
    target = Sessions()
    async with contextlib.AsyncExitStack() as stack:
        cargo = await stack.enter_async_context(
            target.spawn(
                stack, "cargo-mcp", [str(bins["cargo-mcp"]), "serve"], env, root, base / "cargo-mcp.stderr.log", ("",)
            )
        )
        await stack.enter_async_context(
            target.spawn(
                stack,
                "rust-analyzer-mcp",
                [str(bins["rust-analyzer-mcp"]), str(root)],
                env,
                root,
                base / "rust-analyzer-mcp.stderr.log",
                ("rust_analyzer_",),
            )
        )
        with anyio.fail_after(60):
            answer = await cargo.call_tool("set_working_directory", {"path": str(root)})
        if answer.is_error:
            raise RuntimeError(f"cargo-mcp set_working_directory failed: {answer.content}")
        replays = [await replay(trace, root, target, call_timeout_s=call_timeout_s, think=think) for _ in range(rounds)]
    return {
        "handshake": target.handshake,
        "read_only_tools": sorted(target.readonly),
        "replay": replays[0],
        "replays": replays,
    }


def add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra env for our server")
    parser.add_argument("--warm", action="store_true", help="keep our daemon and cache from an earlier replay")
    parser.add_argument("--keep-daemon", action="store_true", help="leave our daemon running afterwards")


async def run_targets(trace: Trace, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The CLI's run: a warm workspace (bench/_workspaces.py), locked; cargo brought fresh before each target."""
    from _workspaces import _locked, check_workspace, prepare

    def log(message: str) -> None:
        print(f"[replay {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    bw = await anyio.to_thread.run_sync(lambda: prepare(args.crates, args.seed, log=log))
    root = bw.root.resolve()
    extra = dict(kv.split("=", 1) for kv in args.env)
    names = ["cargo-scheduler", "peers"] if args.target == "both" else [args.target]
    results: dict[str, dict[str, Any]] = {}
    with _locked(bw.name):
        for name in names:
            seconds, _ = await anyio.to_thread.run_sync(check_workspace, root)
            log(f"{name}: untimed `cargo check --workspace` first ({seconds:.2f} s); replaying {trace.name}")
            common: dict[str, Any] = {"call_timeout_s": args.timeout, "think": args.think}
            if name == "cargo-scheduler":
                results[name] = await replay_ours(
                    trace,
                    root,
                    base=WORK / "replay",
                    extra_env=extra,
                    warm=args.warm,
                    keep_daemon=args.keep_daemon,
                    **common,
                )
            else:
                results[name] = await replay_peers(trace, root, base=WORK / "replay-peers", **common)
            results[name]["workspace"] = {"name": bw.name, "crates": args.crates, "root": str(root)}
            log(f"{name}: total {results[name]['replay']['total_ms']} ms")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crates", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trace", required=True, help="name in bench/traces/ or a .jsonl path")
    parser.add_argument("--target", choices=("cargo-scheduler", "peers", "both"), default="both")
    parser.add_argument("--timeout", type=float, default=CALL_TIMEOUT_S, help="per call, seconds")
    parser.add_argument("--think", action="store_true", help="sleep the recorded think_ms before each step")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    add_target_args(parser)
    args = parser.parse_args()
    trace = load_trace(args.trace)
    results = anyio.run(run_targets, trace, args)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
