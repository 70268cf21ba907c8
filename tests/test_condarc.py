"""User mode: conda is pointed at ~/.local/envs, and the user's own .condarc is never clobbered."""

import yaml

from osl_hooks.engine.runner import Outcome

USER_PLAN = {
    "environments": [
        {"name": "mine", "mode": "user"},
        {"name": "base", "mode": "baked", "source": "/usr", "kernel": False},
    ]
}


def test_condarc_is_created_with_user_envs_first(home, run_start):
    result = run_start(USER_PLAN)
    assert result.outcome == Outcome.OK, result.output
    config = yaml.safe_load((home / ".condarc").read_text())
    assert config["envs_dirs"] == [str(home / ".local/envs"), "/"]
    assert (home / ".local/envs").is_dir()
    assert result.env("mine")["state"] == "absent"
    assert any("mine has not been created yet" in m for m in result.messages())


def test_existing_condarc_keeps_its_text_and_gains_envs_dirs(home, run_start):
    original = "# my settings\nchannels:\n  - conda-forge\nchannel_priority: strict"
    (home / ".condarc").write_text(original)
    run_start(USER_PLAN)
    text = (home / ".condarc").read_text()
    assert text.startswith(original + "\n")
    config = yaml.safe_load(text)
    assert config["channels"] == ["conda-forge"] and config["channel_priority"] == "strict"
    assert config["envs_dirs"][0] == str(home / ".local/envs")
    run_start(USER_PLAN)
    assert (home / ".condarc").read_text() == text, "a second start must not append again"


def test_users_own_envs_dirs_wins(home, run_start):
    original = "envs_dirs:\n  - ~/my-envs\n"
    (home / ".condarc").write_text(original)
    result = run_start(USER_PLAN)
    assert (home / ".condarc").read_text() == original
    assert result.outcome == Outcome.DEGRADED
    assert any("your setting is kept" in m for m in result.messages())


def test_tilde_spelling_counts_as_already_configured(home, run_start):
    original = "envs_dirs:\n  - ~/.local/envs\n  - /opt/conda/envs\n"
    (home / ".condarc").write_text(original)
    assert run_start(USER_PLAN).outcome == Outcome.OK
    assert (home / ".condarc").read_text() == original


def test_broken_condarc_is_left_unchanged(home, run_start):
    original = "channels: [conda-forge\n"
    (home / ".condarc").write_text(original)
    result = run_start(USER_PLAN)
    assert (home / ".condarc").read_text() == original
    assert any("is not valid YAML" in m and "left unchanged" in m for m in result.messages())
