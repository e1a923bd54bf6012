"""The layout of docs/architecture.md holds: few top-level modules, no import cycle, no private name
reached across modules, each stage importing only what it may, small modules and functions.

The source is read with ``ast`` (every import counts, also those inside functions), so a rule that
is broken fails here whatever the tests import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"tfsal": ROOT / "tfsal", "tfsal.cli": ROOT / "cli"}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60
LONG = "# long:"  # on a def line: why the function may be longer

# stage -> stages it must never import (docs/architecture.md); evaluation.metrics is a leaf anyone may use
FORBIDDEN = {
    "util": {"data", "models", "train", "explain", "outputs", "evaluation", "recipes", "serving", "batch", "cli"},
    "data": {"models", "train", "explain", "outputs", "evaluation", "recipes", "serving", "batch", "cli"},
    "models": {"data", "train", "explain", "outputs", "evaluation", "recipes", "serving", "batch", "cli"},
    "train": {"explain", "outputs", "evaluation", "recipes", "serving", "batch", "cli"},
    "explain": {"train", "outputs", "evaluation", "recipes", "serving", "batch", "cli"},
    "outputs": {"train", "evaluation", "recipes", "serving", "batch", "cli"},
    "evaluation": {"train", "recipes", "serving", "batch", "cli"},
    "recipes": {"explain", "outputs", "serving", "batch", "cli"},
    "serving": {"train", "evaluation", "recipes", "batch", "cli"},
    "batch": {"train", "evaluation", "recipes", "cli"},
}
ANYONE_MAY_IMPORT = {"tfsal.evaluation.metrics", "tfsal.errors", "tfsal._version", "tfsal"}
# module -> modules it may import although its stage may not (docs/architecture.md says why)
EXCEPTIONS = {"tfsal.train.explainer": {"tfsal.explain.amortised", "tfsal.explain.counterfactual", "tfsal.explain.mask",
                                        "tfsal.explain.infill", "tfsal.explain.classifier_adapter",
                                        "tfsal.explain.scoring"}}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(module: str) -> list[tuple[str, str | None]]:
    """``(imported module, name or None)`` for every import in ``module``, function-level ones too."""
    found = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((sub, None) if sub in MODULES else (source, alias.name))
    return [(target, name) for target, name in found if target == "tfsal" or target.startswith("tfsal.")]


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] == ["tfsal", "cli"]:
        return "cli"
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (ROOT / "tfsal" / parts[1]).is_dir()) else None


def _known(target: str) -> str:
    """The module an import names (a dotted path inside tfsal), trimmed to one that exists."""
    while target not in MODULES and "." in target:
        target = target.rpartition(".")[0]
    return target


def test_the_top_of_the_package_holds_few_modules():
    top = sorted(p.name for p in (ROOT / "tfsal").glob("*.py"))
    assert len(top) <= 8, top


def test_no_import_cycle():
    graph = {m: {_known(t) for t, _ in _imports(m)} - {m} for m in MODULES}
    for m in graph:  # importing a package runs its __init__: a cycle through it counts too
        graph[m] = {t for t in graph[m] if t in MODULES}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, cycles


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_imports_a_private_name_of_another():
    offences = []
    for module in MODULES:
        for target, name in _imports(module):
            private_module = any(_private(part) for part in target.split("."))
            if (private_module and not (module == "tfsal" and target == "tfsal._version")) or (
                    name is not None and _private(name)):
                offences.append(f"{module}: {target}{'.' + name if name else ''}")
        aliases = {}
        for node in ast.walk(TREES[module]):
            if isinstance(node, ast.Import):
                aliases.update({(a.asname or a.name.split(".")[0]): a.name for a in node.names if a.asname})
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node)
                aliases.update({(a.asname or a.name): f"{source}.{a.name}" for a in node.names
                                if f"{source}.{a.name}" in MODULES})
        for node in ast.walk(TREES[module]):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and _private(node.attr)):
                offences.append(f"{module}: {aliases[node.value.id]}.{node.attr}")
    assert not offences, offences


@pytest.mark.parametrize("stage", sorted(FORBIDDEN))
def test_each_stage_imports_only_what_it_may(stage):
    offences = []
    for module in MODULES:
        if _stage(module) != stage:
            continue
        for target, _ in _imports(module):
            target = _known(target)
            if (target not in ANYONE_MAY_IMPORT and target not in EXCEPTIONS.get(module, ())
                    and _stage(target) in FORBIDDEN[stage]):
                offences.append(f"{module} imports {target}")
    assert not offences, offences


def test_modules_and_functions_are_small():
    offences = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_MODULE_LINES:
            offences.append(f"{module}: {len(lines)} lines")
        for node in ast.walk(TREES[module]):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and LONG not in lines[node.lineno - 1]:
                    offences.append(f"{module}.{node.name}: {length} lines")
    assert not offences, offences


def test_the_rules_catch_what_they_are_for():
    """The checks above see through relative imports and package roots (their own test)."""
    assert _resolve("tfsal.explain.mask", ast.parse("from .scoring import EPS").body[0]) == "tfsal.explain.scoring"
    assert _resolve("tfsal.explain", ast.parse("from . import registry").body[0]) == "tfsal.explain"
    assert _stage("tfsal.explain.mask") == "explain" and _stage("tfsal.errors") is None
    assert _stage("tfsal.cli.main") == "cli" and _known("tfsal.explain.mask.MaskOptimiser") == "tfsal.explain.mask"
    assert _private("_grid") and not _private("__version__") and not _private("grid")
