"""The pod-side engine runs in any notebook image: it must not pull in JupyterHub or KubeSpawner."""

import subprocess
import sys


def test_engine_imports_no_hub_code():
    code = (
        "import sys, osl_hooks.cli, osl_hooks.runner, osl_hooks.synced, osl_hooks.update, osl_hooks.kernels; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jupyterhub', 'kubespawner', 'kubernetes_asyncio') "
        "or m.startswith('osl_hooks.hub')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_hub_package_has_no_import_cycle():
    """Every import between hub modules (module level or inside a function) points one way."""
    import ast
    from pathlib import Path

    hub = Path(__file__).resolve().parent.parent / "osl_hooks" / "hub"
    graph = {}
    for path in hub.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [alias.name for alias in node.names]
                imported.update(name.split(".")[0] for name in names)
        graph[path.stem] = imported & {p.stem for p in hub.glob("*.py")}
    graph.pop("__init__")

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m)] == []
    assert graph["hooks"] and not any("hooks" in deps for deps in graph.values())  # nothing imports hooks
