"""The shape of the code, outside tests and benchmarks: no function longer than 60 lines, and
no import cycle among the top-level packages at module level (imports inside functions are the
way to break one, and say so)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.runs import PROJECT_ROOT

LONGEST_FUNCTION = 60


def source_files() -> Iterator[Path]:
    for path in sorted(PROJECT_ROOT.rglob("*.py")):
        parts = path.relative_to(PROJECT_ROOT).parts
        if parts[0] not in ("tests", "benchmarks", "build") and not any(p.startswith(".") for p in parts):
            yield path


def top_level_packages() -> set[str]:
    packages = {path.parent.name for path in PROJECT_ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    return packages | {path.stem for path in PROJECT_ROOT.glob("*.py") if path.stem != "setup"}


def long_functions() -> set[str]:
    found = set()
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION:
                    found.add(f"{path.relative_to(PROJECT_ROOT)}:{node.name}")
    return found


def module_level_imports(tree: ast.Module) -> Iterator[str]:
    """Modules imported when the module is imported: not inside a function."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        pending += [child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)]


def package_imports() -> dict[str, set[str]]:
    """Top-level package -> the other top-level packages its modules import at module level."""
    ours, graph = top_level_packages(), {}
    for path in source_files():
        package = path.relative_to(PROJECT_ROOT).parts[0].removesuffix(".py")
        for module in module_level_imports(ast.parse(path.read_text())):
            imported = module.split(".")[0]
            if imported in ours and imported != package:
                graph.setdefault(package, set()).add(imported)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found = []

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target == path[0]:
                found.append([*path, target])
            elif target not in path and target > path[0]:  # each cycle once, from its smallest package
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    return found


def test_no_function_is_longer_than_60_lines():
    assert long_functions() == set(), f"split these into functions of at most {LONGEST_FUNCTION} lines"


def test_no_package_imports_one_that_imports_it_back():
    graph = package_imports()
    assert {"simulators", "hypers", "generators"} <= graph["ensembles"]  # the check sees the imports
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_readme_is_short_and_starts_with_the_two_commands():
    readme = (PROJECT_ROOT / "README.md").read_text().splitlines()
    assert len(readme) <= 250
    commands = [line for line in readme if line.startswith("pip install")]
    assert commands[:2] == ['pip install -e ".[tf]" && python run_ensemble.py',
                            'pip install -e ".[test]" && python -m pytest -q -n 2']
    assert readme.index(commands[0]) < readme.index("## How a run flows")
