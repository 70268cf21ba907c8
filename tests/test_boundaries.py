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
