"""Getting the plan and `osl-hooks start` into the user's server: pod changes (KubeSpawner) and command wrapping.

Three deliveries (docs/hub.md says which to choose):
- ``init_container`` — an init container copied from the final notebook container (image, pull policy,
  env, volume mounts, securityContext, resources, working dir), running ``osl-hooks start --degraded-ok``
  to completion before the notebook container starts. Its failure message is its termination message
  (``FallbackToLogsOnError``: the end of its output).
- ``post_start`` — the notebook container's postStart exec hook; an admin's own exec postStart is
  chained after it with ``sh -c``.
- ``wrap`` — the server command becomes ``osl-hooks start -- <command>``: the container's command or args
  (KubeSpawner), or ``Spawner.cmd`` (local spawners).

`POD_DELIVERIES` maps each delivery's name to the one function that puts it into a pod (`deliver_init_container`,
`deliver_post_start`, `deliver_wrap`), given the spawn's `PodDelivery`. The functions here change the V1Pod
KubeSpawner built, in place. Its parts are a mix of
kubernetes_asyncio models and plain dicts with camelCase keys (KubeSpawner passes some settings
through as given), so they are read through `to_plain`, and new parts are written as models.
Nothing here touches files or the network.
"""

from __future__ import annotations

import datetime
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..plan import PLAN_ENV_VAR
from .config import INIT_CONTAINER, POST_START, WRAP
from .spawner_internals import WRAP_ATTR

NOTEBOOK_CONTAINER = "notebook"
DELIVERY_ANNOTATION = "osl-hooks/delivery"  # on the pod: which delivery it carries (read by kube_pod)
DEFAULT_POD_HOME = "/home/jovyan"
POST_START_CHAIN_NAME = "osl-hooks-post-start"


class DeliveryError(ValueError):
    """The pod (or spawner) cannot carry this delivery; the message says what to change."""


def to_plain(obj: Any) -> Any:
    """A kubernetes model (or a mix of models and dicts) as plain JSON data with the API's camelCase keys.

    The same conversion as `kubernetes_asyncio.client.ApiClient.sanitize_for_serialization`, without
    creating an API client.
    """
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [to_plain(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_plain(value) for key, value in obj.items()}
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    if hasattr(obj, "openapi_types") and hasattr(obj, "attribute_map"):
        return {
            obj.attribute_map[attr]: to_plain(getattr(obj, attr))
            for attr in obj.openapi_types
            if getattr(obj, attr) is not None
        }
    return obj


_configuration = None


def model(cls: type, data: dict[str, Any]) -> Any:
    """A kubernetes_asyncio model from camelCase data (one level, as `kubespawner.utils.get_k8s_model`).

    Models share one client Configuration: by default each model deep-copies the global one, which
    costs more than everything else osl-hooks does to a pod.
    """
    global _configuration
    if _configuration is None:
        from kubernetes_asyncio.client import Configuration

        _configuration = Configuration()
    attributes = {v: k for k, v in cls.attribute_map.items()}
    return cls(**{attributes[key]: value for key, value in data.items()}, local_vars_configuration=_configuration)


def _name(item: Any) -> str | None:
    return item.get("name") if isinstance(item, dict) else item.name


def start_command(command: list[str], *, allow_root: bool, degraded_ok: bool) -> list[str]:
    """`osl-hooks start` with its flags (without the '--' of the wrap delivery)."""
    argv = [*command, "start"]
    if degraded_ok:
        argv.append("--degraded-ok")
    if allow_root:
        argv.append("--allow-root")
    return argv


# -- reading the pod ----------------------------------------------------------------------------------


def notebook_container(pod: Any) -> Any:
    """The notebook container of a KubeSpawner pod (named 'notebook'; KubeSpawner puts it first)."""
    containers = pod.spec.containers or []
    for container in containers:
        if container.name == NOTEBOOK_CONTAINER:
            return container
    if not containers:
        raise DeliveryError("the pod has no containers")
    return containers[0]


def env_value(container: Any, name: str) -> str | None:
    for var in container.env or []:
        if _name(var) == name:
            return var.get("value") if isinstance(var, dict) else var.value
    return None


def mount_for(container: Any, path: str) -> dict[str, Any] | None:
    """The volume mount of `container` that `path` is on (the deepest one), or None."""
    best = None
    for mount in to_plain(container.volume_mounts) or []:
        mount_path = posixpath.normpath(mount.get("mountPath", ""))
        if path == mount_path or path.startswith(mount_path.rstrip("/") + "/"):
            if best is None or len(mount_path) > len(posixpath.normpath(best["mountPath"])):
                best = mount
    return best


def pod_home(container: Any, configured: str = "") -> str:
    """The home as the notebook container sees it: configured, else its HOME variable, else /home/jovyan."""
    home = configured or env_value(container, "HOME") or DEFAULT_POD_HOME
    return posixpath.normpath(home)


# -- changing the pod ---------------------------------------------------------------------------------


def set_env(container: Any, name: str, value: str) -> bool:
    """Set an env var on a container, replacing one of the same name. True if one was replaced."""
    from kubernetes_asyncio.client.models import V1EnvVar

    env = list(container.env or [])
    kept = [v for v in env if _name(v) != name]
    kept.append(model(V1EnvVar, {"name": name, "value": value}))
    container.env = kept
    return len(kept) <= len(env)


def apply_post_start(container: Any, command: list[str]) -> None:
    """Run `command` as the container's postStart exec hook, before an admin's own exec hook if there is one."""
    from kubernetes_asyncio.client.models import V1Lifecycle

    lifecycle = to_plain(container.lifecycle) or {}
    existing = lifecycle.get("postStart")
    if existing:
        if "exec" not in existing:
            kinds = ", ".join(sorted(existing)) or "empty"
            raise DeliveryError(
                f"the notebook container already has a postStart hook ({kinds}), which cannot be chained with "
                "osl-hooks; use the 'init_container' delivery, or make that hook an exec hook"
            )
        admin_command = list((existing.get("exec") or {}).get("command") or [])
        command = ["/bin/sh", "-c", f'{shlex.join(command)} && exec "$@"', POST_START_CHAIN_NAME, *admin_command]
    lifecycle["postStart"] = {"exec": {"command": command}}
    container.lifecycle = model(V1Lifecycle, lifecycle)


def apply_wrap(container: Any, command: list[str]) -> None:
    """Make the container run `command -- <its own command>`.

    KubeSpawner puts `cmd + get_args()` in the container's args and leaves the image's ENTRYPOINT in place
    (e.g. tini); the wrapper goes in front of the args then, and runs under that ENTRYPOINT. When the
    container has a command (set with extra_container_config), the wrapper goes in front of it.
    """
    wrapper = [*command, "--"]
    if container.command:
        container.command = wrapper + list(container.command)
    elif container.args:
        container.args = wrapper + list(container.args)
    else:
        raise DeliveryError(
            "the 'wrap' delivery needs the server command, but the pod runs the image's default command, which "
            "the hub cannot see; set KubeSpawner.cmd (z2jh: singleuser.cmd), e.g. ['jupyterhub-singleuser']"
        )


def restricted_security_context(container_sc: Any, pod_sc: Any) -> dict[str, Any]:
    """The notebook container's securityContext, with the 'restricted' Pod Security Standard's settings
    added where neither it nor the pod's securityContext says anything (what the admin set wins)."""
    sc = to_plain(container_sc) or {}
    psc = to_plain(pod_sc) or {}
    if sc.get("privileged"):
        return sc  # the admin made the notebook container privileged: not ours to second-guess
    sc.setdefault("allowPrivilegeEscalation", False)
    run_as_user = sc.get("runAsUser", psc.get("runAsUser"))
    if "runAsNonRoot" not in sc and "runAsNonRoot" not in psc and run_as_user != 0:
        sc["runAsNonRoot"] = True
    sc.setdefault("capabilities", {"drop": ["ALL"]})
    if "seccompProfile" not in sc and "seccompProfile" not in psc:
        sc["seccompProfile"] = {"type": "RuntimeDefault"}
    return sc


def apply_init_container(
    pod: Any,
    container: Any,
    *,
    name: str,
    command: list[str],
    plan_json: str,
    home: str,
    resources: dict[str, Any] | None,
    restricted: bool,
) -> Any:
    """Append an init container that runs `command` like the notebook container would, before it.

    Same image, pull policy, env (plus the plan), envFrom, volume mounts, working dir and securityContext
    as `container`, so it sees the same home as the same user; `restricted` adds the restricted Pod
    Security Standard's settings the admin left unset. Appended after any init containers already there
    (z2jh's network-blocking one runs first).
    """
    from kubernetes_asyncio.client.models import V1Container

    if mount_for(container, home) is None:
        raise DeliveryError(
            f"the home {home} is not on a volume of the notebook container, so what the init container writes "
            "there would be lost; mount the home volume there (z2jh: singleuser.storage), set OSLHooks.home to "
            "the mount path, or use the 'wrap' delivery"
        )
    if name in [_name(c) for c in pod.spec.init_containers or []]:
        raise DeliveryError(f"the pod already has an init container named {name!r}; set OSLHooks.init_container_name")
    # Plain copies (to_plain makes new dicts and lists), so later changes to one container leave the other alone.
    env = [v for v in to_plain(container.env) or [] if v.get("name") != PLAN_ENV_VAR]
    env.append({"name": PLAN_ENV_VAR, "value": plan_json})
    if restricted:
        security_context = restricted_security_context(container.security_context, pod.spec.security_context)
    else:
        security_context = to_plain(container.security_context)
    spec = {
        "name": name,
        "image": container.image,
        "imagePullPolicy": container.image_pull_policy,
        "command": list(command),
        "env": env,
        "envFrom": to_plain(container.env_from),
        "volumeMounts": to_plain(container.volume_mounts),
        "workingDir": container.working_dir,
        "resources": to_plain(resources if resources is not None else container.resources),
        "securityContext": security_context,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    init = model(V1Container, {k: v for k, v in spec.items() if v is not None})
    pod.spec.init_containers = [*(pod.spec.init_containers or []), init]
    return init


# -- the deliveries, one function each ---------------------------------------------------------------


@dataclass(frozen=True)
class PodDelivery:
    """One spawn's pod and what goes into it: what every delivery function is given."""

    pod: Any
    container: Any  # the notebook container (`notebook_container`)
    plan_json: str
    home: str  # as the notebook container sees it (`pod_home`)
    hooks: Any  # the `OSLHooks` settings: command, allow_root, the init container's name, resources, security
    user: str  # for the log
    log: Any

    def command(self, *, degraded_ok: bool) -> list[str]:
        return start_command(self.hooks.command, allow_root=self.hooks.allow_root, degraded_ok=degraded_ok)


def deliver_init_container(d: PodDelivery) -> None:
    apply_init_container(
        d.pod,
        d.container,
        name=d.hooks.init_container_name,
        command=d.command(degraded_ok=True),
        plan_json=d.plan_json,
        home=d.home,
        resources=d.hooks.init_container_resources,
        restricted=d.hooks.restricted_security_context,
    )


def deliver_post_start(d: PodDelivery) -> None:
    _plan_in_notebook_container(d)
    apply_post_start(d.container, d.command(degraded_ok=True))
    _warn_unless_home_on_volume(d)


def deliver_wrap(d: PodDelivery) -> None:
    _plan_in_notebook_container(d)
    apply_wrap(d.container, d.command(degraded_ok=False))
    _warn_unless_home_on_volume(d)


def _plan_in_notebook_container(d: PodDelivery) -> None:
    if set_env(d.container, PLAN_ENV_VAR, d.plan_json):
        d.log.warning("osl-hooks: replacing the %s the notebook container already had", PLAN_ENV_VAR)


def _warn_unless_home_on_volume(d: PodDelivery) -> None:
    if mount_for(d.container, d.home) is None:
        d.log.warning(
            "osl-hooks: the home %s of %s is not on a volume: synced envs are lost when the pod stops", d.home, d.user
        )


POD_DELIVERIES: dict[str, Callable[[PodDelivery], None]] = {
    POST_START: deliver_post_start,
    INIT_CONTAINER: deliver_init_container,
    WRAP: deliver_wrap,
}
"""Each delivery's name (`config.DELIVERIES`) -> the function that puts it into a pod; raises `DeliveryError`."""


# -- local spawners -------------------------------------------------------------------------------------


def wrap_spawner_cmd(spawner: Any, command: list[str]) -> list[str]:
    """Set ``spawner.cmd`` to `command -- <cmd>`; idempotent across the spawns of one spawner object.

    JupyterHub keeps a user's Spawner object from one start to the next, so the command wrapped at the
    last spawn is recognised and the original one is wrapped again, rather than wrapping the wrapper.
    """
    current = list(spawner.cmd or [])
    previous = getattr(spawner, WRAP_ATTR, None)
    original = previous[0] if previous and previous[1] == current else current
    if not original:
        raise DeliveryError(f"the 'wrap' delivery needs the server command, but {type(spawner).__name__}.cmd is empty")
    wrapped = [*command, "--", *original]
    spawner.cmd = wrapped
    setattr(spawner, WRAP_ATTR, (original, wrapped))
    return wrapped
