"""The package's import graph: no cycle, and at most 12 layers, where a module's layer is one above
the highest layer it imports (type-checking imports, which never run, left out). The direction
of the layers is pyproject.toml's import-linter contract (lint-imports, in `make test`)."""

from functools import cache

import grimp

MAX_LAYERS = 12


def import_graph() -> dict[str, set[str]]:
    """Each module of segdec -> the modules of segdec it imports (a package's import of its own
    parent package left out: that is Python loading the package, not a dependency)."""
    graph = grimp.build_graph("segdec", exclude_type_checking_imports=True)
    return {module: {imported for imported in graph.find_modules_directly_imported_by(module)
                     if not module.startswith(imported + ".")}
            for module in graph.modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle a depth-first walk meets, as the modules around it."""
    found, state, path = [], {}, []

    def walk(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                found.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                walk(imported)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module)
    return found


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    @cache
    def layer(module: str) -> int:
        return 1 + max((layer(imported) for imported in graph[module]), default=0)

    return {module: layer(module) for module in graph}


def test_the_import_graph_has_no_cycle():
    assert cycles(import_graph()) == []


def test_the_package_stands_in_at_most_twelve_layers():
    depth = layers(import_graph())
    deepest = max(depth.values())
    assert deepest <= MAX_LAYERS, sorted(depth.items(), key=lambda item: -item[1])[:5]
    # Pure functions stay on the ground floor: they import nothing of segdec.
    assert {module: depth[module] for module in ("segdec.errors", "segdec.statistics",
                                                 "segdec.paths", "segdec.io")} == dict.fromkeys(
        ("segdec.errors", "segdec.statistics", "segdec.paths", "segdec.io"), 1)
    assert depth["segdec.metrics"] == 2  # numpy, scikit-learn and segdec.errors only


def test_the_layer_count_sees_a_cycle_and_a_chain():
    """The two measures on a made-up graph, so that neither passes by measuring nothing."""
    chain = {"a": {"b"}, "b": {"c"}, "c": set()}
    assert layers(chain) == {"a": 3, "b": 2, "c": 1} and cycles(chain) == []
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
