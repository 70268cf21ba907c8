"""What a user changed in their copy of an env, package by package, against the image's env.

Read from the package records alone (conda's `conda-meta/*.json`, pip's `*.dist-info/RECORD`), which both
sides keep in two known directories: a listing, not a walk, so it is cheap whatever the env's size. The
result is what a user hands an admin ("bake these into the next image"): `osl-hooks diff NAME --export
requirements` (pip's format) or `--export environment` (conda's environment.yml).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .packages import record_name, record_paths, record_version

Key = tuple[str, str]  # (kind, normalised name): a package installed by conda and by pip counts twice


@dataclass
class PackageChanges:
    added: dict[Key, str] = field(default_factory=dict)  # -> the copy's version
    removed: dict[Key, str] = field(default_factory=dict)  # -> the image's version
    upgraded: dict[Key, tuple[str, str]] = field(default_factory=dict)  # -> (image's, copy's)

    def summary(self) -> dict[str, int]:
        return {"added": len(self.added), "upgraded": len(self.upgraded), "removed": len(self.removed)}


def versions(root: Path) -> dict[Key, str]:
    """Every package of the env at `root`, by kind and name, with its version."""
    return versions_of(record_paths(root))


def versions_of(record_files: Iterable[str]) -> dict[Key, str]:
    """The packages whose records are `record_files` (relative paths), by kind and name, with their version."""
    found = {}
    for rel in record_files:
        name, kind_version = record_name(rel), record_version(rel)
        if name and kind_version:
            found[(kind_version[0], name)] = kind_version[1]
    return found


def package_changes(image: Path, copy: Path) -> PackageChanges:
    return changes_between(versions(image), versions(copy))


def changes_between(theirs: dict[Key, str], ours: dict[Key, str]) -> PackageChanges:
    """The user's package changes: `ours` (the copy's packages) against `theirs` (the image's, or what the copy
    was synced from when the image no longer has the env)."""
    changes = PackageChanges()
    for key in sorted(theirs.keys() | ours.keys()):
        if key not in theirs:
            changes.added[key] = ours[key]
        elif key not in ours:
            changes.removed[key] = theirs[key]
        elif theirs[key] != ours[key]:
            changes.upgraded[key] = (theirs[key], ours[key])
    return changes


def describe(changes: PackageChanges) -> list[str]:
    lines = [f"+ {name} {version} ({kind})" for (kind, name), version in changes.added.items()]
    lines += [f"~ {name} {old} -> {new} ({kind})" for (kind, name), (old, new) in changes.upgraded.items()]
    lines += [f"- {name} {version} ({kind})" for (kind, name), version in changes.removed.items()]
    return lines


def export(changes: PackageChanges, fmt: str, env_name: str) -> str:
    """The packages the user added or upgraded, as pip requirements or a conda environment file."""
    wanted = {**changes.added, **{key: new for key, (_old, new) in changes.upgraded.items()}}
    pip = [f"{name}=={version}" for (kind, name), version in sorted(wanted.items()) if kind == "pip"]
    removed = [f"# removed by the user: {name} {version}" for (_k, name), version in changes.removed.items()]
    if fmt == "requirements":
        return "\n".join([*removed, *pip]) + "\n"
    conda = [f"  - {name}={version}" for (kind, name), version in sorted(wanted.items()) if kind == "conda"]
    lines = [*removed, f"name: {env_name}", "dependencies:", *conda]
    if pip:
        lines += ["  - pip:", *(f"    - {p}" for p in pip)]
    return "\n".join(lines) + "\n"
