"""The Bazel remote cache adapter against an in-test server speaking /ac/ and /cas/ as bazel-remote
does (CAS content checked against its name, an ActionResult refused when its blob is missing)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from remote_env import BazelCache, free_port

from scheduler.engine._remote._bazel import BazelTransport, action_result, parse_action_result
from scheduler.engine._remote._store import RemoteStore
from scheduler.engine._remote._tiered import TieredCache, settle

pytestmark = pytest.mark.anyio

ANSWER: dict[str, Any] = {"success": True, "messages": [{"level": "warning", "message": "unused variable"}]}
BUDGET_S = 0.15
SLACK_S = 0.35


@asynccontextmanager
async def tiered(directory: Path, url: str, **kw: Any) -> AsyncIterator[TieredCache]:
    cache = TieredCache(directory, remote=RemoteStore(BazelTransport(url, timeout_s=5.0), **kw), budget_s=BUDGET_S)
    try:
        async with cache.running():
            yield cache
    finally:
        cache.close()


async def _read(cache: TieredCache, keys: list[str]) -> tuple[dict[str, Any], dict[str, Any], float]:
    started = time.monotonic()
    with cache.question() as q:
        found = await settle(cache, lambda: cache.get_many(keys))
    return found, q.status.to_json(), time.monotonic() - started


def test_an_action_result_names_its_blob_and_anything_else_is_not_ours() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert parse_action_result(action_result(digest, 1)) == (digest, 1)
    assert parse_action_result(b"") is None
    assert parse_action_result(b"\xff\xff\xff") is None
    assert parse_action_result(action_result(digest, 1)[:-3]) is None


async def test_an_answer_written_through_the_cache_protocol_is_read_by_another_checkout(
    tmp_path: Path, bazel_cache: BazelCache
) -> None:
    async with tiered(tmp_path / "a", bazel_cache.url) as a, tiered(tmp_path / "b", bazel_cache.url) as b:
        a.put_many({"k1": ANSWER, "ma:base": {"files": [], "env": ["PROFILE"]}})
        assert await a.flush(10)
        # The server refuses an ActionResult whose blob it lacks: two actions stored means each
        # blob went up before its action.
        assert len(bazel_cache.ac) == 2 and len(bazel_cache.cas) == 2
        found, status, _ = await _read(b, ["k1", "ma:base", "absent"])
    assert found == {"k1": ANSWER, "ma:base": {"files": [], "env": ["PROFILE"]}}
    assert status["outcome"] == "hit" and status["store"] == bazel_cache.url


async def test_an_action_whose_blob_was_evicted_is_a_miss(tmp_path: Path, bazel_cache: BazelCache) -> None:
    async with tiered(tmp_path / "a", bazel_cache.url) as a:
        a.put("k", ANSWER)
        assert await a.flush(10)
        bazel_cache.cas.clear()
    async with tiered(tmp_path / "b", bazel_cache.url) as b:
        found, status, _ = await _read(b, ["k"])
    assert found == {} and status["outcome"] == "miss" and status["rejected"] == 0


async def test_a_blob_that_does_not_match_its_digest_is_refused(tmp_path: Path, bazel_cache: BazelCache) -> None:
    async with tiered(tmp_path / "a", bazel_cache.url) as a:
        a.put("k", ANSWER)
        assert await a.flush(10)
    (name,) = bazel_cache.cas
    bazel_cache.cas[name] = bazel_cache.cas[name][:-1] + b"!"
    async with tiered(tmp_path / "b", bazel_cache.url) as b:
        found, status, _ = await _read(b, ["k"])
    assert found == {} and status["rejected"] == 1 and "does not match its digest" in status["reason"]


async def test_a_signing_key_refuses_entries_of_writers_without_it(tmp_path: Path, bazel_cache: BazelCache) -> None:
    async with tiered(tmp_path / "a", bazel_cache.url) as a:
        a.put("k", ANSWER)
        assert await a.flush(10)
    async with tiered(tmp_path / "b", bazel_cache.url, hmac_key=b"s" * 32) as b:
        found, status, _ = await _read(b, ["k"])
    assert found == {} and "unsigned" in status["reason"]


async def test_a_cache_that_is_down_is_skipped_within_the_budget(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/prefix"
    async with tiered(tmp_path / "a", url) as a:
        a.put("mine", ANSWER)
        found, status, seconds = await _read(a, ["mine", "k"])
        assert await a.flush(10)
    assert found == {"mine": ANSWER} and status["outcome"] == "skipped" and "Connection" in status["reason"]
    assert seconds < BUDGET_S + SLACK_S


async def test_a_slow_cache_costs_at_most_the_budget(tmp_path: Path, bazel_cache: BazelCache) -> None:
    async with tiered(tmp_path / "a", bazel_cache.url) as a:
        await a.remote.warm()
        bazel_cache.gate.clear()  # every GET now waits
        try:
            found, status, seconds = await _read(a, ["k1", "k2", "k3"])
        finally:
            bazel_cache.gate.set()
    assert found == {} and status["outcome"] == "skipped" and "budget" in status["reason"]
    assert BUDGET_S * 0.9 < seconds < BUDGET_S + SLACK_S


async def test_refused_credentials_are_skipped_and_named(tmp_path: Path, bazel_cache: BazelCache) -> None:
    bazel_cache.credentials = "ci:right"
    wrong = bazel_cache.url.replace("http://", "http://ci:wrong@")
    async with tiered(tmp_path / "a", wrong) as a:
        found, status, _ = await _read(a, ["k"])
    assert found == {} and status["outcome"] == "skipped" and "credentials refused" in status["reason"]
    assert "wrong" not in status["store"]
    right = bazel_cache.url.replace("http://", "http://ci:right@")
    async with tiered(tmp_path / "b", right) as b:
        b.put("k", ANSWER)
        assert await b.flush(10)
    assert b.remote.counts["written"] == 1
