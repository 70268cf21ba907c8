"""c.OSLHooks in jupyterhub_config.py: every kind of invalid configuration stops the hub at start, with a
message naming the trait and the bad value; valid configurations load.

Each case is a real jupyterhub_config.py loaded by JupyterHub's own `load_config_file` (what
`JupyterHub.initialize` does first; JupyterHub sets raise_config_file_errors, so an exception there stops
the hub). One case starts the real `jupyterhub` command to show the whole path.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from test_hub_support import PROFILES

from osl_hooks.hub import OSLHooksConfigError

KUBE = f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.Spawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.profile_list = {PROFILES!r}
"""
SIMPLE = 'c.JupyterHub.spawner_class = "simple"\n'
PY = '{"name": "py", "mode": "synced", "source": "/opt/conda/envs/py"}'


def load(tmp_path, body: str):
    """Load a jupyterhub_config.py ending with install(c) the way JupyterHub does at start."""
    from jupyterhub.app import JupyterHub

    path = tmp_path / "jupyterhub_config.py"
    path.write_text(textwrap.dedent(body) + "\nimport osl_hooks.hub\nosl_hooks.hub.install(c)\n")
    app = JupyterHub()
    app.load_config_file(str(path))
    return app


# (id, config, message expected among the problems)
INVALID = [
    (
        "target-leaves-the-home",
        KUBE
        + 'c.OSLHooks.environments = [{"name": "py", "mode": "synced", "source": "/opt/py", "target": "../../etc"}]',
        "OSLHooks.environments[0].target: '../../etc' is outside the home /home/jovyan",
    ),
    (
        "target-absolute-elsewhere",
        KUBE + 'c.OSLHooks.environments = [{"name": "py", "mode": "user", "target": "/etc/x"}]',
        "OSLHooks.environments[0].target: '/etc/x' is outside the home /home/jovyan",
    ),
    (
        "target-outside-the-pods-home",
        KUBE
        + 'c.KubeSpawner.environment = {"HOME": "/home/user"}\n'
        + 'c.OSLHooks.environments = [{"name": "py", "mode": "user", "target": "/home/jovyan/py"}]',
        "OSLHooks.environments[0].target: '/home/jovyan/py' is outside the home /home/user",
    ),
    (
        "target-outside-each-users-home",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "py", "mode": "user", "target": "/etc/x"}]',
        "OSLHooks.environments[0].target: '/etc/x' is outside the home /tmp/{username}",
    ),
    (
        "target-leaves-a-passwd-home",
        'c.JupyterHub.spawner_class = "localprocess"\n'
        + 'c.OSLHooks.environments = [{"name": "py", "mode": "user", "target": "~/../../etc"}]',
        "OSLHooks.environments[0].target: '~/../../etc' leads out of the home (it is relative to the home)",
    ),
    (
        "unknown-trait",
        SIMPLE + "c.OSLHooks.enviroments = []",
        "OSLHooks.enviroments: unknown setting (did you mean OSLHooks.environments?)",
    ),
    ("environments-not-a-list", SIMPLE + f"c.OSLHooks.environments = {PY}", "OSLHooks.environments: expected a list"),
    (
        "environment-not-a-dict",
        SIMPLE + 'c.OSLHooks.environments = ["py"]',
        "OSLHooks.environments[0]: 'py' is not a dict",
    ),
    (
        "mode-missing",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "py", "source": "/opt/py"}]',
        "OSLHooks.environments[0].mode: required",
    ),
    (
        "mode-invalid",
        SIMPLE + f'c.OSLHooks.environments = [{PY}, {{"name": "r", "mode": "copy", "source": "/opt/r"}}]',
        "OSLHooks.environments[1].mode: 'copy' is not one of 'baked', 'synced', 'linked', 'user'",
    ),
    (
        "env-key-typo",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "py", "mode": "synced", "sourse": "/opt/py"}]',
        "OSLHooks.environments[0].sourse: unknown key; did you mean 'source'?",
    ),
    (
        "source-missing",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "py", "mode": "synced"}]',
        "OSLHooks.environments[0].source: required with mode 'synced'",
    ),
    (
        "source-relative",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "py", "mode": "baked", "source": "conda/envs/py"}]',
        "OSLHooks.environments[0].source: 'conda/envs/py' is not an absolute path in the image",
    ),
    (
        "name-invalid",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "my env", "mode": "user"}]',
        "OSLHooks.environments[0].name: 'my env' is not an env name",
    ),
    (
        "name-duplicate",
        SIMPLE + f'c.OSLHooks.environments = [{PY}, {{"name": "PY", "mode": "user"}}]',
        "OSLHooks.environments[1].name: 'PY' is already used by environments[0]",
    ),
    (
        "kernel-name-duplicate",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "a", "mode": "user", "kernel": "k"}, '
        '{"name": "b", "mode": "user", "kernel": "k"}]',
        "OSLHooks.environments[1].kernel.name: 'k' is already used by environments[0]",
    ),
    (
        "kernel-name-invalid",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "a", "mode": "user", "kernel": "My Kernel"}]',
        "OSLHooks.environments[0].kernel.name: 'My Kernel' is not a kernelspec name",
    ),
    (
        "kernel-wrong-type",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "a", "mode": "user", "kernel": 3}]',
        "OSLHooks.environments[0].kernel: 3 is not False, a kernel name, or a dict",
    ),
    (
        "display-name-without-kernel",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "a", "mode": "user", "kernel": False, "display_name": "A"}]',
        "OSLHooks.environments[0].display_name: given, but kernel is False",
    ),
    (
        "targets-overlap",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "a", "mode": "user", "target": "~/envs"}, '
        '{"name": "b", "mode": "user", "target": "~/envs/b"}]',
        "OSLHooks.environments[1].target: '~/envs/b' overlaps environments[0].target",
    ),
    (
        "user-mode-with-source",
        SIMPLE + 'c.OSLHooks.environments = [{"name": "a", "mode": "user", "source": "/opt/a"}]',
        "OSLHooks.environments[0].source: not allowed with mode 'user' (a user env has no copy in the image)",
    ),
    (
        "groups-a-string",
        SIMPLE + f'c.OSLHooks.environments = [dict({PY}, groups="geo")]',
        "OSLHooks.environments[0].groups: 'geo' is a string; give a list, e.g. ['geo']",
    ),
    (
        "delivery-invalid",
        SIMPLE + 'c.OSLHooks.delivery = "copy"',
        "OSLHooks.delivery: 'copy' is not one of 'auto', 'post_start', 'init_container', 'wrap'",
    ),
    (
        "delivery-needs-kubespawner",
        SIMPLE + 'c.OSLHooks.delivery = "init_container"',
        "OSLHooks.delivery: 'init_container' needs KubeSpawner, but the spawner is SimpleLocalProcessSpawner",
    ),
    (
        "profiles-need-kubespawner",
        SIMPLE + f'c.OSLHooks.environments = [dict({PY}, profiles=["gis"])]',
        "OSLHooks.environments[0].profiles: profiles are a KubeSpawner feature; the spawner is SimpleLocalProcessSpawner",
    ),
    (
        "profile-delivery-invalid",
        KUBE + 'c.OSLHooks.profile_delivery = {"gis": "sidecar"}',
        "OSLHooks.profile_delivery: ['gis']: 'sidecar' is not one of 'post_start', 'init_container', 'wrap'",
    ),
    (
        "profile-delivery-unknown-slug",
        KUBE + 'c.OSLHooks.profile_delivery = {"gsi": "wrap"}',
        "OSLHooks.profile_delivery['gsi']: no profile with this slug in KubeSpawner.profile_list "
        "(known: 'python', 'gis', 'legacy')",
    ),
    (
        "profile-selector-unknown-slug",
        KUBE + f'c.OSLHooks.environments = [dict({PY}, profiles=["gsi"])]',
        "OSLHooks.environments[0].profiles: 'gsi': no profile with this slug in KubeSpawner.profile_list",
    ),
    (
        "profiles-empty",
        KUBE + f"c.OSLHooks.environments = [dict({PY}, profiles=[])]",
        "OSLHooks.environments[0].profiles: empty: no spawn would get this env",
    ),
    (
        "profile-option-unknown-choice",
        KUBE + f'c.OSLHooks.environments = [dict({PY}, profile_options={{"flavour": ["sar"]}})]',
        "OSLHooks.environments[0].profile_options['flavour']: 'sar' is not a choice of this option (choices: radar, standard)",
    ),
    (
        "profile-option-unknown",
        KUBE + f'c.OSLHooks.environments = [dict({PY}, profiles=["legacy"], profile_options={{"flavour": ["radar"]}})]',
        "OSLHooks.environments[0].profile_options['flavour']: no such profile option in the profiles it can apply to",
    ),
    (
        "wrap-without-server-command",
        KUBE + 'c.Spawner.cmd = None\nc.OSLHooks.delivery = "wrap"',
        "OSLHooks.delivery: 'wrap' needs the server command, but KubeSpawner.cmd is not set",
    ),
    (
        "post-start-conflict",
        KUBE + 'c.KubeSpawner.lifecycle_hooks = {"postStart": {"httpGet": {"path": "/x", "port": 80}}}\n'
        'c.OSLHooks.delivery = "post_start"',
        "OSLHooks.delivery: 'post_start' must share the container's postStart hook",
    ),
    (
        "script-path-relative",
        SIMPLE + 'c.OSLHooks.setup_scripts = ["setup.sh"]',
        "OSLHooks.setup_scripts[0].path: 'setup.sh' is not an absolute path in the image",
    ),
    (
        "script-run-invalid",
        SIMPLE + 'c.OSLHooks.setup_scripts = [{"path": "/etc/s.sh", "run": "daily"}]',
        "OSLHooks.setup_scripts[0].run: 'daily' is not one of 'always', 'once', 'on_change'",
    ),
    (
        "script-timeout-negative",
        SIMPLE + "c.OSLHooks.script_timeout = -5",
        "OSLHooks.script_timeout: -5.0 is not a positive number of seconds",
    ),
    (
        "script-on-failure-invalid",
        SIMPLE + 'c.OSLHooks.script_on_failure = "ignore"',
        "OSLHooks.script_on_failure: 'ignore' is not one of 'continue', 'fail'",
    ),
    (
        "env-script-timeout-zero",
        SIMPLE + f'c.OSLHooks.environments = [dict({PY}, setup_scripts=[{{"path": "/s", "timeout": 0}}])]',
        "OSLHooks.environments[0].setup_scripts[0].timeout: 0 is less than or equal to the minimum of 0",
    ),
    ("command-empty", SIMPLE + "c.OSLHooks.command = []", "OSLHooks.command: must name the osl-hooks executable"),
    (
        "home-relative",
        SIMPLE + 'c.OSLHooks.home = "home/jovyan"',
        "OSLHooks.home: 'home/jovyan' is not an absolute path",
    ),
    (
        "envs-dir-outside-home",
        SIMPLE + 'c.OSLHooks.home = "/home/jovyan"\nc.OSLHooks.envs_dir = "/opt/envs"',
        "OSLHooks.envs_dir: '/opt/envs' is outside the home /home/jovyan",
    ),
    (
        "disk-margin-out-of-range",
        SIMPLE + "c.OSLHooks.disk_margin_fraction = 20",
        "OSLHooks.disk_margin_fraction: 20.0 is not between 0 and 10",
    ),
    (
        "first-copy-invalid",
        SIMPLE + f'c.OSLHooks.environments = [dict({PY}, first_copy="lazy")]',
        "OSLHooks.environments[0].first_copy: 'lazy' is not one of 'background', 'before_ready'",
    ),
    (
        "first-copy-not-synced",
        SIMPLE
        + 'c.OSLHooks.environments = [{"name": "b", "mode": "baked", "source": "/opt/b", "first_copy": "background"}]',
        "OSLHooks.environments[0].first_copy: only for mode 'synced' (this env is 'baked')",
    ),
    (
        "first-copy-global-invalid",
        SIMPLE + 'c.OSLHooks.first_copy = "later"',
        "OSLHooks.first_copy: 'later' is not one of",
    ),
    (
        "allow-root-not-bool",
        SIMPLE + 'c.OSLHooks.allow_root = "yes"',
        "OSLHooks.allow_root: expected a boolean, not the str 'yes'",
    ),
]


@pytest.mark.parametrize("body, message", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_configuration_stops_the_hub(tmp_path, body, message):
    with pytest.raises(OSLHooksConfigError) as failure:
        load(tmp_path, body)
    assert any(p.startswith(message) for p in failure.value.problems), failure.value.problems
    assert message in str(failure.value)


def test_there_are_at_least_a_dozen_kinds():
    assert len(INVALID) >= 12


def test_every_problem_is_reported_at_once(tmp_path):
    body = SIMPLE + textwrap.dedent(
        """
        c.OSLHooks.enviroments = []
        c.OSLHooks.environments = [
            {"name": "py", "mode": "copy", "source": "/opt/py"},
            {"name": "ok", "mode": "synced", "source": "/opt/ok"},
            {"name": "bad name", "mode": "synced", "source": "relative"},
        ]
        c.OSLHooks.delivery = "post_start"
        """
    )
    with pytest.raises(OSLHooksConfigError) as failure:
        load(tmp_path, body)
    assert failure.value.problems == [
        "OSLHooks.enviroments: unknown setting (did you mean OSLHooks.environments?)",
        "OSLHooks.environments[0].mode: 'copy' is not one of 'baked', 'synced', 'linked', 'user'",
        "OSLHooks.environments[2].name: 'bad name' is not an env name: letters, digits, '.', '_' and '-', "
        "starting with a letter or digit, at most 64 characters (no '/' and no '..')",
        "OSLHooks.environments[2].source: 'relative' is not an absolute path in the image (the single-user "
        "container's filesystem)",
        "OSLHooks.delivery: 'post_start' needs KubeSpawner, but the spawner is SimpleLocalProcessSpawner; "
        "use 'wrap' (or 'auto')",
    ]


def test_the_real_hub_refuses_to_start(tmp_path):
    """The real `jupyterhub` command stops with every problem once, one line each, in index order, and no
    traceback: an env with its own problem does not hide a duplicate of its name."""
    body = SIMPLE + textwrap.dedent(
        """
        c.OSLHooks.setup_scripts = [{"path": "/s", "run": "sometimes"}]
        c.OSLHooks.environments = [
            {"name": "py", "mode": "synced", "source": "/opt/py"},
            {"name": "r", "mode": "synced", "source": "relative"},
            {"name": "py", "mode": "copy", "source": "/opt/py2"},
        ]
        """
    )
    (tmp_path / "jupyterhub_config.py").write_text(body + "import osl_hooks.hub\nosl_hooks.hub.install(c)\n")
    import osl_hooks

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(__import__("pathlib").Path(osl_hooks.__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    problems = [line.strip()[2:] for line in result.stderr.splitlines() if line.strip().startswith("- OSLHooks.")]
    assert problems == [
        "OSLHooks.setup_scripts[0].run: 'sometimes' is not one of 'always', 'once', 'on_change'",
        "OSLHooks.environments[1].source: 'relative' is not an absolute path in the image (the single-user "
        "container's filesystem)",
        "OSLHooks.environments[2].mode: 'copy' is not one of 'baked', 'synced', 'linked', 'user'",
        "OSLHooks.environments[2].name: 'py' is already used by environments[0] (names are compared without case)",
    ]
    assert not (tmp_path / "jupyterhub.sqlite").exists()  # stopped before anything was set up


# -- valid configurations ------------------------------------------------------------------------------


def test_valid_kubespawner_config_sets_chained_hooks(tmp_path):
    body = KUBE + textwrap.dedent(
        f"""
        def admin_pre(spawner):
            pass
        c.Spawner.pre_spawn_hook = admin_pre
        c.OSLHooks.environments = [{PY}]
        c.OSLHooks.environments.append({{"name": "gis", "mode": "synced", "source": "/opt/gis", "profiles": ["gis"]}})
        c.OSLHooks.setup_scripts = ["/etc/osl-hooks/setup.d"]
        c.OSLHooks.profile_delivery = {{"legacy": "post_start"}}
        """
    )
    app = load(tmp_path, body)
    config = app.config
    hook = config.KubeSpawner.pre_spawn_hook
    assert hook.__name__ == "osl_hooks_pre_spawn_hook" and hook._osl_hooks_chained_from.__name__ == "admin_pre"
    assert config.KubeSpawner.modify_pod_hook.__name__ == "osl_hooks_modify_pod_hook"
    runtime = hook._osl_hooks_runtime
    assert [r.plan_entry["name"] for r in runtime.checked.rules] == ["py", "gis"]


def test_linked_env_and_its_threshold_reach_the_plan(tmp_path):
    linked = '{"name": "big", "mode": "linked", "source": "/opt/conda/envs/big", "link_threshold": 65536}'
    app = load(tmp_path, KUBE + f"c.OSLHooks.environments = [{PY}, {linked}]")
    runtime = app.config.KubeSpawner.pre_spawn_hook._osl_hooks_runtime
    entry = runtime.checked.rules[1].plan_entry
    assert entry["mode"] == "linked" and entry["link_threshold"] == 65536


def test_z2jh_style_config_from_values(tmp_path):
    """hub.config.OSLHooks in a values file arrives as plain data via c[section].update(...), as in z2jh."""
    body = KUBE + textwrap.dedent(
        f"""
        values = {{"OSLHooks": {{"environments": [{PY}], "delivery": "init_container", "script_timeout": 60}}}}
        for section, settings in values.items():
            c[section].update(settings)
        """
    )
    app = load(tmp_path, body)
    assert app.config.KubeSpawner.modify_pod_hook._osl_hooks_runtime.hooks.script_timeout == 60


def test_callable_profile_list_only_warns(tmp_path, caplog):
    body = textwrap.dedent(
        f"""
        c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
        c.Spawner.cmd = ["jupyterhub-singleuser"]
        c.KubeSpawner.profile_list = lambda spawner: []
        c.OSLHooks.environments = [dict({PY}, profiles=["whatever"])]
        """
    )
    load(tmp_path, body)
    assert "profile slugs named in c.OSLHooks cannot be checked" in caplog.text


def test_script_timeouts_beyond_start_timeout_warn(tmp_path, caplog):
    """Local spawners: start() waits for the engine, so start_timeout is the limit (not http_timeout)."""
    load(tmp_path, SIMPLE + 'c.OSLHooks.setup_scripts = [{"path": "/s", "timeout": 600}]')
    assert (
        "timeouts add up to 600 s, more than SimpleLocalProcessSpawner.start_timeout (60 s), which the 'wrap' "
        "delivery runs under: a slow script would make the spawn time out; raise it (e.g. c.Spawner.start_timeout = 660)"
        in caplog.text
    )
    caplog.clear()
    before_ready = 'c.OSLHooks.first_copy = "before_ready"\n'  # background copies cost the start nothing
    load(
        tmp_path,
        SIMPLE
        + before_ready
        + f"c.OSLHooks.environments = [{PY}, {PY.replace('py', 'r')}]\nc.Spawner.start_timeout = 120",
    )
    assert (
        "the first start here may take 270 s (2 synced env(s) to copy, 0 s of setup script timeouts): raise it "
        "(e.g. c.Spawner.start_timeout = 300)" in caplog.text
    )
    caplog.clear()
    load(tmp_path, SIMPLE + before_ready + f"c.OSLHooks.environments = [{PY}]\nc.Spawner.start_timeout = 300")
    assert "osl-hooks" not in caplog.text  # the documented setting holds the work
    caplog.clear()
    load(tmp_path, SIMPLE + f"c.OSLHooks.environments = [{PY}, {PY.replace('py', 'r')}]\nc.Spawner.start_timeout = 60")
    assert "osl-hooks" not in caplog.text  # copied in the background (the default): no first copy in the start


def test_kube_timeouts_follow_the_delivery(tmp_path, caplog):
    load(
        tmp_path,
        KUBE + 'c.KubeSpawner.start_timeout = 300\nc.OSLHooks.setup_scripts = [{"path": "/s", "timeout": 400}]\n'
        'c.OSLHooks.profile_delivery = {"legacy": "wrap"}\n'
        f"c.OSLHooks.environments = [{PY}]",
    )
    assert "more than KubeSpawner.start_timeout (300 s), which the 'init_container' delivery runs under" in caplog.text
    assert "more than KubeSpawner.http_timeout (30 s), which the 'wrap' delivery runs under" in caplog.text
    caplog.clear()
    load(
        tmp_path,
        KUBE + 'c.OSLHooks.first_copy = "before_ready"\n'
        f'c.OSLHooks.profile_delivery = {{"legacy": "wrap"}}\nc.OSLHooks.environments = [{PY}]',
    )
    assert (
        "with the 'wrap' delivery the first sync of an env runs within KubeSpawner.http_timeout (30 s)" in caplog.text
    )


def test_first_copy_reaches_the_plan_and_the_hub_says_where_it_stays_before_ready(tmp_path, caplog):
    """The global default and an env's own setting reach the plan; asking for background copies with a
    delivery that cannot run them is said at hub start (those first copies are made before ready)."""
    radar = '{"name": "radar", "mode": "synced", "source": "/opt/conda/envs/radar", "first_copy": "before_ready"}'
    app = load(tmp_path, KUBE + f'c.OSLHooks.first_copy = "background"\nc.OSLHooks.environments = [{PY}, {radar}]')
    rules = app.config.KubeSpawner.pre_spawn_hook._osl_hooks_runtime.checked.rules
    assert [r.plan_entry["first_copy"] for r in rules] == ["background", "before_ready"]
    assert "first_copy 'background' (py) needs the 'wrap' delivery" in caplog.text
    assert "'init_container'" in caplog.text

    caplog.clear()
    load(
        tmp_path,
        KUBE + f'c.OSLHooks.delivery = "wrap"\nc.OSLHooks.environments = [dict({PY}, first_copy="background")]',
    )
    assert "first_copy" not in caplog.text
    caplog.clear()
    load(tmp_path, KUBE + f"c.OSLHooks.environments = [{PY}]")  # the default, not asked for: nothing to say
    assert "first_copy" not in caplog.text
