"""A user's home and envs are sacred: bad input is explained and changes nothing; links never lead out."""

import os

import pytest
from conftest import tree_snapshot

from osl_hooks.engine.runner import Outcome, start
from osl_hooks.plan import Plan, PlanError


@pytest.fixture
def outside(tmp_path):
    """A directory beside the home that must never be written to."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "precious.txt").write_text("not yours")
    return path


@pytest.fixture
def source_env(tmp_path):
    env = tmp_path / "image/envs/geo"
    (env / "bin").mkdir(parents=True)
    (env / "bin/tool").write_text("#!/bin/sh\necho tool\n")
    (env / "share").mkdir()
    (env / "share/data.txt").write_text("data\n")
    return env


def test_symlinked_envs_dir_pointing_outside_is_refused(home, outside, source_env, run_start):
    (home / ".local").mkdir()
    (home / ".local/envs").symlink_to(outside)
    before = tree_snapshot(outside)
    result = run_start({"environments": [{"name": "geo", "mode": "synced", "source": str(source_env)}]})
    assert result.outcome == Outcome.DEGRADED
    assert result.env("geo")["state"] == "fallback" and result.env("geo")["effective_mode"] == "baked"
    [error] = result.env("geo")["warnings"]
    assert f"the symlink {home / '.local/envs'} -> {outside} leads outside the home" in error
    assert "outside the home" in error
    assert tree_snapshot(outside) == before


def test_symlinked_state_dir_fails_the_start_without_writing(home, outside, run_start):
    (home / ".local/state").mkdir(parents=True)
    (home / ".local/state/osl-hooks").symlink_to(outside)
    before = tree_snapshot(outside)
    result = run_start({})
    assert result.outcome == Outcome.FAILED
    assert "state_dir" in result.output and "outside the home" in result.output
    assert tree_snapshot(outside) == before


def test_symlinked_kernels_dir_is_never_written_or_cleaned(home, outside, tmp_path, run_start):
    (outside / "osl-old").mkdir()
    (outside / "osl-old/kernel.json").write_text('{"argv": [], "display_name": "x", "metadata": {"osl_hooks": {}}}')
    (home / ".local/share/jupyter").mkdir(parents=True)
    (home / ".local/share/jupyter/kernels").symlink_to(outside)
    before = tree_snapshot(outside)
    result = run_start({})
    assert result.outcome == Outcome.DEGRADED
    assert any("kernels directory" in m and "outside the home" in m for m in result.messages())
    assert tree_snapshot(outside) == before


def test_symlinked_condarc_pointing_outside_is_left_alone(home, outside, run_start):
    (outside / "condarc").write_text("channels: [conda-forge]\n")
    (home / ".condarc").symlink_to(outside / "condarc")
    result = run_start({"environments": [{"name": "mine", "mode": "user"}]})
    assert result.outcome == Outcome.DEGRADED
    assert (outside / "condarc").read_text() == "channels: [conda-forge]\n"
    assert any("~/.condarc" in m and "outside the home" in m for m in result.messages())


def test_symlink_inside_the_home_is_followed(home, source_env, run_start):
    (home / "big-disk").mkdir()
    (home / ".local").mkdir()
    (home / ".local/envs").symlink_to(home / "big-disk")
    result = run_start({"environments": [{"name": "geo", "mode": "synced", "source": str(source_env)}]})
    assert result.outcome == Outcome.OK, result.output
    assert (home / "big-disk/geo/share/data.txt").read_text() == "data\n"


def test_target_outside_home_is_rejected_before_anything_happens(home, source_env):
    plan = Plan.from_dict(
        {
            "version": 1,
            "home": str(home),
            "environments": [
                {"name": "geo", "mode": "synced", "source": str(source_env), "target": "/tmp/elsewhere/geo"}
            ],
        }
    )
    before = tree_snapshot(home)
    with pytest.raises(PlanError, match=r"environments\[0\]\.target: '/tmp/elsewhere/geo' is outside the home"):
        start(plan, allow_root=True)
    assert tree_snapshot(home) == before


def test_missing_source_is_named_and_nothing_is_created(home, tmp_path, run_start):
    missing = tmp_path / "image/envs/nope"
    result = run_start({"environments": [{"name": "nope", "mode": "synced", "source": str(missing)}]})
    assert result.outcome == Outcome.DEGRADED
    assert result.env("nope")["errors"] == [f"nope: {missing} does not exist in the image"]
    assert not (home / ".local/envs/nope").exists()


def test_refuses_to_run_as_root_unless_allowed(home):
    if os.geteuid() != 0:
        pytest.skip("needs root to observe the refusal")
    plan = Plan.from_dict({"version": 1, "home": str(home)})
    import io

    out = io.StringIO()
    assert start(plan, out=out) == Outcome.FAILED
    assert "refusing to run as root" in out.getvalue()
    assert list(home.iterdir()) == []
