"""Linked mode where testing it as users and admins broke it: a materialize that runs out of space, an image
env the notebook user can write, Debian's patched pip, editing a linked file, and switching an env's mode.

The image envs here are venvs with two pip packages whose modules are large enough to be linked: one of the
Python running the tests (upstream pip), one of the system's Python (Debian's `python3-venv` pip, which
resolves links before it decides what an uninstall may remove).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import podsandbox
import pytest
from linkedenv import pip, site

from osl_hooks.engine.commands import materialize
from osl_hooks.engine.linked import own_links
from osl_hooks.engine.linkform import IMAGE_LINK
from osl_hooks.engine.manifest import MANIFEST_FILE, bake, load
from osl_hooks.engine.runner import Outcome, start
from osl_hooks.engine.syncstate import read_links
from osl_hooks.plan import DEFAULT_LINK_THRESHOLD, Plan

pytestmark = pytest.mark.slow
SYSTEM_PYTHON = "/usr/bin/python3"
STATE = ".local/state/osl-hooks"
POD_ENV = "/opt/conda/envs/py"


def build_image(source: Path, wheels: Path, python: str = sys.executable) -> Path:
    """A venv of `python` with two big pip packages, baked as an image build would."""
    if not os.path.exists(python):
        pytest.skip(f"needs {python}")
    subprocess.run([python, "-m", "venv", source], check=True, capture_output=True)
    pip(source, "install", wheels / "bigprobe-1.0-py3-none-any.whl", wheels / "bigother-1.0-py3-none-any.whl")
    bake(source)
    return source


@pytest.fixture(scope="module")
def image(tmp_path_factory, wheels) -> Path:
    return build_image(tmp_path_factory.mktemp("image") / "py", wheels)


@pytest.fixture(scope="module")
def system_python_image(tmp_path_factory, wheels) -> Path:
    return build_image(tmp_path_factory.mktemp("system-image") / "py", wheels, SYSTEM_PYTHON)


def plan_for(home: Path, source: Path, mode: str = "linked", **extra) -> dict:
    env = {"name": "py", "mode": mode, "source": str(source), "kernel": False, **extra}
    return {"version": 1, "home": str(home), "environments": [env]}


def run(action, data: dict, *args) -> tuple[Outcome, str]:
    out = io.StringIO()
    return action(Plan.from_dict(data), *args, allow_root=True, out=out), out.getvalue()


def record(home: Path) -> dict:
    return json.loads((home / STATE / "envs/py.json").read_text())


def links(home: Path) -> set[str] | None:
    """The links the sync record names (in the links file it names)."""
    return read_links(home / STATE / "envs", "py", record(home))


def in_site(root: Path, name: str) -> str:
    return (site(root) / name).relative_to(root).as_posix()


def record_is_true(home: Path, target: Path, source: Path) -> None:
    """The links the sync record names are exactly osl-hooks' links on disk."""
    assert links(home) == set(own_links(target, source))


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".osl-*") if p.name != IMAGE_LINK]  # not the links into the image


# -- 1. materialize on a home without room for it ---------------------------------------------------------------


def test_materialize_without_room_changes_nothing_and_names_the_full_home(image, tmp_path):
    from osl_hooks.engine.linkplan import linked_paths, volume_bytes

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    manifest = load(image / MANIFEST_FILE)
    linked_need = volume_bytes(manifest, linked_paths(manifest, image, DEFAULT_LINK_THRESHOLD), image)
    small = tmp_path / "small-home"
    small.mkdir()
    size_kib = (linked_need + manifest.disk_bytes) // 2 // 1024
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(small)], check=True)
    try:
        data = {**plan_for(small, image), "disk_margin_bytes": 0}
        assert run(start, data)[0] == Outcome.OK
        target = small / ".local/envs/py"
        before = own_links(target, image)
        assert before
        outcome, output = run(materialize, data, "py")
        after = own_links(target, image)
        assert outcome == Outcome.FAILED
        assert str(small) in output and str(image) not in output.replace(f"{image}/", ""), output
        assert after == before and not leftovers(target)
        record_is_true(small, target, image)
        assert run(start, data)[0] == Outcome.OK
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_interrupted_materialize_is_settled_by_the_next_start_and_resumed_by_the_next_materialize(
    image, home, tmp_path
):
    source = tmp_path / "image" / "py"
    source.parent.mkdir()
    subprocess.run(["cp", "-a", image, source], check=True)
    data = plan_for(home, source)
    assert run(start, data)[0] == Outcome.OK
    target = home / ".local/envs/py"
    first = sorted(links(home) or ())[0]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    command = [sys.executable, "-m", "osl_hooks.cli", "materialize", "py", "--allow-root", "--plan", str(plan_file)]
    environ = dict(os.environ, OSL_HOOKS_FAULT_AT="materialize:file-replaced:2")
    killed = subprocess.run(command, env=environ, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert not (target / first).is_symlink()
    # The image changes the file the killed materialize made real: the user never touched it, so the
    # next start takes the image's version (no conflict), and the record is true again.
    with open(source / first, "ab") as changed:
        changed.write(b"# the image's next version\n")
    bake(source)
    outcome, output = run(start, data)
    assert outcome == Outcome.OK, output
    assert (target / first).read_bytes() == (source / first).read_bytes()
    assert not leftovers(target)
    record_is_true(home, target, source)
    assert own_links(target, source)
    assert run(materialize, data, "py")[0] == Outcome.OK
    assert not own_links(target, source) and links(home) == set()


# -- 2. an image env the notebook user can write ----------------------------------------------------------------


def writable_image(image: Path, tmp_path: Path) -> Path:
    """The image env as Jupyter Docker Stacks leave /opt/conda: owned by the notebook user."""
    copy = tmp_path / "user-owned" / "py"
    copy.parent.mkdir()
    subprocess.run(["cp", "-a", image, copy], check=True)
    subprocess.run(["chown", "-R", "1000:100", copy], check=True)
    return copy


@podsandbox.needed
def test_env_the_user_can_write_is_never_linked(image, tmp_path):
    source = writable_image(image, tmp_path)
    data = {"version": 1, "environments": [{"name": "py", "mode": "linked", "source": POD_ENV, "kernel": False}]}
    data["environments"][0]["built_prefix"] = str(image)
    home = tmp_path / "volume"
    home.mkdir()
    pod = podsandbox.PodSandbox(
        home=home, mounts={POD_ENV: source}, writable={POD_ENV}, env={"OSL_HOOKS_PLAN": json.dumps(data)}
    )
    started = pod.run(["osl-hooks", "start"])
    output = started.stdout + started.stderr
    assert started.returncode == Outcome.DEGRADED, output
    target = home / ".local/envs/py"
    assert not own_links(target, Path(POD_ENV)) and not list(target.rglob(IMAGE_LINK))
    status = json.loads((home / STATE / "status.json").read_text())["environments"]["py"]
    assert status["effective_mode"] == "synced"
    [warning] = status["warnings"]
    assert "can write" in warning and POD_ENV in warning
    module = f"{podsandbox.POD_HOME}/.local/envs/py/{in_site(target, 'bigprobe.py')}"
    image_module = (site(source) / "bigprobe.py").read_bytes()
    appended = pod.run(["python3", "-c", f"open({module!r}, 'a').write('# mine\\n')"])
    assert appended.returncode == 0, appended.stderr
    assert (site(source) / "bigprobe.py").read_bytes() == image_module
    assert (site(target) / "bigprobe.py").read_text().endswith("# mine\n")
    again = pod.run(["osl-hooks", "start"])
    assert again.returncode == Outcome.OK and "can write" in again.stdout, again.stdout + again.stderr


# A server command for `osl-hooks start -- ...`: up at once (it writes what jupyter_server writes once it listens),
# and, when the start left the env's copy to the background, running until that copy is done (the sandbox's
# processes end with it).
SERVER_UNTIL_COPIED = (
    'runtime="$HOME/.local/share/jupyter/runtime"; mkdir -p "$runtime" && touch "$runtime/jpserver-$$.json"; '
    '[ -L "$HOME/.local/envs/py" ] || exit 0; n=0; '
    'while ! grep -Eqs \'"state": "(done|failed)"\' "$HOME/.local/state/osl-hooks/background/py.json" && [ $n -lt 1500 ]; '
    "do sleep 0.2; n=$((n+1)); done"
)


@pytest.mark.skipif(not podsandbox.available(), reason="needs bubblewrap, setpriv and root")
def test_env_the_user_can_write_follows_first_copy_as_a_synced_env(image, tmp_path):
    """Such an env gets real files, a full copy: left to the background copy with the wrap delivery, as a synced
    env's would be, not made before the server is ready."""
    source = writable_image(image, tmp_path)
    data = {"version": 1, "environments": [{"name": "py", "mode": "linked", "source": POD_ENV, "kernel": False}]}
    data["environments"][0]["built_prefix"] = str(image)
    home = tmp_path / "volume"
    home.mkdir()
    environ = {"OSL_HOOKS_PLAN": json.dumps(data), "TMPDIR": podsandbox.POD_HOME}  # the sandbox's /tmp is root's
    pod = podsandbox.PodSandbox(home=home, mounts={POD_ENV: source}, writable={POD_ENV}, env=environ)
    started = pod.run(["osl-hooks", "start", "--", "sh", "-c", SERVER_UNTIL_COPIED])
    output = started.stdout + started.stderr
    assert started.returncode == 0, output
    status = json.loads((home / STATE / "status.json").read_text())
    assert status["environments"]["py"]["state"] == "background", output
    assert status["environments"]["py"]["not_linked_because"] == ["writable_image"]
    copying = next(e for e in status["events"] if e["kind"] == "background-copy")
    assert copying["state"] == "queued" and "read-only" in copying["message"]
    assert json.loads((home / STATE / "background/py.json").read_text())["state"] == "done"
    target = home / ".local/envs/py"
    assert not own_links(target, Path(POD_ENV)) and not list(target.rglob(IMAGE_LINK))
    assert (site(target) / "bigprobe.py").is_file() and not (site(target) / "bigprobe.py").is_symlink()
    again = pod.run(["osl-hooks", "start"])
    assert again.returncode == Outcome.OK and "py is up to date" in again.stdout, again.stdout + again.stderr
    shown = pod.run(["osl-hooks", "status", "--json"])
    synced = json.loads(shown.stdout)["synced"]["py"]
    assert synced["not_linked_because"] == ["writable_image"] and synced["linked_share"] == 0.0, synced


def test_bake_says_how_to_fix_an_env_the_notebook_user_can_write(image, tmp_path, capsys):
    from osl_hooks.cli import main

    if os.geteuid() != 0:
        pytest.skip("giving files to another user needs root")
    source = writable_image(image, tmp_path)
    assert main(["bake", str(source), "--notebook-user", "1000:100"]) == 0
    err = capsys.readouterr().err
    assert "can write" in err and f"chown -R root:root {source}" in err, err


# -- 3. Debian's pip in a linked venv --------------------------------------------------------------------------


def record_files(prefix: Path, dist: str) -> set[str]:
    """The files pip's RECORD lists for `dist` (name-version), relative to site-packages."""
    record_text = (site(prefix) / f"{dist}.dist-info/RECORD").read_text()
    return {line.split(",")[0] for line in record_text.splitlines()}


def test_system_pip_uninstall_and_upgrade_leave_no_file_of_the_old_version(system_python_image, home, wheels):
    image = system_python_image
    outcome, output = run(start, plan_for(home, image))
    # Nearly a full copy, as it must be: the start, `osl-hooks status` and the start's summary say why, once in
    # full with the fix, then in a line.
    assert outcome == Outcome.DEGRADED, output
    status = json.loads((home / STATE / "status.json").read_text())
    [warning] = status["environments"]["py"]["warnings"]
    assert "resolves links" in warning and "install pip from the package index in the image's env" in warning
    [row] = status["events"][-1]["summary"]["envs"]
    assert row["not_linked_because"] == ["debian_pip"] and 0 <= row["linked_share"] < 0.5, row
    again, output = run(start, plan_for(home, image))
    assert again == Outcome.OK and "its pip resolves links" in output, output
    shown = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "status", "--state-dir", str(home / STATE)],
        capture_output=True,
        text=True,
    )
    assert "not linked because its pip, Debian's or Ubuntu's patched pip" in shown.stdout, shown.stdout
    assert "install pip from the package index" in shown.stdout and "linked share: " in shown.stdout
    as_json = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "status", "--state-dir", str(home / STATE), "--json"],
        capture_output=True,
        text=True,
    )
    synced = json.loads(as_json.stdout)["synced"]["py"]
    assert synced["not_linked_because"] == ["debian_pip"] and 0 <= synced["linked_share"] < 0.5, synced
    target = home / ".local/envs/py"
    old_files = {name: record_files(target, f"{name}-1.0") for name in ("bigprobe", "bigother")}
    removal = pip(target, "uninstall", "bigother")
    assert "Would not remove" not in removal.stdout + removal.stderr
    assert not [p for p in old_files["bigother"] if os.path.lexists(site(target) / p)]
    gone = subprocess.run([target / "bin/python", "-c", "import bigother"], capture_output=True, text=True)
    assert gone.returncode != 0 and "No module named 'bigother'" in gone.stderr
    upgrade = pip(target, "install", "-U", wheels / "bigprobe-2.0-py3-none-any.whl")
    assert "Would not remove" not in upgrade.stdout + upgrade.stderr
    new_files = record_files(target, "bigprobe-2.0")
    assert not [p for p in old_files["bigprobe"] if p not in new_files and os.path.lexists(site(target) / p)]
    module = site(target) / "bigprobe.py"
    assert not module.is_symlink() and "VERSION = '2.0'" in module.read_text()
    assert (site(image) / "bigother.py").exists() and "VERSION = '1.0'" in (site(image) / "bigprobe.py").read_text()


# -- 4. editing a linked file -----------------------------------------------------------------------------------


@podsandbox.needed
def test_jupyterlab_save_of_a_linked_file_makes_it_the_users(image, tmp_path):
    data = {"version": 1, "environments": [{"name": "py", "mode": "linked", "source": POD_ENV, "kernel": False}]}
    data["environments"][0]["built_prefix"] = str(image)
    home = tmp_path / "volume"
    home.mkdir()
    pod = podsandbox.PodSandbox(home=home, mounts={POD_ENV: image}, env={"OSL_HOOKS_PLAN": json.dumps(data)})
    assert pod.run(["osl-hooks", "start"]).returncode == 0
    target = home / ".local/envs/py"
    path = f".local/envs/py/{in_site(target, 'bigprobe.py')}"
    assert (home / path).is_symlink()
    image_module = (site(image) / "bigprobe.py").read_bytes()
    # The server config the image recipe installs, loaded as the Jupyter server loads a config.d file.
    server_config = f"{podsandbox.SOURCE_MOUNT}/examples/image/jupyter_server_config.d/osl-hooks.json"
    save = f"""
import json
from traitlets.config import Config
from jupyter_server.services.contents.filemanager import FileContentsManager
config = Config(json.load(open({server_config!r})))
manager = FileContentsManager(config=config, root_dir={podsandbox.POD_HOME!r}, allow_hidden=True)
manager.save({{"type": "file", "format": "text", "content": "VERSION = 'edited'\\n"}}, {path!r})
"""
    saved = pod.run(["python3", "-c", save])
    assert saved.returncode == 0, saved.stderr
    assert not (home / path).is_symlink() and (home / path).read_text() == "VERSION = 'edited'\n"
    assert os.stat(home / path).st_uid == 1000
    assert (site(image) / "bigprobe.py").read_bytes() == image_module
    assert path.removeprefix(".local/envs/py/") not in (links(home) or ())
    assert pod.run(["osl-hooks", "start"]).returncode == 0
    assert (home / path).read_text() == "VERSION = 'edited'\n"


def test_materialize_single_files_and_packages(image, home, tmp_path):
    from osl_hooks.cli import main

    data = plan_for(home, image)
    assert run(start, data)[0] == Outcome.OK
    target = home / ".local/envs/py"
    before = own_links(target, image)
    module, package_dir = in_site(target, "bigprobe.py"), in_site(target, "pip/_internal")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    assert main(["materialize", "py", module, str(target / package_dir), "--plan", str(plan_file), "--allow-root"]) == 0
    chosen = {p for p in before if p == module or p.startswith(package_dir + "/")}
    assert module in chosen and len(chosen) > 1
    assert set(own_links(target, image)) == set(before) - chosen
    for path in chosen:
        assert not (target / path).is_symlink() and (target / path).read_bytes() == (image / path).read_bytes()
    record_is_true(home, target, image)
    assert main(["materialize", "py", "/etc/passwd", "--plan", str(plan_file), "--allow-root"]) == Outcome.FAILED


# -- 5. switching an env's mode ---------------------------------------------------------------------------------


def test_linked_to_synced_materializes_at_the_next_start(image, home, tmp_path):
    assert run(start, plan_for(home, image))[0] == Outcome.OK
    target = home / ".local/envs/py"
    assert own_links(target, image)
    outcome, output = run(start, plan_for(home, image, mode="synced"))
    assert outcome == Outcome.OK, output
    assert not own_links(target, image) and links(home) is None and "links_file" not in record(home)
    away = tmp_path / "away"
    image.rename(away)
    try:
        works = subprocess.run([target / "bin/python", "-c", "import bigprobe, bigother"], capture_output=True)
    finally:
        away.rename(image)
    assert works.returncode == 0, works.stderr


def test_linked_to_synced_without_the_image_registers_no_kernel_and_says_why(image, home, tmp_path):
    assert run(start, plan_for(home, image))[0] == Outcome.OK
    away = tmp_path / "away"
    image.rename(away)
    try:
        outcome, output = run(start, plan_for(home, image, mode="synced"))
        status = json.loads((home / STATE / "status.json").read_text())["environments"]["py"]
    finally:
        away.rename(image)
    assert outcome == Outcome.DEGRADED
    [error] = status["errors"]
    assert "is not in this image" in error and "links" in error
    outcome, output = run(start, plan_for(home, image, mode="synced"))
    assert outcome == Outcome.OK and not own_links(home / ".local/envs/py", image), output


def test_synced_to_linked_keeps_the_full_copy_and_says_so(image, home):
    assert run(start, plan_for(home, image, mode="synced"))[0] == Outcome.OK
    target = home / ".local/envs/py"
    outcome, output = run(start, plan_for(home, image))
    assert outcome == Outcome.OK, output
    assert not own_links(target, image)
    status = json.loads((home / STATE / "status.json").read_text())["environments"]["py"]
    assert status["effective_mode"] == "synced"
    assert "osl-hooks reset py" in output
