"""What a configured environment is once checked, and whom it applies to (used by `planner`).

`checks` turns ``c.OSLHooks`` into these once, at hub start; every spawn then only does set lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import SECTION, OSLHooks


@dataclass(frozen=True)
class EnvRule:
    """One configured environment: its plan entry and who gets it."""

    index: int
    plan_entry: dict[str, Any]
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    profiles: frozenset[str] | None = None
    profile_options: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def applies(self, user: str, groups: Iterable[str], profile: str | None, options: Mapping[str, str]) -> bool:
        if self.users or self.groups:
            if user not in self.users and self.groups.isdisjoint(groups):
                return False
        if self.profiles is not None and profile not in self.profiles:
            return False
        for option, choices in self.profile_options.items():
            if options.get(option) not in choices:
                return False
        return True


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{SECTION}.{where}: {message}")


@dataclass
class CheckedConfig:
    """The result of checking ``c.OSLHooks``: the configurable, its parsed rules, and what is wrong."""

    hooks: OSLHooks
    rules: tuple[EnvRule, ...]
    setup_scripts: tuple[dict[str, Any], ...]
    problems: list[str]
    warnings: list[str]
