"""`osl-hooks bake` at image build time, and what a start does with a baked (or damaged) manifest."""

import json
import shutil
import subprocess
import sys

from osl_hooks.engine.manifest import MANIFEST_FILE
from osl_hooks.engine.runner import Outcome


def bake(*args):
    return subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "bake", *map(str, args)], capture_output=True, text=True
    )


def test_bake_writes_a_manifest_the_start_uses(image, tmp_path, run_start, home):
    source = tmp_path / "envs/geo"
    shutil.copytree(image / "envs/geo", source, symlinks=True)
    result = bake(source)
    assert result.returncode == 0, result.stderr
    assert f"{source}: " in result.stdout and " embed the prefix, 2 packages; manifest " in result.stdout
    header = json.loads((source / MANIFEST_FILE).read_text().splitlines()[0])
    assert header["baked"] and header["built_prefix"] == str(source) and header["files"] > 80

    plan = {
        "environments": [
            {"name": "geo", "mode": "synced", "source": str(source), "built_prefix": str(image / "envs/geo")}
        ]
    }
    first = run_start(plan)
    assert first.outcome == Outcome.OK, first.output
    assert not any("no baked manifest" in m for m in first.messages())
    assert not (home / ".local/envs/geo" / MANIFEST_FILE).exists(), "the manifest stays in the image"
    assert "geo is up to date" in run_start(plan).messages()


def test_damaged_manifest_is_not_trusted(image, tmp_path, run_start):
    source = tmp_path / "envs/geo"
    shutil.copytree(image / "envs/geo", source, symlinks=True)
    assert bake(source).returncode == 0
    lines = (source / MANIFEST_FILE).read_text().splitlines()
    (source / MANIFEST_FILE).write_text(lines[0] + "\n" + lines[1].replace('"f"', '"d"', 1) + "\n")
    result = run_start(
        {
            "environments": [
                {"name": "geo", "mode": "synced", "source": str(source), "built_prefix": str(image / "envs/geo")}
            ]
        }
    )
    assert any(
        "do not match its checksum (damaged); describing the env instead" in w for w in result.env("geo")["warnings"]
    )
    assert result.env("geo")["state"] == "ready"


def test_bake_refuses_what_is_not_an_env(tmp_path):
    result = bake(tmp_path)
    assert result.returncode == 2 and "does not look like an env" in result.stderr
    two = bake(tmp_path, tmp_path, "--built-prefix", "/opt/x")
    assert two.returncode == 2 and "--built-prefix applies to one env" in two.stderr


def test_bake_since_bakes_the_diff_from_the_previous_manifest_and_names_a_bad_one(image, tmp_path):
    source = tmp_path / "envs/geo"
    shutil.copytree(image / "envs/geo", source, symlinks=True)
    assert bake(source).returncode == 0
    previous = tmp_path / "previous.jsonl"
    shutil.copy(source / MANIFEST_FILE, previous)
    (source / "share/new-in-this-image.txt").write_text("new\n")

    result = bake(source, "--since", previous)
    assert result.returncode == 0, result.stderr
    header, *_, last = (source / MANIFEST_FILE).read_bytes().splitlines(keepends=True)
    diff = json.loads(last)
    assert json.loads(header)["since_bytes"] == len(last)
    assert diff["id"] == json.loads(previous.read_text().splitlines()[0])["id"]
    assert "share/new-in-this-image.txt" in diff["paths"]

    missing = bake(source, "--since", tmp_path / "nowhere.jsonl")
    assert missing.returncode == Outcome.INVALID and "--since" in missing.stderr and "nowhere.jsonl" in missing.stderr
    two = bake(source, source, "--since", previous)
    assert two.returncode == Outcome.INVALID and "--since applies to one env" in two.stderr
