"""Retiring an env on a real local hub (issue 32): JupyterHub, configurable-http-proxy, SimpleLocalProcessSpawner
with the `wrap` delivery, real conda envs, real starts, `c.OSLHooks.retired_env_days = 0`.

alice's first start gets two envs: `old` (a Python env with a kernel, for everyone) and `geo` (for the group `geo`,
alice's group then). The admin then drops `old` from `c.OSLHooks.environments` and restarts the hub, and alice
leaves the group `geo` (which stays configured for its group). Her second start: the unchanged copy of `old` is
removed after her server is ready, its kernel is gone, and her copy of `geo` (offered, just not to her now) is
kept. `/hub/metrics` and the report show the bytes the retired copy holds, and after her third start the bytes its
removal freed.
"""

from __future__ import annotations

import http.cookiejar
import json
import shutil
import sys
import textwrap
import urllib.parse
import urllib.request

import pytest
from localhub import Hub, wrap_hub_config
from prometheus_client.parser import text_string_to_metric_families

from osl_hooks.demo.envbuild import build_conda_env
from osl_hooks.engine.manifest import bake

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]


def environments(python_env: str, geo_env: str, *, with_old: bool) -> str:
    old = {"name": "old", "mode": "synced", "source": python_env, "display_name": "Old Python"}
    geo = {"name": "geo", "mode": "synced", "source": geo_env, "groups": ["geo"]}
    return f"c.OSLHooks.environments = {[old, geo] if with_old else [geo]!r}\n"


def metrics(hub: Hub) -> dict[tuple[str, tuple], float]:
    request = urllib.request.Request(hub.url + "/hub/metrics", headers={"Authorization": f"token {hub.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def report(hub: Hub) -> dict:
    status, body = hub.api("GET", "/hub/api/osl-hooks/report")
    assert status == 200, body
    return body


def rows_of(body: dict, user: str) -> dict[str, dict]:
    return {row["env"]: row for row in body["rows"] if row["user"] == user}


def admin_page(hub: Hub, path: str) -> str:
    """A page of the hub as the admin `boss` sees it (signed in with the dummy authenticator's form: a page of the
    hub takes no API token)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(hub.url + "/hub/login", timeout=30).read()
    xsrf = next(cookie.value for cookie in jar if cookie.name == "_xsrf")
    form = urllib.parse.urlencode({"username": "boss", "password": "any", "_xsrf": xsrf}).encode()
    opener.open(hub.url + "/hub/login", form, timeout=30).read()
    with opener.open(hub.url + path, timeout=30) as response:
        return response.read().decode()


def kernels(hub: Hub, user: str) -> set[str]:
    status, specs = hub.api("GET", f"/user/{user}/api/kernelspecs")
    assert status == 200, specs
    return set(specs["kernelspecs"])


@pytest.fixture
def retiring_hub(tmp_path, python_image):
    geo = tmp_path / "image/envs/geo"
    build_conda_env(geo)
    bake(geo)
    homes = tmp_path / "homes"
    (homes / "alice").mkdir(parents=True)
    osl = environments(str(python_image / "envs/py"), str(geo), with_old=True) + textwrap.dedent("""
        c.OSLHooks.retired_env_days = 0
        c.Authenticator.admin_users = {"boss"}
        c.JupyterHub.redirect_to_server = False  # signing in (the report's page) starts no server
        c.OSLHooks.first_copy = "before_ready"
        c.JupyterHub.load_roles += [{"name": "watcher", "services": ["tester"], "scopes": ["read:metrics", "admin:groups"]}]
        """)
    hub = Hub.with_config(tmp_path, wrap_hub_config(homes, osl, start_timeout=120, http_timeout=60))
    hub.homes, hub.sources = homes, (str(python_image / "envs/py"), str(geo))
    try:
        yield hub
    finally:
        hub.close()


def restart_without_old(hub: Hub) -> Hub:
    """The admin drops `old` from the configuration and restarts the hub."""
    hub.close()
    config = hub.directory / "jupyterhub_config.py"
    text = config.read_text()
    before, after = environments(*hub.sources, with_old=True), environments(*hub.sources, with_old=False)
    assert before in text
    config.write_text(text.replace(before, after))
    restarted = Hub(
        hub.directory, [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"], hub.port, hub.token
    )
    restarted.homes, restarted.sources = hub.homes, hub.sources
    return restarted


def test_a_dropped_envs_unchanged_copy_is_removed_and_one_offered_elsewhere_is_kept(retiring_hub):
    hub = retiring_hub
    envs = hub.homes / "alice/.local/envs"
    assert hub.api("POST", "/hub/api/users/alice")[0] == 201
    assert hub.api("POST", "/hub/api/groups/geo", {"users": ["alice"]})[0] == 201
    hub.start_server("alice")
    assert sorted(p.name for p in envs.iterdir()) == ["geo", "old"]
    assert "osl-old" in kernels(hub, "alice")
    held = rows_of(report(hub), "alice")["old"]["volume_bytes"]
    assert held > 0
    hub.stop_server("alice")

    hub = restart_without_old(hub)
    try:
        status, body = hub.api("DELETE", "/hub/api/groups/geo/users", {"users": ["alice"]})
        assert status == 200, body
        hub.start_server("alice")
        # removed after the server is ready, in the background
        hub.wait_for(lambda: not (envs / "old").exists(), 120, "the retired copy of old to be removed")
        # then its tree is deleted, by a low-priority process
        hub.wait_for(lambda: sorted(p.name for p in envs.iterdir()) == ["geo"], 300, "nothing but geo in the envs")
        assert (envs / "geo/conda-meta").is_dir()  # offered to the group geo: alice's copy is kept
        assert "osl-old" not in kernels(hub, "alice")

        body = report(hub)
        old = rows_of(body, "alice")["old"]
        assert (old["state"], old["retired"], old["volume_bytes"]) == ("retired due", "due", held)
        assert "geo" not in rows_of(body, "alice")  # not in this start's plan, not retired: not a row
        assert body["retired"]["alice"]["held_bytes"] == held
        figures = metrics(hub)
        assert figures[("osl_hooks_retired_bytes", (("state", "due"),))] == held
        assert figures[("osl_hooks_reclaimed_bytes", ())] == 0
        page = admin_page(hub, "/hub/osl-hooks/report")
        assert "Copies of retired envs, by user" in page and "retired due" in page
        assert f"{held / 1e6:.1f} MB" in page

        hub.stop_server("alice")  # the next start reports what the removal freed
        hub.start_server("alice")
        body = report(hub)
        old = rows_of(body, "alice")["old"]
        assert (old["state"], old["volume_bytes"], old["reclaimed_bytes"]) == ("removed", 0, held)
        assert body["retired"]["alice"] == {
            "held_bytes": 0,
            "reclaimed_bytes": old["reclaimed_bytes"],
            "states": {"removed": 1},
        }
        figures = metrics(hub)
        assert figures[("osl_hooks_reclaimed_bytes", ())] == old["reclaimed_bytes"]
        assert figures[("osl_hooks_retired_bytes", (("state", "due"),))] == 0
        status_file = json.loads((hub.homes / "alice/.local/state/osl-hooks/status.json").read_text())
        assert status_file["state"] == "ok"
    finally:
        hub.close()
