"""`record` and `field`: `dataclasses.dataclass` and `dataclasses.field` for the classes every start defines, at
a fraction of the cost.

`dataclass` writes each class's `__init__`, `__repr__` and `__eq__` (and a frozen class's `__setattr__`,
`__delattr__` and `__hash__`) as source text and compiles it when the class is defined: 0.3-0.6 ms a class, and a
start defines a dozen of them (the plan, the events, the status). And importing `dataclasses` imports `inspect`
(with `ast`, `dis`, `tokenize`): 5 ms, the largest import a restart with nothing new had left. `record` reads the
class's fields itself and gives it the same methods, written once here; `dataclasses` is imported only when
something asks for the class's dataclass fields (`dataclasses.fields`, `replace`, `asdict`, `is_dataclass`: the
hub's plan checks, tests), and then they are the fields `dataclass` makes of the same definition; its
`__signature__` (`inspect.signature`, `help()`) is that class's too, made when asked for. Within
osl-hooks, `replace` and `as_dict` below do what `dataclasses.replace` and `asdict` do, without that import.
Type checkers see `dataclasses.dataclass` and `dataclasses.field` themselves (under `TYPE_CHECKING`).
tests/test_records.py checks every record class against the class `dataclass` makes of the same definition, and
that using the plan, the events and the status does not import `dataclasses`.

A contract module (the plan and the events import it), so it imports nothing of osl-hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")


class _Missing:
    """No default (dataclasses.MISSING, without importing dataclasses)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """One field of a record: what `field(...)` says of it (or its default), then its name and annotation."""

    __slots__ = ("name", "annotation", "default", "default_factory", "init", "repr", "hash", "compare")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Any = MISSING,
        init: bool = True,
        repr: bool = True,
        hash: bool | None = None,
        compare: bool = True,
    ):
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.annotation: Any = None
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.hash = hash
        self.compare = compare


def _record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """`@record` or `@record(frozen=True)`, as `@dataclass` (with its defaults: init, repr, eq)."""

    def make(cls: type[T]) -> type[T]:
        fields = _fields_of(cls)
        cls.__record_fields__ = fields  # type: ignore[attr-defined]
        cls.__record_frozen__ = frozen  # type: ignore[attr-defined]
        cls.__dataclass_fields__ = _DataclassFields()  # type: ignore[attr-defined]
        cls.__signature__ = _Signature()  # type: ignore[attr-defined]
        cls.__match_args__ = tuple(f.name for f in fields if f.init)  # type: ignore[attr-defined]
        _add_methods(cls, fields, frozen)
        return cls

    return make if cls is None else make(cls)


if TYPE_CHECKING:
    from dataclasses import dataclass as record  # what `record` makes, for type checkers
    from dataclasses import field
else:
    record, field = _record, Field  # field(default=..., default_factory=..., init=..., ...), as dataclasses.field


def fields(obj: Any) -> tuple[Field, ...]:
    """A record's (or a record class's) fields, in order."""
    return obj.__record_fields__  # type: ignore[no-any-return]


def replace(obj: T, /, **changes: Any) -> T:
    """`dataclasses.replace` of a record: a new one, with `changes`."""
    for f in fields(obj):
        if not f.init:
            if f.name in changes:
                raise ValueError(f"field {f.name} is declared with init=False, it cannot be specified with replace()")
        elif f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def as_dict(obj: Any) -> Any:
    """`dataclasses.asdict` of a record, for JSON: records, lists, tuples and dicts within it are copied; other
    values (strings, numbers) are immutable and kept as they are."""
    if hasattr(type(obj), "__record_fields__"):
        return {f.name: as_dict(getattr(obj, f.name)) for f in obj.__record_fields__}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple: built from its fields
        return type(obj)(*(as_dict(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(as_dict(v) for v in obj)
    if isinstance(obj, dict):
        return {as_dict(k): as_dict(v) for k, v in obj.items()}
    return obj


def _fields_of(cls: type) -> tuple[Field, ...]:
    """The fields of `cls`'s own annotations, as `dataclass` reads them (and with its checks); the class
    attributes become the defaults (a field given a default factory has none, as in a dataclass)."""
    found: list[Field] = []
    for name, annotation in cls.__annotations__.items():
        if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, MISSING)
        field = value if isinstance(value, Field) else Field(default=value)
        field.name, field.annotation = name, annotation
        if field.default is not MISSING and field.default.__class__.__hash__ is None:
            raise ValueError(
                f"mutable default {type(field.default)} for field {name} is not allowed: use default_factory"
            )
        if field.init and _required(field) and any(f.init and not _required(f) for f in found):
            raise TypeError(f"non-default argument {name!r} follows default argument")
        found.append(field)
        if field.default is not MISSING:
            setattr(cls, name, field.default)
        elif name in cls.__dict__:
            delattr(cls, name)
    return tuple(found)


def _required(f: Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


class _DataclassFields:
    """A record class's `__dataclass_fields__`, made at the first look (which imports `dataclasses`): those
    `dataclass` makes of the same definition, so `dataclasses.fields`, `replace` and `asdict` take records."""

    def __get__(self, instance: Any, owner: type) -> Any:
        twin = _dataclass_of(owner)
        owner.__dataclass_params__ = twin.__dataclass_params__  # type: ignore[attr-defined]
        owner.__dataclass_fields__ = twin.__dataclass_fields__  # type: ignore[attr-defined]
        return twin.__dataclass_fields__


class _Signature:
    """A record class's `__signature__`, made at the first look (which imports `dataclasses` and `inspect`): the
    signature of the class `dataclass` makes of the same definition, so `inspect.signature` and `help()` show the
    fields a record takes, not its `__init__`'s `*args, **kwargs`."""

    def __get__(self, instance: Any, owner: type) -> Any:
        import inspect

        signature = inspect.signature(_dataclass_of(owner))
        owner.__signature__ = signature  # type: ignore[attr-defined]
        return signature


def _dataclass_of(owner: type) -> Any:
    """The class `dataclasses.dataclass` makes of a record class's fields (with their options), frozen as it is."""
    import dataclasses

    namespace: dict[str, Any] = {"__annotations__": {f.name: f.annotation for f in owner.__record_fields__}}  # type: ignore[attr-defined]
    for f in owner.__record_fields__:  # type: ignore[attr-defined]
        options = {"init": f.init, "repr": f.repr, "hash": f.hash, "compare": f.compare}
        if f.default is not MISSING:
            options["default"] = f.default
        if f.default_factory is not MISSING:
            options["default_factory"] = f.default_factory
        namespace[f.name] = dataclasses.field(**options)  # type: ignore[call-overload]
    return dataclasses.dataclass(frozen=owner.__record_frozen__)(type(owner.__name__, (), namespace))  # type: ignore[attr-defined]


def _add_methods(cls: type, fields: tuple[Field, ...], frozen: bool) -> None:
    names = frozenset(f.name for f in fields)
    positional = tuple(f.name for f in fields if f.init)
    # The fields __init__ sets, with their default and default factory: a field that is not an argument and has
    # a plain default is left to the class attribute, as dataclass leaves it.
    setting = tuple(
        (f.name, f.default, f.default_factory) for f in fields if f.init or f.default_factory is not MISSING
    )
    shown = tuple(f.name for f in fields if f.repr)
    compared = tuple(f.name for f in fields if f.compare)
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    set_field: Callable[[Any, str, Any], None] = object.__setattr__ if frozen else setattr
    post_init = hasattr(cls, "__post_init__")

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(positional):
            raise TypeError(
                f"{cls.__qualname__}.__init__() takes {len(positional) + 1} positional arguments but "
                f"{len(args) + 1} were given"
            )
        given = dict(zip(positional, args, strict=False))  # fewer arguments: the rest by keyword or default
        for name in kwargs:
            if name in given:
                raise TypeError(f"{cls.__qualname__}.__init__() got multiple values for argument {name!r}")
            if name not in positional:
                raise TypeError(f"{cls.__qualname__}.__init__() got an unexpected keyword argument {name!r}")
        given.update(kwargs)
        for name, default, factory in setting:
            if name in given:
                set_field(self, name, given[name])
            elif factory is not MISSING:
                set_field(self, name, factory())
            elif default is not MISSING:
                set_field(self, name, default)
            else:
                raise TypeError(f"{cls.__qualname__}.__init__() missing required argument: {name!r}")
        if post_init:
            self.__post_init__()

    def __repr__(self: Any) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, name) for name in compared) == tuple(getattr(other, name) for name in compared)

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__repr__ = __repr__  # type: ignore[method-assign]
    cls.__eq__ = __eq__  # type: ignore[method-assign]
    if not frozen:
        cls.__hash__ = None  # type: ignore[assignment]  # as dataclass: equal by value and mutable, so unhashable
        return

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, name) for name in hashed))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise _frozen_error(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    cls.__hash__ = __hash__  # type: ignore[method-assign]
    cls.__setattr__ = __setattr__  # type: ignore[method-assign]
    cls.__delattr__ = __delattr__  # type: ignore[method-assign]


def _frozen_error(message: str) -> Exception:
    """dataclasses.FrozenInstanceError, which callers catch (an attempt to change a frozen record is a bug)."""
    import dataclasses

    return dataclasses.FrozenInstanceError(message)
