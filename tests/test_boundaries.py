"""The two worlds stay apart: the engine (pod side) and the hub side meet only in the two contracts.

- `osl_hooks/engine/` runs as the user in any notebook image: it must not import JupyterHub, KubeSpawner,
  `osl_hooks.hub` or `osl_hooks.demo`;
- `osl_hooks/hub/` runs in the JupyterHub process and never touches user files: it must not import the engine;
- `osl_hooks/lab/` runs in the user's Jupyter server: it uses the engine and the contracts, never the hub side;
- the contracts (`plan`, `events`, `status`, the generated plan validator and `_records`, their classes' maker)
  are imported by both sides and import neither;
- no import cycle anywhere in the package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "osl_hooks"
CONTRACTS = {
    "osl_hooks.plan",
    "osl_hooks.events",
    "osl_hooks.status",
    "osl_hooks._plan_validator",
    "osl_hooks._records",
}


def import_graph(package: Path) -> dict[str, set[str]]:
    """Every module of `package` -> the package's modules it imports, at module level or inside a function."""
    name = package.name
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        module = ".".join((name, *parts[:-1])) if is_package else ".".join((name, *parts))
        modules[module] = (path, is_package)
    graph = {}
    for module, (path, is_package) in modules.items():
        here = module.split(".") if is_package else module.split(".")[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[: len(here) - node.level + 1]) if node.level else ""
                stem = ".".join(p for p in (base, node.module or "") if p)
                targets = [stem, *(f"{stem}.{alias.name}" for alias in node.names)]
            else:
                continue
            # A module's own ancestor packages are not counted: importing from them only runs their __init__.
            imported.update(t for t in targets if t in modules and t != module and not module.startswith(t + "."))
        graph[module] = imported
    return graph


def boundary_violations(graph: dict[str, set[str]]) -> list[str]:
    """The imports that cross a boundary they must not, as 'importer -> imported'."""

    def world(module: str) -> str:
        if module in CONTRACTS:
            return "contract"
        parts = module.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in ("engine", "hub", "demo", "lab") else "top"

    forbidden = {
        "engine": {"hub", "demo", "top", "lab"},
        "hub": {"engine", "demo", "top", "lab"},
        "lab": {"hub", "demo", "top"},  # the user's Jupyter server: the engine and the contracts only
        "contract": {"engine", "hub", "demo", "top", "lab"},
    }
    return sorted(
        f"{importer} -> {imported}"
        for importer, targets in graph.items()
        for imported in targets
        if world(imported) in forbidden.get(world(importer), set())
    )


def cycles(graph: dict[str, set[str]]) -> list[str]:
    """Modules that reach themselves through imports."""

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    return sorted(m for m in graph if reaches(m, m))


def test_the_worlds_meet_only_in_the_contracts():
    graph = import_graph(PACKAGE)
    assert any(m.startswith("osl_hooks.engine.") for m in graph) and any(m.startswith("osl_hooks.hub.") for m in graph)
    assert boundary_violations(graph) == []


def test_no_import_cycle_anywhere_in_the_package():
    graph = import_graph(PACKAGE)
    assert cycles(graph) == []
    hooks = "osl_hooks.hub.hooks"
    # hooks wires everything together: only the hub package's face (its __init__, for `install`) imports it
    assert graph[hooks] and [m for m, deps in graph.items() if hooks in deps] == ["osl_hooks.hub"]


def test_the_checks_find_an_engine_module_that_imports_the_hub(tmp_path):
    """The two checks above can fail: a copy of the package with one engine module importing the hub, and
    one contract importing the engine back, is caught by both."""
    import shutil

    copy = tmp_path / "osl_hooks"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    runner = copy / "engine" / "runner.py"
    runner.write_text(runner.read_text() + "\nfrom ..hub.config import OSLHooks\n")
    events = copy / "events.py"
    events.write_text(events.read_text() + "\nfrom .engine import reporter\n")
    handlers = copy / "lab" / "handlers.py"
    handlers.write_text(handlers.read_text() + "\nfrom ..hub.config import OSLHooks\n")
    graph = import_graph(copy)
    violations = boundary_violations(graph)
    assert "osl_hooks.engine.runner -> osl_hooks.hub.config" in violations
    assert "osl_hooks.lab.handlers -> osl_hooks.hub.config" in violations
    assert "osl_hooks.events -> osl_hooks.engine.reporter" in violations
    assert "osl_hooks.events" in cycles(graph)  # reporter imports events


def test_the_engine_loads_no_hub_code():
    """At run time too: importing every engine module and the CLI pulls in no JupyterHub, KubeSpawner or hub."""
    engine = sorted(f"osl_hooks.engine.{p.stem}" for p in (PACKAGE / "engine").glob("*.py") if p.stem != "__init__")
    code = (
        f"import sys, osl_hooks.cli, {', '.join(engine)}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jupyterhub', 'kubespawner', 'kubernetes_asyncio') "
        "or m.startswith(('osl_hooks.hub', 'osl_hooks.demo'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
