"""Why a `linked` env keeps files real that it would otherwise link: the causes, as data and as words.

A cause is a word in the env's `not_linked_because` (`status.json`, the start's summary, `osl-hooks status`,
the fleet report); `TEXTS` is what the user is told of it (`copykind.tell_not_linked`, `osl-hooks status`). Who
finds a cause: `copykind.decide` (the user can write the image's env, `user_can_write`) and a linked copy
(its pip resolves links, `linkplan`'s probe). A module of its own, with nothing to import, because a restart
with nothing new reads the causes and the first check while it has no use for `linkplan`'s classification.
"""

from __future__ import annotations

import os
from pathlib import Path

WRITABLE_IMAGE = "writable_image"  # the notebook user can write the image's env: no link at all
DEBIAN_PIP = "debian_pip"  # the env's pip resolves links: every file of a package pip manages is real

# Per cause: the sentence said in full once, the line said afterwards, and the fix (for admins); `{name}`,
# `{source}` and `{share}` (of the env's bytes through links) are filled in.
TEXTS = {
    WRITABLE_IMAGE: (
        "{name} is a full copy in your home, not linked to the image: you can write the image's {source}, so your "
        "writes through links would go into the image and be lost at a restart",
        "{name} is a full copy: you can write the image's {source}",
        "make it read-only for the notebook user in the image, see `osl-hooks bake`",
    ),
    DEBIAN_PIP: (
        "{name} is linked only in part ({share} of its bytes through links): its pip, Debian's or Ubuntu's patched "
        "pip, resolves links before it decides what an uninstall may remove, so every file of a package pip "
        "manages is a real file in your home",
        "{name} is linked only in part ({share} of its bytes through links): its pip resolves links",
        "install pip from the package index in the image's env: `{source}/bin/python -m pip install -U pip`",
    ),
}


def user_can_write(path: Path | str) -> bool:
    """Whether the user the start runs as can write `path` (root, in throwaway containers, is not asked): the
    image's env (`WRITABLE_IMAGE`), or one of its files (linkplan keeps it real)."""
    return os.geteuid() != 0 and os.access(path, os.W_OK)
