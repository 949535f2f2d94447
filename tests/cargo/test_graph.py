"""Properties of the pure graph algorithms, on random DAGs and on graphs with cycles."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cargo import _graph

Graph = dict[str, set[str]]

_SETTINGS = settings(max_examples=150, deadline=None)


def _name(i: int) -> str:
    return f"n{i:02d}"


@st.composite
def graphs(draw: st.DrawFn, *, acyclic: bool) -> Graph:
    """Edges point from a package to its dependencies. Acyclic graphs only point to lower indices."""
    n = draw(st.integers(min_value=1, max_value=12))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    g: Graph = {_name(i): set() for i in range(n)}
    for a, b in edges:
        if acyclic:
            if a == b:
                continue
            a, b = max(a, b), min(a, b)
        g[_name(a)].add(_name(b))
    return g


any_graph = st.one_of(graphs(acyclic=True), graphs(acyclic=False))


def _closure(g: Graph) -> dict[str, set[str]]:
    """Brute-force reflexive transitive closure (Floyd-Warshall style fixpoint)."""
    reach = {n: {n} | set(g[n]) for n in g}
    changed = True
    while changed:
        changed = False
        for n in g:
            extra = set().union(*(reach[m] for m in reach[n])) - reach[n]
            if extra:
                reach[n] |= extra
                changed = True
    return reach


@_SETTINGS
@given(graphs(acyclic=True))
def test_topological_order_of_a_dag_puts_every_dependency_before_its_dependent(g: Graph) -> None:
    order = _graph.topological_order(g)
    assert sorted(order) == sorted(g)
    pos = {n: i for i, n in enumerate(order)}
    for node, deps in g.items():
        for dep in deps:
            assert pos[dep] < pos[node], (dep, node, order)


@_SETTINGS
@given(any_graph)
def test_topological_order_puts_dependencies_first_except_within_a_cycle(g: Graph) -> None:
    order = _graph.topological_order(g)
    assert sorted(order) == sorted(g), "every node exactly once"
    pos = {n: i for i, n in enumerate(order)}
    reach = _closure(g)
    for node, deps in g.items():
        for dep in deps:
            in_same_cycle = node in reach[dep] and dep in reach[node]
            if not in_same_cycle:
                assert pos[dep] < pos[node], (dep, node, order)


@_SETTINGS
@given(any_graph)
def test_strongly_connected_partitions_the_nodes_into_mutually_reachable_groups(g: Graph) -> None:
    components = _graph.strongly_connected(g)
    flat = [n for c in components for n in c]
    assert sorted(flat) == sorted(g), "a partition: every node in exactly one component"
    reach = _closure(g)
    where = {n: i for i, c in enumerate(components) for n in c}
    for a in g:
        for b in g:
            mutual = b in reach[a] and a in reach[b]
            assert (where[a] == where[b]) == mutual, (a, b, components)
    for c in components:
        assert c == sorted(c), "members of a component are sorted by name"


@_SETTINGS
@given(any_graph)
def test_components_come_after_every_component_they_depend_on(g: Graph) -> None:
    components = _graph.strongly_connected(g)
    where = {n: i for i, c in enumerate(components) for n in c}
    for node, deps in g.items():
        for dep in deps:
            assert where[dep] <= where[node]


@_SETTINGS
@given(any_graph, st.data())
def test_reachable_agrees_with_a_brute_force_closure(g: Graph, data: st.DataObject) -> None:
    start = data.draw(st.sets(st.sampled_from(sorted(g)), max_size=3))
    reach = _closure(g)
    expected = set().union(*(reach[s] for s in start)) if start else set()
    assert _graph.reachable(start, g) == expected


@_SETTINGS
@given(any_graph, st.data())
def test_the_reverse_closure_is_everything_that_reaches_the_start(g: Graph, data: st.DataObject) -> None:
    start = data.draw(st.sets(st.sampled_from(sorted(g)), max_size=3))
    reach = _closure(g)
    expected = {n for n in g if reach[n] & start}
    assert _graph.reachable(start, _graph.reverse_edges(g)) == expected


@_SETTINGS
@given(any_graph)
def test_reverse_edges_inverts_every_edge_and_keeps_every_node(g: Graph) -> None:
    r = _graph.reverse_edges(g)
    assert set(r) == set(g)
    assert {(a, b) for a, bs in g.items() for b in bs} == {(b, a) for a, bs in r.items() for b in bs}


@_SETTINGS
@given(any_graph)
def test_cycles_are_exactly_the_multi_member_components_and_self_loops(g: Graph) -> None:
    reach = _closure(g)
    found = _graph.cycles(g)
    cyclic_nodes = {n for c in found for n in c}
    for n in g:
        on_a_cycle = n in g[n] or any(m != n and n in reach[m] for m in reach[n])
        assert (n in cyclic_nodes) == on_a_cycle


@_SETTINGS
@given(graphs(acyclic=True))
def test_a_dag_has_no_cycles(g: Graph) -> None:
    assert _graph.cycles(g) == []
    assert all(len(c) == 1 for c in _graph.strongly_connected(g))


def test_a_2000_node_chain_is_ordered_without_recursion_errors() -> None:
    n = 2000
    names = [_name(i) if i < 100 else f"n{i}" for i in range(n)]
    chain: Graph = {names[i]: ({names[i - 1]} if i else set()) for i in range(n)}
    order = _graph.topological_order(chain)
    assert order == names
    assert _graph.reachable([names[-1]], chain) == set(names)
    assert _graph.reachable([names[0]], _graph.reverse_edges(chain)) == set(names)
    assert _graph.cycles(chain) == []


def test_a_2000_node_ring_is_one_component() -> None:
    n = 2000
    names = [f"n{i:04d}" for i in range(n)]
    ring: Graph = {a: {b} for a, b in pairwise([*names, names[0]])}
    assert _graph.strongly_connected(ring) == [sorted(names)]
    assert _graph.cycles(ring) == [sorted(names)]


def test_a_dev_dependency_cycle_keeps_its_members_together_after_their_dependencies() -> None:
    # a's tests use b, b depends on a; both depend on the hub; app depends on b.
    g: Graph = {"hub": set(), "a": {"hub", "b"}, "b": {"a", "hub"}, "app": {"b"}}
    assert _graph.topological_order(g) == ["hub", "a", "b", "app"]
    assert _graph.cycles(g) == [["a", "b"]]


def test_a_self_loop_is_a_cycle_but_a_lone_node_is_not() -> None:
    assert _graph.cycles({"a": {"a"}, "b": set()}) == [["a"]]


def test_dependencies_missing_from_the_mapping_are_still_ordered_first() -> None:
    assert _graph.topological_order({"app": {"external"}}) == ["external", "app"]
    assert _graph.reachable(["app"], {"app": {"external"}}) == {"app", "external"}
