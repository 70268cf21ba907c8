"""osl-hooks: prepare a JupyterHub user's conda environments before their server is ready.

The pod-side engine (`osl-hooks start`) lives in the modules `plan`, `manifest`, `sync`, `relocate`, `kernels`,
`condarc`, `scripts`, `status` and `runner`; it imports nothing from JupyterHub.
"""

__version__ = "0.2.0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The built JupyterLab extension in this package (`npm run build` in labextension/), for JupyterLab's
    `jupyter labextension develop --sys-prefix --overwrite .`: an editable install gets no data files, so a
    development environment links the build into `<prefix>/share/jupyter/labextensions/osl-hooks` (docs/lab.md)."""
    return [{"src": "labextensions/osl-hooks", "dest": "osl-hooks"}]
