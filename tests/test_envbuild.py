"""Tests for osl_hooks.demo.envbuild: genuine conda environments built offline.

Nothing is mocked: packages are real ``.conda`` archives, the channel is
indexed and solved by rattler, the environments are installed by rattler and
the Python environment runs a real interpreter and pip.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import conda_package_handling.api as cph
import pytest

from osl_hooks.demo import envbuild
from osl_hooks.demo.envbuild import PLACEHOLDER, PackageSpec

VERSION = "1.0"
TEXT_FILES = ("bin/geodemo", "share/geodemo/geodemo.ini")
BINARY_FILE = "lib/libgeodemo.so"


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _conda_binary_replace(data: bytes, old: bytes, new: bytes) -> bytes:
    """conda's own algorithm (conda.core.portability.binary_replace), as a reference."""

    def replace(match: re.Match[bytes]) -> bytes:
        occurrences = match.group().count(old)
        padding = (len(old) - len(new)) * occurrences
        return match.group().replace(old, new) + b"\0" * padding

    return re.sub(re.escape(old) + rb"([^\0]*?)\0", replace, data)


def _record(prefix: Path, name: str, version: str = VERSION) -> dict:
    matches = sorted((prefix / "conda-meta").glob(f"{name}-{version}-*.json"))
    assert len(matches) == 1, matches
    return json.loads(matches[0].read_text())


# --------------------------------------------------------------------------- #
# fixtures
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def packages() -> list[PackageSpec]:
    return envbuild.demo_packages(VERSION)


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory, packages: list[PackageSpec]) -> Path:
    return envbuild.build_channel(tmp_path_factory.mktemp("channel"), packages)


@pytest.fixture(scope="module")
def geo_env(tmp_path_factory: pytest.TempPathFactory, packages: list[PackageSpec], channel: Path) -> Path:
    return envbuild.build_conda_env(tmp_path_factory.mktemp("envs") / "geo", packages, channel_dir=channel)


@pytest.fixture(scope="module")
def python_env(tmp_path_factory: pytest.TempPathFactory, packages: list[PackageSpec], channel: Path) -> Path:
    return envbuild.build_python_env(tmp_path_factory.mktemp("envs") / "py", packages=packages, channel_dir=channel)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return envbuild.build_wheel(tmp_path_factory.mktemp("wheels"), "oslprobe", "1.0")


# --------------------------------------------------------------------------- #
# package specs and the channel
# --------------------------------------------------------------------------- #


def test_placeholder_is_padded_legacy_placeholder() -> None:
    assert PLACEHOLDER.startswith("/opt/anaconda1anaconda2anaconda3")
    assert len(PLACEHOLDER) == 255


def test_demo_packages_shape(packages: list[PackageSpec]) -> None:
    geodemo, data = packages
    assert (geodemo.name, data.name) == ("geodemo", "geodemo-data")
    assert geodemo.depends == (f"geodemo-data =={VERSION}",)
    assert len([p for p in geodemo.files if p.startswith("share/geodemo/data/")]) >= 30
    assert len([p for p in data.files if p.startswith("share/geodemo-data/")]) == 50
    assert not any(PLACEHOLDER.encode() in data.content(p) for p in data.files)
    assert geodemo.resolved_subdir() != "noarch" and data.resolved_subdir() == "noarch"
    so = geodemo.content(BINARY_FILE)
    assert b"\0" in so[:16] and so.startswith(b"\x7fELF")
    assert f"{PLACEHOLDER}/share/geodemo\0".encode() in so
    assert f"{PLACEHOLDER}/lib/plugins\0".encode() in so


def test_versions_really_differ() -> None:
    v1 = {p.name: p for p in envbuild.demo_packages("1.0")}
    v2 = {p.name: p for p in envbuild.demo_packages("2.0")}
    for name in v1:
        assert v1[name].build != v2[name].build
    assert v2["geodemo"].content("share/geodemo/VERSION") == b"2.0\n"
    assert v2["geodemo"].content(BINARY_FILE) != v1["geodemo"].content(BINARY_FILE)
    # most data files are unchanged between versions, like a real upgrade
    same = [p for p in v1["geodemo-data"].files if v1["geodemo-data"].files[p] == v2["geodemo-data"].files.get(p)]
    assert len(same) == 49


def test_package_spec_validation() -> None:
    with pytest.raises(ValueError, match="not in files"):
        PackageSpec("x", "1", {"a": "b"}, text_prefix_files=["missing"])
    with pytest.raises(ValueError, match="does not contain the placeholder"):
        PackageSpec("x", "1", {"a": "no prefix here"}, text_prefix_files=["a"])
    with pytest.raises(ValueError, match="relative"):
        PackageSpec("x", "1", {"../a": "b"})
    with pytest.raises(ValueError, match="version"):
        PackageSpec("x", "1-2", {"a": "b"})


def test_channel_layout_and_index(channel: Path, packages: list[PackageSpec]) -> None:
    for spec in packages:
        subdir = spec.resolved_subdir()
        assert (channel / subdir / spec.filename).is_file()
        repodata = json.loads((channel / subdir / "repodata.json").read_text())
        record = repodata["packages.conda"][spec.filename]
        assert (record["name"], record["version"], record["build"]) == (spec.name, spec.version, spec.build)
        assert record["depends"] == list(spec.depends)


def test_package_archive_is_genuine(channel: Path, packages: list[PackageSpec], tmp_path: Path) -> None:
    geodemo = packages[0]
    cph.extract(str(channel / geodemo.resolved_subdir() / geodemo.filename), dest_dir=str(tmp_path))
    paths = {p["_path"]: p for p in json.loads((tmp_path / "info/paths.json").read_text())["paths"]}
    assert set(paths) == set(geodemo.files)
    assert paths[BINARY_FILE]["file_mode"] == "binary"
    assert paths[BINARY_FILE]["prefix_placeholder"] == PLACEHOLDER
    for rel, entry in paths.items():
        data = (tmp_path / rel).read_bytes()
        assert data == geodemo.content(rel)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert os.access(tmp_path / "bin/geodemo", os.X_OK)


def test_build_channel_is_idempotent_and_additive(tmp_path: Path) -> None:
    v1 = envbuild.demo_packages("1.0")
    channel = envbuild.build_channel(tmp_path / "ch", v1)
    files = {p: p.stat().st_mtime_ns for p in channel.rglob("*.conda")}
    repodata = (channel / "noarch/repodata.json").read_bytes()
    assert envbuild.build_channel(tmp_path / "ch", v1) == channel
    assert {p: p.stat().st_mtime_ns for p in channel.rglob("*.conda")} == files
    assert (channel / "noarch/repodata.json").read_bytes() == repodata

    envbuild.build_channel(channel, envbuild.demo_packages("2.0"))
    listed = json.loads((channel / "noarch/repodata.json").read_text())["packages.conda"]
    assert sorted(r["version"] for r in listed.values()) == ["1.0", "2.0"]


# --------------------------------------------------------------------------- #
# the conda environment
# --------------------------------------------------------------------------- #


def test_conda_meta_records_placeholders(geo_env: Path, packages: list[PackageSpec]) -> None:
    geodemo = packages[0]
    record = _record(geo_env, "geodemo")
    assert record["build"] == geodemo.build
    assert record["requested_specs"] == [geodemo.match_spec]
    assert set(record["files"]) == set(geodemo.files)
    paths = {p["_path"]: p for p in record["paths_data"]["paths"]}
    for rel in TEXT_FILES:
        assert paths[rel]["prefix_placeholder"] == PLACEHOLDER
        assert paths[rel]["file_mode"] == "text"
    assert paths[BINARY_FILE]["prefix_placeholder"] == PLACEHOLDER
    assert paths[BINARY_FILE]["file_mode"] == "binary"
    assert "prefix_placeholder" not in paths["share/geodemo/VERSION"]
    # the data package too, with ~50 files and no placeholders
    data = _record(geo_env, "geodemo-data")
    assert len(data["paths_data"]["paths"]) == 50
    assert not any("prefix_placeholder" in p for p in data["paths_data"]["paths"])
    assert (geo_env / "conda-meta" / "history").is_file()
    # world-readable, as conda writes them (rattler alone leaves 0600)
    for meta in (geo_env / "conda-meta").glob("*.json"):
        assert meta.stat().st_mode & 0o044 == 0o044


def test_prefix_is_longer_than_legacy_placeholder(geo_env: Path) -> None:
    # Otherwise the binary relocation below would prove little.
    assert len(str(geo_env)) > len(envbuild.CONDA_PLACEHOLDER)


def test_text_files_contain_real_prefix(geo_env: Path) -> None:
    for rel in TEXT_FILES:
        text = (geo_env / rel).read_text()
        assert "anaconda1anaconda2anaconda3" not in text
        assert f"{geo_env}/share/geodemo" in text
    assert f"data_dir = {geo_env}/share/geodemo\n" in (geo_env / "share/geodemo/geodemo.ini").read_text()
    out = subprocess.run([geo_env / "bin/geodemo"], capture_output=True, text=True, check=True).stdout
    assert out == f"{geo_env}/share/geodemo\n"


def test_binary_file_relocated_in_place(geo_env: Path, packages: list[PackageSpec]) -> None:
    original = packages[0].content(BINARY_FILE)
    installed = (geo_env / BINARY_FILE).read_bytes()
    assert len(installed) == len(original)
    assert PLACEHOLDER.encode() not in installed
    assert b"anaconda1anaconda2anaconda3" not in installed
    assert f"{geo_env}/share/geodemo\0".encode() in installed
    assert f"{geo_env}/lib/plugins\0".encode() in installed
    assert installed == _conda_binary_replace(original, PLACEHOLDER.encode(), str(geo_env).encode())


def test_unmodified_files_and_activation(geo_env: Path, packages: list[PackageSpec]) -> None:
    geodemo, data = packages
    assert (geo_env / "share/geodemo/VERSION").read_text() == f"{VERSION}\n"
    for rel in data.files:
        assert (geo_env / rel).read_bytes() == data.content(rel)
    # files are copies, not hard links into rattler's shared package cache
    assert (geo_env / "share/geodemo-data/VERSION").stat().st_nlink == 1
    script = geo_env / "etc/conda/activate.d/geodemo-activate.sh"
    assert (geo_env / "etc/conda/deactivate.d/geodemo-deactivate.sh").is_file()
    out = subprocess.run(
        ["sh", "-c", f'. "{script}"; echo "$GEODEMO_DATA"'],
        env=_clean_env(CONDA_PREFIX=str(geo_env)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == f"{geo_env}/share/geodemo\n"


def test_upgrade_in_place_to_v2(tmp_path: Path) -> None:
    prefix = envbuild.build_conda_env(tmp_path / "env")
    envbuild.build_conda_env(prefix, envbuild.demo_packages("2.0"))
    names = sorted(p.name for p in (prefix / "conda-meta").glob("*.json"))
    assert [re.sub(r"-h[0-9a-f]{8}_0\.json$", "", n) for n in names] == ["geodemo-2.0", "geodemo-data-2.0"]
    assert (prefix / "share/geodemo/VERSION").read_text() == "2.0\n"
    assert (prefix / "share/geodemo-data/VERSION").read_text() == "2.0\n"
    assert "version = 2.0" in (prefix / "share/geodemo/geodemo.ini").read_text()


def test_legacy_short_placeholder_rejects_long_prefix(tmp_path: Path) -> None:
    """Why PLACEHOLDER is padded: the 32-char conda placeholder cannot take a long prefix."""
    ph = envbuild.CONDA_PLACEHOLDER
    short = PackageSpec(
        "shortph",
        "1.0",
        {"lib/libx.so": f"\x7fELF\0{ph}/share\0".encode()},
        binary_prefix_files=["lib/libx.so"],
        placeholder=ph,
    )
    prefix = tmp_path / ("p" * 40)
    with pytest.raises(Exception, match="longer than the placeholder"):
        envbuild.build_conda_env(prefix, [short])


def test_works_inside_running_event_loop(tmp_path: Path) -> None:
    async def main() -> Path:
        return envbuild.build_conda_env(tmp_path / "env")

    prefix = asyncio.run(main())
    assert _record(prefix, "geodemo")


# --------------------------------------------------------------------------- #
# the wheel and the Python environment
# --------------------------------------------------------------------------- #


def test_wheel_is_valid(wheel: Path, tmp_path: Path) -> None:
    assert wheel.name == "oslprobe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert {
            "oslprobe.py",
            "oslprobe-1.0.dist-info/METADATA",
            "oslprobe-1.0.dist-info/WHEEL",
            "oslprobe-1.0.dist-info/RECORD",
        } == names
        rows = [line.split(",") for line in zf.read("oslprobe-1.0.dist-info/RECORD").decode().splitlines()]
        assert {r[0] for r in rows} == names
        for path, digest, size in rows:
            if path.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(path)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data)
        assert "VERSION = '1.0'" in zf.read("oslprobe.py").decode()
    # deterministic
    assert envbuild.build_wheel(tmp_path, "oslprobe", "1.0").read_bytes() == wheel.read_bytes()


def test_python_env_runs_ipykernel(python_env: Path) -> None:
    out = subprocess.run(
        [python_env / "bin/python", "-c", "import ipykernel, sys; print(sys.prefix); print(ipykernel.__file__)"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == str(python_env)
    assert out[1].startswith(str(python_env) + "/")
    assert (python_env / "pyvenv.cfg").is_file()
    assert (python_env / "share/jupyter/kernels/python3/kernel.json").is_file()


def test_python_env_is_also_a_conda_env(python_env: Path, packages: list[PackageSpec]) -> None:
    assert _record(python_env, "geodemo")["build"] == packages[0].build
    assert (python_env / "etc/conda/activate.d/geodemo-activate.sh").is_file()
    assert f"{python_env}/share/geodemo" in (python_env / "bin/geodemo").read_text()
    installed = (python_env / BINARY_FILE).read_bytes()
    assert len(installed) == len(packages[0].content(BINARY_FILE))
    assert f"{python_env}/share/geodemo\0".encode() in installed


def test_pip_installs_built_wheel_into_python_env(python_env: Path, wheel: Path) -> None:
    subprocess.run(
        [python_env / "bin/pip", "install", "--no-index", "--disable-pip-version-check", "-q", wheel],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    out = subprocess.run(
        [python_env / "bin/python", "-c", "import oslprobe; print(oslprobe.VERSION, oslprobe.__file__)"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "1.0"
    assert out[1].startswith(str(python_env) + "/lib/")
