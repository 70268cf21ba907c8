"""Env images (OSLHooks.env_images): an env in its own OCI image, mounted read-only at its `source` with the
`image` volume source of Kubernetes 1.33+, in the notebook container and the init container; pods built by a
real KubeSpawner and validated against the 1.33+ schemas and the restricted Pod Security Standard."""

from __future__ import annotations

import kubernetes_validate
import pss
import pytest
from test_hub_support import container, hub_user, kube_config, spawn_pod, validate_pod

import osl_hooks.hub
from osl_hooks.hub.checks import check_config
from osl_hooks.hub.env_images import volume_name

pytestmark = pytest.mark.usefixtures("kube")

IMAGE_VOLUME_VERSIONS = ("1.33", "1.37")
ENV_IMAGES = {
    "gis": "registry.example/envs/gis:2024.1",
    "radar": {"reference": "registry.example/envs/radar:3", "pull_policy": "IfNotPresent", "sub_path": "env"},
}


def image_volumes(pod: dict) -> dict[str, dict]:
    return {v["name"]: v["image"] for v in pod["spec"]["volumes"] if "image" in v}


def mounts(c: dict) -> dict[str, dict]:
    return {m["mountPath"]: m for m in c.get("volumeMounts", [])}


@pytest.mark.parametrize("delivery", ["init_container", "post_start", "wrap"])
def test_env_images_are_mounted_at_the_envs_source(delivery):
    c = kube_config(env_images=ENV_IMAGES, delivery=delivery)
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("eve", ["geo"]), {"profile": "gis", "flavour": "radar"})
    validate_pod(pod, IMAGE_VOLUME_VERSIONS)
    assert image_volumes(pod) == {
        volume_name("gis"): {"reference": "registry.example/envs/gis:2024.1"},
        volume_name("radar"): {"reference": "registry.example/envs/radar:3", "pullPolicy": "IfNotPresent"},
    }
    readers = [container(pod)] + ([container(pod, "osl-hooks")] if delivery == "init_container" else [])
    for c_ in readers:
        assert mounts(c_)["/opt/conda/envs/gis"] == {
            "name": volume_name("gis"),
            "mountPath": "/opt/conda/envs/gis",
            "readOnly": True,
        }
        assert mounts(c_)["/opt/conda/envs/radar"]["subPath"] == "env"
    assert not [p for p in pss.violations(pod) if p.startswith("spec.volumes")]
    with pytest.raises(kubernetes_validate.ValidationError):  # before 1.33 there is no image volume source
        kubernetes_validate.validate(pod, "1.30", strict=True)


def test_only_the_envs_of_the_spawn_are_mounted():
    c = kube_config(env_images=ENV_IMAGES)
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("eve", ["geo"]), {})  # the default profile: no gis, no radar
    validate_pod(pod)
    assert image_volumes(pod) == {}
    _, pod = spawn_pod(c, hub_user("eve", ["geo"]), {"profile": "gis"})  # gis, not radar
    assert list(image_volumes(pod)) == [volume_name("gis")]


def test_volume_names_are_dns_labels_and_distinct():
    names = {volume_name(n) for n in ["gis", "GIS", "g.i.s", "g_i_s", "a" * 64, "..."]}
    assert len(names) == 6
    assert all(len(n) <= 63 and n.replace("-", "").isalnum() and n == n.lower() for n in names)


@pytest.mark.parametrize(
    "env_images, expected",
    [
        ({"gys": "r/e:1"}, "OSLHooks.env_images['gys']: no environment with this name in OSLHooks.environments"),
        ({"geo-team": "r/e:1"}, "OSLHooks.env_images['geo-team']: the env has no source (mode 'user')"),
        ({"gis": ""}, "OSLHooks.env_images['gis'].reference: '' is not an image reference"),
        ({"gis": {"pull_policy": "Never"}}, "OSLHooks.env_images['gis'].reference: None is not an image reference"),
        ({"gis": {"reference": "r/e:1", "pull_policy": "always"}}, "'always' is not one of Always, IfNotPresent"),
        ({"gis": {"reference": "r/e:1", "sub_path": "/env"}}, "sub_path: '/env' is not a relative path"),
        ({"gis": {"reference": "r/e:1", "subpath": "env"}}, "OSLHooks.env_images['gis'].subpath: unknown key"),
        ({"gis": 3}, "OSLHooks.env_images['gis']: 3 is neither an image reference nor a dict"),
    ],
)
def test_bad_env_images_are_named_at_hub_start(env_images, expected):
    problems = check_config(kube_config(env_images=env_images)).problems
    assert len(problems) == 1 and expected in problems[0], problems
