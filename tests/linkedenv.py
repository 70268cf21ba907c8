"""Genuine envs for linked-mode tests: compiled code that loads a shared library via $ORIGIN, and big wheels.

`native_package(version)` compiles (with the system's gcc, for the interpreter that runs the tests) a conda
package `linkprobe` holding:
- `lib/liblinkprobe.so`, a shared library;
- `lib/pythonX.Y/site-packages/linkprobe/_native*.so`, an extension module linked to it with
  rpath `$ORIGIN/../../..`; `linkprobe.where()` returns (the path the loader opened the library by, its version);
- `bin/linkprobe-run`, an ELF program linked to it with rpath `$ORIGIN/../lib`, printing the same.
Each is padded past 16 KiB, so a linked copy would link them unless it knows better.
`big_wheel(dir, name, version)` writes a pure-Python wheel whose module is about 40 KB.
`odd_paths_package()` is a conda package with a JupyterLab extension, a file nested deeper than the kernel
follows links in one lookup, and a file whose name is too long for a short link.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

from osl_hooks.demo.envbuild import PackageSpec, _current_subdir

PADDING = "__attribute__((used)) static const char padding[40000] = {1};\n"
LIBRARY = '#define _GNU_SOURCE\nconst char *linkprobe_version(void) { return "VERSION"; }\n' + PADDING
REPORT = """
#include <dlfcn.h>
extern const char *linkprobe_version(void);
static const char *loaded_from(void) { Dl_info info; dladdr((void *)linkprobe_version, &info); return info.dli_fname; }
"""
EXTENSION = (
    "#define _GNU_SOURCE\n#define PY_SSIZE_T_CLEAN\n#include <Python.h>\n"
    + REPORT
    + PADDING
    + """
static PyObject *where(PyObject *self, PyObject *args) {
    return Py_BuildValue("(ss)", loaded_from(), linkprobe_version());
}
static PyMethodDef methods[] = {{"where", where, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};
PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
"""
)
PROGRAM = (
    "#define _GNU_SOURCE\n#include <stdio.h>\n"
    + REPORT
    + PADDING
    + 'int main(void) { printf("%s %s\\n", loaded_from(), linkprobe_version()); return padding[0] - 1; }\n'
)


def pip(prefix: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The env's pip: `install` from the given files only (no index), `uninstall` without asking; output captured."""
    extra = ["--no-index"] if args[0] == "install" else ["-y"]
    command = [prefix / "bin/python", "-m", "pip", "--disable-pip-version-check", *args, *extra]
    return subprocess.run(command, capture_output=True, text=True, check=True)


def site(root: Path) -> Path:
    """The site-packages directory of the env at `root`."""
    [path] = root.glob("lib/python3*/site-packages")
    return path


def _site_packages() -> str:
    return f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"


def native_package(version: str) -> PackageSpec:
    site = _site_packages()
    extension = f"{site}/linkprobe/_native{sysconfig.get_config_var('EXT_SUFFIX')}"
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        (build / "lib.c").write_text(LIBRARY.replace("VERSION", version))
        (build / "ext.c").write_text(EXTENSION)
        (build / "prog.c").write_text(PROGRAM)
        link = ["-L", str(build), "-llinkprobe"]
        for command in (
            ["gcc", "-shared", "-fPIC", "-o", "liblinkprobe.so", "lib.c"],
            ["gcc", "-shared", "-fPIC", "-I", sysconfig.get_paths()["include"], "-o", "ext.so", "ext.c", *link]
            + ["-Wl,-rpath,$ORIGIN/../../.."],
            ["gcc", "-o", "prog", "prog.c", *link, "-ldl", "-Wl,-rpath,$ORIGIN/../lib"],
        ):
            subprocess.run(command, cwd=build, check=True, capture_output=True)
        files = {
            "lib/liblinkprobe.so": (build / "liblinkprobe.so").read_bytes(),
            extension: (build / "ext.so").read_bytes(),
            f"{site}/linkprobe/__init__.py": "from ._native import where\n",
            "bin/linkprobe-run": (build / "prog").read_bytes(),
        }
    return PackageSpec(
        name="linkprobe",
        version=version,
        files=files,
        executable=("bin/linkprobe-run", "lib/liblinkprobe.so", extension),
        subdir=_current_subdir(),
    )


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def big_wheel(directory: Path, name: str, version: str) -> Path:
    """A pure-Python wheel with one ~40 KB module (a file a linked copy links)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    body = f"VERSION = {version!r}\n" + "".join(f"# {version} line {i:05d} of padding\n" for i in range(1500))
    files = {
        f"{name}.py": body.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: linkedenv\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    return wheel


DEEP_DIRS = 45  # directories above the deep file: more than the 40 links Linux follows in one lookup
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/oddpaths.json"  # rewritten in place by `jupyter server extension`
LONG_NAME = "a-file-whose-name-alone-is-too-long-for-a-target-in-the-inode.txt"


def odd_paths_package() -> PackageSpec:
    """Paths a linked copy must not get wrong: a lab extension (listed by `jupyter labextension list`), a
    server configuration file, `share/oddpaths/d/d/.../deep.txt` and `share/oddpaths/<LONG_NAME>`."""
    extension = "share/jupyter/labextensions/linkprobe-lab"
    package = {"name": "linkprobe-lab", "version": "1.0.0", "jupyterlab": {"_build": {"load": "static/remoteEntry.js"}}}
    return PackageSpec(
        name="oddpaths",
        version="1.0",
        files={
            f"{extension}/package.json": json.dumps(package),
            f"{extension}/static/remoteEntry.js": "var _JUPYTERLAB = {};\n",
            "share/oddpaths/" + "d/" * DEEP_DIRS + "deep.txt": "deep\n",
            f"share/oddpaths/{LONG_NAME}": "long\n",
            SERVER_CONFIG: json.dumps({"ServerApp": {"jpserver_extensions": {}}}),
        },
    )
