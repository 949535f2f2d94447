"""The shared tier's settings and wire format: clear errors, secrets never shown, entries bound to keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler import _settings
from scheduler._exceptions import ConfigError
from scheduler.engine._cache import DiagnosticsCache
from scheduler.engine._remote import _codec
from scheduler.engine._remote._bazel import BazelTransport
from scheduler.engine._remote._open import open_cache, open_transport
from scheduler.engine._remote._redis import RedisTransport
from scheduler.engine._remote._tiered import TieredCache, is_shared


def test_no_remote_url_means_no_tier() -> None:
    assert _settings.remote({}) is None
    assert type(open_cache(None, settings=None)) is DiagnosticsCache


def test_every_remote_knob_is_read(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef0123\n")
    s = _settings.remote(
        {
            _settings.REMOTE: "rediss://agent:pw@cache:6380/0",
            _settings.REMOTE_READONLY: "yes",
            _settings.REMOTE_HMAC_KEY_FILE: str(key_file),
            _settings.REMOTE_BUDGET_MS: "50",
            _settings.REMOTE_TTL_S: "3600",
        }
    )
    assert s == _settings.RemoteSettings("rediss://agent:pw@cache:6380/0", True, b"0123456789abcdef0123", 0.05, 3600)
    assert "pw" not in repr(s) and "0123" not in repr(s)


@pytest.mark.parametrize(
    ("env", "variable", "accepted"),
    [
        ({_settings.REMOTE: "memcached://x"}, _settings.REMOTE, "redis://"),
        ({_settings.REMOTE: "redis://h", _settings.REMOTE_BUDGET_MS: "0"}, _settings.REMOTE_BUDGET_MS, "1 to 10000"),
        ({_settings.REMOTE: "redis://h", _settings.REMOTE_TTL_S: "10"}, _settings.REMOTE_TTL_S, "60 or more"),
        ({_settings.REMOTE: "redis://h", _settings.REMOTE_READONLY: "maybe"}, _settings.REMOTE_READONLY, "1 or 0"),
        ({_settings.REMOTE: "redis://h", _settings.REMOTE_HMAC_KEY: "short"}, _settings.REMOTE_HMAC_KEY, "16"),
        ({_settings.REMOTE: "redis://h", _settings.REMOTE_HMAC_KEY_FILE: "/nonexistent/k"}, None, "readable"),
    ],
)
def test_a_bad_remote_value_is_an_error_naming_the_variable(
    env: dict[str, str], variable: str | None, accepted: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings.remote(env)
    assert accepted in str(caught.value)
    assert caught.value.variable == (variable or _settings.REMOTE_HMAC_KEY_FILE)
    assert "short" not in str(caught.value), "a key is never shown, even a bad one"


def test_an_error_about_the_url_does_not_show_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        _settings.remote({_settings.REMOTE: "memcached://user:secret@host"})
    assert "secret" not in str(caught.value)


def test_the_fingerprint_tells_secrets_apart_without_holding_them() -> None:
    a = _settings.fingerprint({_settings.REMOTE: "redis://u:one@h", _settings.REMOTE_HMAC_KEY: "k" * 20})
    b = _settings.fingerprint({_settings.REMOTE: "redis://u:two@h", _settings.REMOTE_HMAC_KEY: "k" * 20})
    assert a != b and "one" not in str(a) and "k" * 20 not in str(a)
    assert _settings.fingerprint({_settings.REMOTE: "redis://h:6379"}) == {_settings.REMOTE: "redis://h:6379"}


def test_each_scheme_gets_its_adapter(tmp_path: Path) -> None:
    assert isinstance(open_transport("redis://h"), RedisTransport)
    assert isinstance(open_transport("unix:///run/redis.sock"), RedisTransport)
    assert isinstance(open_transport("https://cache.example:443/team"), BazelTransport)
    cache = open_cache(tmp_path / "c", settings=_settings.RemoteSettings("redis://h", budget_s=0.05))
    assert isinstance(cache, TieredCache) and cache.budget_s == 0.05
    cache.close()


def test_only_facts_about_sources_are_shared() -> None:
    assert is_shared("0123abcd") and is_shared("ml:0123") and is_shared("ma:0123") and is_shared("passed:0123")
    assert not is_shared("unit:0123") and not is_shared("own:0123")


def test_an_entry_decodes_only_under_its_own_key_and_with_the_right_signature() -> None:
    value = {"success": True, "messages": []}
    raw = _codec.encode("k", value, b"key" * 8)
    assert _codec.decode("k", raw, b"key" * 8) == value
    assert _codec.decode("k", raw, None) == value
    assert _codec.decode("other", raw, b"key" * 8) == "bad signature"
    assert _codec.decode("k", raw, b"nope" * 8) == "bad signature"
    assert _codec.decode("k", _codec.encode("k", value, None), b"key" * 8) == "unsigned (a signing key is configured)"
    assert _codec.decode("k", raw[:-1], None) == "bad checksum"
    assert _codec.decode("k", b"", None) == "not a cargo-scheduler entry of this format"
    assert _codec.remote_key("k").startswith(f"cargo-scheduler:{_codec.FORMAT}:")


def test_an_entry_that_inflates_past_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _codec.encode("k", {"blob": "a" * 100_000}, None)
    monkeypatch.setattr(_codec, "MAX_VALUE_BYTES", 50_000)
    assert _codec.decode("k", raw, None) == "too large or truncated"
