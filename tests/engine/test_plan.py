"""Scope rules: what a request runs, answers from the cache, leaves pending or skips."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cargo import _graph
from scheduler.engine._plan import changed_packages, plan

# hub <- mid <- leaf, and a member nothing depends on.
DEPS: dict[str, set[str]] = {"hub": set(), "mid": {"hub"}, "leaf": {"mid"}, "solo": set()}
MEMBERS = sorted(DEPS)
ORDER = _graph.topological_order(DEPS)
ALL = frozenset(MEMBERS)


@dataclass(frozen=True)
class Situation:
    stale: frozenset[str]
    own_changed: frozenset[str]
    context_changed: frozenset[str] = frozenset()


HUB_EDITED = Situation(stale=frozenset({"hub", "mid", "leaf"}), own_changed=frozenset({"hub"}))
LEAF_EDITED = Situation(stale=frozenset({"leaf"}), own_changed=frozenset({"leaf"}))
NOTHING = Situation(stale=frozenset(), own_changed=frozenset())
# A global input changed (toolchain, Cargo.lock): every key moved, no member's own files did.
CONTEXT = Situation(stale=ALL, own_changed=frozenset(), context_changed=ALL)


def _case(
    situation: Situation,
    scope: str,
    selected: list[str],
    run: list[str],
    cached: list[str],
    pending: list[str],
    id: str,
) -> object:
    return pytest.param(situation, scope, selected, run, cached, pending, id=id)


CASES = [
    # scope, selected -> run (dependencies first), from_cache, pending; everything else is skipped.
    _case(HUB_EDITED, "changed", [], ["hub"], [], [], "hub-edited/changed/all"),
    _case(HUB_EDITED, "changed", ["hub", "solo"], ["hub"], ["solo"], [], "hub-edited/changed/hub+solo"),
    _case(HUB_EDITED, "affected", [], ["hub", "mid", "leaf"], [], [], "hub-edited/affected/all"),
    _case(
        HUB_EDITED, "affected", ["hub", "solo"], ["hub", "mid", "leaf"], ["solo"], [], "hub-edited/affected/hub+solo"
    ),
    _case(HUB_EDITED, "workspace", [], ["hub", "mid", "leaf"], ["solo"], [], "hub-edited/workspace/all"),
    _case(HUB_EDITED, "workspace", ["hub", "solo"], ["hub"], ["solo"], [], "hub-edited/workspace/hub+solo"),
    _case(HUB_EDITED, "auto", [], ["hub"], ["solo"], ["mid", "leaf"], "hub-edited/auto/all"),
    _case(HUB_EDITED, "auto", ["hub", "solo"], ["hub"], ["solo"], ["mid", "leaf"], "hub-edited/auto/hub+solo"),
    # The edit lies outside the selection, but leaf was asked for by name: it runs.
    _case(HUB_EDITED, "auto", ["leaf"], ["leaf"], [], [], "hub-edited/auto/leaf"),
    _case(HUB_EDITED, "workspace", ["leaf"], ["leaf"], [], [], "hub-edited/workspace/leaf"),
    _case(LEAF_EDITED, "changed", [], ["leaf"], [], [], "leaf-edited/changed/all"),
    _case(LEAF_EDITED, "affected", [], ["leaf"], [], [], "leaf-edited/affected/all"),
    _case(LEAF_EDITED, "workspace", [], ["leaf"], ["hub", "mid", "solo"], [], "leaf-edited/workspace/all"),
    _case(LEAF_EDITED, "auto", [], ["leaf"], ["hub", "mid", "solo"], [], "leaf-edited/auto/all"),
    _case(LEAF_EDITED, "auto", ["mid"], [], ["mid"], [], "leaf-edited/auto/mid"),
    _case(NOTHING, "changed", [], [], [], [], "nothing/changed/all"),
    _case(NOTHING, "affected", [], [], [], [], "nothing/affected/all"),
    _case(NOTHING, "workspace", [], [], MEMBERS, [], "nothing/workspace/all"),
    _case(NOTHING, "workspace", ["leaf"], [], ["leaf"], [], "nothing/workspace/leaf"),
    _case(NOTHING, "auto", [], [], MEMBERS, [], "nothing/auto/all"),
    _case(NOTHING, "auto", ["mid"], [], ["mid"], [], "nothing/auto/mid"),
    # Context changed: only members with no stale dependency are "changed".
    _case(CONTEXT, "changed", [], ["hub", "solo"], [], [], "context/changed/all"),
    _case(CONTEXT, "changed", ["leaf"], ["leaf"], [], [], "context/changed/leaf"),
    _case(CONTEXT, "affected", [], ["hub", "mid", "leaf", "solo"], [], [], "context/affected/all"),
    _case(CONTEXT, "workspace", [], ["hub", "mid", "leaf", "solo"], [], [], "context/workspace/all"),
    _case(CONTEXT, "workspace", ["mid", "solo"], ["mid", "solo"], [], [], "context/workspace/mid+solo"),
    _case(CONTEXT, "auto", [], ["hub", "solo"], [], ["mid", "leaf"], "context/auto/all"),
    _case(CONTEXT, "auto", ["leaf"], ["leaf"], [], [], "context/auto/leaf"),
    _case(CONTEXT, "auto", ["mid", "leaf"], ["mid", "leaf"], [], [], "context/auto/mid+leaf"),
]


@pytest.mark.parametrize(("situation", "scope", "selected", "run", "cached", "pending"), CASES)
def test_each_scope_runs_caches_and_defers_the_expected_packages(
    situation: Situation, scope: str, selected: list[str], run: list[str], cached: list[str], pending: list[str]
) -> None:
    p = plan(
        scope, MEMBERS, selected, set(situation.stale), situation.own_changed, DEPS, ORDER, situation.context_changed
    )
    assert (p.run, p.from_cache, p.pending) == (run, cached, pending)
    assert set(p.skipped) == ALL - set(run) - set(cached) - set(pending)


def test_a_member_stale_only_because_its_dependency_changed_is_pending_in_auto_not_run() -> None:
    p = plan("auto", MEMBERS, [], {"hub", "mid", "leaf"}, ["hub"], DEPS, ORDER)
    assert "mid" not in p.run and "mid" in p.pending
    assert p.pending == ["mid", "leaf"], "pending in dependency order"


def test_after_a_global_change_only_members_with_no_stale_dependency_are_changed() -> None:
    assert changed_packages(set(ALL), DEPS, [], ALL) == {"hub", "solo"}
    # A stale dependency outside the selection does not count: within the selection, leaf is first.
    assert changed_packages(set(ALL), DEPS, [], ALL, within={"leaf"}) == {"leaf"}
    # A dependency that is not stale does not hold a member back.
    assert changed_packages({"mid", "leaf"}, DEPS, [], {"mid", "leaf"}) == {"mid"}


def test_own_edits_count_even_when_a_dependency_is_also_stale() -> None:
    assert changed_packages({"hub", "mid", "leaf"}, DEPS, ["hub", "leaf"]) == {"hub", "leaf"}


def test_an_own_change_of_a_member_that_is_not_stale_is_ignored() -> None:
    assert changed_packages({"leaf"}, DEPS, ["hub", "leaf"]) == {"leaf"}


def test_skipped_members_carry_the_reason_of_their_scope() -> None:
    assert plan("changed", MEMBERS, [], {"leaf"}, ["leaf"], DEPS, ORDER).skipped["hub"] == (
        "not changed since its last answer"
    )
    assert plan("affected", MEMBERS, [], {"leaf"}, ["leaf"], DEPS, ORDER).skipped["hub"] == (
        "not affected by the changes"
    )
    assert plan("workspace", MEMBERS, ["leaf"], set(), [], DEPS, ORDER).skipped["hub"] == "not selected"
    assert plan("auto", MEMBERS, ["leaf"], set(), [], DEPS, ORDER).skipped["hub"] == "not selected"


def test_an_unknown_scope_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown scope 'everything'"):
        plan("everything", MEMBERS, [], set(), [], DEPS, ORDER)


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[str], dict[str, set[str]], set[str], set[str], set[str], set[str]]:
    n = draw(st.integers(1, 8))
    names = [f"p{i}" for i in range(n)]
    deps: dict[str, set[str]] = {name: set() for name in names}
    for a, b in draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n)):
        deps[names[a]].add(names[b])  # cycles allowed: dev-dependencies when tests are built
    deps = {k: v - {k} for k, v in deps.items()}
    stale = draw(st.sets(st.sampled_from(names)))
    own = draw(st.sets(st.sampled_from(names)))
    context = draw(st.sets(st.sampled_from(names)))
    selected = draw(st.sets(st.sampled_from(names), max_size=3))
    return names, deps, stale, own, context, selected


@settings(max_examples=150, deadline=None)
@given(situations(), st.sampled_from(["changed", "affected", "workspace", "auto"]))
def test_every_plan_is_a_partition_that_never_answers_a_stale_member_from_the_cache(
    s: tuple[list[str], dict[str, set[str]], set[str], set[str], set[str], set[str]], scope: str
) -> None:
    names, deps, stale, own, context, selected = s
    order = _graph.topological_order(deps)
    p = plan(scope, names, selected, stale, own, deps, order, context)
    groups = [set(p.run), set(p.from_cache), set(p.pending), set(p.skipped)]
    assert sum(len(g) for g in groups) == len(names), "disjoint"
    assert set().union(*groups) == set(names), "covering"
    assert not set(p.from_cache) & stale, "a stale member is never answered from the cache"
    assert set(p.run) <= stale, "nothing fresh is run again"
    assert set(p.pending) <= stale
    rank = {n: i for i, n in enumerate(order)}
    assert p.run == sorted(p.run, key=rank.__getitem__)
    chosen = selected or set(names)
    if scope in ("workspace", "auto"):
        assert chosen <= set(p.run) | set(p.from_cache) | set(p.pending), "every selected member is answered"
    if scope == "workspace":
        assert set(p.run) == chosen & stale
