"""The engine on the shared tier: a second checkout with an empty local cache answers from Redis.

The engine settles its key and answer lookups against the tier (`settle`), and keys hold no path, so
a checkout anywhere with an empty local cache and an empty target dir runs no cargo.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from remote_env import RedisServer

from scheduler import CheckRequest, EnginePool, GeneratedWorkspace, _settings

pytestmark = pytest.mark.anyio


async def _check(cache_dir: Path, root: Path) -> tuple[list[str], list[str], dict[str, Any], bool]:
    async with EnginePool(cache_dir) as pool:
        report = await (await pool.get(root)).check(CheckRequest(scope="workspace"))
    return report.ran(), report.cached(), report.remote or {}, report.success


async def test_a_second_local_cache_at_the_same_path_answers_every_member_from_redis(
    make_workspace: Callable[..., GeneratedWorkspace],
    tmp_path: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_settings.REMOTE, redis_server.url())
    ws = make_workspace(crates=5)
    ran, _, _, ok = await _check(tmp_path / "cache-a", ws.root)
    assert ok and sorted(ran) == sorted(ws.members)
    ran, cached, notes, ok = await _check(tmp_path / "cache-b", ws.root)
    assert ok and ran == [] and cached == sorted(ws.members), notes
    assert notes["outcome"] == "hit" and notes["members"] == sorted(ws.members), notes


async def test_a_second_checkout_at_another_path_answers_every_member_from_redis(
    make_workspace: Callable[..., GeneratedWorkspace],
    tmp_path: Path,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(_settings.REMOTE, redis_server.url())
    ws = make_workspace(crates=5)
    ran, _, _, ok = await _check(tmp_path / "cache-a", ws.root)
    assert ok and sorted(ran) == sorted(ws.members)
    other = tmp_path / "checkout-b"
    shutil.copytree(ws.root, other, ignore=shutil.ignore_patterns("target"))
    ran, cached, notes, ok = await _check(tmp_path / "cache-b", other)
    assert ok and ran == [] and cached == sorted(ws.members), notes
