"""Everything the hub side relies on inside KubeSpawner and JupyterHub's `Spawner` beyond their documented API.

KubeSpawner and JupyterHub may change any of this in a minor release without notice, so it stands here and
nowhere else: each function says what it relies on. Checked against the sources of KubeSpawner 7.1 (7.1.0) and
JupyterHub 6.1 (6.1.1) (`CHECKED`); ``tests/test_hub_spawner_internals.py`` fails when another major.minor is
installed, naming what to re-check, and checks that every name used here still exists with the same shape.

Three kinds of reliance:
- KubeSpawner's private methods and attributes: how it turns ``profile_list`` into profiles
  (``_sorted_dict_values``, ``_get_initialized_profile_list``, ``_get_profile``, mirrored without a spawner by
  `static_profiles`), ``_start_future`` (the future of the spawn `start()` is running), the pod reflector
  (``pod_reflector.pods``) and its own progress generator (``KubeSpawner.progress``);
- JupyterHub's ``Spawner._spawn_future`` (the future of the current spawn);
- the attributes osl-hooks keeps on spawner objects it does not own (`PLAN_ATTR`, `JOURNAL_ATTR`, `WRAP_ATTR`)
  and on its own hook functions (`RUNTIME_ATTR`): their names must not clash with the spawner's own.

The hub side never imports KubeSpawner at module level (local hubs need not have it installed): the functions
that need it import it when called, and only for a KubeSpawner.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

# The versions these internals were read in (major.minor); the test names what to re-check for another one.
CHECKED = {"kubespawner": ("7.1",), "jupyterhub": ("6.1",)}

PLAN_ATTR = "_osl_hooks_plan"  # a local spawner's Plan, set by the pre_spawn hook when it wraps the server command
JOURNAL_ATTR = "_osl_hooks_kube_journal"  # the progress journal of a KubeSpawner's current spawn (kube_progress)
WRAP_ATTR = "_osl_hooks_wrap"  # (original, wrapped) `Spawner.cmd` of a local spawner's last spawn (delivery)
RUNTIME_ATTR = "_osl_hooks_runtime"  # on osl-hooks' hook functions: the runtime that made them (hooks)
SPAWNER_ATTRS = (PLAN_ATTR, JOURNAL_ATTR, WRAP_ATTR)


# -- KubeSpawner: profiles ----------------------------------------------------------------------------


async def initialized_profile_list(spawner: Any) -> list[dict[str, Any]]:
    """The spawner's ``profile_list`` the way `KubeSpawner.load_user_options` prepares it (a copy).

    Relies on ``KubeSpawner._sorted_dict_values(src)`` (a dict's values sorted by key, anything else as it is)
    and ``KubeSpawner._get_initialized_profile_list(profile_list)`` (a deep copy with every slug set, one default
    profile and a default choice per option); a callable ``profile_list`` is called with the spawner and may be a
    coroutine function, as KubeSpawner does.
    """
    profile_list = spawner._sorted_dict_values(spawner.profile_list)
    if callable(profile_list):
        profile_list = profile_list(spawner)
        if inspect.isawaitable(profile_list):
            profile_list = await profile_list
    if not profile_list:
        return []
    return spawner._get_initialized_profile_list(profile_list)


def chosen_profile(spawner: Any, slug: str | None, profile_list: list[dict[str, Any]]) -> dict[str, Any]:
    """The profile KubeSpawner applies for `slug` (the default one when `slug` is empty), from an initialized list.

    Relies on ``KubeSpawner._get_profile(slug, profile_list)``, which `load_user_options` uses too, so osl-hooks
    and KubeSpawner pick the same profile.
    """
    return spawner._get_profile(slug, profile_list)


def static_profiles(profile_list: Any) -> dict[str, dict[str, Any]] | None:
    """{slug: profile} for a static ``KubeSpawner.profile_list`` at hub start (no spawner exists yet), else None.

    Mirrors ``KubeSpawner._sorted_dict_values`` (a dict is sorted by key) and the slugs of
    ``KubeSpawner._get_initialized_profile_list`` (``slugify(display_name)`` when a profile has no slug).
    """
    if callable(profile_list):
        return None
    if isinstance(profile_list, dict):
        profile_list = [profile_list[k] for k in sorted(profile_list)]
    profiles: dict[str, dict[str, Any]] = {}
    for profile in profile_list or []:
        if not isinstance(profile, dict):
            continue
        slug = profile.get("slug")
        if not slug and profile.get("display_name"):
            from slugify import slugify  # KubeSpawner's dependency (python-slugify)

            slug = slugify(profile["display_name"])
        if slug:
            profiles[slug] = profile
    return profiles


# -- KubeSpawner: the spawn and the pod ---------------------------------------------------------------


def start_future(spawner: Any) -> Any:
    """The future of the spawn KubeSpawner's `start()` is running (None before the first start).

    Relies on ``KubeSpawner._start_future``: None from ``__init__``, set by `start()` to the future of
    ``_start()``; KubeSpawner's own `progress()` ends when it is done. It identifies one spawn.
    """
    return getattr(spawner, "_start_future", None)


def reflected_pod(spawner: Any) -> dict[str, Any] | None:
    """The spawner's pod as KubeSpawner's pod reflector last saw it (the API's JSON, camelCase), or None.

    Relies on the ``KubeSpawner.pod_reflector`` property (None until reflectors start) and ``PodReflector.pods``
    (a dict keyed "namespace/pod name"), read the way KubeSpawner's `poll()` reads them. No API call.
    """
    reflector = spawner.pod_reflector
    if reflector is None:
        return None
    return reflector.pods.get(f"{spawner.namespace}/{spawner.pod_name}")


def kubespawner_progress(spawner: Any) -> AsyncIterator[dict[str, Any]]:
    """KubeSpawner's own progress generator for `spawner`, past the mixins in front of it.

    Relies on `KubeSpawner.progress` (an async generator of Kubernetes events with a ``raw_event``, and
    slow-spawn notes without one, ending once `_start_future` is done).
    """
    from kubespawner import KubeSpawner

    return KubeSpawner.progress(spawner)


# -- JupyterHub's Spawner -------------------------------------------------------------------------------


def spawn_future(spawner: Any) -> Any:
    """The future of the spawner's current spawn (None between spawns). Relies on ``Spawner._spawn_future``,
    which JupyterHub's `User.spawn` sets before it calls `start()`."""
    return getattr(spawner, "_spawn_future", None)


# -- what osl-hooks keeps on objects it does not own ----------------------------------------------------


def set_local_plan(spawner: Any, plan: Any) -> None:
    """Keep the plan of a local spawn on its spawner (for progress and failures: `hub/spawner.py`)."""
    setattr(spawner, PLAN_ATTR, plan)


def local_plan(spawner: Any) -> Any:
    """The plan the pre_spawn hook delivered to a local spawner, or None (KubeSpawner, or not delivered to)."""
    return getattr(spawner, PLAN_ATTR, None)


def mark_hook(hook: Any, runtime: Any) -> None:
    """Mark one of osl-hooks' hook functions with the runtime that made it."""
    setattr(hook, RUNTIME_ATTR, runtime)


def installed_runtime(spawner: Any) -> Any:
    """The osl-hooks runtime behind the spawner's ``modify_pod_hook`` (None when that hook is not osl-hooks')."""
    return getattr(getattr(spawner, "modify_pod_hook", None), RUNTIME_ATTR, None)
