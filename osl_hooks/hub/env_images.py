"""Env images: an environment shipped in its own OCI image, mounted read-only at the env's `source` path.

Kubernetes 1.33 and later can mount an OCI image as a volume (the `image` volume source, KEP-4639; the
restricted Pod Security Standard allows it). With ``c.OSLHooks.env_images = {"gis": "registry/envs/gis:2024.1"}``
the notebook container mounts that image at the `source` of the env ``gis``, and the init container, which
copies the notebook container's mounts, sees it there too: a synced env is copied from it, a baked env is used
in place. Admins can then update an env without rebuilding the notebook image, and several profiles (images)
can share one env image.

Two functions, each called from one place: `env_image_problems` from the configuration check at hub start
(every problem named ``OSLHooks.env_images[...]``), `mount_env_images` from the KubeSpawner pod hook, before
the delivery changes the pod. Only the envs in the spawn's plan are mounted. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

KEYS = ("reference", "pull_policy", "sub_path")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
VOLUME_PREFIX = "osl-env-"


def normalise(value: Any) -> dict[str, Any]:
    """An env image setting as a dict with `reference` (a bare string is the reference)."""
    return {"reference": value} if isinstance(value, str) else dict(value)


def env_image_problems(env_images: Mapping[str, Any], environments: Iterable[Mapping[str, Any]]) -> list[str]:
    """What is wrong with ``OSLHooks.env_images``, given the plan entries of the configured environments."""
    # Only the envs with a usable name: a bad one is reported with OSLHooks.environments.
    by_name = {env["name"]: env for env in environments if isinstance(env.get("name"), str)}
    problems = []
    for name, value in env_images.items():
        where = f"OSLHooks.env_images[{name!r}]"
        if not isinstance(value, (str, dict)):
            problems.append(f"{where}: {value!r} is neither an image reference nor a dict with reference")
            continue
        setting = normalise(value)
        env = by_name.get(name)
        if env is None:
            known = ", ".join(repr(n) for n in by_name) or "none"
            problems.append(f"{where}: no environment with this name in OSLHooks.environments (known: {known})")
        elif not env.get("source"):
            problems.append(f"{where}: the env has no source (mode {env.get('mode')!r}): nothing to mount the image at")
        for key in setting:
            if key not in KEYS:
                problems.append(f"{where}.{key}: unknown key; known keys: {', '.join(KEYS)}")
        reference = setting.get("reference")
        if not isinstance(reference, str) or not reference.strip() or any(c.isspace() for c in reference):
            problems.append(f"{where}.reference: {reference!r} is not an image reference, e.g. 'registry/envs/gis:1'")
        policy = setting.get("pull_policy")
        if policy is not None and policy not in PULL_POLICIES:
            problems.append(f"{where}.pull_policy: {policy!r} is not one of {', '.join(PULL_POLICIES)}")
        sub_path = setting.get("sub_path")
        if sub_path is not None and (
            not isinstance(sub_path, str) or posixpath.isabs(sub_path) or ".." in sub_path.split("/")
        ):
            problems.append(f"{where}.sub_path: {sub_path!r} is not a relative path inside the image")
    return problems


def volume_name(env_name: str) -> str:
    """A volume name (a DNS label) for an env, unique per env name even when names differ only in case or '._'."""
    slug = re.sub(r"[^a-z0-9-]+", "-", env_name.lower()).strip("-")[:40]
    digest = hashlib.sha256(env_name.encode()).hexdigest()[:8]
    return f"{VOLUME_PREFIX}{slug}-{digest}" if slug else f"{VOLUME_PREFIX}{digest}"


def mount_env_images(pod: Any, container: Any, env_images: Mapping[str, Any], plan_json: str) -> None:
    """Add an `image` volume per env of this plan that has an env image, mounted read-only at its source."""
    if not env_images:
        return
    from kubernetes_asyncio.client.models import V1ImageVolumeSource, V1Volume, V1VolumeMount

    from .delivery import model

    volumes = list(pod.spec.volumes or [])
    mounts = list(container.volume_mounts or [])
    for env in json.loads(plan_json)["environments"]:
        if env["name"] not in env_images or not env.get("source"):
            continue
        setting = normalise(env_images[env["name"]])
        name = volume_name(env["name"])
        source = {"reference": setting["reference"]}
        if setting.get("pull_policy"):
            source["pullPolicy"] = setting["pull_policy"]
        volumes.append(model(V1Volume, {"name": name, "image": model(V1ImageVolumeSource, source)}))
        mount = {"name": name, "mountPath": env["source"], "readOnly": True}
        if setting.get("sub_path"):
            mount["subPath"] = setting["sub_path"]
        mounts.append(model(V1VolumeMount, mount))
    pod.spec.volumes = volumes
    container.volume_mounts = mounts
