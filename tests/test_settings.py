"""The CARGO_SCHEDULER_* knobs: parsing, clear errors, and what a front and its daemon must agree on."""

from __future__ import annotations

import pytest

from scheduler import _settings
from scheduler._exceptions import ConfigError, SchedulerError
from scheduler._settings import Settings
from scheduler.daemon import _control, _socket


def test_no_variables_give_the_documented_defaults() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert (s.scope, s.prewarm, s.ra_wait_s, s.ra_check_on_save, s.ra_target_dir, s.cache_mb, s.target_dir) == (
        "auto",
        "index",
        30.0,
        False,
        "separate",
        512,
        "shared",
    )
    assert s.changed() == {}


def test_every_knob_is_read_and_normalised() -> None:
    s = Settings.from_env(
        {
            _settings.SCOPE: " Workspace ",
            _settings.PREWARM: "check",
            _settings.RA_WAIT: "2.5",
            _settings.RA_CHECK_ON_SAVE: "yes",
            _settings.RA_TARGET_DIR: "shared",
            _settings.CACHE_MB: "0",
            _settings.TARGET_DIR: "PRIVATE",
        }
    )
    assert s.changed() == {
        "scope": "workspace",
        "prewarm": "check",
        "ra_wait_s": 2.5,
        "ra_check_on_save": True,
        "ra_target_dir": "shared",
        "cache_mb": 0,
        "target_dir": "private",
    }


def test_an_empty_variable_means_the_default() -> None:
    assert Settings.from_env({_settings.SCOPE: "", _settings.CACHE_MB: "  "}) == Settings()


@pytest.mark.parametrize(
    ("variable", "value", "accepted"),
    [
        (_settings.SCOPE, "fast", "auto, changed, affected, workspace"),
        (_settings.PREWARM, "eager", "index, none, check"),
        (_settings.RA_WAIT, "forever", "seconds from 0 to 300"),
        (_settings.RA_WAIT, "-1", "seconds from 0 to 300"),
        (_settings.RA_WAIT, "nan", "seconds from 0 to 300"),
        (_settings.RA_WAIT, "301", "seconds from 0 to 300"),
        (_settings.RA_CHECK_ON_SAVE, "maybe", "1 or 0"),
        (_settings.RA_TARGET_DIR, "target/ra", "separate, shared"),
        (_settings.CACHE_MB, "1.5", "whole number of megabytes"),
        (_settings.CACHE_MB, "-3", "whole number of megabytes"),
        (_settings.TARGET_DIR, "/tmp/elsewhere", "set CARGO_TARGET_DIR"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable_the_value_and_what_is_accepted(
    variable: str,
    value: str,
    accepted: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert variable in message and repr(value.strip()) in message and accepted in message
    assert caught.value.variable == variable
    assert isinstance(caught.value, SchedulerError)


def test_the_fingerprint_holds_only_the_knobs_that_are_set_unparsed() -> None:
    env = {_settings.SCOPE: "changed ", _settings.CACHE_MB: "", "CARGO_SCHEDULER_IDLE_TIMEOUT": "5", "PATH": "/x"}
    assert _settings.fingerprint(env) == {_settings.SCOPE: "changed"}
    assert _settings.fingerprint({_settings.PREWARM: "eager"}) == {_settings.PREWARM: "eager"}  # no parse, no raise


def test_a_daemon_with_other_settings_is_outdated_and_the_reason_names_them(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
) -> None:
    monkeypatch.setenv(_settings.SCOPE, "workspace")
    paths = _socket.Paths(str(tmp_path))
    want = _control.expected(paths)
    fitting = {k: want[k] for k in ("version", "protocol", "digest", "workspace", "settings")}
    assert _control.outdated(fitting, want) is None
    why = _control.outdated({**fitting, "settings": {}}, want)
    assert why is not None and "CARGO_SCHEDULER_SCOPE" in why
    monkeypatch.delenv(_settings.SCOPE)
    assert _control.outdated({k: v for k, v in fitting.items() if k != "settings"}, _control.expected(paths)) is None


def test_allow_env_is_read_as_names_and_prefixes() -> None:
    s = Settings.from_env({_settings.ALLOW_ENV: "MY_FLAG, MYAPP_* MY_FLAG"})
    assert s.allow_env == ("MY_FLAG", "MYAPP_*")
    assert _settings.fingerprint({_settings.ALLOW_ENV: " MY_FLAG "}) == {_settings.ALLOW_ENV: "MY_FLAG"}


@pytest.mark.parametrize("bad", ["A=B", "1X", "*", "MY-FLAG", "ÄÖ"])
def test_allow_env_refuses_what_is_not_a_variable_name(bad: str) -> None:
    with pytest.raises(ConfigError, match=_settings.ALLOW_ENV):
        Settings.from_env({_settings.ALLOW_ENV: bad})


def test_the_cache_dir_is_the_explicit_one_else_under_xdg_cache_home_else_under_home() -> None:
    assert _settings.cache_dir({_settings.CACHE_DIR: "/c", "XDG_CACHE_HOME": "/x"}) == "/c"
    assert _settings.cache_dir({_settings.CACHE_DIR: "", "XDG_CACHE_HOME": "/x"}) == "/x/cargo-scheduler"
    assert _settings.cache_dir({}).endswith("/.cache/cargo-scheduler")


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(None, 1800.0), ("", 1800.0), ("5", 5.0), ("0.5", 0.5), ("soon", 1800.0)],
    ids=["unset", "empty", "whole", "fraction", "unreadable-keeps-the-default"],
)
def test_the_idle_timeout_is_read_in_seconds(raw: str | None, seconds: float) -> None:
    assert _settings.idle_timeout_s({} if raw is None else {_settings.IDLE_TIMEOUT: raw}) == seconds


@pytest.mark.parametrize(("raw", "start"), [(None, True), ("", True), (" 0 ", False), ("off", False), ("yes", True)])
def test_the_cli_starts_a_daemon_unless_told_not_to(raw: str | None, start: bool) -> None:
    assert _settings.start_daemon({} if raw is None else {_settings.START_DAEMON: raw}) is start


def test_a_start_daemon_value_we_do_not_read_is_an_error_and_not_a_fingerprint_knob() -> None:
    with pytest.raises(ConfigError, match="CARGO_SCHEDULER_START_DAEMON"):
        _settings.start_daemon({_settings.START_DAEMON: "sometimes"})
    assert _settings.fingerprint({_settings.START_DAEMON: "1"}) == {}


def test_the_scope_of_the_settings_is_the_engines_scope() -> None:
    from typing import get_args

    from scheduler.engine import _report

    assert get_args(_settings.Scope) == _report.SCOPES


def test_no_module_but_settings_reads_a_cargo_variable_from_the_environment() -> None:
    import re
    from pathlib import Path

    package = Path(_settings.__file__).parent
    reads = re.compile(r"""(?:environ\.get\(|getenv\(|environ\[)\s*["']CARGO_""")
    offenders = [
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if p.name != "_settings.py" and reads.search(p.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, None), ("0", None), ("off", None), ("1", "sccache"), ("sccache", "sccache")]
)
def test_sccache_is_off_unless_asked_for_and_one_means_the_one_on_path(raw: str | None, expected: str | None) -> None:
    assert _settings.sccache({} if raw is None else {_settings.SCCACHE: raw}) == expected


def test_sccache_given_as_a_path_must_be_an_executable() -> None:
    import sys

    assert _settings.sccache({_settings.SCCACHE: sys.executable}) == sys.executable
    with pytest.raises(ConfigError, match="CARGO_SCHEDULER_SCCACHE"):
        _settings.sccache({_settings.SCCACHE: "/nonexistent/sccache"})


def test_the_target_dir_seed_is_on_by_default_and_has_an_off_switch() -> None:
    assert _settings.seed({}) and not _settings.seed({_settings.SEED: "0"})
    with pytest.raises(ConfigError, match="CARGO_SCHEDULER_SEED"):
        _settings.seed({_settings.SEED: "maybe"})
