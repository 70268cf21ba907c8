"""The REST API of osl-hooks' jupyter_server extension, against a real jupyter_server running for a real home.

What a user (and the JupyterLab panel) relies on: the API says what `osl-hooks status --json` says; a reset
through it leaves exactly what `osl-hooks reset` leaves; nobody without the server's credentials, and no
page without its XSRF token, can start one; names and paths never reach outside the plan's envs; and one env
never has two tasks at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests
from conftest import tree_snapshot
from labserver import LabServer

from osl_hooks.engine.linkform import IMAGE_LINK
from osl_hooks.engine.runner import start
from osl_hooks.plan import Plan

STATE = ".local/state/osl-hooks"


def geo_plan(home: Path, image: Path, **extra) -> dict:
    environments = [
        {"name": "geo", "mode": "synced", "source": str(image / "envs/geo")},
        {"name": "lgeo", "mode": "linked", "source": str(image / "envs/geo")},
    ]
    return {"version": 1, "home": str(home), "environments": environments, **extra}


def started_home(home: Path, image: Path) -> Path:
    """A home after a real start of the plan; the user then changed a file of their copy of geo."""
    home.mkdir(parents=True, exist_ok=True)
    start(Plan.from_dict(geo_plan(home, image)), allow_root=True, out=open(os.devnull, "w"))
    ini = home / ".local/envs/geo/share/geodemo/geodemo.ini"
    ini.write_text(ini.read_text() + "\n# the user's own setting\n")
    return home


@pytest.fixture
def server(image, tmp_path):
    hold = tmp_path / "hold"
    home = started_home(tmp_path / "home", image)
    # A reset waits at "reset:moved-aside" while the file `hold` exists (osl_hooks/engine/faultpoints.py).
    # jupyter-lsp, when installed, runs `npm prefix --global` after the server started, which leaves .npm/ in the
    # home: off, so that "nothing changed in the home" is about the requests only.
    no_lsp = ["--ServerApp.jpserver_extensions=jupyter_lsp=False"]
    lab = LabServer(home, tmp_path / "server", {"OSL_HOOKS_HOLD_AT": f"reset:moved-aside={hold}"}, no_lsp)
    lab.home, lab.hold = home, hold
    yield lab
    hold.unlink(missing_ok=True)
    lab.close()


def cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSL_HOOKS_")}
    env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "osl_hooks.cli", *args], capture_output=True, text=True, env=env)


def test_the_envs_api_says_what_osl_hooks_status_json_says(server):
    status = json.loads(cli("status", "--json", home=server.home).stdout)
    answer = server.get("envs", params={"measure": "true"})
    assert answer.status_code == 200
    data = answer.json()
    assert [e["name"] for e in data["envs"]] == ["geo", "lgeo"]
    geo = data["envs"][0]
    assert geo["sync"] == status["synced"]["geo"]
    assert geo["start"] == status["last_start"]["environments"]["geo"]
    assert geo["actions"] == ["reset", "diff"] and data["envs"][1]["actions"] == ["reset", "materialize", "diff"]
    assert data["last_start"]["state"] == status["last_start"]["state"] == "ok"
    # Without `measure`, nothing walks the copies: the same records, the sizes left out.
    quick = server.get("envs").json()["envs"][0]["sync"]
    assert quick["bytes_on_volume"] is None and quick["source_id"] == status["synced"]["geo"]["source_id"]


def test_a_reset_through_the_api_leaves_what_the_cli_leaves(server):
    env = server.home / ".local/envs/geo"
    changed = tree_snapshot(env)
    answer = server.post("envs/geo/reset", json={})
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"].startswith("/osl-hooks/api/tasks/")
    task = server.wait_task(answer.headers["Location"])
    assert task["state"] == "ok", task
    assert task["message"] == "Reset geo to the image's version"
    assert task["events"][-1]["kind"] == "finish" and task["result"]["sync"]["conflicts"] == []
    by_api = tree_snapshot(env)
    assert by_api != changed  # the user's change is gone from the env...
    (backup,) = (server.home / STATE / "backups").iterdir()  # ...and kept aside
    assert tree_snapshot(backup) == changed

    # The same change again, reset by the CLI in the same home (paths in relocated files are the same).
    ini = env / "share/geodemo/geodemo.ini"
    ini.write_text(ini.read_text() + "\n# the user's own setting\n")
    done = cli("reset", "geo", "--plan", str(server.home / STATE / "plan.json"), "--allow-root", home=server.home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree_snapshot(env) == by_api


def test_a_materialize_of_chosen_paths_through_the_api_leaves_what_the_cli_leaves(server):
    """Only the links at or under the paths become files (the CLI's options and the paths reach it intact)."""
    env = server.home / ".local/envs/lgeo"
    links = [p for p in env.rglob("*") if p.is_symlink() and p.name != IMAGE_LINK]
    chosen = Counter(p.parent for p in links).most_common(1)[0][0].relative_to(env)  # a directory with links
    assert chosen != Path(".")
    answer = server.post("envs/lgeo/materialize", json={"paths": [str(chosen)]})
    assert answer.status_code == 202, answer.text
    task = server.wait_task(answer.headers["Location"])
    assert task["state"] == "ok", task
    assert [p for p in links if p.is_symlink()] == [p for p in links if p.parent != env / chosen]
    by_api = tree_snapshot(env)
    plan = ["--plan", str(server.home / STATE / "plan.json"), "--allow-root"]
    assert cli("reset", *plan, "lgeo", home=server.home).returncode == 0  # the start's copy again
    done = cli("materialize", *plan, "lgeo", "--", str(chosen), home=server.home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree_snapshot(env) == by_api


def test_unauthenticated_requests_get_403_and_change_nothing(server):
    before = tree_snapshot(server.home / ".local/envs/geo")
    assert requests.get(server.api + "envs", timeout=30).status_code == 403
    assert requests.get(server.api + "envs/geo/diff", timeout=30).status_code == 403
    forged = requests.get(server.api + "envs", headers={"Authorization": "token wrong"}, timeout=30)
    assert forged.status_code == 403
    assert requests.post(server.api + "envs/geo/reset", json={}, timeout=30).status_code == 403
    assert tree_snapshot(server.home / ".local/envs/geo") == before
    assert not (server.home / STATE / "backups").exists()


def test_a_post_with_the_login_cookie_needs_the_xsrf_token(server):
    """A page of another site can make the browser send the server's cookie, never its XSRF token."""
    browser = requests.Session()
    browser.get(server.url + "login", timeout=30)
    xsrf = browser.cookies["_xsrf"]
    login = browser.post(server.url + "login", data={"password": server.token, "_xsrf": xsrf}, timeout=30)
    assert login.status_code == 200 and browser.get(server.api + "envs", timeout=30).status_code == 200
    before = tree_snapshot(server.home / ".local/envs/geo")
    refused = browser.post(server.api + "envs/geo/reset", json={}, timeout=30)
    assert refused.status_code == 403
    wrong = browser.post(server.api + "envs/geo/reset", json={}, headers={"X-XSRFToken": "0" * 32}, timeout=30)
    assert wrong.status_code == 403
    assert tree_snapshot(server.home / ".local/envs/geo") == before
    accepted = browser.post(server.api + "envs/geo/reset", json={}, headers={"X-XSRFToken": xsrf}, timeout=30)
    assert accepted.status_code == 202, accepted.text
    assert server.wait_task(accepted.headers["Location"])["state"] == "ok"


REFUSED = [
    ("get", "envs/..%2F..%2Fetc/diff", None, 400),
    ("post", "envs/..%2Fgeo/reset", {}, 400),
    ("post", "envs/.hidden/reset", {}, 400),
    ("post", "envs/nope/reset", {}, 404),
    ("get", "envs/nope/diff", None, 404),
    ("post", "envs/geo/materialize", {}, 400),  # a synced env has no links to make real
    ("post", "envs/lgeo/materialize", {"paths": ["../../../../etc/passwd"]}, 400),
    ("post", "envs/lgeo/materialize", {"paths": ["bin/../../geo/bin"]}, 400),
    ("post", "envs/lgeo/materialize", {"paths": ["/etc/passwd"]}, 400),
    ("post", "envs/lgeo/materialize", {"paths": "bin"}, 400),
    ("post", "envs/geo/reset", [1], 400),
]


def test_names_and_paths_outside_the_plans_envs_are_refused_with_a_sentence(server):
    before = tree_snapshot(server.home)
    for method, path, body, status in REFUSED:
        answer = getattr(server, method)(path, **({} if body is None else {"json": body}))
        assert answer.status_code == status, (path, body, answer.text)
        assert len(answer.json()["message"]) > 20, (path, body)
    assert tree_snapshot(server.home) == before
    assert server.get("envs").json()["envs"][0]["task"] is None  # nothing was started


def test_one_env_never_has_two_tasks_at_once(server):
    server.hold.touch()
    first = server.post("envs/geo/reset", json={})
    assert first.status_code == 202
    task_id = first.headers["Location"].rsplit("/", 1)[1]
    # The first reset is held after moving the copy aside: a second one must not start meanwhile.
    second = server.post("envs/geo/reset", json={"force": True})
    assert second.status_code == 409
    assert f"task {task_id}" in second.json()["message"]
    assert server.post("envs/geo/reset", json={}).status_code == 409
    assert server.get("envs").json()["envs"][0]["task"] == task_id
    assert server.get("tasks/" + task_id).json()["state"] == "running"
    server.hold.unlink()
    assert server.wait_task(first.headers["Location"])["state"] == "ok"
    again = server.post("envs/geo/reset", json={})  # once it ended, the env takes a new one (same second or not)
    assert again.status_code == 202
    task = server.wait_task(again.headers["Location"])
    assert task["state"] == "ok", task["message"]
    assert len(list((server.home / STATE / "backups").iterdir())) == 2


def test_the_diff_says_what_osl_hooks_diff_says(server):
    meta = server.home / ".local/envs/geo/conda-meta"
    record = next(meta.glob("*.json"))
    record.unlink()  # the user removed a package (its conda record goes)
    lines = cli("diff", "geo", "--plan", str(server.home / STATE / "plan.json"), home=server.home).stdout.splitlines()
    answer = server.get("envs/geo/diff").json()
    assert answer["lines"] == lines and len(lines) == 1 and lines[0].startswith("- ")
    assert answer["summary"] == {"added": 0, "upgraded": 0, "removed": 1}
    assert answer["removed"][0]["name"] in lines[0]


def test_a_reset_waits_for_the_envs_kernel_to_stop_unless_told_to_go_on(python_image, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    plan = {
        "version": 1,
        "home": str(home),
        "environments": [{"name": "py", "mode": "synced", "source": str(python_image / "envs/py")}],
    }
    start(Plan.from_dict(plan), allow_root=True, out=open(os.devnull, "w"))
    lab = LabServer(home, tmp_path / "server")
    try:
        kernel = lab.session.post(lab.url + "api/kernels", json={"name": "osl-py"}, timeout=60)
        assert kernel.status_code == 201, kernel.text
        assert lab.get("envs").json()["envs"][0]["kernel_running"] is True
        refused = lab.post("envs/py/reset", json={})
        assert refused.status_code == 409
        assert "kernel of py is running" in refused.json()["message"]
        assert refused.json()["reason"] == "kernel_running"  # what a client acts on, not the words
        assert not (home / STATE / "backups").exists()
        forced = lab.post("envs/py/reset", json={"force": True})
        assert forced.status_code == 202
        assert lab.wait_task(forced.headers["Location"])["state"] == "ok"
        assert len(list((home / STATE / "backups").iterdir())) == 1
    finally:
        lab.close()


def test_the_documented_config_file_is_the_one_the_package_installs():
    """docs/lab.md shows the file that enables the extension; the server tests above load the shipped one."""
    import re

    from labserver import CONFIG_PATH

    doc = (Path(__file__).resolve().parent.parent / "docs/lab.md").read_text()
    shown = json.loads(re.search(r"```json\n(.*?)```", doc, re.S).group(1))
    assert shown == json.loads((CONFIG_PATH / "jupyter_server_config.d/osl_hooks.json").read_text())
    assert shown["ServerApp"]["jpserver_extensions"] == {"osl_hooks.lab": True}
