"""Model-based test (hypothesis stateful): random user actions and image changes, interleaved with restarts.

The model is docs/engine.md's rules, per package: a package the user upgraded, removed or installed is
the user's (the image never touches it again); every other package follows the image. A file the user
edited keeps the user's content. After every start: each installed distribution's metadata is valid
(importlib.metadata), `pip check` passes, and the copy holds what the model says.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from test_faults_found import distributions
from test_update import Scenario

from osl_hooks.engine.runner import Outcome, start
from osl_hooks.plan import Plan

pytestmark = pytest.mark.slow

PACKAGES = ("oslprobe", "oslother")
EDITABLE = "share/geodemo-data/tiles/tile-00{}.txt"  # files no package upgrade here changes


class UserAndImage(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="osl-model-"))
        home = self.root / "home"
        home.mkdir()
        self.scenario = Scenario(self.root, home, self._start)
        self.image = {name: "1.0" for name in PACKAGES}  # what the image ships
        self.user: dict[str, str | None] = {}  # packages the user owns: version, or None if removed
        self.edits: dict[str, str] = {}
        self.image_minor = 0
        self.restart()

    def _start(self, plan: dict):
        data = {"version": 1, "home": str(self.scenario.home), **plan}
        out = io.StringIO()
        outcome = start(Plan.from_dict(data), allow_root=True, out=out)
        assert outcome in (Outcome.OK, Outcome.DEGRADED), out.getvalue()
        return outcome

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    @rule(name=st.sampled_from(PACKAGES), version=st.sampled_from(["2.0", "3.0"]))
    def user_upgrades(self, name, version):
        if self.user.get(name, "") is None:
            return  # removed: installing it again is the same as a new package, covered below
        self.scenario.pip(self.scenario.target, "install", "-U", self.scenario.wheel(name, version))
        self.user[name] = version

    @rule(name=st.sampled_from(PACKAGES))
    def user_removes(self, name):
        if self.user.get(name, "") is not None:
            self.scenario.pip(self.scenario.target, "uninstall", name)
            self.user[name] = None

    @rule()
    def user_installs_a_new_package(self):
        if "userpkg" not in self.user:
            self.scenario.pip(self.scenario.target, "install", self.scenario.wheel("userpkg", "1.0"))
            self.user["userpkg"] = "1.0"

    @rule(index=st.integers(0, 3))
    def user_edits_a_file(self, index):
        path = EDITABLE.format(index)
        (self.scenario.target / path).write_text(f"my edit {index}\n")
        self.edits[path] = f"my edit {index}\n"

    @rule(name=st.sampled_from(PACKAGES))
    def image_upgrades(self, name):
        self.image_minor += 1
        version = f"1.{self.image_minor}"
        self.scenario.image_update("install", "-U", self.scenario.wheel(name, version))
        self.image[name] = version

    @rule()
    def restart(self):
        self._start(
            {"environments": [{"name": "py", "mode": "synced", "source": str(self.scenario.source), "kernel": False}]}
        )
        self.check()

    def check(self):
        installed = {name: version for name, version in distributions(self.scenario.target).values()}
        assert None not in installed, f"a dist-info without valid metadata: {installed}"
        for name in PACKAGES:
            expected = self.user[name] if name in self.user else self.image[name]
            assert installed.get(name) == expected, (name, installed, self.user, self.image)
        if "userpkg" in self.user:
            assert installed.get("userpkg") == "1.0"
        for path, text in self.edits.items():
            assert (self.scenario.target / path).read_text() == text
        pip_check = subprocess.run(
            [self.scenario.target / "bin/python", "-m", "pip", "check", "--disable-pip-version-check"],
            capture_output=True,
            text=True,
        )
        assert pip_check.returncode == 0, pip_check.stdout + pip_check.stderr

    @invariant()
    def no_half_package(self):
        names = [p.name for p in self.scenario.target.glob("lib/python*/site-packages/*.dist-info")]
        assert len(names) == len({n.split("-")[0] for n in names}), names


UserAndImage.TestCase.settings = settings(max_examples=3, stateful_step_count=7, deadline=None)
test_user_actions_and_image_changes = UserAndImage.TestCase
