"""Generated workspaces for the benchmarks, made once and kept warm under bench/.work/ (gitignored).

A workspace is keyed by its size, its seed and the version of the generator (a hash of
scheduler/testing/_generate.py), so a change to the generator makes a new one instead of reusing a stale
shape. The first use pays one cold `cargo check --workspace` (~2 min for 150 crates on 2 cores);
later uses only restore the sources the benchmark edited (files whose content differs from a fresh
generation are rewritten, nothing else is touched, so cargo's mtime-based freshness survives) and
run the same check again, which is a no-op or a short re-check of what the last run edited.

    from _workspaces import prepare
    bw = prepare(150, seed=0)      # BenchWorkspace: .root, .gen (GeneratedWorkspace), .warm_s, ...
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import xxhash

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scheduler import GeneratedWorkspace, generate_workspace  # noqa: E402
from scheduler.cargo._run import stable_environment  # noqa: E402
from scheduler.testing import _generate  # noqa: E402

# The flags the engine passes to every run (scheduler/engine/_runs.py): baselines use the same.
CARGO_FLAGS = ("--message-format=json-diagnostic-rendered-ansi", "--keep-going")
# Restoring only ever touches what generation writes: sources, manifests, data.
_GENERATED_DIRS = ("crates",)


def generator_version() -> str:
    """Hash of the generator's source: a different generator makes a different workspace."""
    return xxhash.xxh3_64_hexdigest(Path(_generate.__file__).read_bytes())[:10]


@dataclass(frozen=True)
class BenchWorkspace:
    gen: GeneratedWorkspace
    name: str
    created: bool
    """True when this call generated the workspace (and paid the cold check)."""
    restored: list[str]
    """Files rewritten because a previous run left them edited."""
    warm_s: float
    """Duration of this call's `cargo check --workspace` (cold when `created`)."""
    cold_check_s: float | None
    """The cold check's duration, from whichever call paid it."""

    @property
    def root(self) -> Path:
        return self.gen.root


def workspace_name(crates: int, seed: int) -> str:
    return f"ws-{crates}-s{seed}-g{generator_version()}"


def cargo_env() -> dict[str, str]:
    """The environment the engine gives cargo; baselines use it too (same build-script inputs)."""
    env = stable_environment()
    env.pop("CARGO_TARGET_DIR", None)
    env.pop("CARGO_BUILD_TARGET_DIR", None)
    return env


def cargo(
    root: Path, args: list[str], env: Mapping[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Run `cargo args` in `root`, capturing its output as the engine does; (seconds, result)."""
    start = time.perf_counter()
    result = subprocess.run(
        ["cargo", *args],
        cwd=root,
        env=dict(env or cargo_env()),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - start, result


def check_workspace(
    root: Path, env: Mapping[str, str] | None = None
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    return cargo(root, ["check", "--workspace", *CARGO_FLAGS], env)


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """One benchmark at a time per workspace: two would fight over the target dir and the edits."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    with open(WORK_DIR / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pristine_files(crates: int, seed: int) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(dir=WORK_DIR, prefix=".pristine-") as tmp:
        base = Path(tmp) / "ws"
        generate_workspace(base, crates, seed=seed)
        return {str(p.relative_to(base)): p.read_bytes() for p in base.rglob("*") if p.is_file()}


def restore(root: Path, crates: int, seed: int) -> list[str]:
    """Make the sources equal to a fresh generation, rewriting only the files that differ (and
    deleting files a benchmark added under crates/). Returns what was changed."""
    pristine = _pristine_files(crates, seed)
    changed: list[str] = []
    for rel, data in pristine.items():
        path = root / rel
        try:
            if path.read_bytes() == data:
                continue
        except OSError:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        changed.append(rel)
    for top in _GENERATED_DIRS:
        for path in (root / top).rglob("*"):
            rel = str(path.relative_to(root))
            if path.is_file() and rel not in pristine:
                path.unlink()
                changed.append(rel)
    return sorted(changed)


def prepare(crates: int, seed: int = 0, *, log: Callable[[str], None] = print) -> BenchWorkspace:
    """The warm workspace of `crates` members: generated and cold-checked on first use, restored and
    re-checked (cheap) after. Raises RuntimeError if the pristine workspace does not check."""
    name = workspace_name(crates, seed)
    root = WORK_DIR / name
    marker = WORK_DIR / f"{name}.ready.json"
    with _locked(name):
        info: dict[str, object] = {}
        if marker.exists() and (root / "Cargo.toml").exists():
            info = json.loads(marker.read_text())
            created = False
            restored = restore(root, crates, seed)
            if restored:
                log(f"restored {len(restored)} edited file(s) in {root}: {', '.join(restored[:5])}")
            gen = generate_shape(root, crates, seed)
        else:
            # Never half-made: an interrupted generation or cold check starts over.
            if root.exists():
                import shutil

                shutil.rmtree(root)
            marker.unlink(missing_ok=True)
            gen = generate_workspace(root, crates, seed=seed)
            created = True
            restored = []
            log(f"generated {crates} crates in {root}; cold `cargo check --workspace` (minutes on 2 cores)...")
        seconds, result = check_workspace(root)
        if not _build_succeeded(result):
            stderr = result.stderr.decode(errors="replace")[-3000:]
            raise RuntimeError(f"`cargo check --workspace` failed in {root}:\n{stderr}")
        if created:
            info = {
                "crates": crates,
                "seed": seed,
                "generator": generator_version(),
                "cold_check_s": round(seconds, 2),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            marker.write_text(json.dumps(info, indent=2) + "\n")
            log(f"cold check took {seconds:.1f} s")
        else:
            log(f"warm-up `cargo check --workspace` took {seconds:.2f} s")
        cold = info.get("cold_check_s")
        return BenchWorkspace(
            gen=gen,
            name=name,
            created=created,
            restored=restored,
            warm_s=seconds,
            cold_check_s=float(cold) if isinstance(cold, (int, float)) else None,
        )


def generate_shape(root: Path, crates: int, seed: int) -> GeneratedWorkspace:
    """The shape (hub, mids, leaves, deps) of the workspace at `root`, without writing to it."""
    with tempfile.TemporaryDirectory(dir=WORK_DIR, prefix=".shape-") as tmp:
        gen = generate_workspace(Path(tmp) / "ws", crates, seed=seed)
    return replace(gen, root=root)


def _build_succeeded(result: subprocess.CompletedProcess[bytes]) -> bool:
    for line in result.stdout.splitlines():
        if line.startswith(b'{"reason":"build-finished"'):
            return bool(json.loads(line).get("success"))
    return False


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Generate (or reuse) and warm a benchmark workspace.")
    parser.add_argument("--crates", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args()
    print(prepare(ns.crates, ns.seed).root)
