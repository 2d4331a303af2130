"""The package's shape: no import cycle among ``src/pyq`` modules at run time.

Every ``import`` / ``from ... import`` counts, at module level or inside a function (a lazy
import that closes a circle is still a circle when it runs); imports under ``if TYPE_CHECKING:``
do not. Importing ``a.b.c`` from outside ``a.b`` also runs ``a.b``'s ``__init__``, so that edge
counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "pyq"

#: importing module -> {imported module: first line that imports it}
Graph = dict[str, dict[str, int]]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
            or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def run_time_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield from run_time_imports(other)
        else:
            yield from run_time_imports(child)


def imported_names(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """Dotted names the statement may load: the module, its ``from`` names, and their packages."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = importer if is_package else importer.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    parts = {name: name.split(".") for name in names}
    return sorted({".".join(p[:i]) for p in parts.values() for i in range(1, len(p) + 1)})


def import_graph() -> Graph:
    files = {module_name(path): path for path in SRC.rglob("*.py")}
    graph: Graph = {}
    for importer, path in files.items():
        edges = graph.setdefault(importer, {})
        for node in run_time_imports(ast.parse(path.read_text(), str(path))):
            for target in imported_names(node, importer, path.name == "__init__.py"):
                own_package = f"{importer}.".startswith(f"{target}.")  # already initialising
                if target in files and target != importer and not own_package:
                    edges.setdefault(target, node.lineno)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = stack[stack.index(node):]
            del stack[stack.index(node):]
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe(group: list[str], graph: Graph) -> str:
    edges = [f"  {a} -> {b} (line {line})" for a in group for b, line in sorted(graph[a].items()) if b in group]
    return "\n".join([" <-> ".join(group), *edges])


def test_the_graph_sees_module_function_and_package_imports() -> None:
    graph = import_graph()
    assert "pyq.payload" in graph["pyq.client"]  # from . import payload
    assert "pyq.unique" in graph["pyq.processor"]  # a function-level import of the package
    assert "pyq.job" not in graph["pyq.middleware"] and "pyq.processor" not in graph["pyq.middleware"]


def test_no_import_cycle_among_pyq_modules() -> None:
    graph = import_graph()
    found = cycles(graph)
    assert not found, "run-time import cycles:\n" + "\n".join(describe(group, graph) for group in found)


def test_the_job_model_client_and_unique_jobs_do_not_import_one_another() -> None:
    graph = import_graph()
    job_model = {name for name in graph if name == "pyq.job" or name.startswith("pyq.job.")}
    unique = {name for name in graph if name.startswith("pyq.unique")}
    for name in job_model:
        assert not set(graph[name]) & {"pyq.client", *unique}, name
    for name in ("pyq.client", "pyq.retry", *unique):
        assert not set(graph[name]) & job_model, name
