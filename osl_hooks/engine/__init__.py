"""The pod side: everything that runs as the user, in the user's container (or beside a local server), for one
start — sync, update and link the envs into the home, relocate them, register kernels, run setup scripts, and
report typed events (`osl_hooks.events`) to every output.

It reads a plan (`osl_hooks.plan`) and writes events and the status file (`osl_hooks.status`); it never
imports JupyterHub, KubeSpawner or `osl_hooks.hub` (tests/test_boundaries.py checks this), so it runs in any
notebook image with Python and rsync.
"""
