"""The hub side of osl-hooks: configuration (`OSLHooks`), per-spawn plans, and delivery into the server.

In jupyterhub_config.py::

    c.OSLHooks.environments = [
        {"name": "base-py", "mode": "synced", "source": "/opt/conda/envs/base-py"},
    ]
    import osl_hooks.hub
    osl_hooks.hub.install(c)   # last: checks c.OSLHooks, chains the spawner hooks

This package imports JupyterHub/KubeSpawner only where it needs them (lazily); the pod-side engine
(`osl_hooks.engine.runner`, `osl_hooks.cli`) never imports this package. The only thing that crosses from here
to the server is the plan (`osl_hooks.plan`), as JSON in $OSL_HOOKS_PLAN. See docs/hub.md.
"""

from .checks import check_config, validate_config
from .config import DELIVERIES, OSLHooks, OSLHooksConfigError
from .hooks import OSLHooksRuntime, install, resolve_spawner_class
from .planner import Planner, SpawnContext

__all__ = [
    "DELIVERIES",
    "OSLHooks",
    "OSLHooksConfigError",
    "OSLHooksRuntime",
    "Planner",
    "SpawnContext",
    "check_config",
    "install",
    "resolve_spawner_class",
    "validate_config",
]
