"""The spawner's side of the configuration, read the way traitlets will apply it (no spawner is created)."""

from __future__ import annotations

import copy
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from .spawner_internals import static_profiles


def is_kubespawner(cls: type) -> bool:
    """True for KubeSpawner and its subclasses (checked by name: the hub side never needs to import it)."""
    return any(k.__name__ == "KubeSpawner" for k in getattr(cls, "__mro__", ()))


_MISSING = object()


def effective_config(config: Config, cls: type, name: str, default: Any = _MISSING) -> Any:
    """The value `name` gets on an instance of `cls` from `config`, following traitlets' precedence.

    The most specific class in `cls`'s MRO whose section sets `name` wins, as in
    `Configurable._load_config`. Returns `default` when nothing sets it (the trait's default if not given).
    """
    for klass in cls.__mro__:
        section = klass.__name__
        if section in config and name in config[section]:
            value = config[section][name]
            if isinstance(value, LazyConfigValue):
                value = copy.deepcopy(value).get_value(_trait_default(cls, name))
            return value
    return _trait_default(cls, name) if default is _MISSING else default


def _trait_default(cls: type, name: str) -> Any:
    traits = cls.class_traits() if hasattr(cls, "class_traits") else {}
    return traits[name].default() if name in traits else None


def _profile_options(profile: dict[str, Any]) -> dict[str, set[str] | None]:
    """Option name -> its choice slugs (None when any unlisted value is allowed)."""
    options: dict[str, set[str] | None] = {}
    for name, option in (profile.get("profile_options") or {}).items():
        if (option.get("unlisted_choice") or {}).get("enabled"):
            options[name] = None
        else:
            options[name] = set(option.get("choices") or {})
    return options


def spawn_home(config: Config, cls: type, configured: str = "") -> str | None:
    """The home every spawn's plan will have, as far as the hub can tell at start (a template for per-user homes).

    The same rules as at spawn (docs/hub.md, "The home"): `OSLHooks.home`, else KubeSpawner's HOME variable or
    /home/jovyan, else SimpleLocalProcessSpawner's `home_dir_template` ("/tmp/{username}": its paths hold for
    every user). None when only the spawn can tell (a HOME set per profile or by a callable, passwd homes).
    """
    if configured:
        return configured
    if is_kubespawner(cls):
        from .delivery import DEFAULT_POD_HOME

        profiles = static_profiles(effective_config(config, cls, "profile_list", []))
        overrides = [p.get("kubespawner_override") or {} for p in (profiles or {}).values()]
        if profiles is None or any("HOME" in (o.get("environment") or {}) for o in overrides):
            return None
        home = (effective_config(config, cls, "environment", {}) or {}).get("HOME", DEFAULT_POD_HOME)
        return home if isinstance(home, str) and home.startswith("/") and "{" not in home else None
    template = effective_config(config, cls, "home_dir_template")
    return template if isinstance(template, str) and template.startswith("/") else None
