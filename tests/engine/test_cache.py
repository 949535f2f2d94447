"""The diagnostics cache: round trips, corruption is a miss, deletion and crashes, several processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import diskcache
import pytest

from scheduler.engine._cache import DiagnosticsCache, _decode, _encode, default_cache_dir
from scheduler.engine._report import CheckReport

VALUE: dict[str, Any] = {"success": False, "messages": [{"level": "error", "message": "E0308"}], "blocked_by": []}


def _value(i: int) -> dict[str, Any]:
    """A deterministic value per index, big enough that a torn write would show."""
    return {"i": i, "success": i % 2 == 0, "messages": [{"message": f"m{i}-{j}" * 20} for j in range(5)]}


def _raw(directory: Path) -> diskcache.Cache:
    return diskcache.Cache(str(directory / "diagnostics"))


def test_a_value_put_is_got_back_by_the_same_and_by_a_fresh_instance(tmp_path: Path) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("k", VALUE)
    assert cache.get("k") == VALUE
    cache.close()
    fresh = DiagnosticsCache(tmp_path / "c")
    assert fresh.get("k") == VALUE
    assert fresh.get("other") is None
    assert (fresh.hits, fresh.misses) == (1, 1)
    fresh.close()


def test_stored_names_the_keys_held_in_memory_or_on_disk_in_one_query_per_chunk(tmp_path: Path) -> None:
    writer = DiagnosticsCache(tmp_path / "c")
    on_disk = {f"ml:{i}": _value(i) for i in range(1200)}  # more than one chunk of 500
    writer.put_many(on_disk)
    writer.close()
    cache = DiagnosticsCache(tmp_path / "c")
    cache.remember_many({"memory-only": VALUE})
    raw = _raw(tmp_path / "c")
    raw.set(b"bytes-key", b"x")  # not a str key: never reported as one
    raw.close()
    asked = [*on_disk, "memory-only", "absent", "bytes-key"]
    assert cache.stored(asked) == {*on_disk, "memory-only"}
    assert cache.hits == 0, "presence only: no value was read"
    cache.close()


def test_delete_and_clear_remove_entries_from_memory_and_disk(tmp_path: Path) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("a", VALUE)
    cache.put("b", VALUE)
    cache.delete("a")
    assert cache.get("a") is None
    assert cache.clear() == 1
    assert cache.get("b") is None
    assert DiagnosticsCache(tmp_path / "c").get("b") is None


def test_the_default_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CARGO_SCHEDULER_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("CARGO_SCHEDULER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "cargo-scheduler"


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda raw: b"garbage bytes", id="garbage"),
        pytest.param(lambda raw: raw[:-1] + bytes([raw[-1] ^ 0x01]), id="flipped-last-byte"),
        pytest.param(lambda raw: raw[:20] + bytes([raw[20] ^ 0x20]) + raw[21:], id="flipped-body-byte"),
        pytest.param(lambda raw: raw[: len(raw) // 2], id="torn"),
        pytest.param(lambda raw: b"", id="empty"),
        pytest.param(lambda raw: raw.decode(), id="not-bytes"),
        pytest.param(lambda raw: _encode({"x": 1})[:17] + b"[1,2]", id="list-with-a-wrong-checksum"),
    ],
)
def test_a_corrupted_value_is_a_miss_never_a_wrong_answer(tmp_path: Path, corrupt: Any) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("k", VALUE)
    cache.close()
    with _raw(tmp_path / "c") as raw:
        raw.set("k", corrupt(raw.get("k")))
    reader = DiagnosticsCache(tmp_path / "c")
    assert reader.get("k") is None
    assert reader.misses == 1
    reader.put("k", VALUE)
    assert DiagnosticsCache(tmp_path / "c").get("k") == VALUE, "a fresh answer replaces the corrupt one"


def test_a_value_with_a_valid_checksum_that_is_not_an_object_is_a_miss() -> None:
    body = b"[1,2,3]"
    import xxhash

    assert _decode(xxhash.xxh64_hexdigest(body).encode() + b":" + body) is None
    assert _decode(_encode(VALUE)) == VALUE


def test_a_corrupt_database_file_found_at_start_is_rebuilt(tmp_path: Path) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("k", VALUE)
    cache.close()
    db = tmp_path / "c" / "diagnostics" / "cache.db"
    for extra in db.parent.glob("cache.db-*"):
        extra.unlink()
    db.write_bytes(b"this is not a SQLite database" * 100)
    reopened = DiagnosticsCache(tmp_path / "c")
    assert reopened.available and reopened.problem is None
    assert reopened.get("k") is None
    reopened.put("k2", VALUE)
    assert DiagnosticsCache(tmp_path / "c").get("k2") == VALUE


def test_deleting_the_cache_directory_while_open_rebuilds_it(tmp_path: Path) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("before", VALUE)
    shutil.rmtree(tmp_path / "c")
    assert cache.get("never-written") is None
    cache.put("after", VALUE)
    assert cache.get("after") == VALUE
    assert cache.available and cache.problem is None
    # Rebuilt on disk, not written into the deleted database: another process sees it.
    assert DiagnosticsCache(tmp_path / "c").get("after") == VALUE


def test_a_cache_deleted_and_recreated_by_another_process_is_reopened(tmp_path: Path) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("before", VALUE)
    shutil.rmtree(tmp_path / "c")
    other = DiagnosticsCache(tmp_path / "c")
    other.put("from-other", VALUE)
    assert cache.get("from-other") == VALUE
    cache.put("from-first", VALUE)
    assert other.get("from-first") == VALUE


def test_a_cache_directory_that_cannot_be_recreated_makes_the_cache_unavailable_and_the_report_says_so(
    tmp_path: Path,
) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("before", VALUE)
    shutil.rmtree(tmp_path / "c")
    (tmp_path / "c").write_text("a file where the cache directory was")
    assert cache.get("never-written") is None
    cache.put("after", VALUE)  # never raises
    assert not cache.available
    assert cache.problem
    assert cache.stats()["problem"] == cache.problem
    report = CheckReport(kind="check", scope="auto", cache_available=cache.available)
    assert report.to_dict()["cache"].startswith("unavailable")
    assert "cache" not in CheckReport(kind="check", scope="auto").to_dict()


def test_a_cache_directory_that_cannot_be_created_leaves_the_cache_unavailable_without_raising(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("x")
    cache = DiagnosticsCache(tmp_path / "file" / "cache")
    assert not cache.available
    assert cache.problem
    assert cache.get("k") is None
    cache.put("k", VALUE)
    assert cache.clear() == 0
    assert cache.stats()["available"] is False


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from scheduler.engine._cache import DiagnosticsCache

    directory, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    cache = DiagnosticsCache(directory)
    for i in range(count):
        value = {"i": i, "success": i % 2 == 0, "messages": [{"message": f"m{i}-{j}" * 20} for j in range(5)]}
        cache.put(f"{prefix}{i}", value)
        if i == 1000:
            print("started", flush=True)
    print("done", flush=True)
    """
)


def _writer(directory: Path, prefix: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory), prefix, str(count)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_entries_written_by_a_process_killed_mid_run_are_whole_or_absent(tmp_path: Path) -> None:
    count = 100_000
    proc = _writer(tmp_path / "c", "k", count)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    reader = DiagnosticsCache(tmp_path / "c")
    with _raw(tmp_path / "c") as raw:
        keys = list(raw.iterkeys())
        assert len(keys) > 1000
        assert len(keys) < count, "killed before it finished"
        for key in keys:
            assert _decode(raw.get(key)) is not None, key
    for key in keys:
        assert reader.get(key) == _value(int(key[1:]))
    reader.put("after-crash", VALUE)
    assert DiagnosticsCache(tmp_path / "c").get("after-crash") == VALUE


def test_two_processes_writing_at_once_leave_every_entry_readable(tmp_path: Path) -> None:
    count = 400
    writers = [_writer(tmp_path / "c", prefix, count) for prefix in ("a", "b")]
    for w in writers:
        out, _ = w.communicate(timeout=60)
        assert w.returncode == 0
        assert out.splitlines()[-1] == "done"
    reader = DiagnosticsCache(tmp_path / "c")
    for prefix in ("a", "b"):
        for i in range(count):
            assert reader.get(f"{prefix}{i}") == _value(i)
    assert reader.stats()["entries"] == 2 * count


def test_stats_count_hits_misses_and_entries(tmp_path: Path) -> None:
    cache = DiagnosticsCache(tmp_path / "c")
    cache.put("k", VALUE)
    cache.get("k")
    cache.get("missing")
    stats = cache.stats()
    assert stats["entries"] == 1
    assert (stats["hits"], stats["misses"], stats["hit_rate"]) == (1, 1, 0.5)
    assert stats["available"] is True and "problem" not in stats
