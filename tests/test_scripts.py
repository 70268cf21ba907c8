"""Setup scripts: order, environment, timeouts, failure policies, run policies, logs."""

import time

from conftest import write_script

from osl_hooks.engine.runner import Outcome
from osl_hooks.events import parse_line


def test_scripts_run_in_name_order_after_envs_and_log_their_output(tmp_path, home, run_start):
    setup_d = tmp_path / "setup.d"
    trace = home / "trace"
    write_script(setup_d / "20-second.sh", f'echo second >> {trace}; echo "hello from second"')
    write_script(setup_d / "10-first.sh", f'echo first >> {trace}; echo "HOME=$HOME"')
    write_script(setup_d / "30-not-executable.sh", f"echo never >> {trace}").chmod(0o644)
    write_script(setup_d / "40-backup.sh~", f"echo never >> {trace}")
    result = run_start({"setup_scripts": [{"path": str(setup_d)}]})
    assert result.outcome == Outcome.OK
    assert trace.read_text().split() == ["first", "second"]
    log = (home / ".local/state/osl-hooks/start.log").read_text()
    assert "[10-first.sh] HOME=" + str(home) in log
    assert "[20-second.sh] hello from second" in log
    assert log.index("Running setup script 10-first.sh") < log.index("Running setup script 20-second.sh")


def test_env_scripts_see_the_env(tmp_path, home, run_start):
    env_dir = tmp_path / "image/envs/tools"
    (env_dir / "bin").mkdir(parents=True)
    write_script(env_dir / "bin/whoami-env", "echo tool")
    out = home / "seen"
    script = write_script(
        tmp_path / "env-setup.sh",
        f'echo "$OSL_ENV_NAME|$OSL_ENV_PREFIX|$OSL_ENV_MODE|$CONDA_PREFIX|$(whoami-env)" > {out}',
    )
    result = run_start(
        {
            "environments": [
                {"name": "tools", "mode": "baked", "source": str(env_dir), "setup_scripts": [{"path": str(script)}]}
            ]
        }
    )
    assert result.outcome == Outcome.OK, result.output
    assert out.read_text().strip() == f"tools|{env_dir}|baked|{env_dir}|tool"


def test_timeout_kills_the_script_and_its_children(tmp_path, home, run_start):
    pidfile = home / "child.pid"
    script = write_script(tmp_path / "hang.sh", f"sleep 300 & echo $! > {pidfile}; wait")
    started = time.monotonic()
    result = run_start({"setup_scripts": [{"path": str(script), "timeout": 1}]})
    assert time.monotonic() - started < 30
    assert result.outcome == Outcome.DEGRADED
    [record] = result.status["scripts"]
    assert record["state"] == "timeout" and "1 s timeout" in record["reason"]
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the script's child survived the timeout"


def test_failure_policy_continue_degrades_and_fail_stops_the_start(tmp_path, home, run_start):
    trace = home / "trace"
    bad = write_script(tmp_path / "bad.sh", "echo broken >&2; exit 7")
    after = write_script(tmp_path / "after.sh", f"echo after >> {trace}")
    result = run_start({"setup_scripts": [{"path": str(bad)}, {"path": str(after)}]})
    assert result.outcome == Outcome.DEGRADED
    assert trace.read_text() == "after\n"
    assert any("bad.sh exited with code 7; continuing" in m for m in result.messages())
    assert "[bad.sh] broken" in (home / ".local/state/osl-hooks/start.log").read_text()

    trace.unlink()
    result = run_start({"setup_scripts": [{"path": str(bad), "on_failure": "fail"}, {"path": str(after)}]})
    assert result.outcome == Outcome.FAILED
    assert result.status["state"] == "failed"
    assert result.messages()[-1] == "Start failed: Setup script bad.sh exited with code 7"
    assert not trace.exists()


def test_run_policies_once_and_on_change(tmp_path, home, run_start):
    trace = home / "trace"
    once = write_script(tmp_path / "once.sh", f"echo once >> {trace}")
    changing = write_script(tmp_path / "changing.sh", f"echo v1 >> {trace}")
    always = write_script(tmp_path / "always.sh", f"echo always >> {trace}")
    plan = {
        "setup_scripts": [
            {"path": str(once), "run": "once"},
            {"path": str(changing), "run": "on_change"},
            {"path": str(always)},
        ]
    }
    run_start(plan)
    run_start(plan)
    write_script(changing, f"echo v2 >> {trace}")
    run_start(plan)
    assert trace.read_text().split() == ["once", "v1", "always", "always", "v2", "always"]


def test_once_script_that_failed_runs_again(tmp_path, home, run_start):
    flag = home / "flag"
    script = write_script(tmp_path / "flaky.sh", f"if [ -e {flag} ]; then exit 0; fi; touch {flag}; exit 1")
    plan = {"setup_scripts": [{"path": str(script), "run": "once"}]}
    assert run_start(plan).outcome == Outcome.DEGRADED
    assert run_start(plan).outcome == Outcome.OK
    result = run_start(plan)
    assert result.status["scripts"][0]["state"] == "skipped"


def test_missing_script_is_reported_by_path(tmp_path, run_start):
    result = run_start({"setup_scripts": [{"path": str(tmp_path / "nope.sh")}]})
    assert result.outcome == Outcome.DEGRADED
    assert any(f"{tmp_path / 'nope.sh'} does not exist in the image" in m for m in result.messages())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_outcome_is_left_as_a_termination_message(tmp_path, home, run_start, monkeypatch):
    """In a pod, Kubernetes shows /dev/termination-log in the container status, which the hub can read."""
    log = tmp_path / "termination-log"
    log.write_text("")
    monkeypatch.setenv("OSL_HOOKS_TERMINATION_LOG", str(log))
    bad = write_script(tmp_path / "bad.sh", "exit 4")
    run_start({"setup_scripts": [{"path": str(bad), "on_failure": "fail"}]})
    # the human sentence first, then the last problems and the final event as event lines
    human, *lines = log.read_text().splitlines()
    assert human == "Start failed: Setup script bad.sh exited with code 4"
    failed, final = [parse_line(line) for line in lines]
    assert (failed["kind"], failed["script"], failed["exit_code"], failed["level"]) == (
        "script-done",
        "bad.sh",
        4,
        "error",
    )
    assert (final["kind"], final["state"], final["message"]) == ("finish", "failed", human)
    run_start({"setup_scripts": [{"path": str(bad)}]})
    human, *lines = log.read_text().splitlines()
    assert human.startswith("Ready, with warnings")
    warning = parse_line(lines[0])
    assert warning["level"] == "warning" and warning["message"].startswith(
        "Setup script bad.sh exited with code 4; continuing"
    )
    assert parse_line(lines[-1])["state"] == "degraded"
