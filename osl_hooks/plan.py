"""The plan: everything one `osl-hooks start` needs to know, as plain, versioned data.

The plan is the only thing the hub side tells the user's container, so it is validated strictly on both
sides of that boundary: against the JSON schema shipped beside this module (`plan.schema.json`, the
published format), and then for the rules a schema cannot express (unique names, targets that do not
overlap). Every problem is reported with the field it concerns, all at once, so an admin fixes a bad plan
in one go.

Paths inside the home may be written relative to the home, as ``~/...``, or absolute; `Plan.resolve`
turns them into absolute paths once the home is known (in the pod, not on the hub).
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

from ._records import field, record, replace

PLAN_VERSION = 1
"""The version of a plan without `retirement`: every osl-hooks engine reads it."""
RETIREMENT_PLAN_VERSION = 2
"""A plan with `retirement` (the hub's whole offer). Engines before it reject it, so the hub writes it only when the
admin opts in (`c.OSLHooks.retired_env_days`)."""
PLAN_ENV_VAR = "OSL_HOOKS_PLAN"
"""Environment variable holding the plan as JSON (how the hub side hands it to the container)."""
PLAN_FILE_ENV_VAR = "OSL_HOOKS_PLAN_FILE"
"""Environment variable naming a file that holds the plan."""

Mode = Literal["baked", "synced", "linked", "user"]
RunPolicy = Literal["always", "once", "on_change"]
FailurePolicy = Literal["continue", "fail"]
FirstCopy = Literal["background", "before_ready"]

# The same names as values, for every module that checks or counts them (the hub's traits, metrics, the engine).
MODES: tuple[Mode, ...] = get_args(Mode)
BAKED: Mode = "baked"
SYNCED: Mode = "synced"
LINKED: Mode = "linked"
USER: Mode = "user"
COPIED_MODES: tuple[Mode, ...] = (SYNCED, LINKED)
"""The modes that keep a copy in the home (a sync record, drift, reset, diff)."""
RUN_POLICIES: tuple[RunPolicy, ...] = get_args(RunPolicy)
FAILURE_POLICIES: tuple[FailurePolicy, ...] = get_args(FailurePolicy)
FIRST_COPIES: tuple[FirstCopy, ...] = get_args(FirstCopy)

DEFAULT_ENVS_DIR = ".local/envs"
DEFAULT_STATE_DIR = ".local/state/osl-hooks"
DEFAULT_JUPYTER_DATA_DIR = ".local/share/jupyter"
DEFAULT_SCRIPT_TIMEOUT = 300.0
KERNEL_NAME_PREFIX = "osl-"
DEFAULT_FIRST_COPY: FirstCopy = "background"
"""synced mode: a first copy runs after the server started, from the image's env meanwhile (where the
delivery runs the server command: `wrap`; otherwise it is made before the server is ready)."""
DEFAULT_LINK_THRESHOLD = 1
"""linked mode: every file that need not be real is a link (its short target costs no data block); a larger
threshold keeps smaller files real copies."""


class PlanError(ValueError):
    """A plan that cannot be used; `problems` lists each one as 'field: what is wrong'."""

    def __init__(self, problems: list[str], source: str = "plan"):
        self.problems = problems
        self.source = source
        super().__init__(f"invalid {source}:\n" + "\n".join(f"  - {p}" for p in problems))


@record(frozen=True)
class Script:
    """One admin-provided setup script, or a directory of them (run in name order, like run-parts)."""

    path: str
    timeout: float = DEFAULT_SCRIPT_TIMEOUT
    run: RunPolicy = "always"
    on_failure: FailurePolicy = "continue"


@record(frozen=True)
class Kernel:
    """How an env's Jupyter kernel is named and shown."""

    name: str
    display_name: str
    env: dict[str, str] = field(default_factory=dict)


@record(frozen=True)
class Environment:
    """One conda env and what to do with it at start.

    `kernel` is None when the admin asked for no kernel.
    `source` is the env in the image (baked, synced); `target` its place in the home (synced, user).
    `built_prefix` is the prefix the env's files embed, usually its source path.
    `link_threshold` (linked mode): files of at least this many bytes are symlinks into `source`.
    `first_copy` (synced mode): "background" or "before_ready" (see `DEFAULT_FIRST_COPY`).
    """

    name: str
    mode: Mode
    source: str | None = None
    target: str | None = None
    built_prefix: str | None = None
    kernel: Kernel | None = None
    setup_scripts: tuple[Script, ...] = ()
    link_threshold: int = DEFAULT_LINK_THRESHOLD
    first_copy: FirstCopy = DEFAULT_FIRST_COPY

    @property
    def prefix(self) -> str:
        """Where the env lives for the user once the start is done."""
        if self.mode == "baked":
            assert self.source is not None
            return self.source
        assert self.target is not None
        return self.target


@record(frozen=True)
class Retirement:
    """The hub's whole offer (plan version 2), so the engine can tell a retired env from one merely not selected.

    `offered` names every env the hub configures for anyone, under any user, group, profile or option: an env that
    this spawn's profile leaves out is still offered, and its copy is never touched. A copy osl-hooks made of an env
    outside `offered` is retired; if the user has not changed it, it is removed once it has been retired for
    `remove_after_days` (0: at the next start).
    """

    offered: tuple[str, ...]
    remove_after_days: float

    def offers(self, name: str) -> bool:
        """Env names are compared without case, as the plan's own names are."""
        return name.lower() in {o.lower() for o in self.offered}


@record(frozen=True)
class Plan:
    """A validated plan. Build it with `Plan.from_dict`, `load_plan` or the hub side."""

    home: str | None = None
    envs_dir: str = DEFAULT_ENVS_DIR
    state_dir: str = DEFAULT_STATE_DIR
    jupyter_data_dir: str = DEFAULT_JUPYTER_DATA_DIR
    environments: tuple[Environment, ...] = ()
    discover_user_envs: bool = False
    setup_scripts: tuple[Script, ...] = ()
    disk_margin_fraction: float = 0.05
    disk_margin_bytes: int = 200 * 1024 * 1024
    lock_timeout: float = 900.0
    retirement: Retirement | None = None

    @property
    def version(self) -> int:
        return PLAN_VERSION if self.retirement is None else RETIREMENT_PLAN_VERSION

    @classmethod
    def from_dict(cls, data: Any, source: str = "plan") -> Plan:
        """Validate `data` (parsed JSON) and build the plan, or raise `PlanError` listing every problem."""
        problems = _schema_problems(data)
        if problems:
            raise PlanError(problems, source)
        plan = cls(
            home=_normalise(data["home"]) if "home" in data else None,
            envs_dir=data.get("envs_dir", DEFAULT_ENVS_DIR),
            state_dir=data.get("state_dir", DEFAULT_STATE_DIR),
            jupyter_data_dir=data.get("jupyter_data_dir", DEFAULT_JUPYTER_DATA_DIR),
            environments=tuple(_environment(e) for e in data.get("environments", [])),
            discover_user_envs=data.get("discover_user_envs", False),
            setup_scripts=tuple(_script(s) for s in data.get("setup_scripts", [])),
            disk_margin_fraction=data.get("disk_margin_fraction", cls.disk_margin_fraction),
            disk_margin_bytes=data.get("disk_margin_bytes", cls.disk_margin_bytes),
            lock_timeout=data.get("lock_timeout", cls.lock_timeout),
            retirement=_retirement(data["retirement"]) if "retirement" in data else None,
        )
        problems = plan.semantic_problems()
        if problems:
            raise PlanError(problems, source)
        return plan

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data, in the canonical form `from_dict` reads back."""
        data: dict[str, Any] = {"version": self.version}
        if self.home is not None:
            data["home"] = self.home
        data.update(
            envs_dir=self.envs_dir,
            state_dir=self.state_dir,
            jupyter_data_dir=self.jupyter_data_dir,
            environments=[_environment_dict(e) for e in self.environments],
            discover_user_envs=self.discover_user_envs,
            setup_scripts=[_script_dict(s) for s in self.setup_scripts],
            disk_margin_fraction=self.disk_margin_fraction,
            disk_margin_bytes=self.disk_margin_bytes,
            lock_timeout=self.lock_timeout,
        )
        if self.retirement is not None:
            data["retirement"] = {
                "offered": list(self.retirement.offered),
                "remove_after_days": self.retirement.remove_after_days,
            }
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def resolve(self, home: str) -> Plan:
        """The same plan with every home path made absolute under `home` (and targets filled in).

        Only the text of the paths is checked here (that they stay under the home); whether the
        filesystem agrees (symlinks) is checked by `osl_hooks.engine.homepaths` right before anything is written.
        """
        home = _normalise(home)
        problems: list[str] = []

        def under_home(value: str, where: str) -> str:
            path = _home_path(value, home)
            if path != home and not path.startswith(home + "/"):
                problems.append(f"{where}: {value!r} is outside the home {home}")
            return path

        envs_dir = under_home(self.envs_dir, "envs_dir")
        environments = []
        for i, env in enumerate(self.environments):
            target = env.target
            if env.mode != "baked":
                target = under_home(target or f"{envs_dir}/{env.name}", f"environments[{i}].target")
            environments.append(replace(env, target=target))
        resolved = replace(
            self,
            home=home,
            envs_dir=envs_dir,
            state_dir=under_home(self.state_dir, "state_dir"),
            jupyter_data_dir=under_home(self.jupyter_data_dir, "jupyter_data_dir"),
            environments=tuple(environments),
        )
        problems += resolved.semantic_problems()
        if problems:
            raise PlanError(problems)
        return resolved

    def semantic_problems(self) -> list[str]:
        """Rules across fields that the schema cannot state."""
        problems = []
        names: dict[str, int] = {}
        kernels: dict[str, int] = {}
        targets: dict[str, int] = {}
        for i, env in enumerate(self.environments):
            where = f"environments[{i}]"
            same_name = env.name.lower() in names
            if same_name:
                problems.append(
                    f"{where}.name: {env.name!r} is already used by environments[{names[env.name.lower()]}]"
                    " (names are compared without case)"
                )
            names.setdefault(env.name.lower(), i)
            if env.kernel is not None:
                follows_from_name = same_name and env.kernel.name == KERNEL_NAME_PREFIX + env.name.lower()
                if env.kernel.name in kernels and not follows_from_name:  # said once: by the name
                    problems.append(
                        f"{where}.kernel.name: {env.kernel.name!r} is already used by "
                        f"environments[{kernels[env.kernel.name]}]"
                    )
                kernels.setdefault(env.kernel.name, i)
            if env.target is not None and env.mode != "baked":
                target = env.target.rstrip("/")
                # A duplicate name's default target is said once: by the name.
                by_name = same_name and target == posixpath.join(self.envs_dir, env.name)
                for other, j in () if by_name else targets.items():
                    if target == other or target.startswith(other + "/") or other.startswith(target + "/"):
                        problems.append(f"{where}.target: {env.target!r} overlaps environments[{j}].target")
                targets.setdefault(target, i)
                if env.source and posixpath.isabs(target) and _overlaps(target, env.source):
                    problems.append(f"{where}.target: {env.target!r} overlaps its source {env.source!r}")
        return problems


def load_plan(path: str | None = None, environ: os._Environ[str] | dict[str, str] | None = None) -> Plan:
    """Read the plan from `path`, else from $OSL_HOOKS_PLAN (JSON) or the file named by $OSL_HOOKS_PLAN_FILE."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get(PLAN_ENV_VAR):
        return parse_plan(environ[PLAN_ENV_VAR], f"${PLAN_ENV_VAR}")
    path = path or environ.get(PLAN_FILE_ENV_VAR)
    if not path:
        raise PlanError([f"no plan given: pass --plan FILE, or set ${PLAN_ENV_VAR} or ${PLAN_FILE_ENV_VAR}"])
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise PlanError([f"cannot read the plan file: {e.strerror}"], path) from None
    return parse_plan(text, path)


def parse_plan(text: str, source: str = "plan") -> Plan:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanError([f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"], source) from None
    return Plan.from_dict(data, source)


def _schema_text() -> str:
    # Beside this module (not through importlib.resources, whose import costs more than reading the file).
    return Path(__file__).with_name("plan.schema.json").read_text(encoding="utf-8")


def plan_schema() -> dict[str, Any]:
    """The published JSON schema of the plan format."""
    return json.loads(_schema_text())


def schema_digest() -> str:
    """What tells the pre-generated validator's schema from an edited one: a CRC-32 and the length, not a
    cryptographic hash (nothing here is adversarial, and importing hashlib costs every start about 2 ms)."""
    import zlib

    text = _schema_text().encode()
    return f"crc32:{zlib.crc32(text):08x}:{len(text)}"


@functools.cache
def _fast_validator() -> Callable[[Any], Any]:
    """fastjsonschema's validator for the plan schema: pre-generated, or compiled if the schema changed.

    Compiling costs about 25 ms, more than the rest of a start with nothing new, so the compiled code is
    kept in `_plan_validator.py` (regenerate it with `write_validator_module()` after changing the schema).
    The generated module does not import fastjsonschema (8 ms at every start) or decimal either: it raises
    its own `ValueError` subclass, so only a changed schema pays for the import.
    """
    try:
        from . import _plan_validator
    except ImportError:
        _plan_validator = None
    if _plan_validator is not None and _plan_validator.SCHEMA_DIGEST == schema_digest():
        return _plan_validator.validate
    import fastjsonschema

    return fastjsonschema.compile(plan_schema())


def write_validator_module() -> Path:
    """Regenerate `_plan_validator.py` from plan.schema.json (a development step)."""
    import fastjsonschema

    code = fastjsonschema.compile_to_code(plan_schema())
    imports = "from fastjsonschema import JsonSchemaValueException, JsonSchemaValuesException\n"
    assert imports in code, "fastjsonschema's generated code imports other names than expected"
    code = code.replace(imports, GENERATED_EXCEPTIONS)
    # Plans are JSON, which holds no Decimal: checking numbers as int and float spares importing decimal.
    code = code.replace("from decimal import Decimal\n", "").replace("(int, float, Decimal)", "(int, float)")
    assert "Decimal" not in code, "fastjsonschema's generated code uses Decimal in an unexpected way"
    path = Path(__file__).with_name("_plan_validator.py")
    header = (
        '"""Generated from plan.schema.json by osl_hooks.plan.write_validator_module(); do not edit."""\n'
        "# ruff: noqa\n"
        f"SCHEMA_DIGEST = {schema_digest()!r}\n"
    )
    root_function = re.search(r"^def (\w+)\(", code, re.MULTILINE)
    assert root_function is not None, "fastjsonschema's generated code has no validate function"
    path.write_text(f"{header}{code}\n\nvalidate = {root_function.group(1)}\n")
    return path


GENERATED_EXCEPTIONS = '''
class JsonSchemaValueException(ValueError):
    """fastjsonschema's exception, defined here: validating a plan at start does not import fastjsonschema."""

    def __init__(self, message, value=None, name=None, definition=None, rule=None):
        super().__init__(message)
        self.message, self.value, self.name, self.definition, self.rule = message, value, name, definition, rule


JsonSchemaValuesException = JsonSchemaValueException
'''


def _schema_problems(data: Any) -> list[str]:
    """Every way `data` breaks the schema, or [] if it is valid.

    Valid plans, the common case at every server start, are checked with fastjsonschema (compiled, a few
    milliseconds). Only an invalid plan pays for importing jsonschema, which lists all the problems
    with their paths rather than stopping at the first.
    """
    try:
        _fast_validator()(data)
        return []
    except ValueError as first:  # fastjsonschema's JsonSchemaException, or the generated module's own
        import jsonschema

        errors = jsonschema.Draft7Validator(plan_schema()).iter_errors(data)
        problems = sorted({_describe(inner) for e in errors for inner in _innermost(e)})
        return problems or [str(first)]


def _innermost(error: Any) -> list[Any]:
    """A kernel given as an object is meant to be one: explain what is wrong inside it (kernel.env.X), not
    only that it is neither false nor a kernel."""
    if error.validator in ("not", "required") and not isinstance(error.instance, dict):
        return []  # mode rules seen through a non-object: its own type error says what is wrong
    if error.validator == "oneOf" and isinstance(error.instance, dict) and error.context:
        inside = [e for e in error.context if e.relative_schema_path[0] == 0]
        if inside:
            return [deeper for e in inside for deeper in _innermost(e)]
    return [error]


def _describe(error: Any) -> str:
    """One jsonschema error as 'field: problem', in words an admin can act on."""
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    where = where or "plan"
    if error.validator == "pattern" and "description" in error.schema:
        message = f"{error.instance!r} is not {error.schema['description']}"
    elif error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        message = f"{error.message.split('(')[-1].rstrip(')')}; known fields: {', '.join(allowed)}"
    elif error.validator in ("const", "enum") and error.absolute_path and error.absolute_path[-1] == "version":
        message = (
            f"unsupported plan version {error.instance!r}; this osl-hooks reads versions {PLAN_VERSION} and "
            f"{RETIREMENT_PLAN_VERSION} (version {RETIREMENT_PLAN_VERSION} when the plan has retirement)"
        )
    elif error.validator == "required":
        missing = error.message.split(" is ")[0].strip("'")
        where = f"{where}.{missing}" if where != "plan" else missing
        needed_by = f" with mode {error.instance.get('mode')!r}" if "then" in error.schema_path else ""
        message = f"required{needed_by}"
    elif error.validator == "not":
        message = f"field not allowed with mode {error.instance.get('mode')!r}"
    elif error.validator == "oneOf" and where.endswith("kernel"):
        message = "must be false or an object with name, display_name, env"
    else:
        message = error.message
    return f"{where}: {message}"


def _normalise(path: str) -> str:
    return posixpath.normpath(path) if path.startswith("/") else path


def _home_path(value: str, home: str) -> str:
    if value == "~" or value.startswith("~/"):
        value = value[2:]
    return posixpath.normpath(posixpath.join(home, value))


def _overlaps(a: str, b: str) -> bool:
    a, b = posixpath.normpath(a), posixpath.normpath(b)
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _retirement(data: dict[str, Any]) -> Retirement:
    return Retirement(offered=tuple(data["offered"]), remove_after_days=float(data["remove_after_days"]))


def _script(data: dict[str, Any]) -> Script:
    return Script(
        path=_normalise(data["path"]),
        timeout=float(data.get("timeout", DEFAULT_SCRIPT_TIMEOUT)),
        run=data.get("run", "always"),
        on_failure=data.get("on_failure", "continue"),
    )


def _script_dict(script: Script) -> dict[str, Any]:
    return {"path": script.path, "timeout": script.timeout, "run": script.run, "on_failure": script.on_failure}


def _environment(data: dict[str, Any]) -> Environment:
    kernel_data = data.get("kernel", {})
    kernel = None
    if kernel_data is not False:
        kernel = Kernel(
            name=kernel_data.get("name", KERNEL_NAME_PREFIX + data["name"].lower()),
            display_name=kernel_data.get("display_name", data["name"]),
            env=dict(kernel_data.get("env", {})),
        )
    source = _normalise(data["source"]) if "source" in data else None
    return Environment(
        name=data["name"],
        mode=data["mode"],
        source=source,
        target=data.get("target"),
        built_prefix=_normalise(data["built_prefix"]) if "built_prefix" in data else None,
        kernel=kernel,
        setup_scripts=tuple(_script(s) for s in data.get("setup_scripts", [])),
        link_threshold=data.get("link_threshold", DEFAULT_LINK_THRESHOLD),
        first_copy=data.get("first_copy", DEFAULT_FIRST_COPY),
    )


def _environment_dict(env: Environment) -> dict[str, Any]:
    data: dict[str, Any] = {"name": env.name, "mode": env.mode}
    for key in ("source", "target", "built_prefix"):
        if getattr(env, key) is not None:
            data[key] = getattr(env, key)
    if env.mode == "linked":
        data["link_threshold"] = env.link_threshold
    if env.mode == "synced":
        data["first_copy"] = env.first_copy
    if env.kernel is None:
        data["kernel"] = False
    else:
        data["kernel"] = {"name": env.kernel.name, "display_name": env.kernel.display_name}
        if env.kernel.env:
            data["kernel"]["env"] = dict(env.kernel.env)
    data["setup_scripts"] = [_script_dict(s) for s in env.setup_scripts]
    return data
