"""docs/ as a Sphinx site: it builds with warnings as errors, and every configurable trait has help text.

The configuration reference (docs/reference.md) is generated from `osl_hooks.hub.config.OSLHooks` with
autodoc-traits; docs/_ext/trait_help.py fails the build when a trait has no help. CI runs the same build.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sphinx.errors import ExtensionError
from traitlets import Integer, Unicode

from osl_hooks.hub.config import OSLHooks

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import trait_help  # noqa: E402  (docs/_ext)


class Careless(OSLHooks):
    """A configurable with one trait whose author forgot the help text."""

    documented = Unicode("", help="Has help.").tag(config=True)
    undocumented = Integer(3).tag(config=True)
    not_config = Integer(4)  # not configurable: not in the reference, needs no help


def test_every_osl_hooks_trait_has_help():
    assert trait_help.traits_without_help(OSLHooks) == []


def test_a_trait_without_help_fails_the_build():
    assert trait_help.traits_without_help(Careless) == ["Careless.undocumented"]

    class App:  # what check_trait_help reads of a Sphinx application
        class config:
            trait_help_classes = [f"{__name__}.Careless"]

    with pytest.raises(ExtensionError, match=r"without help text.*Careless\.undocumented"):
        trait_help.check_trait_help(App)


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pages = {p.stem for p in out.glob("*.html")}
    sources = {p.stem for p in DOCS.glob("*.md")}
    assert sources <= pages, f"pages missing from the site: {sorted(sources - pages)}"
    reference = (out / "reference.html").read_text()
    for name in OSLHooks.class_traits(config=True):
        assert f"OSLHooks.{name}" in reference, name
