"""Copies an earlier hook made are adopted whole (issue 32): a hub that switches to osl-hooks from its own
postStart `rsync -a` (OpenSARlab's "sync them to $HOME/.local") or a `cp -r` left envs in the users' homes that
still name the image's prefix. The first start relocates what still names it, records the sync, keeps what the
user changed (counted as their change from then on), and says once what it did; the start is not degraded.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from osl_hooks.engine.runner import Outcome

pytestmark = pytest.mark.slow

COPY_TOOLS = {
    "rsync -a": lambda source, target: ["rsync", "-a", f"{source}/", f"{target}/"],
    "cp -r": lambda source, target: ["cp", "-r", str(source), str(target)],  # modes kept, times lost
}


@pytest.mark.parametrize("tool", COPY_TOOLS)
def test_a_copy_an_earlier_hook_made_is_relocated_recorded_and_keeps_the_users_changes(
    tool, python_image, home, run_start
):
    source = python_image / "envs/py"
    target = home / ".local/envs/py"
    target.parent.mkdir(parents=True)
    subprocess.run(COPY_TOOLS[tool](source, target), check=True)
    # The interpreter's name in pip's first line is the installing pip's choice (python or python3): take it from the image.
    image_shebang = (source / "bin/pip").read_text().splitlines()[0]
    assert image_shebang.startswith(f"#!{source}/bin/python"), image_shebang
    assert (target / "bin/pip").read_text().splitlines()[0] == image_shebang, "the copy names the image's prefix"
    mine = target / "my-notes.txt"
    mine.write_text("keep me")
    edited = next(target.glob("lib/python3*/site-packages/ipykernel/__init__.py"))
    edited.write_text(edited.read_text() + "# the user's edit\n")

    result = run_start({"environments": [{"name": "py", "mode": "synced", "source": str(source)}]})

    assert result.outcome == Outcome.OK, result.output
    [said] = [m for m in result.messages() if m.startswith("Adopting ")]
    assert "files that differ from the image are kept as your changes" in said, said
    assert " 1 files that differ" in said, said  # the edit; the user's own new file is not the image's at all
    assert not result.env("py")["warnings"], result.env("py")["warnings"]
    # the copy works as one osl-hooks made: its pip is its own, not the image's
    assert (target / "bin/pip").read_text().splitlines()[0] == image_shebang.replace(str(source), str(target), 1)
    pip = subprocess.run([str(target / "bin/pip"), "--version"], capture_output=True, text=True, check=True)
    assert f"from {target}/" in pip.stdout, pip.stdout
    assert mine.read_text() == "keep me" and edited.read_text().endswith("# the user's edit\n")
    record = json.loads((home / ".local/state/osl-hooks/envs/py.json").read_text())  # the sync record
    assert record["target"] == str(target) and record["source_id"]
    # the next start knows the copy: nothing to compare, no adoption again
    again = run_start({"environments": [{"name": "py", "mode": "synced", "source": str(source)}]})
    assert again.outcome == Outcome.OK and again.env("py")["action"] == "unchanged", again.output
    assert not [m for m in again.messages() if m.startswith("Adopting ")]


def test_a_damaged_record_is_still_a_warning_not_an_adoption(python_image, home, run_start):
    """Adoption is for copies with no record at all; a record that cannot be read still says so."""
    source = python_image / "envs/py"
    plan = {"environments": [{"name": "py", "mode": "synced", "source": str(source)}]}
    assert run_start(plan).outcome == Outcome.OK
    record = home / ".local/state/osl-hooks/envs/py.json"
    record.write_text("{damaged")
    result = run_start(plan)
    assert any("no usable record" in w for w in result.env("py")["warnings"]), result.output
    assert not [m for m in result.messages() if m.startswith("Adopting ")]
