"""Wiring osl-hooks into JupyterHub: `install(c)` and the spawn hooks it sets.

``osl_hooks.hub.install(c)``, the last line of jupyterhub_config.py, checks ``c.OSLHooks`` (a bad
configuration stops the hub at start) and sets the spawner's hooks, chaining the admin's own:

- ``pre_spawn_hook`` (every spawner): the admin's hook first; then, for local spawners, the plan is
  computed and delivered by wrapping ``Spawner.cmd`` and setting ``$OSL_HOOKS_PLAN`` in
  ``Spawner.environment``.
- ``modify_pod_hook`` (KubeSpawner): the admin's hook first; then the plan is computed for the final pod
  — after KubeSpawner applied the chosen profile's ``kubespawner_override`` (it does that inside
  ``start()``, after ``pre_spawn_hook``) and after the admin's hook — and delivered in the pod.

JupyterHub runs ``await maybe_future(spawner.run_pre_spawn_hook())`` and KubeSpawner runs
``pod = await maybe_future(self.modify_pod_hook(self, pod))``; both hooks here are coroutines that await
the admin's hook the same way, so sync and async admin hooks both work. They do no I/O: the work per
spawn is set lookups, a cached plan, and a few pod fields.
"""

from __future__ import annotations

import inspect
import posixpath
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets.config import Config

from ..plan import PLAN_ENV_VAR
from ..status import LOG_FILE
from . import delivery as dv
from . import spawner_internals as si
from .checks import validate_config
from .config import AUTO, INIT_CONTAINER, OSLHooks
from .env_images import mount_env_images
from .metrics import register_fleet_metrics
from .planner import Planner, SpawnContext, group_names
from .report import use_report
from .selection import CheckedConfig
from .spawner import OSLHooksSpawnerMixin, spawn_error, with_progress
from .spawner_config import effective_config, is_kubespawner

_CHAINED_FROM = "_osl_hooks_chained_from"
TEMPLATES = str(Path(__file__).resolve().parent / "templates")


def resolve_spawner_class(config: Config) -> type:
    """The spawner class `c.JupyterHub.spawner_class` names (a class, an entry point name, or an import string)."""
    value = config.JupyterHub.get("spawner_class") if "JupyterHub" in config else None
    if value is None:
        from jupyterhub.spawner import LocalProcessSpawner

        return LocalProcessSpawner
    if isinstance(value, type):
        return value
    from importlib.metadata import entry_points

    for entry_point in entry_points(group="jupyterhub.spawners"):
        if entry_point.name.lower() == str(value).lower():
            return entry_point.load()
    from traitlets.utils.importstring import import_item

    return import_item(str(value))


async def _call(hook: Callable[..., Any], *args: Any) -> Any:
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _original(hook: Any) -> Any:
    """The admin's hook behind one of ours (install(c) run twice must not chain osl-hooks twice)."""
    return getattr(hook, _CHAINED_FROM, hook)


class OSLHooksRuntime:
    """The checked configuration plus what each spawn needs; one per hub."""

    def __init__(self, checked: CheckedConfig, spawner_class: type):
        self.checked = checked
        self.hooks: OSLHooks = checked.hooks
        self.spawner_class = spawner_class
        self.planner = Planner(checked)
        self.log = self.hooks.log

    # -- the plan -------------------------------------------------------------------------------------

    async def kube_context(self, spawner: Any) -> SpawnContext:
        """Who spawns and, for KubeSpawner, the profile and profile options in effect.

        The profile is the one KubeSpawner applied in `load_user_options`: `user_options['profile']`, or
        the default profile of the initialized profile_list (KubeSpawner's own methods pick it, so the
        answer is the same). A callable profile_list is only called when the default profile is needed.
        """
        user = spawner.user
        ctx = SpawnContext(user.name, group_names(user))
        if not self.planner.uses_profiles and not self.hooks.profile_delivery:
            return ctx
        options = spawner.user_options or {}
        slug = options.get("profile")
        if slug and not self.planner.uses_profile_options:
            return SpawnContext(ctx.user, ctx.groups, slug, {})
        profile_list = await si.initialized_profile_list(spawner)
        if not profile_list:
            return ctx
        profile = si.chosen_profile(spawner, slug, profile_list)
        chosen: dict[str, str] = {}
        for name, option in (profile.get("profile_options") or {}).items():
            value = options.get(f"{name}--unlisted-choice") or options.get(name)
            if not value and option.get("choices"):
                value = next((k for k, c in option["choices"].items() if c.get("default")), None)
            if value:
                chosen[name] = value
        return SpawnContext(ctx.user, ctx.groups, profile["slug"], chosen)

    def kube_delivery(self, ctx: SpawnContext) -> str:
        if ctx.profile and ctx.profile in self.hooks.profile_delivery:
            return self.hooks.profile_delivery[ctx.profile]
        return INIT_CONTAINER if self.hooks.delivery == AUTO else self.hooks.delivery

    # -- KubeSpawner ----------------------------------------------------------------------------------

    async def modify_pod(self, spawner: Any, pod: Any) -> Any:
        """Put the plan and `osl-hooks start` into the final pod."""
        started = time.perf_counter()
        ctx = await self.kube_context(spawner)
        container = dv.notebook_container(pod)
        home = dv.pod_home(container, self.hooks.home)
        plan_json = self.planner.plan_json(ctx, home)
        delivery = self.kube_delivery(ctx)
        hooks = self.hooks
        mount_env_images(pod, container, hooks.env_images, plan_json)  # before the init container copies mounts
        change = dv.PodDelivery(pod, container, plan_json, home, hooks, spawner.user.name, self.log)
        try:
            dv.POD_DELIVERIES[delivery](change)
        except dv.DeliveryError as e:
            raise spawn_error(f"osl-hooks cannot prepare this server: {e}") from None
        pod.metadata.annotations = {**(pod.metadata.annotations or {}), dv.DELIVERY_ANNOTATION: delivery}
        self.log.debug(
            "osl-hooks: %s for %s (profile %s, %s), %.1f ms",
            delivery,
            spawner.user.name,
            ctx.profile,
            home,
            (time.perf_counter() - started) * 1000,
        )
        return pod

    # -- local spawners -------------------------------------------------------------------------------

    def prepare_local(self, spawner: Any) -> None:
        """Wrap the server command and hand over the plan (SimpleLocalProcessSpawner, LocalProcessSpawner, ...).

        The home is `home_dir` for SimpleLocalProcessSpawner; LocalProcessSpawner sets $HOME from the
        user's passwd entry in the server's environment, and the engine uses $HOME when the plan has no home
        (so the hub does no passwd lookup here).
        """
        ctx = SpawnContext(spawner.user.name, group_names(spawner.user))
        home = self.hooks.home or getattr(spawner, "home_dir", None) or None
        plan_json = self.planner.plan_json(ctx, home)
        si.set_local_plan(spawner, self.planner.plan(ctx, home))  # for progress and failures (hub/spawner.py)
        try:
            dv.wrap_spawner_cmd(
                spawner, dv.start_command(self.hooks.command, allow_root=self.hooks.allow_root, degraded_ok=False)
            )
        except dv.DeliveryError as e:
            raise spawn_error(f"osl-hooks cannot prepare this server: {e}") from None
        spawner.environment = {**spawner.environment, PLAN_ENV_VAR: plan_json}

    # -- the hooks, chained ---------------------------------------------------------------------------

    def make_pre_spawn_hook(self, admin_hook: Any) -> Callable[[Any], Any]:
        admin_hook = _original(admin_hook)
        runtime = self

        async def osl_hooks_pre_spawn_hook(spawner: Any) -> None:
            if admin_hook is not None:
                await _call(admin_hook, spawner)
            if is_kubespawner(type(spawner)):
                if si.installed_runtime(spawner) is not runtime:
                    raise spawn_error(
                        "osl-hooks is not installed in KubeSpawner.modify_pod_hook (was it replaced after "
                        "osl_hooks.hub.install(c)? call install(c) at the end of jupyterhub_config.py)"
                    )
                return  # the plan depends on the profile, applied later: see modify_pod_hook
            runtime.prepare_local(spawner)

        setattr(osl_hooks_pre_spawn_hook, _CHAINED_FROM, admin_hook)
        si.mark_hook(osl_hooks_pre_spawn_hook, runtime)
        return osl_hooks_pre_spawn_hook

    def make_modify_pod_hook(self, admin_hook: Any) -> Callable[[Any, Any], Any]:
        admin_hook = _original(admin_hook)
        runtime = self

        async def osl_hooks_modify_pod_hook(spawner: Any, pod: Any) -> Any:
            if admin_hook is not None:
                result = await _call(admin_hook, spawner, pod)
                if result is not None:
                    pod = result
                else:
                    runtime.log.warning(
                        "osl-hooks: the admin's modify_pod_hook returned None; using the pod it was given"
                    )
            return await runtime.modify_pod(spawner, pod)

        setattr(osl_hooks_modify_pod_hook, _CHAINED_FROM, admin_hook)
        si.mark_hook(osl_hooks_modify_pod_hook, runtime)
        return osl_hooks_modify_pod_hook


def install(c: Config, spawner_class: type | str | None = None) -> OSLHooksRuntime:
    """Check ``c.OSLHooks`` and set the spawner's hooks. Call it at the end of jupyterhub_config.py.

    Also serves the fleet's figures: osl-hooks' metrics in ``/hub/metrics`` and the admin report
    (``/hub/osl-hooks/report``, ``/hub/api/osl-hooks/report``; `report`, `metrics`).

    Raises `OSLHooksConfigError` (so JupyterHub does not start) when the configuration is invalid. The
    admin's hooks already in `c` (in the spawner class's section or any of its bases, e.g.
    ``c.Spawner.pre_spawn_hook``) run first, then osl-hooks'. The hooks are set in the section of the
    spawner class itself, which takes precedence over its bases.
    """
    if spawner_class is None:
        spawner_class = resolve_spawner_class(c)
    elif isinstance(spawner_class, str):
        from traitlets.utils.importstring import import_item

        spawner_class = import_item(spawner_class)
    assert isinstance(spawner_class, type)
    if issubclass(spawner_class, OSLHooksSpawnerMixin):  # install(c) run a second time
        spawner_class = spawner_class.__bases__[-1]
    checked = validate_config(c, spawner_class)
    runtime = OSLHooksRuntime(checked, spawner_class)
    c.JupyterHub.spawner_class = with_progress(spawner_class)
    section = c[spawner_class.__name__]
    section.pre_spawn_hook = runtime.make_pre_spawn_hook(effective_config(c, spawner_class, "pre_spawn_hook", None))
    if is_kubespawner(spawner_class):
        section.modify_pod_hook = runtime.make_modify_pod_hook(
            effective_config(c, spawner_class, "modify_pod_hook", None)
        )
    if checked.hooks.spawn_page:
        use_spawn_page(c, checked.hooks)
    use_report(c)
    register_fleet_metrics()
    return runtime


def use_spawn_page(c: Config, hooks: OSLHooks) -> None:
    """osl-hooks' spawn page (templates/spawn_pending.html, extending JupyterHub's), after the admin's own
    template paths (an admin's spawn_pending.html still wins), and where the start's log is for it to say."""
    existing = list(c.JupyterHub.get("template_paths", None) or [])
    if TEMPLATES not in existing:
        c.JupyterHub.template_paths = [*existing, TEMPLATES]
    variables = c.JupyterHub.get("template_vars", None) or {}
    if isinstance(variables, dict):  # a callable template_vars is the admin's to fill
        log = posixpath.join(hooks.state_dir, LOG_FILE)
        c.JupyterHub.template_vars = {"osl_hooks_log_path": log if posixpath.isabs(log) else f"~/{log}", **variables}
