"""A start with nothing new stays light: it imports none of the heavy modules only other paths use.

Every user pays the start's imports at every server start; jupyter_client, jsonschema, psutil, yaml and
fastjsonschema cost more than the rest of a start with nothing new, and the hub side has no business in
the pod at all. Checked in a fresh process running the real `osl-hooks start` on a genuine env.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from osl_hooks.engine.manifest import bake

HEAVY = ("jupyter_client", "jsonschema", "psutil", "yaml", "fastjsonschema", "traitlets", "jupyterhub", "kubespawner")
# The engine's modules for other commands and other paths: a start with nothing new has no use for them.
OTHER_PATHS = (
    "osl_hooks.engine.background_copy",  # the background copy process
    "osl_hooks.engine.commands",  # reset, materialize
    "osl_hooks.engine.imagecheck",  # bake
    "osl_hooks.engine.bytecode",  # bake
    "filecmp",  # adopting a copy osl-hooks did not make
    "osl_hooks.engine.scripts",  # setup scripts: the plan has none
    "osl_hooks.engine.condarc",  # conda's configuration: for user envs
    "osl_hooks.engine.linked",  # linked envs: the plan has none
    "osl_hooks.engine.linkplan",  # which files a linked copy links
    "osl_hooks.engine.update",  # the three-way decision: nothing to update
    "osl_hooks.engine.bakeddiff",  # the previous version from the baked diff: nothing to update
    "osl_hooks.engine.sync",  # rsync: nothing to copy
    "osl_hooks.engine.filecopy",  # an update's copy: nothing to update
    "osl_hooks.engine.retire",  # retirement: a version-1 plan, and nothing retired
    "osl_hooks.engine.envdiff",  # package changes: for status and diff
    "subprocess",  # no rsync, no activation scripts (the env has none), no pip probe
    "dataclasses",  # the records of a start are `_records.record`s: their dataclass view is made when asked for
    "inspect",  # (imported by dataclasses)
    "hashlib",  # hashing: bake, setup scripts' digests (and secrets' hmac: temporary names use os.urandom)
    "csv",  # pip's RECORD files: a scan of an env
    "argparse",  # other commands, help, mistakes: `start` as the deliveries run it is read by hand
    "gettext",  # argparse's messages
    "shlex",  # the guard scripts of copies made later: none
)

START_AND_LIST_MODULES = """
import json, sys
from osl_hooks.cli import main
code = main(["start", "--allow-root", "--plan", sys.argv[1]])
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in sys.argv[2].split(",") or m.startswith("osl_hooks.hub") or m in sys.argv[2].split(",")
)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def start_in_fresh_process(plan_file, unwanted: tuple[str, ...] = HEAVY + OTHER_PATHS) -> tuple[int, list[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", START_AND_LIST_MODULES, str(plan_file), ",".join(unwanted)],
        capture_output=True,
        text=True,
        check=True,
    )
    *lines, last = result.stdout.splitlines()
    report = json.loads(last)
    return report["code"], report["heavy"], "\n".join(lines)


def baked_copy_of_geo(image, tmp_path, mode="synced"):
    """The image's geo env copied and baked (`osl-hooks bake`, as images are built), a home, and a plan for both."""
    source = tmp_path / "image/envs/geo"
    shutil.copytree(image / "envs/geo", source, symlinks=True)
    bake(source)
    home = tmp_path / "home"
    home.mkdir()
    plan = tmp_path / "plan.json"
    environments = [{"name": "geo", "mode": mode, "source": str(source)}]
    plan.write_text(json.dumps({"version": 1, "home": str(home), "environments": environments}))
    return source, home, plan


@pytest.mark.parametrize("mode", ["synced", "linked"])
def test_restart_with_nothing_new_imports_nothing_heavy(image, tmp_path, mode):
    """On a baked image: a restart reads the manifest's id, hashes nothing. A linked env's restart pays what a
    synced one's does, plus `linked` itself: neither the classification of its files (`linkplan`) nor the update
    (`update`, and `dataclasses` with `inspect`, 7 ms of its 55 ms)."""
    source, home, plan = baked_copy_of_geo(image, tmp_path, mode)
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"version": 1, "home": str(home), "environments": [{"name": "geo"}]}))
    code, heavy, _ = start_in_fresh_process(invalid)
    assert code == 2 and "jsonschema" in heavy, "an invalid plan is explained with jsonschema (the check can fail)"

    unwanted = HEAVY + tuple(m for m in OTHER_PATHS if mode != "linked" or m != "osl_hooks.engine.linked")
    code, heavy, output = start_in_fresh_process(plan, unwanted)
    assert code == 0, output
    assert mode == "synced" or "files are links into the image" in output, output
    code, heavy, output = start_in_fresh_process(plan, unwanted)
    assert code == 0, output
    assert "geo is up to date" in output
    assert heavy == [], f"a start with nothing new imported {heavy}"


@pytest.mark.parametrize("mode", ["synced", "linked"])
def test_an_image_update_copies_in_the_start_s_own_process(image, tmp_path, mode):
    """A small update costs what changed: its files are copied by the start itself, without the rsync driver or
    any process (starting rsync cost more than copying a 1% update's files), and its decision is a record, not a
    dataclass (importing dataclasses and inspect was 5 ms of a 1% update's 0.15 s); a linked env's too (the
    classification of the paths it changed is no dataclass either)."""
    source, home, plan = baked_copy_of_geo(image, tmp_path, mode)
    code, _, output = start_in_fresh_process(plan)
    assert code == 0, output
    tile = next(source.glob("share/geodemo-data/tiles/*.txt"))
    tile.write_text("a new version of this tile\n")
    (source / "share/geodemo-data/tiles/new-tile.txt").write_text("a tile the update adds\n")
    bake(source)

    code, heavy, output = start_in_fresh_process(plan, HEAVY + ("osl_hooks.engine.sync", "subprocess", "dataclasses"))
    assert code == 0, output
    copy = home / ".local/envs/geo" / tile.relative_to(source)
    assert copy.read_text() == "a new version of this tile\n", output
    assert (copy.parent / "new-tile.txt").read_text() == "a tile the update adds\n"
    assert heavy == [], f"an update imported {heavy}"


def test_restart_with_the_same_plan_does_not_rewrite_the_plan_record(image, tmp_path, run_start_in):
    """The plan record (state/plan.json, for the server's REST API) is written when the plan changes, not at every
    start; a record that is not the user's own 0600 regular file (a link, another mode) is replaced."""
    home = tmp_path / "home"
    home.mkdir()
    plan = {"environments": [{"name": "geo", "mode": "synced", "source": str(image / "envs/geo"), "kernel": False}]}
    record = home / ".local/state/osl-hooks/plan.json"
    assert run_start_in(home, plan).outcome == 0
    first = record.stat()
    assert run_start_in(home, plan).outcome == 0
    assert (record.stat().st_ino, record.stat().st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

    changed = {**plan, "lock_timeout": 77}
    assert run_start_in(home, changed).outcome == 0
    assert record.stat().st_ino != first.st_ino and json.loads(record.read_text())["lock_timeout"] == 77

    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(record.read_text())
    elsewhere.chmod(0o600)
    record.unlink()
    record.symlink_to(elsewhere)
    assert run_start_in(home, changed).outcome == 0
    assert not record.is_symlink() and record.stat().st_mode & 0o777 == 0o600

    record.chmod(0o644)
    assert run_start_in(home, changed).outcome == 0
    assert record.stat().st_mode & 0o777 == 0o600
