"""The plan for one spawn: which environments this user gets, computed from the checked configuration.

Pure and fast: set lookups over rules parsed at hub start, then a cached, validated plan. No I/O, nothing
that blocks the hub's event loop. The JSON of each distinct plan (set of environments, home) is built and
validated with `Plan.from_dict` once, then reused: with hundreds of users there are only as many plans as
there are distinct combinations of groups, profiles and homes. With `retired_env_days` set, every plan also
carries the hub's whole offer (`checks.plan_data`): the same for all plans, so it needs no place in the cache key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..plan import Plan
from .checks import plan_data
from .selection import CheckedConfig

CACHE_SIZE = 4096


@dataclass(frozen=True)
class SpawnContext:
    """What a plan depends on: who spawns, and (KubeSpawner) the profile and profile options in effect."""

    user: str
    groups: frozenset[str] = frozenset()
    profile: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)


def group_names(user: Any) -> frozenset[str]:
    """The JupyterHub group names of a user (a `jupyterhub.user.User`, whose `groups` are orm.Group rows)."""
    groups: Iterable[Any] = getattr(user, "groups", None) or ()
    return frozenset(g if isinstance(g, str) else g.name for g in groups)


class Planner:
    def __init__(self, checked: CheckedConfig):
        self.hooks = checked.hooks
        self.rules = checked.rules
        self.setup_scripts = checked.setup_scripts
        self.uses_profiles = any(r.profiles is not None or r.profile_options for r in self.rules)
        self.uses_profile_options = any(r.profile_options for r in self.rules)
        self._cache: dict[tuple[tuple[int, ...], str | None], str] = {}

    def select(self, ctx: SpawnContext) -> tuple[int, ...]:
        """Positions (in `rules`) of the environments this spawn gets, in configuration order."""
        return tuple(
            i for i, rule in enumerate(self.rules) if rule.applies(ctx.user, ctx.groups, ctx.profile, ctx.options)
        )

    def plan_json(self, ctx: SpawnContext, home: str | None) -> str:
        """The plan for this spawn as compact JSON, the value of $OSL_HOOKS_PLAN."""
        key = (self.select(ctx), home)
        text = self._cache.get(key)
        if text is None:
            data = plan_data(self.hooks, [self.rules[i].plan_entry for i in key[0]], self.setup_scripts, home)
            text = Plan.from_dict(data, "OSLHooks plan").to_json(indent=None)
            if len(self._cache) < CACHE_SIZE:
                self._cache[key] = text
        return text

    def plan(self, ctx: SpawnContext, home: str | None) -> Plan:
        from ..plan import parse_plan

        return parse_plan(self.plan_json(ctx, home))
