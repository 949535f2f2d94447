"""The prefetch hint: a second checkout settles its keys in two round trips (after the one that
brings its metadata), and no hint, however wrong, changes an answer.

Checkout A (a real cargo run) fills a real Redis and writes the hint for its sources; checkout B, a
copy at another path with an empty local cache and target dir, answers from the tier. Every answer
B gives is compared with a fresh `cargo check --workspace` of B's sources. The workspace has a chain
of `mid` crates, so settling without a hint takes one round trip per level of it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from remote_env import RedisServer

from scheduler import CheckReport, CheckRequest, EnginePool, GeneratedWorkspace, _settings, fresh_cargo_check
from scheduler.engine._cache import DiagnosticsCache
from scheduler.engine._remote import _codec

pytestmark = pytest.mark.anyio

CRATES = 28
"""Three `mid` crates in a chain: five levels of manifests to settle without a hint."""
HINTS = "cargo-scheduler:v1:h:*"
WITH_HINT = 3
"""Round trips of a checkout with an empty cache when the tier has a hint: one for its metadata
(`mx:`), then one for the hint with the first misses and one for what the hint lists."""


async def _check(cache_dir: Path, root: Path) -> CheckReport:
    async with EnginePool(cache_dir) as pool:  # leaving it flushes the queued writes (bounded)
        return await (await pool.get(root)).check(CheckRequest(scope="workspace"))


def _assert_as_fresh_cargo(report: CheckReport, root: Path, target: Path) -> None:
    ours = (report.success, {d.identity() for d in report.diagnostics})
    theirs = fresh_cargo_check(root, target)
    assert ours == theirs, f"only we say {ours[1] - theirs[1]}; only cargo says {theirs[1] - ours[1]}"


def _copy(root: Path, to: Path) -> Path:
    shutil.copytree(root, to, ignore=shutil.ignore_patterns("target"))
    return to


def _hint(redis_server: RedisServer) -> str:
    """The one hint in the store (its namespaced key)."""
    hints = [k.decode() if isinstance(k, bytes) else k for k in redis_server.admin().keys(HINTS)]
    assert len(hints) == 1, hints
    return hints[0]


@pytest.fixture
def filled(
    make_workspace: Callable[..., GeneratedWorkspace],
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: str,
) -> GeneratedWorkspace:
    """A workspace whose checkout A ran cargo with the tier configured: answers, manifests, hint."""
    monkeypatch.setenv(_settings.REMOTE, redis_server.url())
    return make_workspace(crates=CRATES)


async def _fill(ws: GeneratedWorkspace, cache_dir: Path) -> None:
    report = await _check(cache_dir, ws.root)
    assert report.success and sorted(report.ran()) == sorted(ws.members)


async def test_a_second_checkout_settles_every_key_in_two_round_trips_after_its_metadata_from_the_first_checkouts_hint(
    filled: GeneratedWorkspace, tmp_path: Path, redis_server: RedisServer
) -> None:
    await _fill(filled, tmp_path / "cache-a")
    listed = redis_server.admin().get(_hint(redis_server))
    assert listed is not None
    b = _copy(filled.root, tmp_path / "elsewhere" / "b")
    report = await _check(tmp_path / "cache-b", b)
    remote: dict[str, Any] = report.remote or {}
    assert report.ran() == [] and sorted(report.cached()) == sorted(filled.members), remote
    # One round trip brings the workspace's metadata (`mx:`), two settle every key.
    assert remote["rounds"] <= WITH_HINT and remote["outcome"] == "hit", remote
    assert remote["hint"]["found"] and remote["hint"]["fetched"] > 0, remote
    _assert_as_fresh_cargo(report, b, tmp_path / "fresh")
    # Without the hint the same question settles one dependency level per round trip.
    redis_server.admin().delete(_hint(redis_server))
    report = await _check(tmp_path / "cache-c", _copy(filled.root, tmp_path / "elsewhere" / "c"))
    assert report.ran() == [] and report.remote is not None
    assert report.remote["rounds"] > WITH_HINT and report.remote["hint"] == {"found": False}, report.remote
    assert redis_server.admin().get(_hint(redis_server)) == listed, "C wrote the hint again, as A had"


POISONS: dict[str, Any] = {
    "a string, not a list": {"keys": "ml:0"},
    "a list of numbers": {"keys": [1, 2, 3]},
    "no keys at all": {"listed": ["ml:0"]},
    "unrelated and local-only keys": {"keys": ["ml:unrelated", "stranger", "own:planted", "unit:planted", "h:x"]},
}


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
async def test_a_poisoned_hint_costs_at_most_wasted_fetches_and_the_answer_is_fresh_cargos(
    filled: GeneratedWorkspace, tmp_path: Path, redis_server: RedisServer, poison: str
) -> None:
    await _fill(filled, tmp_path / "cache-a")
    admin = redis_server.admin()
    hint = _hint(redis_server)
    admin.set(hint, _codec.encode(hint, POISONS[poison], None))
    # Entries a poisoner planted under the keys it lists: an unrelated answer, local-only records,
    # and one whose value is garbled (a bad checksum is a miss).
    planted: dict[str, dict[str, Any]] = {
        "ml:unrelated": {"files": [], "env": []},
        "own:planted": {"d": "x"},
        "unit:planted": {"d": "x"},
    }
    for key, value in planted.items():
        rkey = _codec.remote_key(key)
        admin.set(rkey, _codec.encode(rkey, value, None))
    admin.set(_codec.remote_key("stranger"), b"CS1 0000 -\nnot zlib")
    b = _copy(filled.root, tmp_path / "elsewhere" / "b")
    report = await _check(tmp_path / "cache-b", b)
    assert report.ran() == [] and sorted(report.cached()) == sorted(filled.members), report.remote
    _assert_as_fresh_cargo(report, b, tmp_path / "fresh")
    assert report.remote is not None and report.remote["outcome"] == "hit"
    assert report.remote["rounds"] > WITH_HINT, "the usual path: one round trip per level"
    if poison == "unrelated and local-only keys":
        assert report.remote["hint"] == {"found": True, "listed": 5, "fetched": 2}, report.remote
        assert report.remote["rejected"] == 1, "the garbled entry is refused, as any read"
    else:
        assert report.remote["hint"] == {"found": True, "ignored": "not a list of keys"}, report.remote
    local = DiagnosticsCache(tmp_path / "cache-b")
    try:
        assert local.get("own:planted") is None and local.get("unit:planted") is None, "never fetched"
    finally:
        local.close()
    # B wrote the hint of what it read in place of the poison: the next checkout takes two round trips.
    report = await _check(tmp_path / "cache-c", _copy(filled.root, tmp_path / "elsewhere" / "c"))
    assert report.ran() == [] and report.remote is not None and report.remote["rounds"] <= WITH_HINT, report.remote


async def test_after_an_edit_made_only_on_the_second_checkout_its_answer_is_fresh_cargos(
    filled: GeneratedWorkspace, tmp_path: Path, redis_server: RedisServer
) -> None:
    await _fill(filled, tmp_path / "cache-a")
    b = _copy(filled.root, tmp_path / "elsewhere" / "b")
    leaf = b / "crates" / filled.leaves[0] / "src" / "lib.rs"
    leaf.write_text(leaf.read_text() + "\npub fn only_on_b() { let unused = 1; }\n")
    report = await _check(tmp_path / "cache-b", b)
    assert report.ran() == [filled.leaves[0]], report.remote
    assert report.remote is not None and report.remote["hint"] == {"found": False}, "A's hint is for A's sources"
    _assert_as_fresh_cargo(report, b, tmp_path / "fresh")
    assert any(d.package == filled.leaves[0] and d.level == "warning" for d in report.diagnostics)
    assert len(redis_server.admin().keys(HINTS)) == 2, "B's sources have a hint of their own now"


async def test_a_read_only_checkout_reads_the_hint_and_writes_nothing(
    filled: GeneratedWorkspace, tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(filled, tmp_path / "cache-a")
    before = sorted(redis_server.admin().keys("*"))
    monkeypatch.setenv(_settings.REMOTE_READONLY, "1")
    b = _copy(filled.root, tmp_path / "elsewhere" / "b")
    report = await _check(tmp_path / "cache-b", b)
    assert report.ran() == [] and report.remote is not None and report.remote["rounds"] <= WITH_HINT, report.remote
    leaf = b / "crates" / filled.leaves[0] / "src" / "lib.rs"
    leaf.write_text(leaf.read_text() + "\npub fn only_on_b() {}\n")
    report = await _check(tmp_path / "cache-b", b)
    assert report.ran() == [filled.leaves[0]]
    assert sorted(redis_server.admin().keys("*")) == before


async def test_with_a_signing_key_an_unsigned_hint_is_refused_and_the_answer_is_fresh_cargos(
    make_workspace: Callable[..., GeneratedWorkspace],
    tmp_path: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_settings.REMOTE, redis_server.url())
    monkeypatch.setenv(_settings.REMOTE_HMAC_KEY, "a-shared-secret-of-some-length")
    ws = make_workspace(crates=CRATES)
    await _fill(ws, tmp_path / "cache-a")
    admin = redis_server.admin()
    hint = _hint(redis_server)
    b = _copy(ws.root, tmp_path / "elsewhere" / "b")
    report = await _check(tmp_path / "cache-b", b)
    assert report.remote is not None and report.remote["rounds"] <= WITH_HINT, "a signed hint is read"
    admin.set(hint, _codec.encode(hint, {"keys": ["ml:unrelated"]}, None))
    c = _copy(ws.root, tmp_path / "elsewhere" / "c")
    report = await _check(tmp_path / "cache-c", c)
    assert report.ran() == [] and report.remote is not None, report.remote
    assert report.remote["hint"] == {"found": False} and report.remote["rejected"] == 1, report.remote
    _assert_as_fresh_cargo(report, c, tmp_path / "fresh")
