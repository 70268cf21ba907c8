"""Every `record` class (the plan, the events, the status: `osl_hooks._records`) behaves as the dataclass
`dataclasses.dataclass` makes of the same definition: the hub, the lab and the engine build, compare, hash, print
and `dataclasses.replace` them as dataclasses, and a frozen one (the plan) cannot be changed.

The record classes are found in the source (every class decorated with `@record`), so one added later is checked
too: it needs a sample below.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from osl_hooks._records import as_dict, replace

PACKAGE = Path(__file__).resolve().parent.parent / "osl_hooks"

# Per record class: arguments that build one (valid for its __post_init__), by keyword.
SAMPLES = {
    "osl_hooks.plan.Script": {"path": "setup.d"},
    "osl_hooks.plan.Kernel": {"name": "osl-geo", "display_name": "Geo"},
    "osl_hooks.plan.Environment": {"name": "geo", "mode": "synced", "source": "/opt/envs/geo"},
    "osl_hooks.plan.Retirement": {"offered": ("geo", "R"), "remove_after_days": 7.0},
    "osl_hooks.plan.Plan": {"home": "/home/jovyan", "lock_timeout": 60.0},
    "osl_hooks.events.Event": {"kind": "note", "message": "geo is up to date", "time": "2026-12-07T12:00:00Z"},
    "osl_hooks.engine.reporter.EnvStatus": {"name": "geo", "mode": "synced", "files": 12},
    "osl_hooks.engine.reporter.ScriptStatus": {
        "path": "a.sh",
        "env": None,
        "state": "ok",
        "exit_code": 0,
        "seconds": 0.5,
    },
    "osl_hooks.engine.copykind.CopyKind": {"mode": "linked", "first_copy": "now", "not_linked_because": ("x",)},
    "osl_hooks.engine.background.CopyPlaces": {"directory": Path("/s/background"), "name": "geo", "target": Path("/t")},
    "osl_hooks.engine.linkplan.FirstCopy": {"links": {"lib/libgeo.so"}, "dirs": [("lib", 0o755)], "volume": 8192},
    "osl_hooks.engine.relocate.PrefixFile": {"path": "bin/pip", "mode": "text"},
    "osl_hooks.engine.packages.PackageIndex": {"records": {"numpy": ["conda-meta/numpy-2.0-0.json"]}},
    "osl_hooks.engine.manifest.Manifest": {"entries": {}, "bytes": 10, "baked": True},
    "osl_hooks.engine.syncstate.SyncState": {"home": "/home/jovyan", "directory": Path("/s/envs"), "name": "geo"},
    "osl_hooks.engine.synced.CopyLater": {"image_id": "abc", "running": False},
    "osl_hooks.engine.update.Changes": {"copy": ["bin/python"], "user_packages": {"numpy"}},
    "osl_hooks.engine.kernels.KernelGuard": {"bin": Path("/home/jovyan/.guard/bin"), "env": {"PIP_PYTHON": "x"}},
    "osl_hooks.engine.kernels.RegisteredKernel": {
        "name": "osl-geo",
        "display_name": "Geo",
        "resource_dir": "/k",
        "changed": True,
    },
}


def record_classes() -> list[tuple[str, bool]]:
    """Every class of the package decorated with `@record` or `@record(frozen=...)`: its name, and if frozen."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            for decorator in node.decorator_list if isinstance(node, ast.ClassDef) else ():
                call = decorator if isinstance(decorator, ast.Call) else None
                if ast.unparse(call.func if call else decorator) == "record":
                    options = call.keywords if call else ()
                    frozen = any(k.arg == "frozen" and ast.literal_eval(k.value) for k in options)
                    found.append((f"{module}.{node.name}", frozen))
    return found


RECORDS = record_classes()


def the_class(name: str) -> type:
    module, _, cls = name.rpartition(".")
    return getattr(importlib.import_module(module), cls)


def dataclass_twin(cls: type, frozen: bool) -> type:
    """The class `dataclasses.dataclass(frozen=frozen)` makes of `cls`'s definition: its fields (with their
    defaults and options), its methods and properties, its name."""
    made = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__dict__", "__match_args__")
    names = [f.name for f in dataclasses.fields(cls)]
    namespace = {
        key: value
        for key, value in vars(cls).items()
        if key not in made and not key.startswith(("__dataclass", "__record")) and key not in names
    }
    for f in dataclasses.fields(cls):
        options = {"init": f.init, "repr": f.repr, "hash": f.hash, "compare": f.compare}
        if f.default is not dataclasses.MISSING:
            options["default"] = f.default
        if f.default_factory is not dataclasses.MISSING:
            options["default_factory"] = f.default_factory
        namespace[f.name] = dataclasses.field(**options)  # type: ignore[call-overload]
    return dataclasses.dataclass(frozen=frozen)(type(cls.__name__, (), namespace))


def outcome(action):
    """What `action()` gives, or the type of what it raises."""
    try:
        return action()
    except Exception as e:
        return type(e)


def test_the_record_classes_are_found():
    names = {name for name, _ in RECORDS}
    assert {"osl_hooks.plan.Plan", "osl_hooks.events.Event"} <= names
    assert names <= set(SAMPLES), f"give each record class a sample: {sorted(names - set(SAMPLES))}"


@pytest.mark.parametrize("name, frozen", RECORDS, ids=[name for name, _ in RECORDS])
def test_a_record_behaves_as_its_dataclass(name, frozen):
    cls = the_class(name)
    twin = dataclass_twin(cls, frozen)
    sample = SAMPLES[name]
    ours, theirs = cls(**sample), twin(**sample)
    assert dataclasses.is_dataclass(ours) and [f.name for f in dataclasses.fields(ours)] == [
        f.name for f in dataclasses.fields(theirs)
    ]
    assert repr(ours) == repr(theirs) and dataclasses.asdict(ours) == dataclasses.asdict(theirs) == as_dict(ours)
    assert cls.__match_args__ == twin.__match_args__
    assert inspect.signature(cls) == inspect.signature(twin), "help() shows the fields a record takes"

    init = [f.name for f in dataclasses.fields(cls) if f.init]
    positional = [getattr(ours, n) for n in init]
    assert cls(*positional) == ours and twin(*positional) == theirs, "built from positional arguments"
    assert ours == cls(**sample) and ours is not cls(**sample)
    assert ours != theirs, "a record equals a record of its own class only"
    changed = {init[-1]: "a changed value"}
    assert (dataclasses.replace(ours, **changed) == ours) is (dataclasses.replace(theirs, **changed) == theirs) is False
    assert dataclasses.asdict(dataclasses.replace(ours, **changed)) == dataclasses.asdict(
        dataclasses.replace(theirs, **changed)
    )
    assert replace(ours, **changed) == dataclasses.replace(ours, **changed) and replace(ours) == ours

    assert outcome(lambda: hash(ours)) == outcome(lambda: hash(theirs))
    assert (cls.__hash__ is None) is (twin.__hash__ is None)
    for attribute in (init[0], "not_a_field"):
        for change in (lambda x, a=attribute: setattr(x, a, 1), lambda x, a=attribute: delattr(x, a)):
            assert outcome(lambda c=change: c(ours)) == outcome(lambda c=change: c(theirs))
    assert frozen is (outcome(lambda: setattr(cls(**sample), init[0], 1)) is dataclasses.FrozenInstanceError)

    too_many = (*positional, "one too many")
    assert outcome(lambda: cls(*too_many)) is outcome(lambda: twin(*too_many)) is TypeError
    required = [f for f in dataclasses.fields(cls) if f.init and f.default is f.default_factory is dataclasses.MISSING]
    assert (outcome(lambda: cls()) is TypeError) is (outcome(lambda: twin()) is TypeError) is bool(required)
    assert outcome(lambda: cls(**sample, not_a_field=1)) is TypeError
    assert outcome(lambda: cls(*positional[:1], **{init[0]: positional[0]})) is TypeError


USE_THE_CONTRACTS = """
import sys
from osl_hooks.engine.reporter import EnvStatus
from osl_hooks.events import Event
from osl_hooks.plan import parse_plan
plan = parse_plan('{"version": 1, "environments": [{"name": "geo", "mode": "synced", "source": "/opt/geo"}]}')
plan.resolve("/home/jovyan").to_json()
Event("note", "geo is up to date", "geo").line()
EnvStatus("geo", "synced").warnings.append("a warning")
print("dataclasses" in sys.modules, "inspect" in sys.modules)
"""


def test_the_contracts_do_without_dataclasses():
    """Building, resolving and writing out a plan, events and a status import neither `dataclasses` nor what it
    imports (`inspect`, 5 ms of every start); the dataclass view and the signature are made for those who ask
    (above)."""
    result = subprocess.run([sys.executable, "-c", USE_THE_CONTRACTS], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
