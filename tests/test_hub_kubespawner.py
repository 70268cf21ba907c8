"""osl-hooks with real KubeSpawner objects: pods built from a real traitlets config, hooks run the way
JupyterHub and KubeSpawner run them, pods validated with kubernetes-validate (strict) for several versions."""

from __future__ import annotations

import asyncio
import copy
import statistics
import time

import pytest
from test_hub_support import (
    HOME,
    container,
    env_of,
    hub_user,
    kube_config,
    make_spawner,
    plan_of,
    restricted_violations,
    run_spawn_hooks,
    serialise,
    spawn_pod,
    validate_pod,
)

import osl_hooks.hub
from osl_hooks.plan import parse_plan

pytestmark = pytest.mark.usefixtures("kube")


BASE_IMAGE = "registry.example/base-notebook:1.0"
GIS_IMAGE = "registry.example/gis-notebook:2.1"
RADAR_IMAGE = "registry.example/radar-notebook:1.0"

# (user_options, image the notebook must run, envs alice (group geo) gets)
SCENARIOS = {
    "default-profile": ({}, BASE_IMAGE, ["py", "geo-team", "alice-only"]),
    "gis-profile": ({"profile": "gis"}, GIS_IMAGE, ["py", "gis", "geo-team", "alice-only"]),
    "gis-radar-option": (
        {"profile": "gis", "flavour": "radar"},
        RADAR_IMAGE,
        ["py", "gis", "radar", "geo-team", "alice-only"],
    ),
}


def admin_hooks(c):
    """An admin's own hooks, one sync and one async, set the usual way before install(c)."""

    def pre_spawn_hook(spawner):
        spawner.environment = {**spawner.environment, "ADMIN_PRE_SPAWN": spawner.user.name}

    async def modify_pod_hook(spawner, pod):
        await asyncio.sleep(0)
        pod.metadata.labels["admin-hook"] = "ran"
        pod.spec.volumes.append({"name": "shared-data", "persistentVolumeClaim": {"claimName": "shared"}})
        pod.spec.containers[0].volume_mounts.append(
            {"name": "shared-data", "mountPath": "/srv/shared", "readOnly": True}
        )
        return pod

    c.Spawner.pre_spawn_hook = pre_spawn_hook
    c.KubeSpawner.modify_pod_hook = modify_pod_hook


@pytest.mark.parametrize("chained", [False, True], ids=["own-hooks-only", "admin-hooks-chained"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("delivery", ["init_container", "post_start", "wrap"])
def test_pod_for_each_delivery_profile_and_admin_hooks(delivery, scenario, chained):
    user_options, image, envs = SCENARIOS[scenario]
    c = kube_config(delivery=delivery)
    if chained:
        admin_hooks(c)
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("alice", ["geo"]), user_options)

    validate_pod(pod)
    notebook = container(pod)
    assert notebook["image"] == image  # the profile's image override is in the pod
    assert pod["metadata"]["annotations"]["osl-hooks/delivery"] == delivery
    if chained:
        assert pod["metadata"]["labels"]["admin-hook"] == "ran"
        assert env_of(notebook)["ADMIN_PRE_SPAWN"] == "alice"

    if delivery == "init_container":
        init = container(pod, "osl-hooks")
        assert pod["spec"]["initContainers"][-1] is init or pod["spec"]["initContainers"][-1] == init
        assert init["image"] == image
        assert init["command"] == ["osl-hooks", "start", "--degraded-ok"] and "args" not in init
        assert init["volumeMounts"] == notebook["volumeMounts"]  # the home, and the admin's extra mount
        assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"
        assert init["securityContext"]["runAsUser"] == 1000
        assert restricted_violations(init, pod["spec"]) == []
        assert init["resources"] == notebook["resources"]
        assert {k: v for k, v in env_of(init).items() if k != "OSL_HOOKS_PLAN"} == env_of(notebook)
        assert "OSL_HOOKS_PLAN" not in env_of(notebook)
        plan = plan_of(init)
        assert "lifecycle" not in notebook or not notebook["lifecycle"]
        assert notebook["args"] == ["jupyterhub-singleuser"]
    else:
        assert "initContainers" not in pod["spec"]
        plan = plan_of(notebook)
        if delivery == "post_start":
            assert notebook["lifecycle"]["postStart"]["exec"]["command"] == ["osl-hooks", "start", "--degraded-ok"]
            assert notebook["args"] == ["jupyterhub-singleuser"]
        else:
            assert notebook["args"] == ["osl-hooks", "start", "--", "jupyterhub-singleuser"]
            assert "command" not in notebook  # the image's ENTRYPOINT (e.g. tini) still runs first

    assert [e["name"] for e in plan["environments"]] == envs
    assert plan["home"] == HOME
    parse_plan(env_of(container(pod, "osl-hooks" if delivery == "init_container" else "notebook"))["OSL_HOOKS_PLAN"])


def test_plans_differ_by_user_and_group():
    c = kube_config()
    osl_hooks.hub.install(c)
    names = {}
    for user, groups in [("carol", []), ("dave", ["geo"]), ("alice", ["geo", "staff"])]:
        _, pod = spawn_pod(c, hub_user(user, groups), {"profile": "gis"})
        names[user] = [e["name"] for e in plan_of(container(pod, "osl-hooks"))["environments"]]
    assert names == {
        "carol": ["py", "gis"],
        "dave": ["py", "gis", "geo-team"],
        "alice": ["py", "gis", "geo-team", "alice-only"],
    }


def test_plan_carries_every_setting():
    c = kube_config(
        setup_scripts=["/etc/osl-hooks/setup.d", {"path": "/etc/osl-hooks/once.sh", "run": "once", "timeout": 20}],
        script_timeout=120,
        script_on_failure="fail",
        envs_dir="~/envs",
        discover_user_envs=True,
        disk_margin_bytes=1024,
        disk_margin_fraction=0.5,
        lock_timeout=30,
    )
    c.OSLHooks.environments = [
        {
            "name": "py",
            "mode": "synced",
            "source": "/opt/conda/envs/py",
            "built_prefix": "/build/py",
            "target": "~/envs/python",
            "kernel": {"name": "python-synced", "display_name": "Python", "env": {"EXTRA": "1"}},
            "setup_scripts": [{"path": "/etc/osl-hooks/py.sh", "on_failure": "continue"}],
        }
    ]
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("erin"))
    plan = plan_of(container(pod, "osl-hooks"))
    assert plan["envs_dir"] == "~/envs" and plan["discover_user_envs"] is True
    assert (plan["disk_margin_bytes"], plan["disk_margin_fraction"], plan["lock_timeout"]) == (1024, 0.5, 30)
    assert plan["setup_scripts"] == [
        {"path": "/etc/osl-hooks/setup.d", "timeout": 120.0, "run": "always", "on_failure": "fail"},
        {"path": "/etc/osl-hooks/once.sh", "timeout": 20.0, "run": "once", "on_failure": "fail"},
    ]
    (env,) = plan["environments"]
    assert env["built_prefix"] == "/build/py" and env["target"] == "~/envs/python"
    assert env["kernel"] == {"name": "python-synced", "display_name": "Python", "env": {"EXTRA": "1"}}
    assert env["setup_scripts"] == [
        {"path": "/etc/osl-hooks/py.sh", "timeout": 120.0, "run": "always", "on_failure": "continue"}
    ]


def test_delivery_per_profile():
    c = kube_config(profile_delivery={"legacy": "post_start", "gis": "wrap"})  # default: auto -> init_container
    osl_hooks.hub.install(c)
    user = hub_user("frank")
    kinds = {}
    for profile in ["python", "gis", "legacy"]:
        _, pod = spawn_pod(c, user, {"profile": profile})
        validate_pod(pod)
        kinds[profile] = pod["metadata"]["annotations"]["osl-hooks/delivery"]
    assert kinds == {"python": "init_container", "gis": "wrap", "legacy": "post_start"}


def test_admins_init_containers_and_post_start_are_kept():
    """z2jh's root, privileged network-blocking init container runs first; an admin's exec postStart is chained."""
    c = kube_config(delivery="post_start")
    c.KubeSpawner.init_containers = [
        {
            "name": "block-cloud-metadata",
            "image": "quay.io/jupyterhub/k8s-network-tools:4.0.0",
            "command": ["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"],
            "securityContext": {"privileged": True, "runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}},
        }
    ]
    c.KubeSpawner.lifecycle_hooks = {
        "postStart": {"exec": {"command": ["sh", "-c", "echo admin > /tmp/admin-hook"]}},
        "preStop": {"exec": {"command": ["sh", "-c", "echo bye"]}},
    }
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("grace"))
    validate_pod(pod)
    notebook = container(pod)
    assert notebook["lifecycle"]["postStart"]["exec"]["command"] == [
        "/bin/sh",
        "-c",
        'osl-hooks start --degraded-ok && exec "$@"',
        "osl-hooks-post-start",
        "sh",
        "-c",
        "echo admin > /tmp/admin-hook",
    ]
    assert notebook["lifecycle"]["preStop"] == {"exec": {"command": ["sh", "-c", "echo bye"]}}

    c2 = kube_config(delivery="init_container")
    c2.KubeSpawner.init_containers = c.KubeSpawner.init_containers
    osl_hooks.hub.install(c2)
    _, pod = spawn_pod(c2, hub_user("grace2"))
    validate_pod(pod)
    assert [i["name"] for i in pod["spec"]["initContainers"]] == ["block-cloud-metadata", "osl-hooks"]
    assert restricted_violations(container(pod, "osl-hooks"), pod["spec"]) == []


def test_admins_security_settings_win():
    """Restricted settings fill gaps only: what the admin's pod config says is kept."""
    c = kube_config()
    c.KubeSpawner.pod_security_context = {"seccompProfile": {"type": "Localhost", "localhostProfile": "jupyter.json"}}
    c.KubeSpawner.container_security_context = {
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "runAsGroup": 100,
    }
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("heidi"))
    validate_pod(pod)
    init = container(pod, "osl-hooks")
    assert init["securityContext"] == {
        "runAsUser": 1000,
        "runAsGroup": 100,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        "runAsNonRoot": True,
    }  # no seccompProfile of its own: the pod's Localhost profile applies
    assert restricted_violations(init, pod["spec"]) == []

    c = kube_config(restricted_security_context=False)
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("heidi2"))
    assert container(pod, "osl-hooks")["securityContext"] == container(pod)["securityContext"]


def test_home_from_the_pod_and_its_volume():
    c = kube_config()
    c.KubeSpawner.environment = {"HOME": "/home/{username}"}
    c.KubeSpawner.volume_mounts = [{"mountPath": "/home/{username}", "name": "volume-{username}{servername}"}]
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("ivan"))
    assert plan_of(container(pod, "osl-hooks"))["home"] == "/home/ivan"

    c = kube_config()
    c.KubeSpawner.volume_mounts = []  # no home volume: an init container's work would be lost
    osl_hooks.hub.install(c)
    from jupyterhub.spawner import SpawnException

    with pytest.raises(SpawnException, match="not on a volume"):
        spawn_pod(c, hub_user("ivan2"))


def test_wrap_keeps_an_explicit_container_command():
    c = kube_config(delivery="wrap", allow_root=True)
    c.KubeSpawner.extra_container_config = {"command": ["tini", "-g", "--"]}
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("judy"))
    validate_pod(pod)
    notebook = container(pod)
    assert notebook["command"] == ["osl-hooks", "start", "--allow-root", "--", "tini", "-g", "--"]
    assert notebook["args"] == ["jupyterhub-singleuser"]


def test_callable_profile_list_default_profile():
    async def profile_list(spawner):
        await asyncio.sleep(0)
        return copy.deepcopy(kube_config().KubeSpawner.profile_list)[::-1]  # 'legacy' first, 'python' default

    c = kube_config()
    c.KubeSpawner.profile_list = profile_list
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("kim"), {})
    assert [e["name"] for e in plan_of(container(pod, "osl-hooks"))["environments"]] == ["py"]
    _, pod = spawn_pod(c, hub_user("kim2"), {"profile": "gis"})  # option default: standard
    assert [e["name"] for e in plan_of(container(pod, "osl-hooks"))["environments"]] == ["py", "gis"]


def test_one_spawner_many_spawns_and_install_twice():
    """A Spawner object can serve several spawns (JupyterHub keeps it after a failed spawn); install(c)
    twice must not chain osl-hooks twice."""
    c = kube_config(delivery="wrap")
    admin_hooks(c)
    osl_hooks.hub.install(c)
    osl_hooks.hub.install(c)

    async def go():
        spawner = make_spawner(c, hub_user("leo"))
        pods = []
        for profile in ["gis", "python", "gis"]:
            spawner.user_options = {"profile": profile}
            pods.append(await serialise(await run_spawn_hooks(spawner)))
        return pods

    pods = asyncio.run(go())
    for pod in pods:
        validate_pod(pod)
        assert container(pod)["args"] == ["osl-hooks", "start", "--", "jupyterhub-singleuser"]
        assert [m["name"] for m in container(pod)["volumeMounts"]].count("shared-data") == 1
    assert [len(plan_of(container(p))["environments"]) for p in pods] == [2, 1, 2]


def test_replaced_modify_pod_hook_is_an_error_at_spawn():
    from jupyterhub.spawner import SpawnException

    c = kube_config()
    osl_hooks.hub.install(c)
    c.KubeSpawner.modify_pod_hook = lambda spawner, pod: pod  # set after install(c): osl-hooks is bypassed
    with pytest.raises(SpawnException, match="modify_pod_hook"):
        spawn_pod(c, hub_user("mallory"))


def test_hook_cost_per_spawn(capsys):
    """The hook's own cost: median of many modify_pod_hook calls on a real KubeSpawner's pod."""
    c = kube_config()
    runtime = osl_hooks.hub.install(c)
    users = [hub_user(f"cost{i}", ["geo"] if i % 2 else []) for i in range(20)]

    async def go():
        from jupyterhub.utils import maybe_future

        samples = {"modify_pod_hook": [], "get_pod_manifest": [], "plan_uncached": []}
        for i in range(400):
            spawner = make_spawner(c, users[i % len(users)], {"profile": ["gis", "python"][i % 2], "flavour": "radar"})
            await maybe_future(spawner.run_pre_spawn_hook())
            await spawner.load_user_options()
            t0 = time.perf_counter()
            pod = await spawner.get_pod_manifest()
            t1 = time.perf_counter()
            await spawner.modify_pod_hook(spawner, pod)
            t2 = time.perf_counter()
            samples["get_pod_manifest"].append(t1 - t0)
            samples["modify_pod_hook"].append(t2 - t1)
            runtime.planner._cache.clear()
            ctx = await runtime.kube_context(spawner)
            t3 = time.perf_counter()
            runtime.planner.plan_json(ctx, HOME)
            samples["plan_uncached"].append(time.perf_counter() - t3)
        return samples

    samples = asyncio.run(go())
    medians = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    with capsys.disabled():
        print(
            "\nosl-hooks cost per spawn over 400 spawns (median): modify_pod_hook "
            f"{medians['modify_pod_hook']:.3f} ms (KubeSpawner's own get_pod_manifest: "
            f"{medians['get_pod_manifest']:.3f} ms); plan built and validated without the cache: "
            f"{medians['plan_uncached']:.3f} ms"
        )
    assert medians["modify_pod_hook"] < 5


def test_each_delivery_is_one_function_of_the_table():
    from osl_hooks.hub import DELIVERIES
    from osl_hooks.hub.delivery import POD_DELIVERIES

    assert tuple(POD_DELIVERIES) == DELIVERIES
    assert len(set(POD_DELIVERIES.values())) == len(DELIVERIES)
