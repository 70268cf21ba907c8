"""Watching the fleet on a real local hub (configurable-http-proxy, SimpleLocalProcessSpawner, real spawns):
`/hub/metrics` and the admin report count exactly the starts the users had.

Users whose starts end differently, on one genuine conda env (`geo`, synced):
- alice: ok; after an image update she restarts and gets it (up to date);
- bob: his home is a 1 MB filesystem: the env falls back to the image's copy (disk full), the server starts;
- carol: the admin's setup script (on_failure: fail) rejects her broken ~/.tool.ini: the start fails;
  her copy, synced before the script ran, is then behind the updated image;
- dave: changes a file of his copy; the image update changes it too: a conflict (his version kept).
Then `/hub/metrics` (a token with read:metrics only, parsed with prometheus_client's parser), the report API
(admin token, a token with the report's custom scope, a non-admin user's token: 403), its CSV, a hub restart
(the report is unchanged), and the page in headless Chromium (an admin sees it, a non-admin gets 403).
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from browser import ARTIFACTS, chromium, sign_in, wait_for_text
from conftest import mounted_tmpfs, write_script
from localhub import Hub, wrap_hub_config
from prometheus_client.parser import text_string_to_metric_families
from test_grafana_dashboard import exposed_names, queried_metrics

from osl_hooks.demo.envbuild import build_conda_env, demo_packages
from osl_hooks.engine.manifest import MANIFEST_FILE, bake, load

STATE = ".local/state/osl-hooks"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]


class Fleet:
    """The hub, its users' homes, the image env, and tokens with different rights."""

    def __init__(self, directory: Path, hub: Hub, source: Path, metrics_token: str, report_token: str):
        self.directory, self.hub, self.source = directory, hub, source
        self.metrics_token, self.report_token = metrics_token, report_token
        self.homes = directory / "homes"

    def get(self, path: str, token: str) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.hub.url + path, headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self) -> dict[tuple[str, tuple], float]:
        status, text = self.get("/hub/metrics", self.metrics_token)
        assert status == 200, text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def report(self, token: str | None = None) -> list[dict]:
        status, text = self.get("/hub/api/osl-hooks/report", token or self.hub.token)
        assert status == 200, text
        return json.loads(text)["rows"]

    def restart(self) -> None:
        self.hub.close()
        self.hub = Hub(
            self.directory,
            [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            self.hub.port,
            self.hub.token,
        )

    def start_and_wait(self, user: str) -> list[dict]:
        """Start `user`'s server and follow its progress to the end (ready or failed)."""
        status, body = self.hub.api("POST", f"/hub/api/users/{user}/server")
        assert status in (201, 202), (status, body)
        events = self.hub.progress(user)
        if events[-1].get("ready"):
            self.hub.wait_for(lambda: (self.hub.server(user) or {}).get("ready"), 60, f"{user}'s server")
        else:
            self.hub.wait_for(lambda: self.hub.server(user) is None, 60, f"{user}'s failed server to be gone")
        return events


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture
def fleet(tmp_path):
    source = tmp_path / "image/envs/geo"
    build_conda_env(source)
    bake(source)
    check = write_script(
        tmp_path / "image/setup.d/10-tool.sh",
        'if grep -q broken "$HOME/.tool.ini" 2>/dev/null; then echo "~/.tool.ini is not valid" >&2; exit 3; fi',
    )
    homes = tmp_path / "homes"
    for user in ("alice", "carol", "dave"):
        (homes / user).mkdir(parents=True)
    (homes / "carol/.tool.ini").write_text("broken\n")
    metrics_token, report_token = secrets.token_hex(16), secrets.token_hex(16)
    osl = textwrap.dedent(f"""
        c.OSLHooks.environments = [{{"name": "geo", "mode": "synced", "source": {str(source)!r}, "kernel": False}}]
        c.OSLHooks.setup_scripts = [{{"path": {str(check.parent)!r}, "on_failure": "fail"}}]
        # every start's outcome is counted when its copy is done: copies before ready (not in the background)
        c.OSLHooks.first_copy = "before_ready"
        """)
    watchers = textwrap.dedent(f"""
        c.Authenticator.admin_users = {{"boss"}}
        c.JupyterHub.redirect_to_server = False  # signing in (the browser) starts no server
        c.JupyterHub.services += [
            {{"name": "prometheus", "api_token": {metrics_token!r}}},
            {{"name": "fleet-watcher", "api_token": {report_token!r}}},
        ]
        c.JupyterHub.load_roles += [
            {{"name": "prometheus", "services": ["prometheus"], "scopes": ["read:metrics"]}},
            {{"name": "fleet-watcher", "services": ["fleet-watcher"], "scopes": ["custom:osl-hooks-report"]}},
            {{"name": "token-maker", "services": ["tester"], "scopes": ["tokens"]}},
        ]
        """)
    config = watchers + wrap_hub_config(homes, osl, start_timeout=120, http_timeout=60)
    with mounted_tmpfs(homes / "bob", "1m"):
        hub = Hub.with_config(tmp_path, config)
        fleet = Fleet(tmp_path, hub, source, metrics_token, report_token)
        try:
            yield fleet
        finally:
            fleet.hub.close()


def test_metrics_and_report_count_the_fleets_starts(fleet, browser):
    hub = fleet.hub
    for user in ("alice", "bob", "carol", "dave", "erin"):  # boss, an admin_users entry, exists already
        assert hub.api("POST", f"/hub/api/users/{user}")[0] == 201
    before = fleet.metrics()
    assert value(before, "osl_hooks_starts_total", outcome="ok") == 0  # the series exist before any start
    first_volume = load(fleet.source / MANIFEST_FILE).disk_bytes

    assert fleet.start_and_wait("alice")[-1].get("ready")
    assert fleet.start_and_wait("bob")[-1].get("ready")  # degraded: the server still starts
    failed = fleet.start_and_wait("carol")[-1]
    assert failed.get("failed") and "10-tool.sh exited with code 3" in failed["message"], failed
    assert fleet.start_and_wait("dave")[-1].get("ready")
    hub.stop_server("dave")
    (fleet.homes / "dave/.local/envs/geo/share/geodemo/geodemo.ini").write_text("data_dir = /dave/data\n")
    build_conda_env(fleet.source, demo_packages("2.0"))  # the image update
    bake(fleet.source)
    new_volume = load(fleet.source / MANIFEST_FILE).disk_bytes
    assert fleet.start_and_wait("dave")[-1].get("ready")
    hub.stop_server("alice")
    assert fleet.start_and_wait("alice")[-1].get("ready")
    dave_record = json.loads((fleet.homes / f"dave/{STATE}/envs/geo.json").read_text())
    assert dave_record["conflicts"], "the image update changed the file dave changed"

    status, text = fleet.get("/hub/metrics", fleet.metrics_token)
    assert queried_metrics() <= exposed_names(text), "every metric the Grafana dashboard queries is served"
    metrics = fleet.metrics()
    outcomes = {o: value(metrics, "osl_hooks_starts_total", outcome=o) for o in ("ok", "degraded", "failed")}
    assert outcomes == {"ok": 3, "degraded": 2, "failed": 1}  # alice twice, dave; bob, dave's update; carol
    assert value(metrics, "osl_hooks_start_seconds_count", outcome="ok") == 3
    assert value(metrics, "osl_hooks_start_phase_seconds_count", phase="copy", outcome="ok") == 2  # alice, dave
    assert value(metrics, "osl_hooks_start_phase_seconds_count", phase="update", outcome="ok") == 1  # alice
    assert value(metrics, "osl_hooks_start_phase_seconds_count", phase="update", outcome="degraded") == 1  # dave
    assert value(metrics, "osl_hooks_fallbacks_total", reason="disk_full") == 1
    assert sum(value(metrics, "osl_hooks_fallbacks_total", reason=r) for r in ("relocation", "copy_failed")) == 0
    assert value(metrics, "osl_hooks_conflicts_found_total") == len(dave_record["conflicts"])
    assert value(metrics, "osl_hooks_setup_scripts_total", state="failed") == 1
    assert value(metrics, "osl_hooks_setup_scripts_total", state="ok") == 5  # every start but carol's
    servers = {
        state: value(metrics, "osl_hooks_env_servers", env="geo", mode="synced", state=state)
        for state in ("up_to_date", "behind", "conflicts", "fell_back")
    }
    assert servers == {"up_to_date": 1, "behind": 1, "conflicts": 1, "fell_back": 1}
    # on the volumes: alice's and dave's copies of the new env, carol's of the old one; bob has none
    assert value(metrics, "osl_hooks_env_volume_bytes", env="geo", mode="synced") == 2 * new_volume + first_volume

    rows = {row["user"]: row for row in fleet.report()}
    assert set(rows) == {"alice", "bob", "carol", "dave"}  # erin and boss never started a server
    assert (rows["alice"]["state"], rows["alice"]["outcome"]) == ("up to date", "ok")
    assert (rows["bob"]["state"], rows["bob"]["reason"], rows["bob"]["got"]) == ("fell back", "disk_full", "baked")
    carol = rows["carol"]
    assert (carol["state"], carol["outcome"], carol["scripts_failed"]) == ("behind", "failed", 1)
    assert rows["carol"]["copy_id"] != rows["carol"]["image_id"] == rows["alice"]["copy_id"]
    assert (rows["dave"]["state"], rows["dave"]["conflicts"]) == ("conflicts", len(dave_record["conflicts"]))
    assert rows["dave"]["volume_bytes"] == new_volume
    assert fleet.report(fleet.report_token) == list(rows.values())  # the custom scope is enough
    status, text = fleet.get("/hub/api/osl-hooks/report?format=csv", hub.token)
    assert status == 200 and [r["user"] for r in csv.DictReader(io.StringIO(text))] == list(rows)
    status, body = hub.api("POST", "/hub/api/users/erin/tokens", {"note": "erin's own"})
    assert status == 201, body
    assert fleet.get("/hub/api/osl-hooks/report", body["token"])[0] == 403
    assert fleet.get("/hub/api/osl-hooks/report", fleet.metrics_token)[0] == 403

    fleet.restart()
    assert {row["user"]: row for row in fleet.report()} == rows
    after = fleet.metrics()
    assert value(after, "osl_hooks_env_servers", env="geo", mode="synced", state="fell_back") == 1

    sign_in(browser, fleet.hub, "boss")
    browser.get(f"{fleet.hub.url}/hub/osl-hooks/report")
    text = wait_for_text(browser, "Environments of every server")
    for user, row in rows.items():
        shown = browser.find_element("css selector", f'tr[data-user="{user}"]').text
        assert row["state"] in shown, (user, shown)
    assert "fell back (disk full)" in text and "1 setup script failed" in text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "osl-hooks-report.png"))
    sign_in(browser, fleet.hub, "erin")
    browser.get(f"{fleet.hub.url}/hub/osl-hooks/report")
    text = wait_for_text(browser, "403")
    assert "Environments of every server" not in text
