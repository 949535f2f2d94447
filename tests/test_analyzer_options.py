"""The peers' analysis flags: their rules, their JSON, and what reaches rust-analyzer's settings."""

from __future__ import annotations

import pytest

from scheduler._analyzer_options import DEFAULT_OPTIONS, AnalyzerOptions
from scheduler._exceptions import InvalidArgument


def test_features_are_named_one_by_one_across_flags_and_separators() -> None:
    options = AnalyzerOptions().with_features("serde,tokio").with_features("other/thing  extra")
    assert options.features == ("serde", "tokio", "other/thing", "extra")
    assert options.apply({})["cargo"]["features"] == ["serde", "tokio", "other/thing", "extra"]


def test_all_features_is_the_bare_word_rust_analyzer_knows() -> None:
    assert AnalyzerOptions().with_all_features().apply({"cargo": {"targetDir": True}})["cargo"] == {
        "targetDir": True,
        "features": "all",
    }


def test_the_defaults_leave_features_to_the_manifest() -> None:
    assert DEFAULT_OPTIONS.is_default
    assert DEFAULT_OPTIONS.apply({"cargo": {}}) == {"cargo": {}}


@pytest.mark.parametrize(
    ("build", "flag"),
    [
        (lambda: AnalyzerOptions().with_all_features().with_features("a"), "--features"),
        (lambda: AnalyzerOptions().with_features("a").with_all_features(), "--all-features"),
        (lambda: AnalyzerOptions().with_all_features().without_default_features(), "--no-default-features"),
        (lambda: AnalyzerOptions().with_features(" , "), "--features"),
        (lambda: AnalyzerOptions().with_setting("check.command"), "--config"),
        (lambda: AnalyzerOptions().with_setting("check..command=x"), "--config"),
    ],
)
def test_a_combination_the_peer_refuses_is_refused_naming_the_flag(build: object, flag: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        build()  # type: ignore[operator]
    assert refused.value.argument == flag


def test_a_config_value_is_json_or_else_a_string_and_wins_over_ours() -> None:
    options = (
        AnalyzerOptions()
        .with_setting("check.command=clippy")
        .with_setting("cargo.targetDir=false")
        .with_setting('procMacro.ignored={"a": ["b"]}')
    )
    settings = options.apply({"cargo": {"targetDir": True}, "check": {"workspace": False}})
    assert settings["check"] == {"workspace": False, "command": "clippy"}
    assert settings["cargo"]["targetDir"] is False
    assert settings["procMacro"] == {"ignored": {"a": ["b"]}}


def test_options_cross_the_wire_unchanged_and_a_malformed_hello_is_named() -> None:
    options = AnalyzerOptions().with_features("a").without_default_features().with_setting("x.y=1")
    assert AnalyzerOptions.from_wire(options.to_wire()) == options
    assert AnalyzerOptions.from_wire(None) == DEFAULT_OPTIONS
    for bad, named in (([], "session.analyzer"), ({"features": "a"}, "features"), ({"config": [["k"]]}, "config")):
        with pytest.raises(ValueError, match=named):
            AnalyzerOptions.from_wire(bad)
