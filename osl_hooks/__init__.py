"""osl-hooks: prepare a JupyterHub user's conda environments before their server is ready.

The pod-side engine (`osl-hooks start`) lives in the modules `plan`, `manifest`, `sync`, `relocate`, `kernels`,
`condarc`, `scripts`, `status` and `runner`; it imports nothing from JupyterHub.
"""

__version__ = "0.2.0"
