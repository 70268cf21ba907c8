"""What osl-hooks relies on inside KubeSpawner and JupyterHub (osl_hooks/hub/spawner_internals.py) is still there.

The versions are pinned: a KubeSpawner or JupyterHub of another major.minor fails here with the list of what to
re-check in its source, and then `CHECKED` gains that version. The other tests check each private method,
attribute and property by name and shape on the installed version, and that osl-hooks' answers are KubeSpawner's.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect

import pytest
from test_hub_support import PROFILES, hub_user, kube_config, make_spawner

from osl_hooks.hub import spawner_internals as si

pytestmark = pytest.mark.usefixtures("kube")

TO_RECHECK = {
    "kubespawner": (
        "KubeSpawner._sorted_dict_values(self, src), ._get_initialized_profile_list(self, profile_list), "
        "._get_profile(self, slug, profile_list) and how load_user_options uses them; the slugs of profiles without "
        "one (static_profiles); _start_future (set by start(), ends progress()); the pod_reflector property and "
        "PodReflector.pods keyed 'namespace/name'; KubeSpawner.progress's events; no attribute named like "
        "spawner_internals.SPAWNER_ATTRS"
    ),
    "jupyterhub": (
        "Spawner._spawn_future (set by User.spawn before start()); no attribute named like "
        "spawner_internals.SPAWNER_ATTRS"
    ),
}


@pytest.mark.parametrize("package", sorted(si.CHECKED))
def test_the_installed_version_is_one_the_internals_were_checked_against(package):
    installed = importlib.import_module(package).__version__
    major_minor = ".".join(installed.split(".")[:2])
    assert major_minor in si.CHECKED[package], (
        f"{package} {installed} is installed; osl_hooks/hub/spawner_internals.py was checked against "
        f"{', '.join(si.CHECKED[package])}. Re-check in its source: {TO_RECHECK[package]}; then add "
        f"{major_minor!r} to spawner_internals.CHECKED[{package!r}]"
    )


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_kubespawner_private_methods_have_the_expected_signatures():
    from kubespawner import KubeSpawner

    assert parameters(KubeSpawner._sorted_dict_values) == ["self", "src"]
    assert parameters(KubeSpawner._get_initialized_profile_list) == ["self", "profile_list"]
    assert parameters(KubeSpawner._get_profile) == ["self", "slug", "profile_list"]
    assert inspect.isasyncgenfunction(KubeSpawner.progress)


def test_kubespawner_attributes_and_the_pod_reflector_are_there():
    from kubespawner import KubeSpawner
    from kubespawner.reflector import ResourceReflector
    from kubespawner.spawner import PodReflector

    assert isinstance(KubeSpawner.pod_reflector, property)
    assert isinstance(PodReflector.pods, property) and issubclass(PodReflector, ResourceReflector)

    async def go():
        spawner = make_spawner(kube_config(), hub_user("alice"))
        assert si.start_future(spawner) is None and "_start_future" in vars(spawner)
        assert si.reflected_pod(spawner) is None  # no reflector started
        return spawner

    asyncio.run(go())


def test_jupyterhub_spawn_future_is_there():
    from jupyterhub.spawner import Spawner

    assert "_spawn_future" in vars(Spawner) and Spawner._spawn_future is None


def test_the_names_osl_hooks_keeps_on_spawners_are_not_the_spawners_own():
    from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner
    from kubespawner import KubeSpawner

    async def go():
        return make_spawner(kube_config(), hub_user("alice"))

    spawner = asyncio.run(go())
    for cls in (KubeSpawner, LocalProcessSpawner, SimpleLocalProcessSpawner):
        for name in si.SPAWNER_ATTRS:
            assert not hasattr(cls, name), f"{cls.__name__} has {name} itself"
    for name in si.SPAWNER_ATTRS:
        assert not hasattr(spawner, name)


@pytest.mark.parametrize(
    "profile_list",
    [
        PROFILES,
        [{"display_name": "Plain Python 3.11"}, {"display_name": "GIS & Radar", "default": True}],
        {"b": {"display_name": "B Profile"}, "a": {"display_name": "A", "slug": "first"}},
    ],
    ids=["slugs", "display-names", "dict"],
)
def test_osl_hooks_reads_profiles_as_kubespawner_does(profile_list):
    """The profiles osl-hooks finds at hub start (static_profiles) and at spawn are KubeSpawner's, in its order."""

    async def go():
        c = kube_config()
        c.KubeSpawner.profile_list = profile_list
        spawner = make_spawner(c, hub_user("alice"))
        ours = await si.initialized_profile_list(spawner)
        theirs = spawner._get_initialized_profile_list(spawner._sorted_dict_values(profile_list))
        assert ours == theirs
        assert list(si.static_profiles(profile_list)) == [p["slug"] for p in theirs]
        default = si.chosen_profile(spawner, None, ours)
        assert default is next(p for p in ours if p.get("default"))
        assert si.chosen_profile(spawner, theirs[-1]["slug"], ours) is ours[-1]

    asyncio.run(go())


def test_a_callable_profile_list_is_called_sync_or_async():
    async def go():
        for make in (lambda s: PROFILES, _async_profiles):
            c = kube_config()
            c.KubeSpawner.profile_list = make
            spawner = make_spawner(c, hub_user("alice"))
            assert [p["slug"] for p in await si.initialized_profile_list(spawner)] == ["python", "gis", "legacy"]
        assert si.static_profiles(_async_profiles) is None

    asyncio.run(go())


async def _async_profiles(spawner):
    return PROFILES


def test_an_empty_profile_list_has_no_profiles():
    async def go():
        c = kube_config()
        c.KubeSpawner.profile_list = []
        assert await si.initialized_profile_list(make_spawner(c, hub_user("alice"))) == []

    asyncio.run(go())
