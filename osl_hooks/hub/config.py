"""`OSLHooks`: the hub-side settings, as a traitlets Configurable, with their help (the reference docs).

Everything an admin writes about osl-hooks lives in ``c.OSLHooks`` in ``jupyterhub_config.py`` (or
``hub.config.OSLHooks`` in a z2jh values file). The traits' own validators catch a bad single value;
`osl_hooks.hub.checks` checks the whole section, and the section against the spawner, at hub start.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Iterable
from typing import Any

from traitlets import Bool, Dict, Float, Integer, List, TraitError, Unicode, Union, validate
from traitlets.config import LoggingConfigurable

from ..plan import (
    DEFAULT_ENVS_DIR,
    DEFAULT_FIRST_COPY,
    DEFAULT_JUPYTER_DATA_DIR,
    DEFAULT_SCRIPT_TIMEOUT,
    DEFAULT_STATE_DIR,
    FAILURE_POLICIES,
    FIRST_COPIES,
    RUN_POLICIES,
)

POST_START, INIT_CONTAINER, WRAP = "post_start", "init_container", "wrap"
DELIVERIES = (POST_START, INIT_CONTAINER, WRAP)
"""How `osl-hooks start` is run for a spawn (see docs/hub.md for which to choose)."""
AUTO = "auto"
# The plan's own names (osl_hooks/plan.py), so a value the hub accepts is one the engine knows.
SCRIPT_RUN = RUN_POLICIES
SCRIPT_ON_FAILURE = FAILURE_POLICIES

ENV_PLAN_KEYS = (
    "name",
    "mode",
    "source",
    "target",
    "built_prefix",
    "link_threshold",
    "first_copy",
    "kernel",
    "display_name",
    "setup_scripts",
)
ENV_SELECTOR_KEYS = ("users", "groups", "profiles", "profile_options")
ENV_KEYS = ENV_PLAN_KEYS + ENV_SELECTOR_KEYS
SCRIPT_KEYS = ("path", "timeout", "run", "on_failure")
KERNEL_KEYS = ("name", "display_name", "env")

SECTION = "OSLHooks"


class OSLHooksConfigError(SystemExit):
    """The ``c.OSLHooks`` configuration cannot be used; `problems` lists each as 'OSLHooks.trait: why'.

    A SystemExit, not an Exception: raised while JupyterHub loads its config file, it stops the hub with
    the problems, one line each, and no traceback (JupyterHub logs any Exception with its traceback).
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"invalid osl-hooks configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def _one_of(value: Any, allowed: Iterable[str]) -> str:
    return f"{value!r} is not one of " + ", ".join(repr(a) for a in allowed)


class OSLHooks(LoggingConfigurable):
    """Which conda environments each user gets, and how `osl-hooks start` reaches their server.

    Configure in jupyterhub_config.py, then call ``osl_hooks.hub.install(c)`` as the last line.
    """

    environments = List(
        help="""
        The conda environments, one dict each, in the order they are prepared::

            c.OSLHooks.environments = [
                {"name": "base-py", "mode": "synced", "source": "/opt/conda/envs/base-py",
                 "display_name": "Python 3 (synced)"},
                {"name": "gis", "mode": "synced", "source": "/opt/conda/envs/gis",
                 "groups": ["geo"], "profiles": ["gis"]},
                {"name": "mine", "mode": "user", "users": ["alice"]},
            ]

        Keys:

        - name (required): letters, digits, '.', '_', '-'; also the default kernel name (osl-<name>).
        - mode (required): 'baked' (use the image's copy), 'synced' (copied into the home once, kept
          there; users can change it), 'linked' (like synced, but files of at least `link_threshold`
          bytes are symlinks into the image's env until the user changes them), 'user' (the user builds
          it at `target`).
        - source: the env's path in the image (baked, synced, linked).
        - target: where a synced/linked/user env lives in the home (default `<envs_dir>/<name>`).
        - built_prefix: the prefix the env was built at, when it is not `source`.
        - link_threshold (linked): files of at least this many bytes stay links into the image (1: all).
        - first_copy (synced): 'background' or 'before_ready'; default `first_copy`.
        - display_name: the kernel's name in the launcher (default: name).
        - kernel: False for no kernel; a kernelspec name; or a dict with name, display_name, env.
        - setup_scripts: scripts for this env (see `setup_scripts`); they run with the env activated.

        Who gets it (all users when no selector is given; `users` and `groups` widen each other,
        `profiles` and `profile_options` narrow the result):

        - users: JupyterHub user names.
        - groups: JupyterHub group names.
        - profiles: KubeSpawner profile slugs (the profile the user chose, or the default one).
        - profile_options: {option: [choices]}, e.g. {"image": ["gis"]}: the chosen profile option.
        """,
    ).tag(config=True)

    setup_scripts = List(
        Union([Unicode(), Dict()]),
        help="""
        Setup scripts run after every environment is ready, in order. Each is an absolute path in the
        image (a file, or a directory whose executable files run in name order), or a dict with
        path, timeout (seconds), run ('always', 'once', 'on_change') and on_failure ('continue', 'fail').
        """,
    ).tag(config=True)

    envs_dir = Unicode(
        DEFAULT_ENVS_DIR, help="Where synced and user envs live, relative to the home (or absolute inside it)."
    ).tag(config=True)
    state_dir = Unicode(
        DEFAULT_STATE_DIR, help="Where osl-hooks keeps its status, log and records, relative to the home."
    ).tag(config=True)
    jupyter_data_dir = Unicode(
        DEFAULT_JUPYTER_DATA_DIR,
        help="The Jupyter data directory kernels are registered in, relative to the home.",
    ).tag(config=True)
    discover_user_envs = Bool(
        False, help="Also register kernels for the envs users built themselves in `envs_dir`."
    ).tag(config=True)

    home = Unicode(
        "",
        help="""
        The home directory as the single-user server sees it (an absolute path). Empty: found per spawn:
        KubeSpawner: the notebook container's HOME variable if the pod sets one, else /home/jovyan;
        SimpleLocalProcessSpawner: its home_dir; other local spawners: the process's $HOME.
        """,
    ).tag(config=True)

    delivery = Unicode(
        AUTO,
        help="""
        How `osl-hooks start` runs: 'init_container' (KubeSpawner: an init container, same image, home
        and user as the notebook container, finishes before the server starts), 'post_start' (KubeSpawner:
        the container's postStart hook, as OpenSARlab does; runs alongside the server), 'wrap' (the server
        command becomes `osl-hooks start -- <command>`; KubeSpawner and local spawners).
        'auto': init_container with KubeSpawner, wrap with other spawners.
        """,
    ).tag(config=True)

    profile_delivery = Dict(
        value_trait=Unicode(),
        help="Delivery per KubeSpawner profile slug, overriding `delivery`: {'legacy': 'post_start'}.",
    ).tag(config=True)

    command = List(
        Unicode(),
        default_value=["osl-hooks"],
        help="The osl-hooks command in the single-user image (or on the local PATH), e.g. ['/opt/conda/bin/osl-hooks'].",
    ).tag(config=True)

    allow_root = Bool(
        False,
        help="Pass --allow-root to osl-hooks start. Only for throwaway demos whose server runs as root.",
    ).tag(config=True)

    script_timeout = Float(DEFAULT_SCRIPT_TIMEOUT, help="Default timeout of a setup script, in seconds.").tag(
        config=True
    )
    script_run = Unicode("always", help="Default `run` of a setup script: 'always', 'once' or 'on_change'.").tag(
        config=True
    )
    script_on_failure = Unicode(
        "continue", help="Default `on_failure` of a setup script: 'continue' (warn) or 'fail' (fail the start)."
    ).tag(config=True)

    disk_margin_fraction = Float(
        0.05, help="Free space a synced env needs beyond its size, as a fraction of its size."
    ).tag(config=True)
    disk_margin_bytes = Integer(
        200 * 1024 * 1024, help="Free space that must remain in the home after copying an env, in bytes."
    ).tag(config=True)
    lock_timeout = Float(
        900.0, help="Seconds a start waits for another start on the same home (two servers, one volume)."
    ).tag(config=True)

    first_copy = Unicode(
        DEFAULT_FIRST_COPY,
        help="""
        When a synced env's first copy into a home is made: 'background' (the server starts at once, the
        env's kernel runs from the image's copy, read-only, until the user's own copy is complete; then
        kernels started from then on use it, without a restart) or 'before_ready' (the server waits for the
        copy). Background copies need a delivery that runs the server command: 'wrap' (and local spawners);
        with 'init_container' and 'post_start' first copies are always made before the server is ready.
        An env's own `first_copy` key wins.
        """,
    ).tag(config=True)

    retired_env_days = Float(
        None,
        allow_none=True,
        help="""
        Days a user's copy of a retired env is kept, unchanged, before the engine removes it (0: at the user's next
        start). An env is retired when no rule of `environments` offers it to anyone any more (an env this spawn's
        profile or groups leave out is still offered, and its copy is kept). Only copies osl-hooks made are
        removed, and only when the user has not changed them (a changed copy is kept, and the user is told how to
        remove it). Removal runs after the server is ready where the delivery allows it ('wrap').
        None (the default): retirement is off and every copy is kept; plans stay version 1, which every osl-hooks
        engine reads (an engine older than plan version 2 refuses a plan that carries retirement). Set it once
        every image the hub spawns has an osl-hooks that reads plan version 2; 30 lets a user who uses another
        profile for a term come back to their copy (see docs/hub.md, "The life of an env").
        """,
    ).tag(config=True)

    init_container_name = Unicode("osl-hooks", help="Name of the init container (delivery 'init_container').").tag(
        config=True
    )
    init_container_resources = Union(
        [Dict()],
        default_value=None,
        allow_none=True,
        help="Resources of the init container (k8s ResourceRequirements); default: the notebook container's.",
    ).tag(config=True)
    restricted_security_context = Bool(
        True,
        help="""
        Give the init container the Kubernetes 'restricted' Pod Security Standard settings the notebook
        container's own securityContext leaves unset: runAsNonRoot, allowPrivilegeEscalation false,
        capabilities drop ALL, seccompProfile RuntimeDefault. What the admin set is kept.
        """,
    ).tag(config=True)

    read_init_container_logs = Bool(
        False,
        help="""
        Show the init container's log lines (what is being synced, how far) on the spawn page, with the
        'init_container' delivery. The hub then needs 'get' on pods/log, which z2jh does not grant:
        apply helm/osl-hooks-pods-log-rbac.yaml. Without it, the page shows the init container's state and
        termination message, which the hub can always read.
        """,
    ).tag(config=True)

    env_images = Dict(
        help="""
        Environments shipped in their own OCI image, mounted read-only at the env's ``source`` in the notebook
        container and the init container (the ``image`` volume source of Kubernetes 1.33 and later). An env can
        then be updated without rebuilding the notebook image, and several profiles can share one env image.
        Env name to an image reference, or to a dict with reference, pull_policy ('Always', 'IfNotPresent',
        'Never') and sub_path (the env's directory inside the image, when it is not the image's root)::

            c.OSLHooks.env_images = {
                "gis": "registry.example.org/envs/gis:2024.1",
                "radar": {"reference": "registry.example.org/envs/radar:3", "pull_policy": "IfNotPresent"},
            }
        """,
    ).tag(config=True)

    spawn_page = Bool(
        True,
        help="""
        Use osl-hooks' spawn page (it extends JupyterHub's own spawn_pending.html through
        c.JupyterHub.template_paths): the event log open, a failed start with its own heading, the failing
        step and where the start's log is, and a clock while the server itself starts.
        """,
    ).tag(config=True)

    @validate("delivery")
    def _validate_delivery(self, proposal: Any) -> str:
        if proposal.value not in (AUTO, *DELIVERIES):
            raise TraitError(_one_of(proposal.value, (AUTO, *DELIVERIES)))
        return proposal.value

    @validate("profile_delivery")
    def _validate_profile_delivery(self, proposal: Any) -> dict[str, str]:
        for slug, value in proposal.value.items():
            if value not in DELIVERIES:
                raise TraitError(f"[{slug!r}]: {_one_of(value, DELIVERIES)}")
        return proposal.value

    @validate("first_copy")
    def _validate_first_copy(self, proposal: Any) -> str:
        if proposal.value not in FIRST_COPIES:
            raise TraitError(_one_of(proposal.value, FIRST_COPIES))
        return proposal.value

    @validate("script_run")
    def _validate_script_run(self, proposal: Any) -> str:
        if proposal.value not in SCRIPT_RUN:
            raise TraitError(_one_of(proposal.value, SCRIPT_RUN))
        return proposal.value

    @validate("script_on_failure")
    def _validate_script_on_failure(self, proposal: Any) -> str:
        if proposal.value not in SCRIPT_ON_FAILURE:
            raise TraitError(_one_of(proposal.value, SCRIPT_ON_FAILURE))
        return proposal.value

    @validate("command")
    def _validate_command(self, proposal: Any) -> list[str]:
        if not proposal.value or not proposal.value[0]:
            raise TraitError("must name the osl-hooks executable, e.g. ['osl-hooks']")
        return proposal.value

    @validate("home")
    def _validate_home(self, proposal: Any) -> str:
        if proposal.value and not posixpath.isabs(proposal.value):
            raise TraitError(f"{proposal.value!r} is not an absolute path")
        return proposal.value

    @validate("script_timeout", "lock_timeout")
    def _validate_positive(self, proposal: Any) -> float:
        if not proposal.value > 0:
            raise TraitError(f"{proposal.value!r} is not a positive number of seconds")
        return proposal.value

    @validate("disk_margin_bytes")
    def _validate_margin_bytes(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise TraitError(f"{proposal.value!r} is negative")
        return proposal.value

    @validate("retired_env_days")
    def _validate_retired_env_days(self, proposal: Any) -> float | None:
        if proposal.value is not None and not 0 <= proposal.value < math.inf:
            raise TraitError(f"{proposal.value!r} is not a number of days (0 or more; None keeps every copy)")
        return proposal.value

    @validate("disk_margin_fraction")
    def _validate_margin_fraction(self, proposal: Any) -> float:
        if not 0 <= proposal.value <= 10:
            raise TraitError(f"{proposal.value!r} is not between 0 and 10")
        return proposal.value
