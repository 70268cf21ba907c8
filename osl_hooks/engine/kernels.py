"""Jupyter kernels for envs, registered with jupyter_client's kernelspec API.

A kernel must behave as if the user had run `conda activate ENV` first: PATH starts with the env's bin,
CONDA_PREFIX names it, and whatever the env's `etc/conda/activate.d/*.sh` scripts export is set
(geospatial envs rely on these for GDAL_DATA, PROJ_DATA and friends). The kernel's argv points at the
env's own python; the activation is computed when the kernelspec is written, by sourcing the env's
activate.d scripts in a shell and keeping what changed, and stored in kernel.json's `env`. Values that
extend an existing variable keep a `${VAR}` reference, which jupyter_client expands when the kernel starts.

Kernels carry `metadata.osl_hooks`, so osl-hooks can tell its own kernels from the user's: it replaces
and removes only its own.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from .._records import record
from ..plan import Kernel, Plan
from .faultpoints import point
from .homepaths import Home, UnsafePath
from .notices import Notices
from .reporter import Reporter

METADATA_KEY = "osl_hooks"
USER_KERNEL_PREFIX = "osl-user-"  # the kernels of envs the user built
STAGING_PREFIX = ".osl-hooks-staging-"  # a valid kernel name jupyter_client installs; hidden from users
ACTIVATION_TIMEOUT = 60.0
_SHELL_NOISE = {"_", "SHLVL", "PWD", "OLDPWD"}
_ACTIVATE = r"""
for script in "$CONDA_PREFIX"/etc/conda/activate.d/*.sh; do
    [ -f "$script" ] && . "$script"
done
env -0
"""


class KernelError(Exception):
    """A kernel could not be registered; the message names the env and the cause."""


class UsersOwnKernel(KernelError):
    """The user made a kernel with the name osl-hooks would use: theirs is kept, never replaced."""

    def __init__(self, path: Path, env_name: str):
        super().__init__(
            f"You have your own kernel {path.name!r} in {path.parent}; it is kept as it is, so the kernel for "
            f"{env_name} is not registered (rename or delete {path} to get it)"
        )
        self.path = path


@record(frozen=True)
class KernelGuard:
    """What a kernel running read-only from the image gets while the user's copy is made
    (see `osl_hooks.engine.background`): `bin` first on its PATH, and the variables `env`."""

    bin: Path
    env: dict[str, str]


@record(frozen=True)
class RegisteredKernel:
    """A kernel of an env's as the registry left it; `changed`: written by this call, not found as it was."""

    name: str
    display_name: str
    resource_dir: str
    changed: bool


def python_of(prefix: str | os.PathLike[str]) -> Path:
    return Path(prefix, "bin", "python")


def has_ipykernel(prefix: str | os.PathLike[str]) -> bool:
    """True if the env can run a Jupyter kernel: it has a python and ipykernel is installed in it."""
    prefix = Path(prefix)
    if not python_of(prefix).exists():
        return False
    # lib/python3*/site-packages/ipykernel/__init__.py, without a glob (whose pattern every start compiled)
    lib = prefix / "lib"
    try:
        versions = [name for name in os.listdir(lib) if name.startswith("python3")]
    except OSError:  # no lib, or one the user cannot read: as the glob, no ipykernel found
        return False
    return any((lib / name / "site-packages/ipykernel/__init__.py").is_file() for name in versions)


def activation_env(prefix: str | os.PathLike[str], env_name: str) -> dict[str, str]:
    """The variables `conda activate` would set for `prefix`, with ${VAR} where a value extends one."""
    prefix = os.fspath(prefix)
    base = dict(os.environ)
    base["CONDA_PREFIX"] = prefix
    base["CONDA_DEFAULT_ENV"] = env_name
    base["PATH"] = f"{prefix}/bin:{os.environ.get('PATH', '')}"
    activate_d = Path(prefix, "etc", "conda", "activate.d")
    after = dict(base)
    try:  # activate.d/*.sh, without a glob (whose pattern every start with a kernel compiled)
        scripts = [name for name in os.listdir(activate_d) if name.endswith(".sh")]
    except OSError:  # none, or a directory the user cannot read: nothing to source, as for the shell's glob
        scripts = []
    if scripts:
        import subprocess  # here: a restart whose envs have no activation scripts never starts a process

        try:
            result = subprocess.run(
                ["/bin/sh", "-c", _ACTIVATE],
                env=base,
                capture_output=True,
                timeout=ACTIVATION_TIMEOUT,
                check=True,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise KernelError(f"{activate_d}: activation scripts took longer than {ACTIVATION_TIMEOUT:.0f} s") from None
        except subprocess.CalledProcessError as e:
            detail = e.stderr.decode(errors="replace").strip()
            raise KernelError(f"{activate_d}: an activation script failed: {detail or e}") from None
        after = dict(item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)
    changes = {}
    for key, value in after.items():
        if key in _SHELL_NOISE or os.environ.get(key) == value:
            continue
        changes[key] = _as_extension(key, value, os.environ.get(key))
    return changes


def _as_extension(key: str, value: str, before: str | None) -> str:
    """Write a value that prepends or appends to a path list (PATH, GDAL_DRIVER_PATH...) as ${KEY}."""
    if before and value.endswith(os.pathsep + before):
        return value[: -len(before)] + "${" + key + "}"
    if before and value.startswith(before + os.pathsep):
        return "${" + key + "}" + value[len(before) :]
    return value


class KernelRegistry:
    """The user's kernelspec directory (`<jupyter data dir>/kernels`), seen through jupyter_client."""

    def __init__(self, jupyter_data_dir: str | os.PathLike[str]):
        self.data_dir = os.fspath(jupyter_data_dir)
        self.kernels_dir = Path(self.data_dir, "kernels")  # jupyter_client's user_kernel_dir

    def _install(self, spec_dir: Path, name: str) -> str:
        # Imported here: jupyter_client costs a few hundred ms to import, paid only when a spec changes.
        from jupyter_client.kernelspec import KernelSpecManager

        manager = KernelSpecManager(data_dir=self.data_dir, kernel_dirs=[str(self.kernels_dir)])
        assert Path(manager.user_kernel_dir) == self.kernels_dir
        return manager.install_kernel_spec(os.fspath(spec_dir), name, user=True)

    def owned(self) -> dict[str, dict]:
        """Kernels in the user's directory that osl-hooks created, by name, with their metadata."""
        found = {}
        if not self.kernels_dir.is_dir():
            return found
        for spec_dir in self.kernels_dir.iterdir():
            if spec_dir.name.startswith(STAGING_PREFIX):
                continue
            spec = _read_spec(spec_dir)
            if spec is not None and METADATA_KEY in spec.get("metadata", {}):
                found[spec_dir.name] = spec["metadata"][METADATA_KEY]
        return found

    def register(
        self,
        env_name: str,
        mode: str,
        prefix: str | os.PathLike[str],
        kernel: Kernel,
        guard: KernelGuard | None = None,
    ) -> RegisteredKernel:
        """Write (or leave unchanged) the kernelspec for the env at `prefix`.

        `guard`: for an env used read-only from the image while the user's copy is made, so that `pip`,
        `%pip`, `python -m pip` and `%conda` refuse with a sentence rather than fail on the image's files,
        and an install can never land in ~/.local/lib, where it would shadow packages in every env.
        """
        prefix = os.fspath(prefix)
        existing_dir = self.kernels_dir / kernel.name
        existing = self._own_spec(existing_dir, env_name)
        spec = _spec(env_name, mode, prefix, kernel, guard)
        if existing == spec:
            return RegisteredKernel(kernel.name, kernel.display_name, os.fspath(existing_dir), changed=False)
        import tempfile  # here: a restart that leaves its kernels as they are does not import it

        with tempfile.TemporaryDirectory() as tmp:
            spec_dir = Path(tmp, kernel.name)
            spec_dir.mkdir()
            (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
            for logo in Path(prefix, "share", "jupyter", "kernels", "python3").glob("logo-*"):
                shutil.copyfile(logo, spec_dir / logo.name)
            self.kernels_dir.mkdir(parents=True, exist_ok=True)
            self.remove_leftovers()
            token = os.urandom(4).hex()
            staged = Path(self._install(spec_dir, f"{STAGING_PREFIX}{kernel.name}-{token}"))
        point("kernel:staged")
        # jupyter_client replaces a kernel by deleting it and copying the new one in; a kill in between would
        # leave a half kernel that looks like the user's. Renames instead: a kill leaves the old kernel, or
        # none (registered again by the next start), never half of one.
        old = self.kernels_dir / f"{STAGING_PREFIX}{kernel.name}-{token}-old"
        if existing_dir.exists():
            os.rename(existing_dir, old)
            point("kernel:old-moved-aside")
        os.rename(staged, existing_dir)
        point("kernel:installed")
        if old.exists():
            shutil.rmtree(old)
        return RegisteredKernel(kernel.name, kernel.display_name, os.fspath(existing_dir), changed=True)

    def switch(self, env_name: str, mode: str, prefix: str | os.PathLike[str], kernel: Kernel) -> RegisteredKernel:
        """Point an existing kernel of osl-hooks' at `prefix` by replacing its kernel.json in one rename.

        For a running server: jupyter_client reads kernel.json at every kernel start, so a kernel started
        a moment before or after sees the old or the new spec, never no kernel (`register` replaces the
        whole directory, with a moment in between). Kernels already running are not touched.
        """
        spec_dir = self.kernels_dir / kernel.name
        if self._own_spec(spec_dir, env_name) is None:
            return self.register(env_name, mode, prefix, kernel)
        spec = _spec(env_name, mode, os.fspath(prefix), kernel, None)
        staged = spec_dir / ".kernel.json.osl-hooks.tmp"  # one name: a killed switch leaves one file to overwrite
        staged.write_text(json.dumps(spec, indent=1), encoding="utf-8")
        os.replace(staged, spec_dir / "kernel.json")
        point("kernel:switched")
        return RegisteredKernel(kernel.name, kernel.display_name, os.fspath(spec_dir), changed=True)

    def _own_spec(self, spec_dir: Path, env_name: str) -> dict | None:
        """The spec of osl-hooks' kernel in `spec_dir`, None if there is none; `UsersOwnKernel` if it is the user's."""
        existing = _read_spec(spec_dir)
        if spec_dir.exists() and (existing is None or METADATA_KEY not in existing.get("metadata", {})):
            raise UsersOwnKernel(spec_dir, env_name)
        return existing

    def remove_leftovers(self) -> None:
        """Kernel directories a killed start was installing or replacing (hidden, osl-hooks' own names)."""
        for path in self.kernels_dir.glob(f"{STAGING_PREFIX}*") if self.kernels_dir.is_dir() else []:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)

    def remove(self, name: str) -> None:
        """Remove one of osl-hooks' own kernels (never a symlink, never one it did not create)."""
        spec_dir = self.kernels_dir / name
        spec = _read_spec(spec_dir)
        if spec_dir.is_symlink() or spec is None or METADATA_KEY not in spec.get("metadata", {}):
            raise KernelError(f"refusing to remove kernel {name!r}: it was not created by osl-hooks")
        shutil.rmtree(spec_dir)
        point("kernel:removed")


def _spec(env_name: str, mode: str, prefix: str, kernel: Kernel, guard: KernelGuard | None) -> dict:
    """The kernel.json of an env's kernel: its python, `conda activate`'s variables, osl-hooks' metadata."""
    env = activation_env(prefix, env_name)
    if guard is not None:
        env["PATH"] = f"{os.fspath(guard.bin)}:{env.get('PATH', '${PATH}')}"
        env.update(guard.env)
    env.update(kernel.env)
    return {
        "argv": [os.fspath(python_of(prefix)), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": kernel.display_name,
        "language": "python",
        "env": env,
        "metadata": {"debugger": True, METADATA_KEY: {"env": env_name, "mode": mode, "prefix": prefix}},
    }


def _read_spec(spec_dir: Path) -> dict | None:
    if spec_dir.is_symlink():
        return None
    try:
        return json.loads(Home.read_text(spec_dir / "kernel.json"))
    except (OSError, ValueError):
        return None


class KernelSteps:
    """A start's kernel steps: each env's kernel, the kernels of the envs the user built, and the removal of
    osl-hooks' kernels whose env is no longer configured (those not registered by this start)."""

    def __init__(self, plan: Plan, home: Home, report: Reporter, notices: Notices):
        self.plan = plan
        self.home = home
        self.report = report
        self.notices = notices
        self.registry = KernelRegistry(plan.jupyter_data_dir)  # checked where it is written (a link out: a warning)
        self.registered: set[str] = set()  # kernel names this start keeps
        self.guards: dict[str, KernelGuard] = {}  # kernel name -> the guards of an env copied later

    def register(self, env_name: str, mode: str, prefix: Path, kernel: Kernel) -> None:
        started = time.monotonic()
        try:
            self._register(env_name, mode, prefix, kernel)
        finally:
            self.report.phase_seconds["kernels"] += time.monotonic() - started

    def _register(self, env_name: str, mode: str, prefix: Path, kernel: Kernel) -> None:
        self.registered.add(kernel.name)
        if not has_ipykernel(prefix):
            self.report.info(f"{env_name} has no ipykernel, so no kernel is registered for it", env_name)
            return
        key = f"user-kernel:{kernel.name}"
        try:
            self.home.check(self.registry.kernels_dir / kernel.name, "kernel directory")
            registered = self.registry.register(env_name, mode, prefix, kernel, self.guards.get(kernel.name))
        except UsersOwnKernel as e:
            # The user's choice, not a problem: said once, and the start is not degraded for it.
            if not self.notices.already_said(key, str(e.path)):
                self.report.info(str(e), env_name)
                self.notices.said(key, str(e.path))
            return
        except (KernelError, UnsafePath, OSError) as e:
            self.report.warning(f"Kernel for {env_name}: {e}", env_name)
            return
        self.notices.resolved(key)
        if env_name in self.report.envs:
            self.report.envs[env_name].kernel = kernel.name
        if registered.changed:
            self.report.event("kernel", f"Registered kernel {kernel.display_name}", env_name)
        else:
            self.report.event("kernel", f"Kernel {kernel.display_name} is registered", env_name)

    def register_user_envs(self) -> None:
        """Kernels for the envs the user built in envs_dir themselves."""
        managed = {e.target for e in self.plan.environments if e.target}
        try:
            envs_dir = self.home.check(self.plan.envs_dir, "envs_dir")
            prefixes = sorted(envs_dir.iterdir()) if envs_dir.is_dir() else []
        except (UnsafePath, OSError) as e:
            self.report.warning(f"Your own envs are not looked for: {e}")
            return
        for prefix in prefixes:
            if str(prefix) in managed or prefix.name.startswith(".") or not prefix.is_dir():
                continue
            if not has_ipykernel(prefix):
                continue
            name = USER_KERNEL_PREFIX + "".join(c if c.isalnum() or c in "._-" else "-" for c in prefix.name.lower())
            self.register(prefix.name, "user", prefix, Kernel(name, f"{prefix.name} (your env)"))

    def remove_stale(self) -> None:
        try:
            self.home.check(self.registry.kernels_dir, "kernels directory")
            self.registry.remove_leftovers()
            owned = self.registry.owned()
        except (UnsafePath, OSError) as e:
            self.report.warning(str(e))
            return
        for name, meta in sorted(owned.items()):
            if name in self.registered:
                continue
            try:
                self.home.check(self.registry.kernels_dir / name, "kernel directory")
                self.registry.remove(name)
            except (KernelError, UnsafePath, OSError) as e:
                self.report.warning(str(e))
                continue
            self.report.info(f"Removed kernel {name}: its env {meta.get('env')} is no longer configured")
