"""sccache as the engine's rustc wrapper: which variables it gets, and, with the real sccache and
cargo, that it neither rebuilds the user's units nor changes an answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sccache_env import SccacheEnv, sccache

from scheduler import CheckRequest, EnginePool, GeneratedWorkspace, fresh_cargo_check
from scheduler._settings import RemoteSettings
from scheduler.cargo._sccache import KEY_PREFIX, Sccache, Wrapping, is_sccache, parse_features, redis_variables, wiring

__all__ = ["sccache"]

DEBIAN_HELP = """Usage: sccache [OPTIONS] <--dist-auth|...>

Options:
  -s, --show-stats                     show cache statistics
  -V, --version                        Print version information

Enabled features:
    S3:        false
    Redis:     false
    Memcached: false
    GCS:       false
    GHA:       false
    Azure:     false
"""
OLD = Sccache("/usr/bin/sccache", (0, 4, 0), "0.4.0-pre.6", {"redis": True})
NEW = Sccache("/opt/sccache", (0, 10, 0), "0.10.0", {"redis": True})
NO_REDIS = Sccache("/usr/bin/sccache", (0, 4, 0), "0.4.0-pre.6", {"redis": False, "s3": False})
REDIS = RemoteSettings("redis://agent:s3cret@cache.internal:6380/2?ssl_ca_certs=/etc/ca.pem")


def test_the_features_of_debians_build_say_it_has_no_redis() -> None:
    assert parse_features(DEBIAN_HELP) == {
        "s3": False,
        "redis": False,
        "memcached": False,
        "gcs": False,
        "gha": False,
        "azure": False,
    }


def test_a_wrapper_is_sccache_by_its_name_wherever_it_lies() -> None:
    assert is_sccache("sccache") and is_sccache("/usr/local/bin/sccache")
    assert not is_sccache("/usr/bin/ccache") and not is_sccache("sccache-dist") and not is_sccache(None)


def test_sccache_before_0_8_gets_one_url_and_later_ones_get_the_endpoint_and_its_parts() -> None:
    assert redis_variables(REDIS.url, OLD.version) == {"SCCACHE_REDIS": "redis://agent:s3cret@cache.internal:6380/2"}
    assert redis_variables(REDIS.url, NEW.version, readonly=True) == {
        "SCCACHE_REDIS_ENDPOINT": "redis://cache.internal:6380",
        "SCCACHE_REDIS_DB": "2",
        "SCCACHE_REDIS_USERNAME": "agent",
        "SCCACHE_REDIS_PASSWORD": "s3cret",
        "SCCACHE_REDIS_KEY_PREFIX": KEY_PREFIX,
        "SCCACHE_REDIS_RW_MODE": "READ_ONLY",
    }
    assert redis_variables("unix:///run/redis.sock?db=3", NEW.version) == {
        "SCCACHE_REDIS_ENDPOINT": "unix:///run/redis.sock",
        "SCCACHE_REDIS_DB": "3",
        "SCCACHE_REDIS_KEY_PREFIX": KEY_PREFIX,
    }


def test_with_a_redis_tier_sccache_is_pointed_at_it_and_the_status_hides_the_password() -> None:
    wired = wiring(NEW, {"PATH": "/usr/bin"}, REDIS)
    assert wired.env["RUSTC_WRAPPER"] == NEW.binary and wired.env["SCCACHE_REDIS_ENDPOINT"].endswith(":6380")
    assert "s3cret" not in json.dumps(wired.status) and wired.note is None


def test_a_cache_the_user_configured_is_kept() -> None:
    wired = wiring(NEW, {"SCCACHE_DIR": "/var/cache/sccache", "RUSTC_WRAPPER": "sccache"}, REDIS)
    assert wired.env == {} and wired.status["backend"] == "the caller's configuration"


def test_an_sccache_without_redis_keeps_its_disk_cache_and_says_so() -> None:
    wired = wiring(NO_REDIS, {}, REDIS)
    assert wired.env == {"RUSTC_WRAPPER": NO_REDIS.binary}
    assert wired.note is not None and "without Redis" in wired.note and "no Redis" in wired.status["backend"]


def test_a_bazel_tier_leaves_sccache_on_its_disk_cache() -> None:
    wired = wiring(NEW, {}, RemoteSettings("https://bazel-cache.internal/x"))
    assert set(wired.env) == {"RUSTC_WRAPPER"} and wired.status["backend"].startswith("local disk")


@pytest.mark.anyio
async def test_the_real_sccache_is_probed_and_its_redis_support_reported(sccache: SccacheEnv) -> None:
    wrapping = Wrapping("sccache", RemoteSettings("redis://127.0.0.1:1/0"))
    env, notes = await wrapping.environment({"PATH": os.environ["PATH"]})
    assert wrapping.status["enabled"] and env["RUSTC_WRAPPER"] == sccache.binary
    if wrapping.status["redis_supported"]:
        assert env["SCCACHE_REDIS" if "SCCACHE_REDIS" in env else "SCCACHE_REDIS_ENDPOINT"]
    else:  # Debian's 0.4.0-pre.6
        assert not any(k.startswith("SCCACHE_REDIS") for k in env) and notes and "without Redis" in notes[0]
    assert (await wrapping.environment({"PATH": os.environ["PATH"]}))[1] == [], "said once"


def _without_wrapper() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "RUSTC_WRAPPER"}


def _artifacts(root: Path, target: Path, env: dict[str, str]) -> list[dict[str, object]]:
    proc = subprocess.run(
        ["cargo", "check", "--workspace", "--message-format=json", "--target-dir", str(target)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return [m for line in proc.stdout.splitlines() if (m := json.loads(line)).get("reason") == "compiler-artifact"]


def test_cargo_rebuilds_nothing_when_only_rustc_wrapper_changes(
    make_workspace: Callable[..., GeneratedWorkspace], sccache: SccacheEnv, tmp_path: Path
) -> None:
    """cargo 1.95 keeps RUSTC_WRAPPER out of its fingerprints: the user's `cargo check` without the
    wrapper and the engine's through it share a target dir without thrashing."""
    ws = make_workspace()
    env = _without_wrapper()
    target = tmp_path / "shared-target"
    assert not all(a["fresh"] for a in _artifacts(ws.root, target, env))
    assert all(a["fresh"] for a in _artifacts(ws.root, target, {**env, "RUSTC_WRAPPER": sccache.binary}))
    assert all(a["fresh"] for a in _artifacts(ws.root, target, env))


@pytest.mark.anyio
async def test_a_second_cold_build_through_sccache_hits_its_cache_and_answers_as_fresh_cargo(
    make_workspace: Callable[..., GeneratedWorkspace],
    sccache: SccacheEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = make_workspace()
    leaf = ws.leaves[0]
    ws.lib_rs(leaf).write_text(ws.lib_rs(leaf).read_text() + "\npub fn noisy() { let unused = 1; }\n")
    monkeypatch.setenv("CARGO_SCHEDULER_SCCACHE", sccache.binary)
    monkeypatch.setenv("CARGO_INCREMENTAL", "0")  # sccache caches no incremental unit (CI's setting)
    async with EnginePool(tmp_path / "cache-a") as pool:
        first = await (await pool.get(ws.root)).check(CheckRequest(scope="workspace"))
        assert sccache.stats()["cache_misses"] > 0
    assert not sccache.listening(), "the pool stopped the sccache server it started"
    shutil.rmtree(ws.root / "target")
    async with EnginePool(tmp_path / "cache-b") as pool:  # nothing cached: cargo runs cold again
        engine = await pool.get(ws.root)
        second = await engine.check(CheckRequest(scope="workspace"))
        stats = sccache.stats()
        status = engine.status()["sccache"]
    assert first.ran() == second.ran() == sorted(ws.members)
    assert stats["cache_hits"] > 0, stats
    assert status["enabled"] and status["via"] == "CARGO_SCHEDULER_SCCACHE" and "started by" in status["server"]
    assert status["backend"] == "the caller's configuration"  # SCCACHE_DIR is set
    success, fresh = fresh_cargo_check(ws.root, tmp_path / "fresh", env=_without_wrapper())
    assert {d.identity() for d in second.diagnostics} == {d.identity() for d in first.diagnostics} == fresh
    assert second.success == success and any(d.level == "warning" for d in second.diagnostics)
