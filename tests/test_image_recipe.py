"""examples/image/Dockerfile, the single-user image recipe: linted, and its steps run without Docker.

- hadolint (with its built-in ShellCheck for RUN steps) and ShellCheck on the scripts it copies;
- every COPY source exists in the build context (the repository root);
- every step, in order, in a build sandbox (tests/imagebuild.py): COPY copies, RUN runs as root with the
  Dockerfile's ENV, the base image's tools stood in for (its Python: a venv of this machine's; `mamba`:
  tests/mamba_standin.py, which builds genuine conda envs from the local demo channel). The result is then
  started in the pod sandbox as uid 1000: the envs are synced, relocated and the setup script runs.
Not run here (docs/image.md says so too): pulling the base image, solving the environment files against
conda-forge, the package index, and the image build itself (layers, sizes).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from imagebuild import BuildSandbox, available, build_steps, copy_arguments
from podsandbox import PodSandbox
from podsandbox import available as pod_sandbox_available

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "examples" / "image"
DOCKERFILE = RECIPE / "Dockerfile"
SCRIPTS = [RECIPE / "check-envs.sh", *sorted((RECIPE / "setup.d").iterdir())]

# The base image's ENV as far as the recipe relies on it (quay.io/jupyter/*-notebook images).
BASE_ENV = {
    "PATH": "/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "CONDA_DIR": "/opt/conda",
    "NB_USER": "jovyan",
    "NB_UID": "1000",
    "NB_GID": "100",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    # No package index here: pip finds osl-hooks' dependencies already installed (the venv sees this
    # machine's site-packages) and builds it with the setuptools present.
    "PIP_NO_INDEX": "1",
    "PIP_NO_BUILD_ISOLATION": "0",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "OSL_HOOKS_ENVBUILD_CACHE": "/tmp/osl-hooks-envbuild",
}


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["hadolint", "--no-color", str(path)], capture_output=True, text=True)


def test_hadolint_passes():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_typo_in_a_run_step(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace('osl-hooks bake "${OSL_ENVS}"/*', 'osl-hooks bake "${OSL_ENVS}/*'))
    result = hadolint(broken)
    assert result.returncode != 0 and "SC1072" in result.stdout  # ShellCheck: unterminated quoted string


def test_scripts_pass_shellcheck():
    result = subprocess.run(["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_copy_source_is_in_the_build_context():
    copies = [copy_arguments(s) for s in build_steps(DOCKERFILE) if s.instruction == "COPY"]
    assert copies, "the recipe copies nothing?"
    missing = [source for sources, _ in copies for source in sources if not (REPO / source).exists()]
    assert missing == []


def test_environment_files_name_their_env_and_ipykernel():
    import yaml

    for path in sorted((RECIPE / "envs").glob("*.yml")):
        spec = yaml.safe_load(path.read_text())
        assert spec["name"] == path.stem, path
        assert "ipykernel" in spec["dependencies"], f"{path}: a synced env needs ipykernel for its kernel"


def check_envs(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(RECIPE / "check-envs.sh"), str(root)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OSL_HOME_MOUNT": "/home/jovyan", **env},
    )


def test_check_envs_refuses_a_prefix_shorter_than_the_target(tmp_path):
    (tmp_path / "e" / "gis" / "bin").mkdir(parents=True)
    result = check_envs(tmp_path / "e", OSL_HOME_MOUNT="/home/" + "j" * len(str(tmp_path)))
    assert result.returncode == 1
    assert f"{tmp_path}/e/gis" in result.stderr and "is shorter than its place in the home" in result.stderr


def test_check_envs_refuses_files_the_user_cannot_read(tmp_path):
    env = tmp_path / ("long-enough-" * 4) / "gis"
    (env / "conda-meta").mkdir(parents=True)
    (env / "conda-meta" / "x-1.0-0.json").write_text("{}")
    (env / "conda-meta" / "x-1.0-0.json").chmod(0o600)
    result = check_envs(env.parent)
    assert result.returncode == 1
    assert "cannot read" in result.stderr and "conda-meta/x-1.0-0.json" in result.stderr


def test_check_envs_refuses_envs_over_the_budget(tmp_path):
    env = tmp_path / ("long-enough-" * 4) / "gis"
    env.mkdir(parents=True)
    (env / "data").write_bytes(b"x" * 4096)
    assert check_envs(env.parent, OSL_IMAGE_BUDGET_GB="1").returncode == 0
    result = check_envs(env.parent, OSL_IMAGE_BUDGET_GB="0")
    assert result.returncode == 1 and "OSL_IMAGE_BUDGET_GB=0" in result.stderr


# -- the steps, run --------------------------------------------------------------------------------------


def stand_in_base_image(sandbox: BuildSandbox) -> None:
    """/opt/conda: a Python venv (this machine's Python and packages) with the `mamba` stand-in."""
    made = sandbox.execute([sys.executable, "-m", "venv", "--system-site-packages", "/opt/conda"])
    assert made.returncode == 0, made.stderr
    mamba = sandbox.host_path("/opt/conda/bin/mamba")
    mamba.write_text(
        "#!/opt/conda/bin/python\nimport sys\n"
        f"sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'tests')!r}]\n"
        "from mamba_standin import main\nsys.exit(main())\n"
    )
    mamba.chmod(0o755)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The recipe's steps run in order; returns (sandbox, the output of every RUN step)."""
    if not available():
        pytest.skip("needs bubblewrap and root")
    sandbox = BuildSandbox(root=tmp_path_factory.mktemp("image-root"), context=REPO, base_env=BASE_ENV)
    stand_in_base_image(sandbox)
    outputs = []
    for step in build_steps(DOCKERFILE):
        if step.instruction == "COPY":
            sandbox.copy(step)
            continue
        result = sandbox.run(step)
        assert result.returncode == 0, f"Dockerfile line {step.line}: {step.value}\n{result.stdout}{result.stderr}"
        outputs.append(result.stdout)
    return sandbox, outputs


@pytest.mark.slow
def test_build_steps_make_baked_readable_envs(built):
    sandbox, outputs = built
    envs_root = sandbox.host_path("/opt/osl/synced-environments")
    names = sorted(p.stem for p in (RECIPE / "envs").glob("*.yml"))
    assert sorted(p.name for p in envs_root.iterdir()) == names
    for name in names:
        env = envs_root / name
        assert (env / ".osl-hooks-manifest.jsonl").is_file()
        assert all(p.stat().st_mode & 0o004 for p in (env / "conda-meta").glob("*.json"))
        # bake's size report, one line per env
        assert re.search(rf"^/opt/osl/synced-environments/{name}: \d+ files, ", outputs[-1], re.M), outputs[-1]
    assert "osl-check-envs: 2 envs" in outputs[-1]
    assert (sandbox.host_path("/opt/conda/bin/osl-hooks")).is_file()  # pip installed the checkout
    assert not sandbox.host_path("/tmp/osl-hooks").exists() and not sandbox.host_path("/tmp/osl-envs").exists()
    assert sandbox.host_path("/etc/osl-hooks/setup.d/10-welcome.sh").stat().st_mode & 0o111


@pytest.mark.slow
@pytest.mark.skipif(not pod_sandbox_available(), reason="needs bubblewrap, setpriv and root")
def test_the_built_image_starts_a_pod_without_relocation_fallback(built, tmp_path):
    sandbox, _ = built
    envs = sandbox.host_path("/opt/osl/synced-environments")
    plan = {
        "version": 1,
        "environments": [
            {"name": name, "mode": "synced", "source": f"/opt/osl/synced-environments/{name}"}
            for name in sorted(p.name for p in envs.iterdir())
        ],
        # The pod sandbox can only add mounts under /home, /root and /opt: the image's /etc/osl-hooks/setup.d
        # is mounted at /opt/osl-hooks/setup.d.
        "setup_scripts": [{"path": "/opt/osl-hooks/setup.d"}],
    }
    home = tmp_path / "volume"
    home.mkdir()
    pod = PodSandbox(
        home=home,
        mounts={
            "/opt/osl/synced-environments": envs,
            "/opt/osl-hooks/setup.d": sandbox.host_path("/etc/osl-hooks/setup.d"),
        },
        env={"OSL_HOOKS_PLAN": json.dumps(plan)},
    )
    result = pod.run(["osl-hooks", "start"])
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads((home / ".local/state/osl-hooks/status.json").read_text())
    assert status["state"] == "ok"
    for env in plan["environments"]:
        library = (home / ".local/envs" / env["name"] / "lib/libgeodemo.so").read_bytes()
        assert f"/home/jovyan/.local/envs/{env['name']}/share/geodemo".encode() in library
        assert env["source"].encode() not in library
    assert (home / "notebooks").is_dir()  # the setup script ran
    shutil.rmtree(home / ".local")
