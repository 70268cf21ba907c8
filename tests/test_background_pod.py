"""A background first copy in a pod-like sandbox (uid 1000, read-only image): installs are refused meanwhile.

While the user's own copy is made, the env's kernel runs from the image, which the notebook user cannot
write. pip would then fall back to a user install into ~/.local/lib, where the package would shadow that
package in every env of the same Python. The kernel runs instead with user site-packages off and with
guards for pip and conda first on its PATH, which say how far the copy is.
"""

import json

import pytest
from podsandbox import POD_HOME, PodSandbox, needed

from osl_hooks.demo.envbuild import build_wheel
from osl_hooks.engine.faultpoints import HOLD_AT_ENV_VAR

pytestmark = [pytest.mark.slow, needed]

INSTALLS = """
import json, os, subprocess, sys
install = ["install", "--no-index", "--find-links", "/opt/wheels", "oslprobe"]
on_path = subprocess.run(["pip", *install], capture_output=True, text=True)
module = subprocess.run([sys.executable, "-m", "pip", *install], capture_output=True, text=True)
print(json.dumps({"prefix": sys.prefix, "pip": [on_path.returncode, on_path.stderr],
                  "python -m pip": [module.returncode, module.stdout + module.stderr],
                  "user site": os.path.exists(os.path.expanduser("~/.local/lib"))}))
"""

SERVER = f"""
import json
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="osl-py", startup_timeout=60)
out = []
kc.execute_interactive({INSTALLS!r}, output_hook=lambda m: out.append(m["content"].get("text", "")), timeout=120)
kc.stop_channels(); km.shutdown_kernel(now=True)
print("KERNEL " + "".join(out).strip())
"""


def test_installs_during_the_copy_are_refused_and_never_land_in_user_site_packages(python_image, tmp_path):
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "oslprobe", "1.0")
    plan = {
        "version": 1,
        "environments": [
            {
                "name": "py",
                "mode": "synced",
                "source": "/opt/osl/envs/py",
                "built_prefix": str(python_image / "envs/py"),
            }
        ],
    }
    home = tmp_path / "volume"
    home.mkdir()
    (home / "hold").touch()  # the copy waits before it begins: the "server" below runs during the copy
    pod = PodSandbox(
        home=home,
        mounts={"/opt/osl/envs/py": python_image / "envs/py", "/opt/wheels": wheels},
        env={"OSL_HOOKS_PLAN": json.dumps(plan), HOLD_AT_ENV_VAR: f"background:staging-made={POD_HOME}/hold"},
    )
    result = pod.run(["osl-hooks", "start", "--", "python3", "-c", SERVER])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Your own copy of py will be made in the background" in result.stdout
    line = next(x for x in result.stdout.splitlines() if x.startswith("KERNEL "))
    seen = json.loads(line[len("KERNEL ") :])
    assert seen["prefix"] == "/opt/osl/envs/py"
    code, message = seen["pip"]
    assert code != 0 and "pip cannot change py yet" in message and "% done" in message, message
    code, output = seen["python -m pip"]
    # `python -m pip` (what %pip runs) meets the same guard, through pip's own PIP_PYTHON: the same sentence
    assert code != 0 and "pip cannot change py yet" in output and "Successfully installed" not in output, output
    assert not seen["user site"] and not (home / ".local/lib").exists()
