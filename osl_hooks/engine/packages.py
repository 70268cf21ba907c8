"""Which package owns which file of an env, from conda's and pip's own records.

A sync must be package-aware: when a user upgraded or removed a package, the image's files of that
package must not come back (a `pip install -U numpy` followed by the image's old numpy files is a broken
mix of two versions). conda lists a package's files in `conda-meta/<name>-<version>-<build>.json`
(`files`); pip in `lib/pythonX.Y/site-packages/<name>-<version>.dist-info/RECORD`. Both kinds of record
are keyed here by the package's normalised name, so a package installed by conda (which also ships a
dist-info) and later upgraded by pip is one package.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import re
from pathlib import Path

from .._records import field, record

_DIST_INFO = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+)\.dist-info$")
_CONDA_RECORD = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)\.json$")


@record
class PackageIndex:
    """Packages of one env: the record files of each, and the package owning each file."""

    records: dict[str, list[str]] = field(default_factory=dict)  # name -> record paths (relative)
    owners: dict[str, str] = field(default_factory=dict)  # file path (relative) -> name


def normalise(name: str) -> str:
    """PEP 503 normalisation, which also fits conda names (lower case, '-', '_', '.' alike)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def record_name(rel_path: str) -> str | None:
    """The package a record path belongs to, or None if the path is not a record."""
    parts = rel_path.split("/")
    if len(parts) == 2 and parts[0] == "conda-meta":
        match = _CONDA_RECORD.match(parts[1])
        return normalise(match["name"]) if match else None
    if len(parts) >= 2 and parts[-1] == "RECORD":
        match = _DIST_INFO.match(parts[-2])
        return normalise(match["name"]) if match else None
    return None


def record_version(rel_path: str) -> tuple[str, str] | None:
    """(kind, version) of a record path: ("conda", "1.2") or ("pip", "1.2"); None if it is not a record."""
    name = rel_path.rsplit("/", 1)[-1]
    if rel_path.startswith("conda-meta/"):
        match = _CONDA_RECORD.match(name)
        return ("conda", match["version"]) if match else None
    match = _DIST_INFO.match(rel_path.rsplit("/", 2)[-2]) if name == "RECORD" and "/" in rel_path else None
    return ("pip", match["version"]) if match else None


def site_packages_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("lib/python3*/site-packages") if p.is_dir() and not p.is_symlink())


def record_paths(root: Path) -> list[str]:
    """Every record file in the env (conda-meta JSON and dist-info RECORD), relative to `root`.

    Lists two kinds of directory only: cheap, whatever the size of the env.
    """
    named = records_by_name(root)
    return sorted(p for paths in named.values() for p in paths if (root / p).is_file())


def records_by_name(root: Path) -> dict[str, list[str]]:
    """The paths where the env's records would be, by package, from the listings of its conda-meta and
    site-packages directories alone (whether each is a file is left to the caller: an update asks about a few
    packages, not every one)."""
    paths = [f"conda-meta/{name}" for name in _listing(root / "conda-meta")]
    for site in site_packages_dirs(root):
        rel = site.relative_to(root).as_posix()
        paths += [f"{rel}/{name}/RECORD" for name in _listing(site) if name.endswith(".dist-info")]
    found: dict[str, list[str]] = {}
    for path in paths:
        name = record_name(path)
        if name:
            found.setdefault(name, []).append(path)
    return found


def _listing(directory: Path) -> list[str]:
    try:
        return os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []


def index_packages(root: str | os.PathLike[str]) -> PackageIndex:
    """Read every record of the env at `root`."""
    root = Path(root)
    index = PackageIndex()
    for rel in record_paths(root):
        name = record_name(rel)
        assert name is not None
        index.records.setdefault(name, []).append(rel)
        index.owners[rel] = name
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if rel.startswith("conda-meta/"):
            files = _conda_files(text)
        else:
            files = _pip_files(text, posixpath.dirname(posixpath.dirname(rel)))
        for path in files:
            index.owners.setdefault(path, name)
    return index


def _conda_files(text: str) -> list[str]:
    try:
        record = json.loads(text)
    except ValueError:
        return []
    return [f for f in record.get("files", []) if isinstance(f, str)]


def _pip_files(text: str, site_packages: str) -> list[str]:
    import csv  # here: only a scan of an env reads RECORD files; a restart does not

    files = []
    for row in csv.reader(io.StringIO(text)):
        if row and row[0]:
            path = posixpath.normpath(posixpath.join(site_packages, row[0]))
            if not path.startswith("../"):
                files.append(path)
    return files
