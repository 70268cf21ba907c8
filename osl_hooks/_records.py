"""`record`: `dataclasses.dataclass` for the classes every start defines, without compiling code to define them.

`dataclass` writes each class's `__init__`, `__repr__` and `__eq__` (and a frozen class's `__setattr__`,
`__delattr__` and `__hash__`) as source text and compiles it when the class is defined: 0.3-0.6 ms a class, and a
start defines a dozen of them (the plan, the events, the status), so a restart with nothing new paid for
compiling them more than for anything else it does. `record` lets `dataclass` collect the fields only (no method
asked for, nothing compiled) and gives the class the same methods, written once here and reading the class's
fields. The class is a dataclass all the same: `dataclasses.fields`, `replace` and `asdict` work on it, and type
checkers see `dataclasses.dataclass` itself (`record` is that, under `TYPE_CHECKING`).
tests/test_records.py checks every record class against the class `dataclass` makes of the same definition.

A contract module (the plan and the events import it), so it imports nothing of osl-hooks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

T = TypeVar("T")
_MISSING = dataclasses.MISSING


def _record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """`@record` or `@record(frozen=True)`, as `@dataclass` (with its defaults: init, repr, eq)."""

    def make(cls: type[T]) -> type[T]:
        dataclasses.dataclass(cls, init=False, repr=False, eq=False)  # the fields, and no method: nothing compiled
        _add_methods(cls, frozen)
        return cls

    return make if cls is None else make(cls)


if TYPE_CHECKING:
    from dataclasses import dataclass as record  # what `record` makes, for type checkers
else:
    record = _record


def _add_methods(cls: type, frozen: bool) -> None:
    fields = dataclasses.fields(cls)
    names = frozenset(f.name for f in fields)
    positional = tuple(f.name for f in fields if f.init)
    # The fields __init__ sets, with their default and default factory: a field that is not an argument and has
    # a plain default is left to the class attribute, as dataclass leaves it.
    setting = tuple(
        (f.name, f.default, f.default_factory) for f in fields if f.init or f.default_factory is not _MISSING
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
            elif factory is not _MISSING:
                set_field(self, name, factory())
            elif default is not _MISSING:
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
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    cls.__hash__ = __hash__  # type: ignore[method-assign]
    cls.__setattr__ = __setattr__  # type: ignore[method-assign]
    cls.__delattr__ = __delattr__  # type: ignore[method-assign]
