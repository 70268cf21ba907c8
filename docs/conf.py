"""Sphinx configuration of the osl-hooks docs (built in CI with warnings as errors: tests/test_docs_build.py)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

project = "osl-hooks"
author = "osl-hooks contributors"
copyright = "osl-hooks contributors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "autodoc_traits",
    "sphinx_copybutton",
    "trait_help",  # docs/_ext/trait_help.py: a configurable trait without help text fails the build
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](#a-heading) and [text](page.md#a-heading), as GitHub renders them

html_theme = "pydata_sphinx_theme"
html_title = "osl-hooks"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}

autodoc_member_order = "bysource"
copybutton_prompt_text = r"\$ "
copybutton_prompt_is_regexp = True

# The classes whose configurable traits must each have help text (docs/_ext/trait_help.py).
trait_help_classes = ["osl_hooks.hub.config.OSLHooks"]
