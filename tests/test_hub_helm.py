"""helm/*.yaml values files: valid for the z2jh chart, and a working osl-hooks configuration per delivery.

The value sets: osl-hooks-values.yaml alone (init_container, legacy profile post_start), and with each
overlay after it (-post-start, -wrap, -pods-log), as `helm upgrade -f ... -f ...` merges them.

1. The check `helm install/lint` makes before rendering: the chart's default values, deep-merged with the
   file as helm merges `-f` files (maps merge, lists and scalars replace, null deletes), validated against
   the chart's values.schema.yaml (draft-07). The chart data lives in ../shared/z2jh (or
   $OSL_HOOKS_Z2JH_DIR); the test is skipped without it.
2. The merged values turned into the hub's config the way z2jh's jupyterhub_config.py does for the parts
   osl-hooks depends on (hub.config -> c.<Class>, singleuser.* -> c.KubeSpawner.*), then every
   hub.extraConfig snippet executed as z2jh's jupyterhub_config.py does (`exec(config_py)` in that file's
   module namespace, in key order), then real KubeSpawner pods built for each profile and validated with
   kubernetes-validate and the restricted Pod Security Standard checker (tests/pss.py).
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pss
import pytest
import yaml
from test_hub_support import container, hub_user, restricted_violations, spawn_pod, validate_pod
from traitlets.config import Config

REPO = Path(__file__).resolve().parent.parent
HELM = REPO / "helm"
VALUES = HELM / "osl-hooks-values.yaml"
VALUE_SETS = {
    "init_container": [VALUES],
    "post_start": [VALUES, HELM / "osl-hooks-values-post-start.yaml"],
    "wrap": [VALUES, HELM / "osl-hooks-values-wrap.yaml"],
    "pods_log": [VALUES, HELM / "osl-hooks-values-pods-log.yaml"],
    "env_images": [VALUES, HELM / "osl-hooks-values-env-images.yaml"],
}
Z2JH = Path(os.environ.get("OSL_HOOKS_Z2JH_DIR", REPO.parent / "shared" / "z2jh"))

pytestmark = [
    pytest.mark.usefixtures("kube"),
    pytest.mark.skipif(not (Z2JH / "values.schema.yaml").exists(), reason=f"no z2jh chart data in {Z2JH}"),
]


def helm_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merged_values(*overrides: dict) -> dict:
    values = yaml.safe_load((Z2JH / "values.yaml").read_text())
    for override in overrides:
        values = helm_merge(values, override)
    return values


def value_set(name: str) -> dict:
    """The chart defaults with the files of one value set merged over them, in order."""
    return merged_values(*(yaml.safe_load(path.read_text()) for path in VALUE_SETS[name]))


def schema_errors(values: dict) -> list[str]:
    import jsonschema

    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))


def test_every_values_file_is_in_a_value_set():
    assert set(HELM.glob("osl-hooks-values*.yaml")) == {p for paths in VALUE_SETS.values() for p in paths}


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_values_files_pass_the_chart_schema(name):
    assert schema_errors(value_set(name)) == []


def test_the_chart_default_pod_is_not_restricted():
    """The check `validate_pod(restricted=True)` makes can fail: with z2jh's iptables init container it does."""
    values = value_set("init_container")
    values["singleuser"]["cloudMetadata"]["blockWithIptables"] = True
    _, pod = spawn_pod(z2jh_config(values), hub_user("nina"), {})
    assert any(p.startswith("spec.initContainers[0](block-cloud-metadata).") for p in pss.violations(pod))


def test_the_schema_check_catches_a_typo():
    values = yaml.safe_load(VALUES.read_text())
    values["singleuser"]["initContainer"] = []
    assert any("initContainer" in e for e in schema_errors(merged_values(values)))


def z2jh_config(values: dict) -> Config:
    """What z2jh's jupyterhub_config.py sets from these values, for the parts osl-hooks meets."""
    c = Config()
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    su = values["singleuser"]
    c.KubeSpawner.image = f"{su['image']['name']}:{su['image']['tag']}"
    c.KubeSpawner.uid = su["uid"]
    c.KubeSpawner.fs_gid = su["fsGid"]
    c.KubeSpawner.allow_privilege_escalation = su["allowPrivilegeEscalation"]
    c.KubeSpawner.start_timeout = su["startTimeout"]
    c.KubeSpawner.mem_guarantee = su["memory"]["guarantee"]
    c.KubeSpawner.mem_limit = su["memory"]["limit"]
    c.KubeSpawner.profile_list = su["profileList"]
    c.KubeSpawner.environment = su["extraEnv"]
    c.KubeSpawner.lifecycle_hooks = su["lifecycleHooks"]
    init_containers = list(su["initContainers"])
    if su["cloudMetadata"]["blockWithIptables"]:
        init_containers.insert(
            0,
            {
                "name": "block-cloud-metadata",
                "image": "quay.io/jupyterhub/k8s-network-tools:5.5.0",
                "command": [
                    "iptables",
                    "--append",
                    "OUTPUT",
                    "--protocol",
                    "tcp",
                    "--destination",
                    su["cloudMetadata"]["ip"],
                    "--destination-port",
                    "80",
                    "--jump",
                    "DROP",
                ],
                "securityContext": {"runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}},
            },
        )
    c.KubeSpawner.init_containers = init_containers
    if su["cmd"]:
        c.Spawner.cmd = su["cmd"]
    volume = su["storage"]["dynamic"]["volumeNameTemplate"]
    c.KubeSpawner.volumes = [{"name": volume, "persistentVolumeClaim": {"claimName": "claim-{user_server}"}}]
    c.KubeSpawner.volume_mounts = [{"mountPath": su["storage"]["homeMountPath"], "name": volume}]
    if su["extraFiles"]:
        items = [
            {"key": k, "path": k, **({"mode": f["mode"]} if "mode" in f else {})} for k, f in su["extraFiles"].items()
        ]
        c.KubeSpawner.volumes.append({"name": "files", "secret": {"secretName": "singleuser", "items": items}})
        c.KubeSpawner.volume_mounts.extend(
            {"name": "files", "mountPath": f["mountPath"], "subPath": k} for k, f in su["extraFiles"].items()
        )
    for section, settings in values["hub"]["config"].items():
        c[section].update(copy.deepcopy(settings))
    run_extra_config(c, values)
    return c


def run_extra_config(c: Config, values: dict) -> None:
    """hub.extraConfig as z2jh's jupyterhub_config.py runs it (chart 5.x, at its end):

        for key, config_py in sorted(get_config("hub.extraConfig", {}).items()):
            print(f"Loading extra config: {key}")
            exec(config_py)

    `exec` without a namespace runs the snippet in jupyterhub_config.py's module globals: `c`, the modules
    that file imports and z2jh's helpers, which snippets may use (get_config reads the merged values).
    """
    import glob
    import re
    import sys

    from jupyterhub.utils import url_path_join
    from kubernetes_asyncio import client

    def get_config(key, default=None):
        value = values
        for level in key.split("."):
            if not isinstance(value, dict) or level not in value:
                return default
            value = value[level]
        return value

    def set_config_if_not_none(cparent, name, key):
        data = get_config(key)
        if data is not None:
            setattr(cparent, name, data)

    module_globals = {
        "c": c,
        "glob": glob,
        "os": os,
        "re": re,
        "sys": sys,
        "url_path_join": url_path_join,
        "client": client,
        "get_config": get_config,
        "set_config_if_not_none": set_config_if_not_none,
        "__name__": "__main__",
    }
    for key, config_py in sorted(get_config("hub.extraConfig", {}).items()):
        print(f"Loading extra config: {key}")
        exec(config_py, module_globals)


PROFILES = [
    ({}, "registry.example.org/opensarlab/notebook:2024.1", ["base-py"]),
    (
        {"profile": "gis", "flavour": "radar"},
        "registry.example.org/opensarlab/radar-notebook:2024.1",
        ["base-py", "gis", "radar", "scratch"],
    ),
    ({"profile": "gis"}, "registry.example.org/opensarlab/gis-notebook:2024.1", ["base-py", "gis", "scratch"]),
    ({"profile": "legacy"}, "registry.example.org/opensarlab/notebook:2024.1", ["base-py"]),
]


def expected_delivery(value_set_name: str, options: dict) -> str:
    if value_set_name in ("post_start", "wrap"):
        return value_set_name
    return "post_start" if options.get("profile") == "legacy" else "init_container"


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
@pytest.mark.parametrize("options, image, envs", PROFILES)
def test_values_give_working_pods(name, options, image, envs):
    values = value_set(name)
    c = z2jh_config(values)
    user = hub_user("nina", ["power-users"] if options.get("profile") == "gis" else [])
    spawner, pod = spawn_pod(c, user, options)
    image_volumes = [v["image"]["reference"] for v in pod["spec"]["volumes"] if "image" in v]
    if name == "env_images" and options.get("profile") == "gis":
        assert image_volumes == ["registry.example.org/envs/gis:2024.1"]
        validate_pod(pod, ("1.33", "1.37"), restricted=True)  # image volumes: Kubernetes 1.33 and later
    else:
        assert image_volumes == []
        validate_pod(pod, restricted=True)
    delivery = expected_delivery(name, options)
    assert pod["metadata"]["annotations"]["osl-hooks/delivery"] == delivery
    assert spawner.start_timeout == values["singleuser"]["startTimeout"]
    assert pod["spec"]["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
    notebook = container(pod)
    assert notebook["image"] == image
    if delivery == "init_container":
        init = container(pod, "osl-hooks")
        assert [i["name"] for i in pod["spec"]["initContainers"]] == ["osl-hooks"]
        assert init["image"] == image and restricted_violations(init, pod["spec"]) == []
        assert {m["mountPath"] for m in init["volumeMounts"]} >= {
            "/home/jovyan",
            "/etc/osl-hooks/setup.d/10-welcome.sh",
        }
        plan_env = init["env"]
    else:
        plan_env = notebook["env"]
    if delivery == "wrap":
        assert notebook["args"][:4] == ["osl-hooks", "start", "--", "jupyterhub-singleuser"]
        assert spawner.http_timeout >= 300
    if delivery == "post_start":
        assert notebook["lifecycle"]["postStart"]["exec"]["command"][:2] == ["osl-hooks", "start"]
    assert spawner.modify_pod_hook._osl_hooks_runtime.hooks.read_init_container_logs is (name == "pods_log")
    plan = json.loads(next(e["value"] for e in plan_env if e["name"] == "OSL_HOOKS_PLAN"))
    assert [e["name"] for e in plan["environments"]] == envs
    assert plan["setup_scripts"][0] == {
        "path": "/etc/osl-hooks/setup.d",
        "timeout": 120.0,
        "run": "always",
        "on_failure": "continue",
    }


FIRST_SYNC = re.compile(r"first sync: (\d+) GB of synced envs")
PULL_SECONDS = 300  # pulling the image on a fresh node
SYNC_RATE = 20e6  # bytes per second: a cautious rate for copying many small files to a network volume


@pytest.mark.parametrize("name, timeout_of", [("init_container", "startTimeout"), ("wrap", "http_timeout")])
def test_timeouts_cover_the_first_sync(name, timeout_of):
    """The timeout the delivery runs under covers the documented derivation from the envs' sizes."""
    values = value_set(name)
    synced_bytes = int(FIRST_SYNC.search(VALUES.read_text())[1]) * 1e9
    scripts = values["hub"]["config"]["OSLHooks"]["script_timeout"]
    if timeout_of == "startTimeout":
        timeout, needed = values["singleuser"]["startTimeout"], PULL_SECONDS + synced_bytes / SYNC_RATE + scripts
    else:
        timeout, needed = values["hub"]["config"]["KubeSpawner"]["http_timeout"], synced_bytes / SYNC_RATE + scripts
    assert needed <= timeout < needed + 60
