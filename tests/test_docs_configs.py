"""Every configuration in README.md and docs/*.md works as pasted: each ```python block that configures `c` is a
complete jupyterhub_config.py, loaded by JupyterHub's own `load_config_file` (install(c) runs and checks it against
the real spawner class), without a warning from osl-hooks; for KubeSpawner, a pod is built for every profile with a
real KubeSpawner and validated (the default delivery must be able to carry it)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from test_hub_support import K8S_VERSIONS, hub_user, spawn_pod, validate_pod

pytestmark = pytest.mark.usefixtures("kube")

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def config_blocks() -> list[tuple[str, str]]:
    blocks = []
    for path in DOCS:
        text = path.read_text()
        for m in re.finditer(r"```python\n(.*?)```", text, re.S):
            if re.search(r"^c\.", m.group(1), re.M):
                line = text[: m.start()].count("\n") + 1
                blocks.append((f"{path.relative_to(REPO)}:{line}", m.group(1)))
    return blocks


BLOCKS = config_blocks()
IMAGE_VOLUME_VERSIONS = ("1.33", "1.37")  # the `image` volume source is Kubernetes 1.33+


def test_the_docs_have_configuration_blocks():
    assert {where.split(":")[0] for where, _ in BLOCKS} >= {"README.md", "docs/hub.md"}


@pytest.mark.parametrize("where, block", BLOCKS, ids=[where for where, _ in BLOCKS])
def test_a_documented_configuration_runs_as_pasted(tmp_path, where, block, caplog):
    from jupyterhub.app import JupyterHub

    assert "osl_hooks.hub.install(c)" in block, f"{where}: a configuration block must be complete (end with install(c))"
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(block)
    app = JupyterHub()
    with caplog.at_level(logging.WARNING):
        app.load_config_file(str(path))
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("osl-hooks")]
    assert warnings == [], f"{where}: {warnings}"
    config = app.config
    if "KubeSpawner" not in str(config.JupyterHub.spawner_class):
        assert config[app.config.JupyterHub.spawner_class.__bases__[-1].__name__].pre_spawn_hook is not None
        return
    runtime = config.KubeSpawner.modify_pod_hook._osl_hooks_runtime
    users = {u for rule in runtime.checked.rules for u in rule.users} | {"someone"}
    groups = sorted({g for rule in runtime.checked.rules for g in rule.groups})
    for profile in [p["slug"] for p in config.KubeSpawner.profile_list]:
        for user in sorted(users):
            _, pod = spawn_pod(config, hub_user(user, groups), {"profile": profile})
            image_volumes = any("image" in v for v in pod["spec"].get("volumes", []))
            validate_pod(pod, IMAGE_VOLUME_VERSIONS if image_volumes else K8S_VERSIONS)
            default = "init_container" if runtime.hooks.delivery == "auto" else runtime.hooks.delivery
            assert pod["metadata"]["annotations"]["osl-hooks/delivery"] == runtime.hooks.profile_delivery.get(
                profile, default
            )
