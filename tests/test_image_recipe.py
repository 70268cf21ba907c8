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
from pathlib import Path

import imagebuild as ib
import podsandbox
import pytest
from podsandbox import PodSandbox
from podsandbox import available as pod_sandbox_available

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "examples" / "image"
DOCKERFILE = RECIPE / "Dockerfile"
SCRIPTS = [RECIPE / "check-envs.sh", *sorted((RECIPE / "setup.d").iterdir())]


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["hadolint", "--no-color", str(path)], capture_output=True, text=True)


# Every Dockerfile in examples/: the notebook image, an env image, the hub image.
DOCKERFILES = sorted((REPO / "examples").glob("*/Dockerfile"))


def test_the_recipes_are_all_here():
    assert {p.parent.name for p in DOCKERFILES} == {"image", "env-image", "hub-image"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile):
    result = hadolint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_typo_in_a_run_step(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace('bake --compile "${OSL_ENVS}"/*', 'bake --compile "${OSL_ENVS}/*'))
    result = hadolint(broken)
    assert result.returncode != 0 and "SC1072" in result.stdout  # ShellCheck: unterminated quoted string


def test_scripts_pass_shellcheck():
    result = subprocess.run(["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_copy_source_is_in_the_build_context(dockerfile):
    copies = [ib.copy_arguments(s) for s in ib.build_steps(dockerfile) if s.instruction == "COPY"]
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


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The recipe's steps run in order; returns (sandbox, the output of every RUN step)."""
    if not ib.available():
        pytest.skip("needs bubblewrap and root")
    sandbox = ib.BuildSandbox(root=tmp_path_factory.mktemp("image-root"), context=REPO, base_env=ib.JUPYTER_BASE_ENV)
    ib.stand_in_jupyter_base(sandbox, REPO)
    outputs = ib.run_stage(sandbox, ib.build_steps(DOCKERFILE))
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
@podsandbox.needed
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


# -- the env image recipe (OSLHooks.env_images) ---------------------------------------------------------

ENV_IMAGE = REPO / "examples" / "env-image" / "Dockerfile"


@pytest.mark.slow
@pytest.mark.skipif(not (ib.available() and pod_sandbox_available()), reason="needs bubblewrap, setpriv and root")
def test_env_image_is_a_baked_env_that_a_pod_syncs_from_its_image_volume(tmp_path, monkeypatch):
    """The build stage run for real; the final stage's `COPY --from=build SRC /` makes SRC the image's root,
    mounted where the KubeSpawner pod mounts the image volume, and the init container's command syncs it."""
    from test_hub_support import container, env_of, hub_user, kube_config, no_kubeconfig, spawn_pod, validate_pod

    import osl_hooks.hub

    sandbox = ib.BuildSandbox(root=tmp_path / "build", context=REPO, base_env=ib.JUPYTER_BASE_ENV)
    ib.stand_in_jupyter_base(sandbox, REPO)
    ib.run_stage(sandbox, ib.build_steps(ENV_IMAGE, {"ENV_NAME": "gis"}, stage=0))
    [final] = ib.build_steps(ENV_IMAGE, {"ENV_NAME": "gis"}, stage=1)
    flag, source, destination = final.value.split()
    assert (flag, destination) == ("--from=build", "/")
    image_root = sandbox.host_path(source.rstrip("/"))
    assert (image_root / ".osl-hooks-manifest.jsonl").is_file() and (image_root / "conda-meta").is_dir()

    no_kubeconfig(monkeypatch)
    c = kube_config(
        environments=[{"name": "gis", "mode": "synced", "source": "/opt/osl/synced-environments/gis"}],
        env_images={"gis": "registry.example/envs/gis:2024.1"},
    )
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("eve"), {})
    validate_pod(pod, ("1.33", "1.37"))
    init = container(pod, "osl-hooks")
    [mount] = [m for m in init["volumeMounts"] if m["mountPath"] == "/opt/osl/synced-environments/gis"]
    assert mount["readOnly"] is True
    home = tmp_path / "volume"
    home.mkdir()
    pod_sandbox = PodSandbox(home=home, mounts={mount["mountPath"]: image_root}, env=env_of(init))
    result = pod_sandbox.run(init["command"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Synced gis" in result.stdout
    library = (home / ".local/envs/gis/lib/libgeodemo.so").read_bytes()
    assert b"/home/jovyan/.local/envs/gis/share/geodemo" in library
