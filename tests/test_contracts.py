"""Import contracts: pyproject's import-linter contracts hold, and no module import cycle exists in engine or app."""
from __future__ import annotations

import itertools
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
CONTRACTS = [contract["id"] for contract in CONFIG["contracts"]]
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


@pytest.mark.parametrize("contract", CONTRACTS)
def test_import_linter_contract(contract: str) -> None:
    # One contract per test, so a broken cycle contract does not hide whether the forbidden ones hold.
    # importlinter.cli has no __main__ guard (`-m` would exit 0 doing nothing), so call the entry point itself;
    # --no-cache: the cache would be written into the shared checkout.
    p = subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo", "--contract", contract],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    print(p.stdout, p.stderr)
    assert "Contracts: " in p.stdout, f"lint-imports did not check anything:\n{p.stdout}\n{p.stderr}"
    assert p.returncode == 0, f"lint-imports --contract {contract} failed:\n{p.stdout}\n{p.stderr}"


def import_graph() -> nx.DiGraph:
    """Module → module imports of engine and app; function-level imports count, `if TYPE_CHECKING:` ones do not."""
    graph = grimp.build_graph("engine", "app", exclude_type_checking_imports=CONFIG["exclude_type_checking_imports"],
                              cache_dir=None)
    digraph = nx.DiGraph()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            details = graph.get_import_details(importer=importer, imported=imported)
            digraph.add_edge(importer, imported, lines=[f"{d['line_number']}: {d['line_contents']}" for d in details])
    return digraph


def describe(digraph: nx.DiGraph, cycle: list[tuple[str, str]]) -> str:
    """A cycle as its module chain, then the import lines that close it."""
    chain = " -> ".join([cycle[0][0], *(imported for _, imported in cycle)])
    lines = [f"    {a} -> {b}   ({'; '.join(digraph.edges[a, b]['lines'])})" for a, b in cycle]
    return "\n".join([chain, *lines])


def test_no_import_cycles() -> None:
    digraph = import_graph()
    cycles = []
    # One shortest cycle per strongly connected component: listing every simple cycle can explode combinatorially.
    for component in sorted(nx.strongly_connected_components(digraph), key=min):
        sub = digraph.subgraph(component)
        if len(component) > 1 or sub.has_edge(*[next(iter(component))] * 2):
            start = min(component)
            cycles.append(f"[{len(component)} modules: {', '.join(sorted(component))}]\n"
                          + describe(digraph, shortest_cycle(sub, start)))
    report = "\n\n".join(cycles)
    print(report)
    assert not cycles, f"{len(cycles)} import cycle(s) (function-level imports count):\n\n{report}"


def shortest_cycle(graph: nx.DiGraph, start: str) -> list[tuple[str, str]]:
    """The shortest cycle through start, as edges (start is in a strongly connected component, so one exists)."""
    best: list[str] | None = None
    for successor in graph.successors(start):
        path = nx.shortest_path(graph, successor, start)
        if best is None or len(path) < len(best):
            best = path
    assert best is not None
    nodes = [start, *best]
    return list(itertools.pairwise(nodes))


def test_no_reference_to_a_design_file_outside_the_repository():
    """Comments cite ARCHITECTURE.md, which is in the repository; a newcomer must be able to follow them."""
    cited = [f"{p.relative_to(ROOT)}:{i}" for p in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("app/**/*.py"),
                                                    *ROOT.glob("tests/**/*.py"), ROOT / "pyproject.toml"]
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if "DESIGN" + ".md" in line]
    assert not cited, cited
