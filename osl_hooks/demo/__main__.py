"""`python -m osl_hooks.demo`: a real JupyterHub with osl-hooks on this machine (see osl_hooks.demo.hub)."""

import sys

from .hub import main

if __name__ == "__main__":
    sys.exit(main())
