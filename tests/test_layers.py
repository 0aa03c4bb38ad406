"""The layers stay apart: read from the source with ``ast``, so a new import is checked the day it is written.

- no import circle between the top-level packages: ``jobs`` (RQ entry points) imports ``portal``
  to build its app context, so ``portal`` names jobs by string and imports nothing of ``jobs``
  but ``jobs.queues``, queue names and connections that import nothing of the project;
- ``billing/`` never imports Flask, ``portal`` or ``jobs`` (it runs in requests, jobs and the CLI alike);
- only the gateway module imports ``stripe`` (every Stripe call and error goes through it).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("billing", "jobs", "portal", "sandbox", "scripts")
GATEWAY = "billing/gateway/stripe_gateway.py"
# Leaf modules any layer may use: they import nothing of the project (checked below).
SHARED = {"jobs.queues"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file (inside functions too), as dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1]) if path.is_relative_to(ROOT) else ""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
    return names


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(module: str) -> str:
    return module.split(".")[0]


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {package: set() for package in PACKAGES}
    for package in PACKAGES:
        for path in sources(package):
            graph[package] |= {top(name) for name in imported_modules(path)
                               if top(name) in PACKAGES and top(name) != package and name not in SHARED}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle in ``graph`` as the list of its nodes (first one repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for following in sorted(graph.get(node, ())):
            circle = visit(following, [*path, node])
            if circle:
                return circle
        done.add(node)
        return None

    for start in sorted(graph):
        circle = visit(start, [])
        if circle:
            return circle
    return None


def test_no_circle_between_top_level_packages():
    assert find_circle(package_graph()) is None


@pytest.mark.parametrize("module", sorted(SHARED))
def test_shared_modules_import_nothing_of_the_project(module):
    path = ROOT / (module.replace(".", "/") + ".py")
    assert {name for name in imported_modules(path) if top(name) in PACKAGES} == set()


def test_the_circle_finder_finds_a_circle():
    assert find_circle({"portal": {"jobs"}, "jobs": {"billing", "portal"}, "billing": set()}) == [
        "jobs", "portal", "jobs"]
    assert find_circle({"portal": {"jobs", "billing"}, "jobs": {"billing"}, "billing": set()}) is None


@pytest.mark.parametrize("path", sources("billing"), ids=lambda path: str(path.relative_to(ROOT)))
def test_billing_imports_neither_flask_nor_the_portal_nor_jobs(path):
    forbidden = {name for name in imported_modules(path) if top(name) in {"flask", "portal", "jobs"}
                 or top(name).startswith("flask_")}
    assert forbidden == set()


@pytest.mark.parametrize("package", ["billing", "jobs", "portal", "scripts", "bench"])
def test_only_the_gateway_imports_stripe(package):
    importers = {str(path.relative_to(ROOT)) for path in sources(package)
                 if any(top(name) == "stripe" for name in imported_modules(path))}
    assert importers <= {GATEWAY}


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    import stripe\n    from flask import g\n")
    assert {"stripe", "flask"} <= imported_modules(module)
