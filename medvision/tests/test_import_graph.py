"""Dependencies run one way (README, "Architecture"). Read from the source (every import
statement, the ones inside functions included), so a lazy import cannot hide a back edge.

    portal, exports -> voice -> analysis -> procedures -> medvision (the shared base)
    portal, exports -> reporting (structured reports, QA metrics) -> analysis

``medvision`` is also the project's wiring (URLs, routing, Celery); only those modules may
name the apps. ``analysis.engine`` is the model engine and knows nothing of Django. The
``testing`` package (test and benchmark helpers) is never imported by production code.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("medvision", "procedures", "analysis", "voice", "reporting", "exports", "portal")

# Which apps each app may import. Anything not listed is a back edge.
MAY_IMPORT = {
    "medvision": set(),
    "procedures": {"medvision"},
    "analysis": {"medvision", "procedures"},
    "voice": {"medvision", "procedures", "analysis"},
    "reporting": {"medvision", "procedures", "analysis"},
    "exports": {"medvision", "procedures", "analysis", "voice", "reporting"},
    "portal": {"medvision", "procedures", "analysis", "reporting"},
}
# The project's wiring: it puts the apps together, so it names them.
WIRING = {"medvision.urls", "medvision.api_urls", "medvision.routing", "medvision.asgi", "medvision.celery"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _production_modules() -> dict[str, Path]:
    modules = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if {"tests", "migrations"} & set(path.parts):
                continue
            modules[_module_name(path)] = path
    return modules


def _imported_names(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _production_modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for imported in _imported_names(name, path):
            while imported and imported not in modules:  # "from pkg import name": the module is pkg
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                edges.add(imported)
        graph[name] = edges
    return graph


def _app(module: str) -> str:
    return module.partition(".")[0]


def test_every_import_between_apps_runs_down_the_layers():
    back_edges = [
        f"{module} imports {imported}"
        for module, edges in _graph().items()
        for imported in edges
        if _app(imported) != _app(module)
        and _app(imported) not in MAY_IMPORT[_app(module)]
        and module not in WIRING
    ]
    assert back_edges == []


def test_no_production_module_imports_the_test_helpers():
    offending = [f"{name} imports {imported}"
                 for name, path in _production_modules().items()
                 for imported in _imported_names(name, path)
                 if imported.partition(".")[0] == "testing"]
    assert offending == []


def test_the_engine_is_django_free():
    offending = []
    for name, path in _production_modules().items():
        if not name.startswith("analysis.engine"):
            continue
        for imported in _imported_names(name, path):
            top = imported.partition(".")[0]
            project = top in APPS and not imported.startswith("analysis.engine")
            if top in ("django", "rest_framework", "channels", "celery") or project:
                offending.append(f"{name} imports {imported}")
    assert offending == []


def test_no_module_imports_itself_back_through_others():
    graph = _graph()
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

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
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_checker_sees_lazy_imports(tmp_path):
    # The rules above are only as good as the parser: an import inside a function counts.
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from analysis.tasks import process_video\n    from . import sibling\n")
    assert {"analysis.tasks", "analysis.tasks.process_video", "procedures", "procedures.sibling"} <= _imported_names(
        "procedures.lazy", module)
