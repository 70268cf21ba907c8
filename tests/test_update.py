"""Image updates reach users without losing their changes (issue #4 scenarios, on genuine envs).

Each scenario builds an image env (a venv that is also a conda env, with two pip packages), syncs it,
changes the user's copy with real pip commands or edits, changes the image (real pip and conda
transactions, then `osl-hooks bake`), starts again, and checks the exact resulting file set.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import all_files

from osl_hooks.demo.envbuild import build_conda_env, build_python_env, build_wheel, demo_packages
from osl_hooks.engine.manifest import bake
from osl_hooks.engine.runner import Outcome

pytestmark = pytest.mark.slow


class Scenario:
    """One image env, one user's home, and the commands both sides run."""

    def __init__(self, tmp_path: Path, home: Path, run_start):
        self.source = tmp_path / "image/envs/py"
        self.wheels = tmp_path / "wheels"
        self.home = home
        self.target = home / ".local/envs/py"
        self._run_start = run_start
        build_python_env(self.source, ipykernel=False)
        self.pip(self.source, "install", self.wheel("oslprobe", "1.0"), self.wheel("oslother", "1.0"))
        bake(self.source)

    def wheel(self, name: str, version: str) -> Path:
        return build_wheel(self.wheels, name, version)

    def pip(self, prefix: Path, *args) -> None:
        subprocess.run(
            [
                prefix / "bin/python",
                "-m",
                "pip",
                "--disable-pip-version-check",
                "-q",
                *args,
                *(["--no-index"] if args[0] == "install" else ["-y"]),
            ],
            check=True,
        )

    def start(self):
        result = self._run_start(
            {"environments": [{"name": "py", "mode": "synced", "source": str(self.source), "kernel": False}]}
        )
        assert result.outcome in (Outcome.OK, Outcome.DEGRADED), result.output
        return result

    def image_update(self, *pip_args) -> None:
        if pip_args:
            self.pip(self.source, *pip_args)
        bake(self.source)

    @staticmethod
    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in all_files(root)} | {
            p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_symlink()
        }

    def image_files(self) -> set[str]:
        return self.files(self.source) - {".osl-hooks-manifest.jsonl"}

    def package_files(self, root: Path, name: str) -> set[str]:
        return {f for f in self.files(root) if f"/{name}" in f or f"/__pycache__/{name}." in f}

    def version_in_copy(self, module: str) -> str:
        [path] = self.target.glob(f"lib/python*/site-packages/{module}.py")
        return path.read_text().split("VERSION = ")[1].strip().strip("'\"")


@pytest.fixture
def scenario(tmp_path, home, run_start) -> Scenario:
    s = Scenario(tmp_path, home, run_start)
    s.start()
    assert s.files(s.target) == s.image_files()
    return s


def test_nothing_new_is_not_walked_or_copied(scenario):
    result = scenario.start()
    assert "py is up to date" in result.messages()


def test_user_installs_a_new_package(scenario):
    scenario.pip(scenario.target, "install", scenario.wheel("userpkg", "1.0"))
    user_files = scenario.package_files(scenario.target, "userpkg")
    assert user_files
    scenario.image_update("install", scenario.wheel("oslprobe", "1.1"))
    scenario.start()
    assert scenario.files(scenario.target) == scenario.image_files() | user_files
    assert scenario.version_in_copy("oslprobe") == "1.1"


def test_user_upgrades_a_package_the_image_ships(scenario):
    scenario.pip(scenario.target, "install", "-U", scenario.wheel("oslprobe", "2.0"))
    mine = scenario.package_files(scenario.target, "oslprobe")
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    scenario.start()
    image = scenario.image_files()
    assert scenario.files(scenario.target) == (image - scenario.package_files(scenario.source, "oslprobe")) | mine
    assert scenario.version_in_copy("oslprobe") == "2.0"
    assert scenario.version_in_copy("oslnew") == "1.0"


def test_user_removes_a_package_it_stays_removed(scenario):
    scenario.pip(scenario.target, "uninstall", "oslother")
    scenario.image_update("install", "-U", scenario.wheel("oslother", "1.1"), scenario.wheel("oslprobe", "1.1"))
    result = scenario.start()
    image = scenario.image_files()
    assert scenario.files(scenario.target) == image - scenario.package_files(scenario.source, "oslother")
    assert scenario.version_in_copy("oslprobe") == "1.1"
    assert any("kept your versions of oslother" in m for m in result.messages())


def test_image_adds_upgrades_and_removes_packages(scenario):
    scenario.pip(scenario.source, "install", scenario.wheel("oslnew", "1.0"), scenario.wheel("oslprobe", "1.1"))
    scenario.pip(scenario.source, "uninstall", "oslother")
    build_conda_env(scenario.source, demo_packages("2.0"))  # a conda transaction: geodemo 1.0 -> 2.0
    scenario.image_update()
    result = scenario.start()
    assert scenario.files(scenario.target) == scenario.image_files()
    assert scenario.version_in_copy("oslprobe") == "1.1" and scenario.version_in_copy("oslnew") == "1.0"
    assert (scenario.target / "share/geodemo/VERSION").read_text().strip() == "2.0"
    ini = (scenario.target / "share/geodemo/geodemo.ini").read_text()
    assert str(scenario.target) in ini and str(scenario.source) not in ini, "updated files are relocated"
    assert result.env("py")["warnings"] == []
    assert "py is up to date" in scenario.start().messages()


def test_both_sides_upgrade_the_same_package(scenario):
    scenario.pip(scenario.target, "install", "-U", scenario.wheel("oslprobe", "2.0"))
    mine = scenario.package_files(scenario.target, "oslprobe")
    scenario.image_update("install", "-U", scenario.wheel("oslprobe", "1.1"))
    result = scenario.start()
    assert scenario.version_in_copy("oslprobe") == "2.0"
    assert scenario.package_files(scenario.target, "oslprobe") == mine, "no 1.1 files mixed into the user's 2.0"
    assert any("kept your versions of oslprobe" in m for m in result.messages())


def test_user_edits_are_kept_and_conflicts_recorded(scenario):
    ini = scenario.target / "share/geodemo/geodemo.ini"  # a relocated file, changed by the image below
    ini.write_text("data_dir = /my/own/data\n")
    data_files = sorted(p for p in (scenario.target / "share/geodemo-data").rglob("*") if p.is_file())[:3]
    originals = {p: p.read_bytes() for p in data_files}
    for path in data_files:
        path.write_text("my edit\n")
    build_conda_env(scenario.source, demo_packages("2.0"))
    scenario.image_update()
    result = scenario.start()
    assert ini.read_text() == "data_dir = /my/own/data\n"
    assert all(p.read_text() == "my edit\n" for p in data_files)
    unchanged_by_image = [
        p for p in data_files if (scenario.source / p.relative_to(scenario.target)).read_bytes() == originals[p]
    ]
    assert unchanged_by_image, "the test needs a file that only the user changed"
    assert (scenario.target / "share/geodemo/VERSION").read_text().strip() == "2.0"
    saved = scenario.home / ".local/state/osl-hooks/envs/conflicts/py/share/geodemo/geodemo.ini"
    assert (
        "2.0" in saved.read_text() or saved.read_bytes() == (scenario.source / "share/geodemo/geodemo.ini").read_bytes()
    )
    assert result.outcome == Outcome.DEGRADED
    assert any("changed both in the image and by you" in w for w in result.env("py")["warnings"])
    record = json.loads((scenario.home / ".local/state/osl-hooks/envs/py.json").read_text())
    changed_by_both = {p.relative_to(scenario.target).as_posix() for p in data_files if p not in unchanged_by_image}
    assert set(record["conflicts"]) == {"share/geodemo/geodemo.ini"} | changed_by_both
    # the user's edit stays the user's at the next image update too
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    scenario.start()
    assert ini.read_text() == "data_dir = /my/own/data\n"


def test_user_deletes_the_env_and_gets_a_fresh_copy(scenario):
    subprocess.run(["rm", "-rf", str(scenario.target)], check=True)
    result = scenario.start()
    assert any("is missing: making a fresh copy" in m for m in result.messages())
    assert scenario.files(scenario.target) == scenario.image_files()


def test_corrupt_stored_manifest_loses_nothing(scenario):
    envs_state = scenario.home / ".local/state/osl-hooks/envs"
    (envs_state / json.loads((envs_state / "py.json").read_text())["base"]).write_text("{garbage\n")
    mine = scenario.target / "my-notes.txt"
    mine.write_text("keep me")
    edited = scenario.target / "share/geodemo/geodemo.ini"
    edited.write_text("edited\n")
    before = scenario.files(scenario.target)
    scenario.pip(scenario.source, "install", scenario.wheel("oslnew", "1.0"))
    scenario.pip(scenario.source, "uninstall", "oslother")
    scenario.image_update()
    result = scenario.start()
    assert any("no usable record" in w for w in result.env("py")["warnings"])
    after = scenario.files(scenario.target)
    assert before <= after, "nothing the user had is removed"
    assert after - before == scenario.package_files(scenario.source, "oslnew")
    assert mine.read_text() == "keep me" and edited.read_text() == "edited\n"
    # the next image update works from the new record, still keeping the user's edit
    build_conda_env(scenario.source, demo_packages("2.0"))
    scenario.image_update()
    scenario.start()
    assert edited.read_text() == "edited\n"
    assert (scenario.target / "share/geodemo/VERSION").read_text().strip() == "2.0"


def test_update_killed_halfway_completes_on_the_next_start(scenario, tmp_path, hold):
    """SIGKILL while the update's files are being written (held where a file is begun beside its place, not
    raced): the next start removes what was begun, completes the update, and sees no conflict."""
    big = scenario.source / "share/bigdata"
    big.mkdir()
    for i in range(40):
        (big / f"part{i:02}.bin").write_bytes(os.urandom(1 << 20))
    scenario.image_update("install", scenario.wheel("oslprobe", "1.1"))
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "home": str(scenario.home),
                "environments": [{"name": "py", "mode": "synced", "source": str(scenario.source), "kernel": False}],
            }
        )
    )
    command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan)]
    hold.at("filecopy:file-begun")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pending = scenario.home / ".local/state/osl-hooks/envs/py.pending.json"

    def begun() -> list[Path]:  # `.NAME.XXXXXX` (rsync's form), beside the file being written
        return [p for p in scenario.target.rglob(".*") if re.fullmatch(r"\..+\.[0-9a-f]{6}", p.name)]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (pending.exists() and begun()) and process.poll() is None:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    hold.release()
    assert pending.exists() and begun(), "the update was not held with a file begun"

    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "changed both in the image and by you" not in rerun.stdout
    assert scenario.files(scenario.target) == scenario.image_files()
    assert scenario.version_in_copy("oslprobe") == "1.1"
    assert not pending.exists()


def test_reset_moves_the_copy_aside_and_restores_the_image(scenario):
    scenario.pip(scenario.target, "install", "-U", scenario.wheel("oslprobe", "2.0"))
    (scenario.target / "my-notes.txt").write_text("mine")
    before = scenario.files(scenario.target)
    plan = scenario.home / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "home": str(scenario.home),
                "environments": [{"name": "py", "mode": "synced", "source": str(scenario.source), "kernel": False}],
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "reset", "py", "--plan", str(plan), "--allow-root"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert scenario.files(scenario.target) == scenario.image_files()
    assert scenario.version_in_copy("oslprobe") == "1.0"
    [backup] = (scenario.home / ".local/state/osl-hooks/backups").iterdir()
    assert backup.name.startswith("py-") and f"moved to {backup}" in result.stdout
    assert scenario.files(backup) == before, "the user's copy is kept whole"

    discard = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "reset", "py", "--plan", str(plan), "--discard", "--allow-root"],
        capture_output=True,
        text=True,
    )
    assert discard.returncode == 0, discard.stdout
    assert len(list((scenario.home / ".local/state/osl-hooks/backups").iterdir())) == 1

    unknown = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "reset", "nope", "--plan", str(plan), "--allow-root"],
        capture_output=True,
        text=True,
    )
    assert unknown.returncode == 1 and "Cannot reset 'nope': it is not a synced env (synced envs: py)" in unknown.stdout


def test_status_lists_envs_bytes_last_sync_and_conflicts(scenario):
    (scenario.target / "share/geodemo/geodemo.ini").write_text("mine\n")
    build_conda_env(scenario.source, demo_packages("2.0"))
    scenario.image_update()
    scenario.start()
    result = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "status", "--state-dir", str(scenario.home / ".local/state/osl-hooks")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "last start: degraded" in result.stdout
    assert (
        f"synced env py: {scenario.target}, " in result.stdout and " MB on the volume, last synced 20" in result.stdout
    )
    assert "conflict: share/geodemo/geodemo.ini (yours kept; the image's version is in " in result.stdout


def test_status_says_an_image_update_waits_for_the_next_start(scenario):
    """After a new image, before the next start, `osl-hooks status` (and the JupyterLab panel, from the same
    data) says the copy will be updated; the start applies it and the notice goes."""

    def status() -> tuple[dict, str]:
        state = ["--state-dir", str(scenario.home / ".local/state/osl-hooks")]
        command = [sys.executable, "-m", "osl_hooks.cli", "status"]
        data = json.loads(subprocess.run([*command, *state, "--json"], capture_output=True, check=True).stdout)
        text = subprocess.run([*command, *state], capture_output=True, text=True, check=True).stdout
        return data["synced"]["py"], text

    record, text = status()
    assert record["update_waiting"] is False and record["image_id"] == record["source_id"]
    assert "next start updates your copy" not in text
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    record, text = status()
    assert record["update_waiting"] is True and record["image_id"] != record["source_id"]
    assert "the image's py has changed: the next start updates your copy (your changes are kept)" in text, text
    scenario.start()
    record, text = status()
    assert record["update_waiting"] is False and "next start updates your copy" not in text


def kept_base(scenario) -> Path:
    envs_state = scenario.home / ".local/state/osl-hooks/envs"
    return envs_state / json.loads((envs_state / "py.json").read_text())["base"]


def test_an_image_baked_with_its_diff_updates_without_reading_the_kept_base(scenario, tmp_path):
    """`osl-hooks bake --since OLD`: the update from OLD takes the previous version from the image's baked diff.
    The base the sync record keeps is removed here: without the diff, the update would be a full comparison
    that removes nothing (oslother would stay)."""
    previous = tmp_path / "previous-manifest.jsonl"
    previous.write_bytes((scenario.source / ".osl-hooks-manifest.jsonl").read_bytes())
    edited = scenario.target / "share/geodemo/geodemo.ini"
    edited.write_text("edited\n")
    scenario.pip(scenario.target, "install", scenario.wheel("oslmine", "1.0"))
    scenario.pip(scenario.source, "install", scenario.wheel("oslprobe", "1.1"))
    scenario.pip(scenario.source, "uninstall", "oslother")
    bake(scenario.source, since=previous)
    kept_base(scenario).unlink()

    result = scenario.start()
    assert result.env("py")["action"] == "update" and not result.env("py")["warnings"], result.output
    assert scenario.version_in_copy("oslprobe") == "1.1"
    assert not scenario.package_files(scenario.target, "oslother")
    assert scenario.files(scenario.target) == scenario.image_files() | scenario.package_files(
        scenario.target, "oslmine"
    )
    assert edited.read_text() == "edited\n"
    assert scenario.start().env("py")["action"] == "unchanged"


def sync_record(scenario) -> dict:
    return json.loads((scenario.home / ".local/state/osl-hooks/envs/py.json").read_text())


def test_an_update_keeps_its_base_as_a_delta_that_later_updates_read(scenario, tmp_path):
    """An update writes the image's changes on the base it kept, not the whole manifest again. The next update
    (made without a baked diff, so from the kept base) writes its delta on the same full base, covering the
    first's paths too; the third finds there what the first brought: oslnew, which only the deltas have, is
    removed by the image and goes (were a delta not read, or the second not cover the first, its files would
    look like the user's and stay)."""
    first_base = sync_record(scenario)["base"]  # a full base: the first copy's
    previous = tmp_path / "previous-manifest.jsonl"
    previous.write_bytes((scenario.source / ".osl-hooks-manifest.jsonl").read_bytes())
    scenario.pip(scenario.source, "install", scenario.wheel("oslnew", "1.0"))
    bake(scenario.source, since=previous)
    scenario.start()
    record = sync_record(scenario)
    assert record["base_full"] == first_base and record["base"].endswith(".delta")  # the delta lies on it
    envs_state = kept_base(scenario).parent
    delta, full = envs_state / record["base"], envs_state / record["base_full"]
    assert delta.stat().st_size * 4 < full.stat().st_size
    assert sorted(p.name for p in envs_state.glob("py.base.*")) == sorted([record["base"], record["base_full"]])

    edited = scenario.target / "share/geodemo/geodemo.ini"
    edited.write_text("edited\n")
    scenario.pip(scenario.target, "install", scenario.wheel("oslmine", "1.0"))
    scenario.image_update("install", scenario.wheel("oslprobe", "1.1"))  # baked without a diff
    result = scenario.start()
    assert result.env("py")["action"] == "update" and not result.env("py")["warnings"], result.output
    assert scenario.version_in_copy("oslprobe") == "1.1" and sync_record(scenario)["base_full"] == first_base

    scenario.image_update("uninstall", "oslnew")
    result = scenario.start()
    assert result.env("py")["action"] == "update" and not result.env("py")["warnings"], result.output
    assert not scenario.package_files(scenario.target, "oslnew")
    assert scenario.files(scenario.target) == scenario.image_files() | scenario.package_files(
        scenario.target, "oslmine"
    )
    assert edited.read_text() == "edited\n" and sync_record(scenario)["base_full"] == first_base
    assert scenario.start().env("py")["action"] == "unchanged"


def test_a_damaged_base_delta_falls_back_to_the_full_comparison(scenario):
    """A delta whose lines do not match its checksum is no usable base: the update compares the whole copy with
    the image and says so; nothing of the user's is lost."""
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    scenario.start()
    delta = kept_base(scenario)
    assert delta.name.endswith(".delta")
    data = delta.read_bytes()
    at = data.rindex(b"oslnew")
    delta.write_bytes(data[:at] + b"oslnev" + data[at + 6 :])
    mine = scenario.target / "my-notes.txt"
    mine.write_text("keep me")
    scenario.image_update("install", scenario.wheel("oslprobe", "1.1"))
    result = scenario.start()
    assert any("no usable record" in m for m in result.messages()), result.output
    assert result.env("py")["action"] == "compare" and mine.read_text() == "keep me"
    assert "base_full" not in sync_record(scenario)  # the comparison keeps the image's manifest whole


def test_a_baked_diff_from_another_version_or_a_damaged_one_is_not_used(scenario, tmp_path):
    """The diff is used only when it starts from the user's recorded copy: here the copy is two versions behind
    (the diff from the version between would miss oslnew), then the diff is damaged; each time the update
    compares the whole manifests, says why, and ends with the image's files."""
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))  # a version the copy never gets
    between = tmp_path / "between.jsonl"
    between.write_bytes((scenario.source / ".osl-hooks-manifest.jsonl").read_bytes())
    scenario.pip(scenario.source, "install", scenario.wheel("oslprobe", "1.1"))
    bake(scenario.source, since=between)

    result = scenario.start()
    assert any("starts from another version than your copy's" in m for m in result.messages()), result.output
    assert scenario.files(scenario.target) == scenario.image_files()
    assert scenario.package_files(scenario.target, "oslnew") and scenario.version_in_copy("oslprobe") == "1.1"

    now = tmp_path / "now.jsonl"
    now.write_bytes((scenario.source / ".osl-hooks-manifest.jsonl").read_bytes())
    scenario.pip(scenario.source, "install", scenario.wheel("oslprobe", "1.2"))
    bake(scenario.source, since=now)
    manifest = scenario.source / ".osl-hooks-manifest.jsonl"
    data = manifest.read_bytes()
    at = data.rindex(b"oslprobe")  # in the diff, the last line: damaged, its length kept
    manifest.write_bytes(data[:at] + b"oslpr0be" + data[at + 8 :])

    result = scenario.start()
    assert any("does not match its checksum (damaged)" in m for m in result.messages()), result.output
    assert result.env("py")["action"] == "update"
    assert scenario.files(scenario.target) == scenario.image_files()
    assert scenario.version_in_copy("oslprobe") == "1.2"
