"""Sphinx extension: fail the build when a configurable trait has no help text.

The configuration reference (docs/reference.md) is generated from the traits with autodoc-traits, which
prints a trait without help as a bare name and default. That is a missing piece of documentation, so it is
an error here, whatever the warning settings: the classes named in ``trait_help_classes`` (conf.py) are
imported when the build starts and every ``config=True`` trait must have non-empty ``help``.
"""

from __future__ import annotations

from typing import Any

from sphinx.errors import ExtensionError
from traitlets.utils.importstring import import_item


def traits_without_help(cls: type) -> list[str]:
    """The configurable traits of `cls` (its own and inherited) whose help text is empty, as 'Class.trait'."""
    return sorted(
        f"{cls.__name__}.{name}"
        for name, trait in cls.class_traits(config=True).items()
        if not (trait.help or "").strip()
    )


def check_trait_help(app: Any) -> None:
    missing = [name for path in app.config.trait_help_classes for name in traits_without_help(import_item(path))]
    if missing:
        raise ExtensionError(
            "configurable traits without help text (give each a help= string; the reference is generated from it): "
            + ", ".join(missing)
        )


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("trait_help_classes", [], "env", types=[list])
    app.connect("builder-inited", check_trait_help)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
