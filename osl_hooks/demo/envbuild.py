"""Build *genuine* conda environments offline, for the test suite and the local demo.

Why this module exists
----------------------
osl-hooks syncs conda environments that were baked into a JupyterHub
single-user image into the user's home, relocates them and registers their
kernels.  Testing that honestly needs real conda environments: a
``conda-meta/<name>-<version>-<build>.json`` record per package with
``paths_data`` (sha256, sizes, ``prefix_placeholder``, ``file_mode``), text
files and binary files in which the build-time placeholder prefix has really
been replaced by the install prefix, ``etc/conda/activate.d`` scripts, ...
Hand-written imitations drift from what conda/mamba/pixi produce, so instead we
build tiny conda packages and let a real conda installer install them:

* there is no ``conda`` package on PyPI, but ``py-rattler`` (the Rust
  implementation of conda behind pixi/rattler-build) is, and it can solve and
  install from a local ``file://`` channel with no network at all;
* ``conda-package-handling`` writes real ``.conda`` archives;
* ``rattler.index.index_fs`` writes the channel's ``repodata.json``.

Everything is content-addressed, so repeated builds are cheap: a package's
build string is ``h<hash of its content>_0``, a channel built for a set of
packages without an explicit ``channel_dir`` lives in a per-content directory
of the cache, and rattler's package cache is shared.  Building a channel and
an environment of the demo packages takes well under a second once the
channel exists (about 0.3 s from scratch).

The cache lives in ``$OSL_HOOKS_ENVBUILD_CACHE`` or, by default, in
``<tempdir>/osl-hooks-envbuild-<uid>``; it can be deleted at any time.

Typical use::

    from osl_hooks.demo import envbuild
    prefix = envbuild.build_conda_env(tmp / "geo")              # demo packages, v1.0
    envbuild.build_conda_env(tmp / "geo", envbuild.demo_packages("2.0"))  # upgrade in place
    py = envbuild.build_python_env(tmp / "py")                  # venv + ipykernel + conda packages

Placeholder length -- read this before writing your own binary packages
------------------------------------------------------------------------
conda replaces the placeholder inside *binary* files in place: the C string
that contains it is rewritten and NUL-padded so the file keeps its size.  The
new prefix therefore can never be longer than the placeholder; rattler fails
with "target prefix cannot be longer than the placeholder prefix" otherwise.
conda's historical placeholder ``/opt/anaconda1anaconda2anaconda3``
(:data:`CONDA_PLACEHOLDER`) is only 32 characters, shorter than pytest's
``tmp_path`` or a path below a home directory.  That is why conda-build and
rattler-build build packages in a prefix padded to 255 characters, and why
:data:`PLACEHOLDER` here is that legacy string padded with ``_placehold`` to
255 characters, like conda-build's ``..._h_env_placehold_placehold...``.  The
padding also matters *after* installation: a relocation tool moving an
installed env to a longer path can only grow binary strings into the NUL
padding the original placeholder left behind.  ``PLACEHOLDER`` starts with
``CONDA_PLACEHOLDER``, so "does this file still contain the placeholder" checks
written against either string keep working.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "CONDA_PLACEHOLDER",
    "PLACEHOLDER",
    "PackageSpec",
    "build_channel",
    "build_conda_env",
    "build_python_env",
    "build_wheel",
    "build_wheelhouse",
    "cache_root",
    "demo_packages",
]

CONDA_PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3"
"""conda's legacy default placeholder (``conda.base.constants.PREFIX_PLACEHOLDER``), 32 chars."""

PLACEHOLDER_LENGTH = 255
"""Length of :data:`PLACEHOLDER`; the prefix length conda-build and rattler-build use."""

PLACEHOLDER = (CONDA_PLACEHOLDER + "_placehold" * 30)[:PLACEHOLDER_LENGTH]
"""The placeholder prefix embedded in package payloads (see the module docstring).

``CONDA_PLACEHOLDER`` padded to 255 characters so binary prefix replacement
works for any realistic install prefix (up to 255 characters).
"""

# Bump when the on-disk package layout produced by this module changes, so
# content-addressed caches never serve packages built by older code.
_FORMAT_VERSION = 1

_NAME_RE = re.compile(r"^[a-z0-9_][a-z0-9_.+-]*$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9_.+!]+$")


def cache_root() -> Path:
    """Directory holding content-addressed channels and rattler's package cache.

    ``$OSL_HOOKS_ENVBUILD_CACHE`` if set, else ``<tempdir>/osl-hooks-envbuild-<uid>``.
    Keeping it out of ``~/.cache`` means tests never touch the real user's
    caches; being content-addressed, it is safe to share between test runs and
    parallel workers, and safe to delete.
    """
    env = os.environ.get("OSL_HOOKS_ENVBUILD_CACHE")
    root = Path(env) if env else Path(tempfile.gettempdir()) / f"osl-hooks-envbuild-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True)
    return root


# --------------------------------------------------------------------------- #
# Package description
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class PackageSpec:
    """A tiny conda package, described by its file contents.

    Attributes:
        name: conda package name (lower case).
        version: conda version string.  It ends up in the package file name
            and in ``conda-meta/<name>-<version>-<build>.json``.
        files: relative path -> content.  ``str`` is written as UTF-8.  Content
            may embed :attr:`placeholder` (by default :data:`PLACEHOLDER`);
            list such paths in ``text_prefix_files`` or ``binary_prefix_files``
            or the installer will leave the placeholder in place, exactly as
            conda would.
        text_prefix_files: paths whose content embeds the placeholder as
            text.  Recorded in ``info/paths.json`` with ``file_mode: text``; the
            installer substitutes the prefix (the file size changes).
        binary_prefix_files: paths that embed the placeholder inside
            NUL-terminated C strings.  Recorded with ``file_mode: binary``; the
            installer rewrites each C string in place and pads it with NULs, so
            the file keeps its size.  The install prefix must not be longer
            than the placeholder.
        depends: conda match specs of run dependencies (``"geodemo-data ==1.0"``).
        executable: paths to install with mode 0o755 (others get 0o644).
        placeholder: the placeholder recorded in ``paths.json`` for the prefix
            files.  Use :data:`CONDA_PLACEHOLDER` to build a package that can
            only be installed into prefixes of at most 32 characters (e.g. to
            test how a relocation copes with a too-long target).
        subdir: channel subdirectory.  ``None`` picks ``noarch`` (as
            ``noarch: generic``) unless the package has binary prefix files, in
            which case it is an architecture-specific package for the current
            platform (``linux-64`` here), like a real compiled library.

    The build string is derived from the content (``h<8 hex>_0``), so two specs
    with the same name and version but different files never collide in a
    channel or in rattler's package cache.
    """

    name: str
    version: str
    files: Mapping[str, bytes | str]
    text_prefix_files: Sequence[str] = ()
    binary_prefix_files: Sequence[str] = ()
    depends: Sequence[str] = ()
    executable: Sequence[str] = ()
    placeholder: str = PLACEHOLDER
    subdir: str | None = None
    # Cached digest; computed in __post_init__.
    _digest: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Freeze the containers so the content digest stays truthful.
        object.__setattr__(self, "files", MappingProxyType(dict(self.files)))
        for attr in ("text_prefix_files", "binary_prefix_files", "depends", "executable"):
            value = getattr(self, attr)
            if isinstance(value, str):
                raise TypeError(f"{attr} must be a sequence of strings, not a string")
            object.__setattr__(self, attr, tuple(value))

        if not _NAME_RE.match(self.name):
            raise ValueError(f"invalid conda package name {self.name!r}")
        if not _VERSION_RE.match(self.version):
            raise ValueError(f"invalid conda version {self.version!r} (no '-' or spaces)")
        if not self.placeholder.startswith("/"):
            raise ValueError("placeholder must be an absolute path")
        for path in self.files:
            p = Path(path)
            if p.is_absolute() or ".." in p.parts or "\\" in path or path != p.as_posix():
                raise ValueError(f"file path must be a normalized relative POSIX path: {path!r}")
            if p.parts[0] in ("info", "conda-meta"):
                raise ValueError(f"{path!r}: info/ and conda-meta/ are reserved")
        for attr in ("text_prefix_files", "binary_prefix_files", "executable"):
            missing = [p for p in getattr(self, attr) if p not in self.files]
            if missing:
                raise ValueError(f"{attr} lists paths that are not in files: {missing}")
        both = set(self.text_prefix_files) & set(self.binary_prefix_files)
        if both:
            raise ValueError(f"paths cannot be both text and binary prefix files: {sorted(both)}")
        ph = self.placeholder.encode()
        for path in (*self.text_prefix_files, *self.binary_prefix_files):
            if ph not in self.content(path):
                raise ValueError(f"{path!r} is listed as a prefix file but does not contain the placeholder")
        for path in self.text_prefix_files:
            try:
                self.content(path).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"text prefix file {path!r} is not UTF-8") from exc
        object.__setattr__(self, "_digest", self._compute_digest())

    # -- derived names ---------------------------------------------------- #

    def content(self, path: str) -> bytes:
        """Content of ``path`` as bytes (``str`` content is UTF-8 encoded)."""
        data = self.files[path]
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)

    @property
    def digest(self) -> str:
        """sha256 over everything that ends up in the package."""
        return self._digest

    @property
    def build(self) -> str:
        """Content-derived build string, e.g. ``h1a2b3c4d_0``."""
        return f"h{self._digest[:8]}_0"

    @property
    def filename(self) -> str:
        """``<name>-<version>-<build>.conda``."""
        return f"{self.name}-{self.version}-{self.build}.conda"

    @property
    def match_spec(self) -> str:
        """A match spec selecting exactly this package: ``name ==version build``."""
        return f"{self.name} =={self.version} {self.build}"

    def resolved_subdir(self) -> str:
        """The channel subdir this package is written to (see ``subdir``)."""
        if self.subdir is not None:
            return self.subdir
        return _current_subdir() if self.binary_prefix_files else "noarch"

    def _compute_digest(self) -> str:
        payload = {
            "format": _FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "files": {p: hashlib.sha256(self.content(p)).hexdigest() for p in sorted(self.files)},
            "text": sorted(self.text_prefix_files),
            "binary": sorted(self.binary_prefix_files),
            "depends": list(self.depends),
            "executable": sorted(self.executable),
            "placeholder": self.placeholder,
            "subdir": self.subdir,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- #
# Demo package set
# --------------------------------------------------------------------------- #


def _fake_shared_object(version: str) -> bytes:
    """Bytes that look like a small ELF shared library embedding the prefix.

    The two NUL-terminated C strings ``PLACEHOLDER/share/geodemo`` and
    ``PLACEHOLDER/lib/plugins`` are what a compiled library typically embeds
    (data and plugin search paths); the surrounding bytes include NULs and
    non-UTF-8 bytes so any tool treating the file as text would corrupt it.
    """
    header = (
        b"\x7fELF\x02\x01\x01\x00"
        + b"\x00" * 8  # e_ident: 64-bit, little endian
        + b"\x03\x00\x3e\x00\x01\x00\x00\x00"  # ET_DYN, x86-64
        + bytes(range(256))
    )
    strings = (
        f"geodemo {version}\0".encode()
        + f"{PLACEHOLDER}/share/geodemo\0".encode()
        + f"{PLACEHOLDER}/lib/plugins\0".encode()
        + b"GEODEMO_DATA\0"
    )
    trailer = bytes((i * 37 + 11) % 256 for i in range(512)) + b"\x00\xff\xfe\x00"
    return header + strings + trailer


def demo_packages(version: str = "1.0") -> list[PackageSpec]:
    """The default demo set: a small "geospatial" library plus its data package.

    * ``geodemo`` (architecture-specific, depends on ``geodemo-data ==<version>``):
      ``bin/geodemo`` (shell script, text prefix file, prints
      ``<prefix>/share/geodemo``), ``share/geodemo/geodemo.ini`` (text prefix
      file), ``lib/libgeodemo.so`` (binary prefix file),
      ``share/geodemo/VERSION``, activate/deactivate scripts exporting
      ``GEODEMO_DATA`` and 36 small data files under ``share/geodemo/data/``.
    * ``geodemo-data`` (``noarch: generic``): 50 small files under
      ``share/geodemo-data/`` (none embeds the prefix) and a ``VERSION`` file.

    ``version`` is written into ``VERSION`` files, the script, the ini file,
    the library and the changelogs, so an "image v2" built with
    ``demo_packages("2.0")`` genuinely differs from v1, while most data files
    stay byte-identical between versions (as in real upgrades).
    """
    geodemo_files: dict[str, bytes | str] = {
        "bin/geodemo": (
            "#!/bin/sh\n"
            f"# geodemo {version}: print the directory holding geodemo's data\n"
            f"echo {PLACEHOLDER}/share/geodemo\n"
        ),
        "share/geodemo/geodemo.ini": (
            "[geodemo]\n"
            f"version = {version}\n"
            f"data_dir = {PLACEHOLDER}/share/geodemo\n"
            f"plugin_dir = {PLACEHOLDER}/lib/plugins\n"
        ),
        "share/geodemo/VERSION": f"{version}\n",
        "lib/libgeodemo.so": _fake_shared_object(version),
        "etc/conda/activate.d/geodemo-activate.sh": 'export GEODEMO_DATA="${CONDA_PREFIX}/share/geodemo"\n',
        "etc/conda/deactivate.d/geodemo-deactivate.sh": "unset GEODEMO_DATA\n",
        "share/geodemo/data/CHANGELOG.txt": f"geodemo {version}\n- demo release {version}\n",
    }
    for i in range(35):
        code = 4000 + i * 7
        geodemo_files[f"share/geodemo/data/epsg-{code}.txt"] = (
            f"# EPSG:{code}\n+proj=tmerc +lat_0=0 +lon_0={i * 3 - 51} +k=0.9996 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m\n"
        )
    data_files: dict[str, bytes | str] = {
        "share/geodemo-data/VERSION": f"{version}\n",
    }
    for i in range(49):
        data_files[f"share/geodemo-data/tiles/tile-{i:03d}.txt"] = (
            f"tile {i:03d}\nbbox = {i % 7 * 10}, {i // 7 * 10}, {i % 7 * 10 + 10}, {i // 7 * 10 + 10}\n"
            + "0123456789abcdef" * (i % 5 + 1)
            + "\n"
        )
    return [
        PackageSpec(
            name="geodemo",
            version=version,
            files=geodemo_files,
            text_prefix_files=("bin/geodemo", "share/geodemo/geodemo.ini"),
            binary_prefix_files=("lib/libgeodemo.so",),
            depends=(f"geodemo-data =={version}",),
            executable=("bin/geodemo",),
        ),
        PackageSpec(name="geodemo-data", version=version, files=data_files),
    ]


# --------------------------------------------------------------------------- #
# Channel
# --------------------------------------------------------------------------- #


def _current_subdir() -> str:
    from rattler import Subdir

    return str(Subdir.current())


def _run_async(coro: Any) -> Any:
    """``asyncio.run`` that also works when called from inside a running loop.

    rattler's API is async-only; callers (pytest, the demo, a notebook) may or
    may not already run an event loop, so in the latter case the coroutine is
    run on a fresh loop in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Exclusive advisory lock, so parallel test workers can share a channel."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _index_json(spec: PackageSpec, subdir: str) -> dict[str, Any]:
    index: dict[str, Any] = {
        "name": spec.name,
        "version": spec.version,
        "build": spec.build,
        "build_number": 0,
        "depends": list(spec.depends),
        "license": "BSD-3-Clause",
        "subdir": subdir,
        "timestamp": int(time.time() * 1000),
    }
    if subdir == "noarch":
        index["noarch"] = "generic"
    elif "-" in subdir:
        plat, arch = subdir.split("-", 1)
        index["platform"] = plat
        index["arch"] = {"64": "x86_64", "32": "x86"}.get(arch, arch)
    return index


def _write_package(spec: PackageSpec, subdir: str, target: Path) -> None:
    """Write ``spec`` as a ``.conda`` archive at ``target`` (atomically)."""
    import conda_package_handling.api as cph

    text = set(spec.text_prefix_files)
    binary = set(spec.binary_prefix_files)
    executable = set(spec.executable)
    with tempfile.TemporaryDirectory(prefix="osl-envbuild-") as tmp:
        stage = Path(tmp) / "stage"
        paths = []
        has_prefix = []
        for rel in sorted(spec.files):
            data = spec.content(rel)
            dest = stage / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            dest.chmod(0o755 if rel in executable else 0o644)
            entry: dict[str, Any] = {
                "_path": rel,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
            if rel in text or rel in binary:
                mode = "text" if rel in text else "binary"
                entry["prefix_placeholder"] = spec.placeholder
                entry["file_mode"] = mode
                has_prefix.append(f"{spec.placeholder} {mode} {rel}")
            paths.append(entry)
        info = stage / "info"
        info.mkdir(parents=True, exist_ok=True)
        info_files = {
            "info/index.json": json.dumps(_index_json(spec, subdir), indent=2, sort_keys=True),
            "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=2, sort_keys=True),
            "info/files": "".join(f"{p}\n" for p in sorted(spec.files)),
            "info/about.json": json.dumps(
                {"summary": f"{spec.name} demo package built by osl_hooks.demo.envbuild"}, indent=2
            ),
        }
        if has_prefix:
            # Legacy companion of paths.json; conda-build still writes it.
            info_files["info/has_prefix"] = "".join(f"{line}\n" for line in has_prefix)
        for rel, content in info_files.items():
            (stage / rel).write_text(content + ("" if content.endswith("\n") else "\n"))
        out = Path(tmp) / spec.filename
        cph.create(
            str(stage),
            sorted(info_files) + sorted(spec.files),
            str(out),
            compression_level=1,  # the zstd-19 default takes seconds per package
        )
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        shutil.copyfile(out, partial)
        os.replace(partial, target)


def _channel_is_indexed(channel_dir: Path, wanted: dict[str, set[str]]) -> bool:
    for subdir, filenames in wanted.items():
        repodata = channel_dir / subdir / "repodata.json"
        try:
            listed = json.loads(repodata.read_text()).get("packages.conda", {})
        except (OSError, ValueError):
            return False
        if not filenames <= set(listed):
            return False
    return (channel_dir / "noarch" / "repodata.json").is_file()


def build_channel(channel_dir: Path, packages: Sequence[PackageSpec]) -> Path:
    """Write ``packages`` as ``.conda`` files into a local channel and index it.

    Packages go to ``channel_dir/noarch`` or ``channel_dir/<current platform>``
    (see :meth:`PackageSpec.resolved_subdir`); ``noarch/`` always exists
    because every conda channel must have it.  The function is additive and
    idempotent: package files already present (same content-derived file
    name, hence same content) are kept, other packages already in the channel
    are kept too (so one channel can serve "image v1" and "image v2"), and the
    channel is re-indexed (``index_fs(..., force=True)``) only when its
    ``repodata.json`` does not list every requested package yet.  A lock file
    (``channel_dir/.envbuild.lock``) makes concurrent calls safe.

    Returns ``channel_dir`` as an absolute path.
    """
    from rattler.index import index_fs

    channel_dir = Path(channel_dir).absolute()
    names = [(p.name, p.version, p.build) for p in packages]
    if len(set(names)) != len(names):
        raise ValueError("duplicate packages")
    wanted: dict[str, set[str]] = {"noarch": set()}
    for spec in packages:
        wanted.setdefault(spec.resolved_subdir(), set()).add(spec.filename)

    with _locked(channel_dir / ".envbuild.lock"):
        for subdir in wanted:
            (channel_dir / subdir).mkdir(parents=True, exist_ok=True)
        for spec in packages:
            target = channel_dir / spec.resolved_subdir() / spec.filename
            if not target.is_file():
                _write_package(spec, spec.resolved_subdir(), target)
        if not _channel_is_indexed(channel_dir, wanted):
            _run_async(index_fs(channel_dir, force=True))
        if not _channel_is_indexed(channel_dir, wanted):  # pragma: no cover - rattler bug guard
            raise RuntimeError(f"indexing {channel_dir} did not list all packages")
    return channel_dir


def _default_channel_dir(packages: Sequence[PackageSpec]) -> Path:
    key = hashlib.sha256("\n".join(sorted(p.digest for p in packages)).encode()).hexdigest()[:16]
    return cache_root() / "channels" / key


# --------------------------------------------------------------------------- #
# Environments
# --------------------------------------------------------------------------- #


async def _solve_and_install(prefix: Path, channel_dir: Path, specs: Sequence[str], allow_hardlinks: bool) -> None:
    import rattler
    from rattler import Channel, Config, Gateway, MatchSpec, SourceConfig, Subdir

    cache = cache_root()
    gateway = Gateway(
        cache_dir=cache / "repodata",
        # The channel is local and may be re-indexed between calls: never
        # answer from a repodata cache.
        default_config=SourceConfig(cache_action="no-cache"),
    )
    records = await rattler.solve(
        sources=[Channel(channel_dir.as_uri())],
        specs=list(specs),
        gateway=gateway,
        platforms=[Subdir.current(), Subdir("noarch")],
    )
    # Copy files out of the package cache instead of hard-linking them: tests
    # (and the relocation engine) modify installed files in place, which must
    # never leak into the shared cache or into other environments.
    config = Config.from_toml("allow-hard-links = false" if not allow_hardlinks else "")
    await rattler.install(
        records,
        target_prefix=prefix,
        cache_dir=cache / "pkgs",
        show_progress=False,
        execute_link_scripts=False,
        # install() hands these to the Rust layer unconverted: it needs the
        # inner PyMatchSpec, not the rattler.MatchSpec wrapper.
        requested_specs=[MatchSpec(s)._match_spec for s in specs],
        config=config,
    )


def _fix_conda_meta_permissions(prefix: Path) -> None:
    """Make ``conda-meta/*.json`` world-readable, as conda and mamba write them.

    rattler writes these records atomically through a temporary file and
    leaves them mode 0600.  In an image built as root that would hide them
    from the notebook user, which is not what real images look like.
    """
    meta = prefix / "conda-meta"
    for record in meta.glob("*.json"):
        mode = stat.S_IMODE(record.stat().st_mode)
        if mode & 0o044 != 0o044:
            record.chmod(mode | 0o644)


def build_conda_env(
    prefix: Path,
    packages: Sequence[PackageSpec] | None = None,
    *,
    channel_dir: Path | None = None,
    specs: Sequence[str] | None = None,
    allow_hardlinks: bool = False,
) -> Path:
    """Create (or update) a genuine conda environment at ``prefix`` with rattler.

    Args:
        prefix: target directory.  It may be missing, empty, an existing conda
            env or any other non-empty directory (e.g. a venv): rattler only
            adds ``conda-meta/`` and package files and never removes files it
            did not install.  Use a prefix of at most
            ``len(PLACEHOLDER)`` (255) characters when packages have binary
            prefix files.
        packages: packages to put in the channel; ``None`` means
            :func:`demo_packages` ``()``.  Pass ``[]`` together with
            ``channel_dir`` and ``specs`` to install from an existing channel.
        channel_dir: channel to (add the packages to and) install from.  When
            ``None`` a content-addressed channel in :func:`cache_root` is used.
        specs: conda match specs to solve for.  ``None`` pins exactly the given
            packages (``name ==version build``).
        allow_hardlinks: let rattler hard-link unmodified files from its
            package cache like conda does by default.  Off by default, so every
            environment owns its files (see ``_solve_and_install``).

    Semantics are those of a conda transaction (``conda install`` into a
    prefix, computed from the solve): if ``prefix`` already is a conda env
    built from an older ``demo_packages("1.0")``, calling this with
    ``demo_packages("2.0")`` unlinks the 1.0 packages and links 2.0 ones, which
    is how an "image v2" env can be produced from a v1 env.  Installed conda
    packages that are not part of the solve are removed, as with
    ``conda create``/pixi; add them to ``specs`` to keep them.

    The result has everything a real conda/mamba/pixi env has: a
    ``conda-meta/<name>-<version>-<build>.json`` per package with
    ``paths_data`` (``prefix_placeholder``/``file_mode`` for prefix files,
    ``sha256_in_prefix`` of the relocated files), ``requested_specs``,
    ``link`` and ``extracted_package_dir`` pointing into the package cache,
    ``conda-meta/history``, and (rattler-specific) a ``CACHEDIR.TAG`` file.
    Link scripts are not run.

    Returns ``prefix`` as an absolute path.
    """
    prefix = Path(prefix).absolute()
    if len(str(prefix)) > PLACEHOLDER_LENGTH:
        raise ValueError(f"prefix longer than {PLACEHOLDER_LENGTH} characters: {prefix}")
    pkgs = demo_packages() if packages is None else list(packages)
    if channel_dir is None:
        if not pkgs:
            raise ValueError("give packages, or channel_dir and specs")
        channel_dir = _default_channel_dir(pkgs)
    channel_dir = Path(channel_dir).absolute()
    if pkgs:
        build_channel(channel_dir, pkgs)
    if specs is None:
        if not pkgs:
            raise ValueError("specs are required when no packages are given")
        specs = [p.match_spec for p in pkgs]
    if isinstance(specs, str):
        raise TypeError("specs must be a sequence of match specs, not a string")
    prefix.mkdir(parents=True, exist_ok=True)
    _run_async(_solve_and_install(prefix, channel_dir, list(specs), allow_hardlinks))
    _fix_conda_meta_permissions(prefix)
    return prefix


def _subprocess_env() -> dict[str, str]:
    """Environment for child Pythons: no leaking of the parent's import path."""
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"):
        env.pop(var, None)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(cmd: Sequence[str | os.PathLike[str]], what: str) -> None:
    proc = subprocess.run(
        [str(c) for c in cmd], env=_subprocess_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )


def build_python_env(
    prefix: Path,
    *,
    ipykernel: bool = True,
    packages: Sequence[PackageSpec] | None = None,
    wheelhouse: Path | None = None,
    channel_dir: Path | None = None,
) -> Path:
    """A working Python environment that is *also* a conda environment.

    Steps:

    1. ``<sys.executable> -m venv <prefix>`` (with pip, via ensurepip).
       ``bin/python`` is a symlink to the base interpreter, so the env works as
       long as that interpreter exists at the same path -- true inside an
       image, but it means the env is not self-contained like a conda
       ``python`` package would be.
    2. if ``ipykernel``: ``<prefix>/bin/python -m pip install ipykernel``, from
       ``wheelhouse`` with ``--no-index --find-links`` when given (fully
       offline, see :func:`build_wheelhouse`), otherwise from the configured
       package index.  ipykernel's wheel also installs the data file
       ``share/jupyter/kernels/python3/kernel.json`` into the prefix.
    3. :func:`build_conda_env` into the *same* prefix (``packages`` default
       to :func:`demo_packages`), adding ``conda-meta/``,
       ``etc/conda/activate.d/`` and the placeholder-relocated files.

    rattler installs into an existing non-empty directory without complaint
    (verified with py-rattler 0.28): with no ``conda-meta/`` it treats the
    prefix as an empty environment, links the package files next to the
    venv's files and leaves everything else untouched; nothing of the venv
    clobbers package paths.  No fallback is therefore needed.

    Caveat for relocation: the venv part (``pyvenv.cfg``, ``bin/activate``,
    the shebangs of ``bin/pip``, ``bin/jupyter*`` ...) hard-codes the prefix
    but is not described in any ``conda-meta`` record; only the conda
    packages' files carry placeholders/``paths_data``.

    Returns ``prefix`` as an absolute path.
    """
    prefix = Path(prefix).absolute()
    _run([sys.executable, "-m", "venv", prefix], "creating the venv")
    if ipykernel:
        cmd: list[str | os.PathLike[str]] = [
            prefix / "bin" / "python",
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
        ]
        if wheelhouse is not None:
            cmd += ["--no-index", "--find-links", Path(wheelhouse).absolute()]
        cmd.append("ipykernel")
        _run(cmd, "installing ipykernel")
    build_conda_env(prefix, packages, channel_dir=channel_dir)
    return prefix


def build_wheelhouse(dest_dir: Path, requirements: Sequence[str] = ("ipykernel",)) -> Path:
    """Download wheels for ``requirements`` (and dependencies) into ``dest_dir``.

    The one step that needs a package index: ``python -m pip download`` for
    the running interpreter (the one :func:`build_python_env` bases its venv
    on).  Do it once, then ``build_python_env(..., wheelhouse=dest_dir)`` is
    fully offline.  Returns ``dest_dir`` as an absolute path.
    """
    dest_dir = Path(dest_dir).absolute()
    dest_dir.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "--only-binary",
            ":all:",
            "--dest",
            dest_dir,
            *requirements,
        ],
        "downloading wheels",
    )
    return dest_dir


# --------------------------------------------------------------------------- #
# Wheel
# --------------------------------------------------------------------------- #


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(dest_dir: Path, name: str = "oslprobe", version: str = "1.0") -> Path:
    """Write a tiny pure-Python wheel ``<name>-<version>-py3-none-any.whl``.

    Built with :mod:`zipfile` alone -- no build backend, no network -- so
    tests can check that ``pip install`` works inside a synced/relocated env.
    It contains one module ``<name>.py`` (``-``/``.`` replaced by ``_``)
    defining ``VERSION = "<version>"`` and a ``.dist-info`` with valid
    ``METADATA``, ``WHEEL`` and ``RECORD`` (urlsafe-base64 sha256, no
    padding).  The archive is deterministic (fixed timestamps), so the same
    arguments always give the same bytes.  Returns the wheel's path.
    """
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", name):
        raise ValueError(f"invalid distribution name {name!r}")
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*([a-z]+[0-9]+)?", version):
        raise ValueError(f"use a simple PEP 440 version, got {version!r}")
    module = re.sub(r"[-.]+", "_", name)
    dist = re.sub(r"[-_.]+", "_", name)  # wheel file name escaping
    dist_info = f"{dist}-{version}.dist-info"
    files: dict[str, bytes] = {
        f"{module}.py": (
            f'"""{name}: probe package built by osl_hooks.demo.envbuild.build_wheel."""\n\nVERSION = {version!r}\n'
        ).encode(),
        f"{dist_info}/METADATA": (
            "Metadata-Version: 2.1\n"
            f"Name: {name}\n"
            f"Version: {version}\n"
            "Summary: Tiny probe package for osl-hooks tests\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: osl_hooks.demo.envbuild\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = io.StringIO()
    for path, data in files.items():
        record.write(f"{path},{_record_hash(data)},{len(data)}\n")
    record.write(f"{dist_info}/RECORD,,\n")
    files[f"{dist_info}/RECORD"] = record.getvalue().encode()

    dest_dir = Path(dest_dir).absolute()
    dest_dir.mkdir(parents=True, exist_ok=True)
    wheel = dest_dir / f"{dist}-{version}-py3-none-any.whl"
    partial = wheel.with_name(f".{wheel.name}.partial-{os.getpid()}")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    os.replace(partial, wheel)
    return wheel
