"""Kernels: registered with jupyter_client, activated like `conda activate`, run code from the synced env."""

import json
import shutil
import subprocess
import sys

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from osl_hooks.demo.envbuild import build_wheel
from osl_hooks.engine.runner import Outcome

PY_PLAN = {
    "environments": [{"name": "py", "mode": "synced", "source": "SOURCE", "kernel": {"display_name": "Python (py)"}}]
}


def plan_for(python_image, **extra):
    env = dict(PY_PLAN["environments"][0], source=str(python_image / "envs/py"), **extra)
    return {"environments": [env]}


def run_in_kernel(home, kernel_name: str, code: str) -> str:
    """Start the kernel the way Jupyter does (from its kernelspec) and return what `code` prints."""
    # A server whose HOME is `home` looks here (jupyter_data_dir()); the test process's HOME is elsewhere.
    ksm = KernelSpecManager(kernel_dirs=[str(home / ".local/share/jupyter/kernels")])
    km = KernelManager(kernel_name=kernel_name, kernel_spec_manager=ksm)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    output = []
    try:
        reply = kc.execute_interactive(
            code,
            timeout=120,
            output_hook=lambda msg: (
                output.append(msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None
            ),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return "".join(output)


@pytest.mark.slow
def test_kernel_runs_in_the_synced_env_with_activation(python_image, home, tmp_path, run_start):
    result = run_start(plan_for(python_image))
    assert result.outcome == Outcome.OK, result.output
    target = home / ".local/envs/py"
    wheel = build_wheel(tmp_path / "wheels", "oslprobe", "1.0")
    code = f"""
import os, sys, subprocess, shutil
print("prefix", sys.prefix)
print("geodemo", os.environ["GEODEMO_DATA"])
print("conda", os.environ["CONDA_PREFIX"])
print("which", shutil.which("geodemo"))
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", {str(wheel)!r}], check=True)
import oslprobe
print("probe", oslprobe.__file__)
"""
    lines = dict(line.split(" ", 1) for line in run_in_kernel(home, "osl-py", code).splitlines() if " " in line)
    assert lines["prefix"] == str(target)
    assert lines["geodemo"] == f"{target}/share/geodemo"
    assert lines["conda"] == str(target)
    assert lines["which"] == f"{target}/bin/geodemo"
    assert lines["probe"].startswith(f"{target}/lib/python")
    assert not list((python_image / "envs/py").glob("lib/python*/site-packages/oslprobe*")), "image was changed"


@pytest.mark.slow
def test_pip_of_the_synced_env_installs_into_it(python_image, home, tmp_path, run_start):
    run_start(plan_for(python_image))
    target = home / ".local/envs/py"
    wheel = build_wheel(tmp_path / "wheels", "oslprobe2", "2.0")
    subprocess.run([target / "bin/pip", "install", "--quiet", "--no-index", wheel], check=True)
    assert list(target.glob("lib/python*/site-packages/oslprobe2.py"))
    assert not list((python_image / "envs/py").glob("lib/python*/site-packages/oslprobe2.py"))


def test_kernelspec_is_marked_and_points_at_the_env(python_image, home, run_start):
    run_start(plan_for(python_image))
    spec = json.loads((home / ".local/share/jupyter/kernels/osl-py/kernel.json").read_text())
    target = home / ".local/envs/py"
    assert spec["argv"][:3] == [f"{target}/bin/python", "-m", "ipykernel_launcher"]
    assert spec["display_name"] == "Python (py)"
    assert spec["env"]["PATH"] == f"{target}/bin:${{PATH}}"
    assert spec["env"]["GEODEMO_DATA"] == f"{target}/share/geodemo"
    assert spec["metadata"]["osl_hooks"] == {"env": "py", "mode": "synced", "prefix": str(target)}
    assert (home / ".local/share/jupyter/kernels/osl-py/logo-64x64.png").exists()


def test_baked_kernel_uses_the_image_env(python_image, home, run_start):
    source = python_image / "envs/py"
    result = run_start({"environments": [{"name": "base", "mode": "baked", "source": str(source)}]})
    assert result.outcome == Outcome.OK
    spec = json.loads((home / ".local/share/jupyter/kernels/osl-base/kernel.json").read_text())
    assert spec["argv"][0] == f"{source}/bin/python"
    assert not (home / ".local/envs").exists()


def test_only_osl_hooks_kernels_are_replaced_or_removed(python_image, home, run_start):
    kernels = home / ".local/share/jupyter/kernels"
    users_own = kernels / "my-kernel"
    users_own.mkdir(parents=True)
    (users_own / "kernel.json").write_text(
        json.dumps({"argv": ["python"], "display_name": "Mine", "language": "python"})
    )
    source = str(python_image / "envs/py")
    run_start(
        {
            "environments": [
                {"name": "py", "mode": "baked", "source": source},
                {"name": "other", "mode": "baked", "source": source},
            ]
        }
    )
    assert (kernels / "osl-py").is_dir() and (kernels / "osl-other").is_dir()

    result = run_start({"environments": [{"name": "py", "mode": "baked", "source": source}]})
    assert not (kernels / "osl-other").exists()
    assert any("Removed kernel osl-other" in m for m in result.messages())
    assert (users_own / "kernel.json").exists()

    shutil.rmtree(kernels / "osl-py")
    (kernels / "osl-py").mkdir()
    (kernels / "osl-py/kernel.json").write_text('{"argv": ["x"], "display_name": "user made this"}')
    result = run_start({"environments": [{"name": "py", "mode": "baked", "source": source}]})
    assert result.outcome == Outcome.OK, "the user's own kernel is their choice, not a problem"
    assert json.loads((kernels / "osl-py/kernel.json").read_text())["display_name"] == "user made this"
    assert any("You have your own kernel 'osl-py'" in m for m in result.messages())


def test_envs_the_user_built_get_kernels_and_lose_them_when_deleted(python_image, home, run_start):
    mine = home / ".local/envs/my-analysis"
    mine.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(python_image / "envs/py"), str(mine)], check=True)
    result = run_start({"discover_user_envs": True})
    assert result.outcome == Outcome.OK, result.output
    spec = json.loads((home / ".local/share/jupyter/kernels/osl-user-my-analysis/kernel.json").read_text())
    assert spec["display_name"] == "my-analysis (your env)" and spec["argv"][0] == f"{mine}/bin/python"
    shutil.rmtree(mine)
    run_start({"discover_user_envs": True})
    assert not (home / ".local/share/jupyter/kernels/osl-user-my-analysis").exists()


def test_kernel_unchanged_on_restart(python_image, home, run_start):
    run_start(plan_for(python_image))
    spec_file = home / ".local/share/jupyter/kernels/osl-py/kernel.json"
    before = spec_file.stat().st_mtime_ns
    result = run_start(plan_for(python_image))
    assert "Kernel Python (py) is registered" in result.messages()
    assert spec_file.stat().st_mtime_ns == before


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
