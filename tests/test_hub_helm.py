"""helm/osl-hooks-values.yaml: valid for the z2jh chart, and a working osl-hooks configuration.

1. The check `helm install/lint` makes before rendering: the chart's default values, deep-merged with the
   file as helm merges `-f` files (maps merge, lists and scalars replace, null deletes), validated against
   the chart's values.schema.yaml (draft-07). The chart data lives in ../shared/z2jh (or
   $OSL_HOOKS_Z2JH_DIR); the test is skipped without it.
2. The merged values turned into the hub's config the way z2jh's jupyterhub_config.py does for the parts
   osl-hooks depends on (hub.config -> c.<Class>, singleuser.* -> c.KubeSpawner.*, extraConfig run last),
   then real KubeSpawner pods built for each profile and validated with kubernetes-validate.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml
from test_hub_support import container, hub_user, no_kubeconfig, restricted_violations, spawn_pod, validate_pod
from traitlets.config import Config

REPO = Path(__file__).resolve().parent.parent
VALUES = REPO / "helm" / "osl-hooks-values.yaml"
Z2JH = Path(os.environ.get("OSL_HOOKS_Z2JH_DIR", REPO.parent / "shared" / "z2jh"))

pytestmark = pytest.mark.skipif(not (Z2JH / "values.schema.yaml").exists(), reason=f"no z2jh chart data in {Z2JH}")


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


def merged_values(override: dict) -> dict:
    return helm_merge(yaml.safe_load((Z2JH / "values.yaml").read_text()), override)


def schema_errors(values: dict) -> list[str]:
    import jsonschema

    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(values))


@pytest.fixture(autouse=True)
def kube(monkeypatch):
    no_kubeconfig(monkeypatch)


def test_values_file_passes_the_chart_schema():
    assert schema_errors(merged_values(yaml.safe_load(VALUES.read_text()))) == []


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
    for _key, snippet in sorted(values["hub"]["extraConfig"].items()):
        exec(snippet, {"c": c})
    return c


@pytest.mark.parametrize(
    "options, delivery, image, envs",
    [
        ({}, "init_container", "registry.example.org/opensarlab/notebook:2024.1", ["base-py"]),
        (
            {"profile": "gis", "flavour": "radar"},
            "init_container",
            "registry.example.org/opensarlab/radar-notebook:2024.1",
            ["base-py", "gis", "radar", "scratch"],
        ),
        ({"profile": "legacy"}, "post_start", "registry.example.org/opensarlab/notebook:2024.1", ["base-py"]),
    ],
)
def test_values_give_working_pods(options, delivery, image, envs):
    values = merged_values(yaml.safe_load(VALUES.read_text()))
    c = z2jh_config(values)
    user = hub_user("nina", ["power-users"] if "profile" in options and options["profile"] == "gis" else [])
    _, pod = spawn_pod(c, user, options)
    validate_pod(pod)
    assert pod["metadata"]["annotations"]["osl-hooks/delivery"] == delivery
    notebook = container(pod)
    assert notebook["image"] == image
    if delivery == "init_container":
        init = container(pod, "osl-hooks")
        assert [i["name"] for i in pod["spec"]["initContainers"]] == ["block-cloud-metadata", "osl-hooks"]
        assert init["image"] == image and restricted_violations(init, pod["spec"]) == []
        assert {m["mountPath"] for m in init["volumeMounts"]} >= {
            "/home/jovyan",
            "/etc/osl-hooks/setup.d/10-welcome.sh",
        }
        plan_env = init["env"]
    else:
        plan_env = notebook["env"]
    import json

    plan = json.loads(next(e["value"] for e in plan_env if e["name"] == "OSL_HOOKS_PLAN"))
    assert [e["name"] for e in plan["environments"]] == envs
    assert plan["setup_scripts"][0] == {
        "path": "/etc/osl-hooks/setup.d",
        "timeout": 120.0,
        "run": "always",
        "on_failure": "continue",
    }
