"""The whole `osl-hooks start`, as a pod runs it: read-only image, home volume at /home/jovyan, uid 1000."""

import json
import os

import podsandbox
import pytest
from conftest import write_script
from podsandbox import POD_HOME, PodSandbox, kernel_probe

pytestmark = [pytest.mark.slow, podsandbox.needed]

KERNEL_CHECK = kernel_probe("osl-py", "sys.prefix, os.environ['GEODEMO_DATA'], os.getuid()")


@pytest.fixture
def pod(image, python_image, tmp_path):
    setup_d = tmp_path / "setup.d"
    write_script(
        setup_d / "10-whoami.sh", 'echo "uid=$(id -u) home=$HOME env=${OSL_ENV_NAME:-global}" >> "$HOME/setup-trace"'
    )
    plan = {
        "version": 1,
        "environments": [
            {"name": "geo", "mode": "synced", "source": "/opt/osl/envs/geo", "built_prefix": str(image / "envs/geo")},
            {
                "name": "py",
                "mode": "synced",
                "source": "/opt/osl/envs/py",
                "built_prefix": str(python_image / "envs/py"),
                "kernel": {"display_name": "Python (py)"},
                "setup_scripts": [{"path": "/opt/osl/setup.d"}],
            },
        ],
        "setup_scripts": [{"path": "/opt/osl/setup.d", "run": "once"}],
    }
    home = tmp_path / "volume"
    home.mkdir()
    return PodSandbox(
        home=home,
        mounts={
            "/opt/osl/envs/geo": image / "envs/geo",
            "/opt/osl/envs/py": python_image / "envs/py",
            "/opt/osl/setup.d": setup_d,
        },
        env={"OSL_HOOKS_PLAN": json.dumps(plan)},
    )


def test_start_in_a_pod_syncs_registers_and_runs_scripts_as_the_user(pod):
    result = pod.run(["osl-hooks", "start"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Synced geo" in result.stdout and "Synced py" in result.stdout
    assert "Registered kernel Python (py)" in result.stdout

    volume = pod.home
    assert {
        os.lstat(p).st_uid
        for p in [
            volume / ".local/envs/py/bin/python",
            volume / ".local/envs/geo/lib/libgeodemo.so",
            volume / ".local/state/osl-hooks/status.json",
        ]
    } == {1000}
    assert (volume / "setup-trace").read_text().splitlines() == [
        f"uid=1000 home={POD_HOME} env=py",
        f"uid=1000 home={POD_HOME} env=global",
    ]
    assert (
        f"{POD_HOME}/.local/envs/geo/share/geodemo".encode()
        in (volume / ".local/envs/geo/lib/libgeodemo.so").read_bytes()
    )

    kernel = pod.run(["python3", "-c", KERNEL_CHECK])
    assert kernel.returncode == 0, kernel.stderr
    assert kernel.stdout.split() == [f"{POD_HOME}/.local/envs/py", f"{POD_HOME}/.local/envs/py/share/geodemo", "1000"]

    again = pod.run(["osl-hooks", "start"])
    assert again.returncode == 0, again.stderr
    assert "geo is up to date" in again.stdout and "py is up to date" in again.stdout
    assert "Skipping setup script 10-whoami.sh: ran once already" in again.stdout


def test_status_command_in_the_pod(pod):
    pod.run(["osl-hooks", "start"])
    result = pod.run(["osl-hooks", "status"])
    assert result.returncode == 0
    assert "last start: ok" in result.stdout
    assert f"py                   synced             ready     {POD_HOME}/.local/envs/py" in result.stdout


def test_image_is_read_only_in_the_pod(pod):
    result = pod.run(["sh", "-c", "touch /opt/osl/envs/py/x"])
    assert result.returncode != 0 and "Read-only file system" in result.stderr
