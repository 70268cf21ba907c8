"""Helpers for the hub-side tests (real KubeSpawner objects, real JupyterHub users), and their own checks.

- `kube_config` — a z2jh-like KubeSpawner configuration as a real traitlets Config, plus osl-hooks settings.
- `hub_user` — a real `jupyterhub.user.User` over orm rows in an in-memory database, with real groups.
- `spawn_pod` — runs the hooks in the order JupyterHub and KubeSpawner run them (JupyterHub's
  `User.spawn`: group overrides, user options, `pre_spawn_hook`; KubeSpawner's `_start`:
  `load_user_options`, `get_pod_manifest`, `modify_pod_hook`) and returns the pod as the API would get it.
  `test_spawn_pod_matches_kubespawner_start` checks that against KubeSpawner's real `start()`.
- `validate_pod` — kubernetes-validate (strict) against several Kubernetes versions, plus the rules a
  schema cannot express (unique container and env names).
- `restricted_violations` — the Kubernetes "restricted" Pod Security Standard's container rules (tests/pss.py
  has the whole standard; `validate_pod` runs it on every pod).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kubernetes_validate
import pss
import pytest
from traitlets.config import Config

pytestmark = pytest.mark.usefixtures("kube")  # its own tests (tests/conftest.py)
K8S_VERSIONS = ("1.25", "1.30", "1.37")
HOME = "/home/jovyan"

PROFILES = [
    {"display_name": "Python", "slug": "python", "default": True},
    {
        "display_name": "GIS",
        "slug": "gis",
        "kubespawner_override": {"image": "registry.example/gis-notebook:2.1", "cpu_limit": 2},
        "profile_options": {
            "flavour": {
                "display_name": "Flavour",
                "choices": {
                    "standard": {"display_name": "Standard", "default": True},
                    "radar": {
                        "display_name": "Radar",
                        "kubespawner_override": {"image": "registry.example/radar-notebook:1.0"},
                    },
                },
            }
        },
    },
    {"display_name": "Legacy", "slug": "legacy"},
]

ENVIRONMENTS = [
    {"name": "py", "mode": "synced", "source": "/opt/conda/envs/py", "display_name": "Python (synced)"},
    {"name": "gis", "mode": "synced", "source": "/opt/conda/envs/gis", "profiles": ["gis"]},
    {"name": "radar", "mode": "baked", "source": "/opt/conda/envs/radar", "profile_options": {"flavour": ["radar"]}},
    {"name": "geo-team", "mode": "user", "groups": ["geo"]},
    {"name": "alice-only", "mode": "user", "users": ["alice"], "kernel": False},
]


def kube_config(**osl: Any) -> Config:
    """What z2jh's jupyterhub_config.py sets for a dynamic-storage deployment, plus c.OSLHooks settings."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.Spawner.cmd = ["jupyterhub-singleuser"]  # z2jh: singleuser.cmd
    c.KubeSpawner.image = "registry.example/base-notebook:1.0"
    c.KubeSpawner.uid = 1000
    c.KubeSpawner.fs_gid = 100
    c.KubeSpawner.mem_limit = "2G"
    c.KubeSpawner.mem_guarantee = "1G"
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.pvc_name_template = "claim-{username}{servername}"
    c.KubeSpawner.volumes = [
        {
            "name": "volume-{username}{servername}",
            "persistentVolumeClaim": {"claimName": "claim-{username}{servername}"},
        }
    ]
    c.KubeSpawner.volume_mounts = [{"mountPath": HOME, "name": "volume-{username}{servername}"}]
    c.KubeSpawner.profile_list = PROFILES
    c.OSLHooks.environments = ENVIRONMENTS
    for key, value in osl.items():
        c.OSLHooks[key] = value
    return c


_db = None


def hub_user(name: str, groups: list[str] = ()) -> Any:
    """A real JupyterHub User (orm rows in an in-memory database), member of real groups."""
    global _db
    from jupyterhub import orm
    from jupyterhub.user import User

    if _db is None:
        _db = orm.new_session_factory("sqlite://")()
    orm_user = orm.User.find(_db, name)
    if orm_user is None:
        orm_user = orm.User(name=name)
        _db.add(orm_user)
    orm_groups = []
    for group in groups:
        orm_group = orm.Group.find(_db, group)
        if orm_group is None:
            orm_group = orm.Group(name=group)
            _db.add(orm_group)
        orm_groups.append(orm_group)
    orm_user.groups = orm_groups
    _db.commit()
    return User(orm_user, settings={"base_url": "/", "domain": ""})


def no_kubeconfig(monkeypatch) -> None:
    """Build KubeSpawners without a cluster: no kubeconfig is read (the API is never called)."""
    import kubespawner.spawner

    monkeypatch.setattr(kubespawner.spawner, "load_config", lambda **kwargs: None)


def make_spawner(config: Config, user: Any, user_options: dict | None = None) -> Any:
    """A KubeSpawner as JupyterHub creates one (inside the running event loop), ready for a spawn: of the
    class `c.JupyterHub.spawner_class` names once `install(c)` ran (KubeSpawner with osl-hooks' mixin)."""
    from kubespawner import KubeSpawner

    configured = config.JupyterHub.get("spawner_class") if "JupyterHub" in config else None
    spawner_class = configured if isinstance(configured, type) else KubeSpawner
    spawner = spawner_class(_mock=True, user=user, config=config)
    spawner.api_token = "secret-token"
    spawner.user_options = dict(user_options or {})
    return spawner


async def run_spawn_hooks(spawner: Any) -> Any:
    """The hooks in JupyterHub's and KubeSpawner's order; returns the V1Pod KubeSpawner would create."""
    from jupyterhub.utils import maybe_future

    # jupyterhub/user.py User.spawn, before spawner.start():
    await spawner.apply_group_overrides()
    await spawner._run_apply_user_options(spawner.user_options)
    await maybe_future(spawner.run_pre_spawn_hook())
    # kubespawner/spawner.py KubeSpawner._start, up to the pod creation request:
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    if spawner.modify_pod_hook:
        pod = await maybe_future(spawner.modify_pod_hook(spawner, pod))
    return pod


async def serialise(pod: Any) -> dict:
    from kubernetes_asyncio.client import ApiClient

    async with ApiClient() as api:
        return api.sanitize_for_serialization(pod)


def spawn_pod(config: Config, user: Any, user_options: dict | None = None) -> tuple[Any, dict]:
    """(spawner, pod as JSON data) for one spawn, hooks run as the hub runs them."""

    async def go():
        spawner = make_spawner(config, user, user_options)
        pod = await run_spawn_hooks(spawner)
        return spawner, await serialise(pod)

    return asyncio.run(go())


def validate_pod(pod: dict, versions: tuple[str, ...] = K8S_VERSIONS, restricted: bool = False) -> None:
    """Schema-valid for every version, unique names, mounts of existing volumes; osl-hooks' init container no
    less restricted than the notebook container; with `restricted`, the whole pod passes the restricted
    Pod Security Standard (tests/pss.py)."""
    for version in versions:
        kubernetes_validate.validate(pod, version, strict=True)
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
    assert len(names) == len(set(names)), names
    for container in spec.get("initContainers", []) + spec["containers"]:
        env_names = [e["name"] for e in container.get("env", [])]
        assert len(env_names) == len(set(env_names)), (container["name"], env_names)
        mounts = {m["name"] for m in container.get("volumeMounts", [])}
        assert mounts <= {v["name"] for v in spec.get("volumes", [])}
    assert osl_hooks_weakens_security(pod) == []
    if restricted:
        assert pss.violations(pod) == []


def restricted_violations(container: dict, pod_spec: dict) -> list[str]:
    """Where one container breaks the 'restricted' Pod Security Standard (tests/pss.py), given its pod's spec."""
    return pss.container_problems(container, pod_spec.get("securityContext") or {})


def osl_hooks_weakens_security(pod: dict) -> list[str]:
    """The restricted-standard violations of the pod's osl-hooks init container that its notebook container
    does not have: osl-hooks copies the notebook container's securityContext and only ever tightens it."""
    spec = pod["spec"]
    notebook = set(restricted_violations(container(pod), spec))
    init = [c for c in spec.get("initContainers", []) if c["name"] == "osl-hooks"]
    return sorted(set(restricted_violations(init[0], spec)) - notebook) if init else []


def container(pod: dict, name: str = "notebook") -> dict:
    spec = pod["spec"]
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c["name"] == name:
            return c
    raise KeyError(name)


def env_of(c: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}


def plan_of(c: dict) -> dict:
    return json.loads(env_of(c)["OSL_HOOKS_PLAN"])


# -- checks of the helpers themselves -------------------------------------------------------------------


def test_hub_user_has_real_groups():
    user = hub_user("support-check", ["geo", "staff"])
    assert sorted(g.name for g in user.groups) == ["geo", "staff"]


def test_restricted_checker_flags_kubespawners_default_container():
    """KubeSpawner's own notebook container is not 'restricted' by default: the checker must say so."""
    c = kube_config()
    _, pod = spawn_pod(c, hub_user("support-default"))
    assert "securityContext.capabilities.drop: must include ALL" in restricted_violations(container(pod), pod["spec"])


def test_spawn_pod_matches_kubespawner_start():
    """`run_spawn_hooks` builds the same pod as KubeSpawner's real `start()` sends to the API.

    Only the Kubernetes API boundary is replaced: the pod and event watchers are not started, and the
    pod creation request records the pod instead of sending it.
    """
    import osl_hooks.hub

    config = kube_config()
    config.KubeSpawner.storage_pvc_ensure = False  # no PVC request
    osl_hooks.hub.install(config)
    user = hub_user("support-start", ["geo"])
    options = {"profile": "gis", "flavour": "radar"}

    class Created(Exception):
        pass

    async def go():
        expected = await serialise(await run_spawn_hooks(make_spawner(config, user, options)))
        spawner = make_spawner(config, user, options)
        sent = []

        async def no_watch(*args, **kwargs):
            return None

        async def create_pod(pod, request_timeout):
            sent.append(await serialise(pod))
            raise Created()

        spawner._start_watching_pods = no_watch
        spawner._start_watching_events = no_watch
        spawner._make_create_pod_request = create_pod
        from jupyterhub.utils import maybe_future

        await spawner.apply_group_overrides()
        await spawner._run_apply_user_options(spawner.user_options)
        await maybe_future(spawner.run_pre_spawn_hook())
        with pytest.raises(Created):
            await spawner.start()
        return expected, sent[0]

    expected, sent = asyncio.run(go())
    assert sent == expected
    assert container(sent, "osl-hooks")["image"] == "registry.example/radar-notebook:1.0"
