"""The shared tier on a real redis-server: round trips between two local caches, and every fault of
the issue (absent, killed, paused past the budget, wrong password, full, bad checksum or signature):
every read still answers, from the local cache or as a miss, and says where it came from."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from remote_env import RedisServer, self_signed

from scheduler.engine._cache import DiagnosticsCache
from scheduler.engine._remote import _codec
from scheduler.engine._remote._redis import RedisTransport
from scheduler.engine._remote._store import RemoteStore
from scheduler.engine._remote._tiered import TieredCache, settle, settle_in_thread

pytestmark = pytest.mark.anyio

ANSWER: dict[str, Any] = {"success": False, "messages": [{"level": "error", "message": "E0308 mismatched types"}]}
BUDGET_S = 0.15
SLACK_S = 0.35
"""What a skipped read may cost beyond its budget on a loaded two-core machine."""
PAUSE_MS = 1500
"""Long enough to outlast a budget and a breaker check; `CLIENT PAUSE ALL` ends alone (an UNPAUSE
sent meanwhile would itself be paused)."""


def _store(url: str, **kw: Any) -> RemoteStore:
    return RemoteStore(RedisTransport(url, connect_timeout_s=2.0, timeout_s=5.0), **kw)


@asynccontextmanager
async def tiered(directory: Path, url: str, budget_s: float = BUDGET_S, **kw: Any) -> AsyncIterator[TieredCache]:
    cache = TieredCache(directory, remote=_store(url, **kw), budget_s=budget_s)
    try:
        async with cache.running():
            yield cache
    finally:
        cache.close()


async def _read(cache: TieredCache, keys: list[str]) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Read `keys` as the engine will: local, then the remote for what missed. (values, status, seconds)"""
    started = time.monotonic()
    with cache.question() as q:
        found = await settle(cache, lambda: cache.get_many(keys))
    return found, q.status.to_json(), time.monotonic() - started


async def test_an_answer_written_by_one_checkout_is_read_by_another_with_an_empty_local_cache(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with tiered(tmp_path / "a", redis_server.url()) as a, tiered(tmp_path / "b", redis_server.url()) as b:
        a.put_many({"k1": ANSWER, "ml:base1": {"files": ["w:src/lib.rs"], "env": []}})
        assert await a.flush(10)
        found, status, _ = await _read(b, ["k1", "ml:base1", "absent"])
        assert found == {"k1": ANSWER, "ml:base1": {"files": ["w:src/lib.rs"], "env": []}}
        assert status["outcome"] == "hit" and (status["asked"], status["found"]) == (3, 2)
        assert status["store"].startswith("unix://")
        again, status, _ = await _read(b, ["k1"])
        assert again == {"k1": ANSWER} and status == {"store": status["store"], "outcome": "local"}
        assert await b.flush(10), "the fill is written behind the answer, by the writer"
        other_process = DiagnosticsCache(tmp_path / "b")
        assert other_process.get("k1") == ANSWER
        other_process.close()
    assert DiagnosticsCache(tmp_path / "b").get("k1") == ANSWER, "a remote hit fills the local cache on disk"


async def test_the_budget_counts_the_tiers_time_not_the_questions_own_local_work(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    chain = {f"ml:{i}": {"next": f"ml:{i + 1}"} for i in range(3)}
    async with tiered(tmp_path / "a", redis_server.url()) as a, tiered(tmp_path / "b", redis_server.url()) as b:
        a.put_many(chain)
        assert await a.flush(10)

        def keys() -> dict[str, Any]:
            time.sleep(BUDGET_S / 2)  # the engine's own work between rounds: hashing a large workspace
            found, key = {}, "ml:0"
            while (value := b.get(key)) is not None:
                found[key], key = value, value["next"]
            return found

        with b.question() as q:
            found = await settle(b, keys)
    assert found == chain and q.status.outcome == "hit" and q.status.found == 3
    assert q.status.ms < BUDGET_S * 1000


async def test_settle_follows_a_chain_of_keys_one_round_trip_per_level(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    chain = {f"ml:{i}": {"next": f"ml:{i + 1}"} for i in range(5)}
    async with tiered(tmp_path / "a", redis_server.url()) as a, tiered(tmp_path / "b", redis_server.url()) as b:
        a.put_many(chain)
        assert await a.flush(10)

        def walk() -> list[str]:  # like the engine's keys: each manifest names the next key to look up
            seen, key = [], "ml:0"
            while (value := b.get(key)) is not None:
                seen.append(key)
                key = value["next"]
            return seen

        with b.question() as q:
            assert await settle(b, walk) == list(chain)
        assert q.status.keys == set(chain) and q.status.asked == 6
        assert q.status.origin("ml:3") == "remote" and q.status.origin("ml:9") == "local"


async def test_with_a_hint_a_chain_of_keys_settles_in_two_round_trips_and_a_local_question_asks_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    chain: dict[str, dict[str, Any]] = {f"ml:{i}": {"next": f"ml:{i + 1}"} for i in range(4)}
    chain["ml:4"] = {}  # the last level: nothing missed after it
    async with tiered(tmp_path / "a", redis_server.url()) as a, tiered(tmp_path / "b", redis_server.url()) as b:
        a.put_many(chain)
        assert a.offer_hint("h:chain", [*chain, "unit:x", "own:y", "h:other"], limit=16)
        assert not a.offer_hint("h:chain", [*chain, "unit:x", "own:y", "h:other"], limit=16), "the same: not again"
        assert await a.flush(10)

        def walk() -> list[str]:
            seen: list[str] = []
            key: str | None = "ml:0"
            while key is not None and (value := b.get(key)) is not None:
                seen.append(key)
                key = value.get("next")
            return seen

        with b.question() as q:
            assert await settle_in_thread(b, walk, ("h:chain", 16)) == list(chain)
        assert q.status.rounds == 2 and q.status.hint == {"found": True, "listed": 5, "fetched": 4}
        with b.question() as q:
            assert await settle_in_thread(b, walk, ("h:chain", 16)) == list(chain)
        assert q.status.to_json() == {"store": q.status.store, "outcome": "local"}
    assert redis_server.admin().get("cargo-scheduler:v1:h:other") is None


async def test_entries_are_namespaced_by_format_version_carry_a_ttl_and_local_records_stay_local(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with tiered(tmp_path / "a", redis_server.url(), ttl_s=3600) as a:
        a.put_many({"k": ANSWER, "unit:abc": {"d": 1}, "own:def": {"d": 2}})
        assert await a.flush(10)
    admin = redis_server.admin()
    assert admin.keys("*") == [b"cargo-scheduler:v1:k"]
    assert 3500 < admin.ttl("cargo-scheduler:v1:k") <= 3600
    raw = admin.get("cargo-scheduler:v1:k")
    assert isinstance(raw, bytes) and raw.startswith(b"CS1 ")


async def test_a_read_only_machine_reads_the_tier_and_never_writes_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with (
        tiered(tmp_path / "ci", redis_server.url()) as ci,
        tiered(tmp_path / "agent", redis_server.url(), readonly=True) as agent,
    ):
        ci.put_many({"k": ANSWER})
        assert await ci.flush(10)
        agent.put_many({"mine": ANSWER})
        assert await agent.flush(10)
        assert agent.get("mine") == ANSWER, "written locally at once"
        found, status, _ = await _read(agent, ["k"])
        assert found == {"k": ANSWER} and status["outcome"] == "hit"
    assert redis_server.admin().keys("*") == [b"cargo-scheduler:v1:k"]


async def test_a_local_hit_never_asks_the_remote_even_when_it_is_paused(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with tiered(tmp_path / "a", redis_server.url()) as a:
        a.put_many({"k": ANSWER})
        assert await a.flush(10)
        redis_server.command("CLIENT", "PAUSE", str(PAUSE_MS), "ALL")  # UNPAUSE itself would wait: it ends alone
        found, status, seconds = await _read(a, ["k"])
    assert found == {"k": ANSWER} and status["outcome"] == "local"
    assert seconds < 0.05


async def test_writes_never_block_the_caller_even_when_the_remote_is_paused(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    admin = redis_server.admin()
    async with tiered(tmp_path / "a", redis_server.url()) as a:
        redis_server.command("CLIENT", "PAUSE", "20000", "WRITE")
        try:
            started = time.monotonic()
            a.put_many({f"k{i}": ANSWER for i in range(200)})
            assert time.monotonic() - started < 0.5
            assert a.get("k7") == ANSWER
            assert not await a.flush(0.3), "the write waits in the background, not in put_many"
        finally:
            redis_server.command("CLIENT", "UNPAUSE")
        assert await a.flush(10)
    assert admin.dbsize() == 200


# -- faults ----------------------------------------------------------------------------------
async def test_an_absent_redis_is_skipped_within_the_budget_and_used_once_it_starts(
    tmp_path: Path, redis_dir: Path, start_redis: Callable[..., RedisServer]
) -> None:
    url = f"unix://{redis_dir / 'redis.sock'}"
    async with tiered(tmp_path / "a", url, cooldown_s=0.0) as a:
        a.put("k", ANSWER)  # the write fails in the background, the local answer stands
        await a.flush(10)
        found, status, seconds = await _read(a, ["k", "other"])
        assert found == {"k": ANSWER}
        assert status["outcome"] == "skipped" and "No such file" in status["reason"]
        assert seconds < BUDGET_S + SLACK_S
        assert a.stats()["remote"]["problem"]
        server = start_redis()
        server.admin().set(_codec.remote_key("other"), _codec.encode(_codec.remote_key("other"), ANSWER, None))
        found, status, _ = await _read(a, ["other"])
        assert found == {"other": ANSWER} and status["outcome"] == "hit"


async def test_a_redis_killed_in_the_middle_is_skipped_and_the_local_answers_stand(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with tiered(tmp_path / "a", redis_server.url()) as a, tiered(tmp_path / "b", redis_server.url()) as b:
        a.put_many({"k1": ANSWER, "k2": ANSWER})
        assert await a.flush(10)
        assert (await _read(b, ["k1"]))[0] == {"k1": ANSWER}
        redis_server.kill()
        found, status, seconds = await _read(b, ["k1", "k2"])
        assert found == {"k1": ANSWER}, "k1 is local now; k2 is a miss, not an error"
        assert status["outcome"] == "skipped" and status["reason"]
        assert seconds < BUDGET_S + SLACK_S
        b.put("k3", ANSWER)
        await b.flush(10)
        assert b.get("k3") == ANSWER and b.stats()["remote"]["write_failures"] >= 1


async def test_a_redis_paused_past_the_budget_costs_the_budget_once_then_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with tiered(tmp_path / "a", redis_server.url()) as a, tiered(tmp_path / "b", redis_server.url()) as b:
        a.put("k", ANSWER)
        assert await a.flush(10)
        await b.remote.warm()  # a connection is open: the pause, not a handshake, is what is measured
        redis_server.command("CLIENT", "PAUSE", str(PAUSE_MS), "ALL")
        found, status, seconds = await _read(b, ["k"])
        assert found == {} and status["outcome"] == "skipped"
        assert "budget" in status["reason"] and BUDGET_S * 0.9 < seconds < BUDGET_S + SLACK_S
        found, status, seconds = await _read(b, ["k"])
        assert status["outcome"] == "skipped" and "asked again in" in status["reason"]
        assert seconds < 0.05, "the breaker is open: no second wait"


async def test_a_wrong_password_is_skipped_and_says_so(tmp_path: Path, start_redis: Callable[..., RedisServer]) -> None:
    server = start_redis("--requirepass", "right-password")
    async with tiered(tmp_path / "a", server.url(":wrong-password")) as a:
        found, status, _ = await _read(a, ["k"])
    assert found == {} and status["outcome"] == "skipped"
    assert "password" in status["reason"].lower() or "WRONGPASS" in status["reason"]
    assert "wrong-password" not in status["store"]
    async with tiered(tmp_path / "b", server.url(":right-password")) as b:
        b.put("k", ANSWER)
        assert await b.flush(10)
    assert server.admin("right-password").dbsize() == 1


async def test_an_acl_user_limited_to_reads_gets_answers_and_its_writes_are_refused_by_the_server(
    tmp_path: Path, start_redis: Callable[..., RedisServer]
) -> None:
    server = start_redis()
    admin = server.admin()
    server.command("ACL", "SETUSER", "agent", "on", ">agent-pw", "~cargo-scheduler:v1:*", "+mget", "+ping")
    server.command("ACL", "SETUSER", "ci", "on", ">ci-pw", "~cargo-scheduler:v1:*", "+mget", "+ping", "+set")
    async with (
        tiered(tmp_path / "ci", server.url("ci:ci-pw")) as ci,
        tiered(tmp_path / "agent", server.url("agent:agent-pw")) as agent,
    ):
        ci.put("k", ANSWER)
        assert await ci.flush(10)
        found, status, _ = await _read(agent, ["k"])
        assert found == {"k": ANSWER} and status["outcome"] == "hit"
        agent.put("forged", {"success": True, "messages": []})
        assert await agent.flush(10)
        assert "NOPERM" in agent.stats()["remote"]["problem"] or "permission" in agent.stats()["remote"]["problem"]
    assert admin.keys("*") == [b"cargo-scheduler:v1:k"]


async def test_a_full_redis_refuses_writes_reports_it_and_still_answers_reads(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    admin = redis_server.admin()
    admin.config_set("maxmemory-policy", "noeviction")
    async with tiered(tmp_path / "a", redis_server.url()) as a:
        a.put("early", ANSWER)
        assert await a.flush(10)
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory", str(used + 64 * 1024))
        big = {f"big{i}": {"blob": __import__("os").urandom(48 * 1024).hex()} for i in range(8)}
        a.put_many(big)
        assert await a.flush(10)
        assert "full" in a.stats()["remote"]["problem"]
        assert all(a.get(k) == v for k, v in big.items()), "every answer is still served locally"
    async with tiered(tmp_path / "b", redis_server.url()) as b:
        found, status, _ = await _read(b, ["early"])
        assert found == {"early": ANSWER} and status["outcome"] == "hit"


async def test_an_entry_with_a_bad_checksum_is_a_miss_that_says_why(tmp_path: Path, redis_server: RedisServer) -> None:
    admin = redis_server.admin()
    rkey = _codec.remote_key("k")
    raw = bytearray(_codec.encode(rkey, ANSWER, None))
    raw[-3] ^= 0xFF
    admin.set(rkey, bytes(raw))
    admin.set(_codec.remote_key("junk"), b"something else entirely")
    async with tiered(tmp_path / "a", redis_server.url()) as a:
        found, status, _ = await _read(a, ["k", "junk"])
    assert found == {} and status["outcome"] == "miss" and status["rejected"] == 2
    assert "bad checksum" in status["reason"] and "not a cargo-scheduler entry" in status["reason"]


async def test_with_a_signing_key_unsigned_foreign_and_replayed_entries_are_ignored(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    key, other = b"k" * 32, b"o" * 32
    async with (
        tiered(tmp_path / "w", redis_server.url(), hmac_key=key) as trusted,
        tiered(tmp_path / "u", redis_server.url()) as unsigned,
        tiered(tmp_path / "f", redis_server.url(), hmac_key=other) as foreign,
    ):
        trusted.put("good", ANSWER)
        unsigned.put("plain", {"success": True})
        foreign.put("forged", {"success": True})
        for cache in (trusted, unsigned, foreign):
            assert await cache.flush(10)
    admin = redis_server.admin()
    signed = admin.get(_codec.remote_key("good"))
    assert isinstance(signed, bytes)
    admin.set(_codec.remote_key("replayed"), signed)  # a validly signed value, under another key
    async with tiered(tmp_path / "r", redis_server.url(), hmac_key=key) as reader:
        found, status, _ = await _read(reader, ["good", "plain", "forged", "replayed"])
    assert found == {"good": ANSWER}
    assert status["rejected"] == 3 and "unsigned" in status["reason"] and "bad signature" in status["reason"]
    async with tiered(tmp_path / "n", redis_server.url()) as unkeyed:
        assert (await _read(unkeyed, ["plain", "good"]))[0].keys() == {"plain", "good"}, "no key: nothing is checked"


async def test_rediss_with_tls_round_trips(tmp_path: Path, start_redis: Callable[..., RedisServer]) -> None:
    server = start_redis(tls=self_signed(tmp_path))
    async with (
        tiered(tmp_path / "a", server.url(), budget_s=5.0) as a,
        tiered(tmp_path / "b", server.url(), budget_s=5.0) as b,
    ):
        a.put("k", ANSWER)
        assert await a.flush(10)
        found, status, _ = await _read(b, ["k"])
    assert found == {"k": ANSWER} and status["outcome"] == "hit" and status["store"].startswith("rediss://")


async def test_entries_fetched_for_an_answer_reach_sqlite_after_it_and_its_hint_with_them(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The writer's SQLite work (Python under the GIL) waits for the answer in progress to end:
    recorded events order the answer's end before the fills' write and the hint's offer."""
    events: list[str] = []
    async with tiered(tmp_path / "a", redis_server.url()) as a, tiered(tmp_path / "b", redis_server.url()) as b:
        a.put_many({"k1": ANSWER})
        assert await a.flush(10)
        put_many, offer = DiagnosticsCache.put_many, b.offer_hint

        def recorded_put_many(self: DiagnosticsCache, entries: dict[str, dict[str, Any]]) -> None:
            events.append("sqlite " + ",".join(sorted(entries)))
            put_many(self, entries)

        def recorded_offer(key: str, keys: list[str], limit: int) -> bool:
            events.append("hint " + key)
            return offer(key, keys, limit)

        b.offer_hint = recorded_offer  # type: ignore[method-assign]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(DiagnosticsCache, "put_many", recorded_put_many)
            with b.trace():
                found, _, _ = await _read(b, ["k1"])
                b.put_local_behind({"own:x": {"d": "1"}})
                b.offer_hint_behind("h:q", ["k1"], limit=8)
                for _ in range(20):  # the writer had every chance to run meanwhile
                    await anyio.lowlevel.checkpoint()
                events.append("answered")
            assert await b.flush(10)
    assert found == {"k1": ANSWER}
    assert events[0] == "answered", events
    assert "sqlite k1,own:x" in events and "hint h:q" in events, events
    other_process = DiagnosticsCache(tmp_path / "b")
    assert other_process.get("k1") == ANSWER and other_process.get("own:x") == {"d": "1"}
    assert other_process.get("h:q") == {"keys": ["k1"]}
    other_process.close()
