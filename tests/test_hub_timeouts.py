"""Timeouts as admins and users meet them, on a real JupyterHub with the 'wrap' delivery (local spawner).

With local spawners the spawner's start() waits for the engine, so `Spawner.start_timeout` is the limit.
A start that outlasts it ends with a sentence naming what was still running and the setting to raise,
not a bare "Spawn failed: ", and the hub log has no traceback from osl-hooks.
"""

from __future__ import annotations

import shutil

import pytest
from browser import chromium, sign_in, spawn_page, wait_for_text
from localhub import Hub, wrap_hub_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]


def test_a_start_cut_short_by_start_timeout_says_what_was_running(tmp_path):
    homes = tmp_path / "homes"
    (homes / "alice").mkdir(parents=True)
    slow = tmp_path / "image/20-slow.sh"
    slow.parent.mkdir()
    slow.write_text("#!/bin/sh\necho 'waiting for the licence server'\nsleep 120\n")
    slow.chmod(0o755)
    osl = f'c.OSLHooks.setup_scripts = [{{"path": {str(slow)!r}, "timeout": 100}}]'
    # http_timeout is not the limit with local spawners: start() waits for the engine
    hub = Hub.with_config(tmp_path, wrap_hub_config(homes, osl, start_timeout=10, http_timeout=300))
    try:
        # at hub start: the configured work does not fit the timeout it runs under
        hub.wait_for(lambda: "osl-hooks: the setup scripts' timeouts" in hub.log_text(), 30, "the timeout warning")
        assert (
            "the setup scripts' timeouts add up to 100 s, more than SimpleLocalProcessSpawner.start_timeout (10 s), "
            "which the 'wrap' delivery runs under" in hub.log_text()
        )
        assert hub.api("POST", "/hub/api/users/alice")[0] == 201
        assert hub.api("POST", "/hub/api/users/alice/server")[0] == 202
        events = hub.progress("alice", timeout=60)
        assert events[-1].get("failed"), events[-1]
        message = events[-1]["message"]
        assert message.startswith(
            "Spawn failed: Your environments were not ready within c.Spawner.start_timeout (10 s)."
        )
        assert "Still running: the setup script 20-slow.sh, for " in message
        assert message.endswith("Ask your JupyterHub admin to raise c.Spawner.start_timeout.")
        # that sentence first and only: not the engine's last words once the hub stopped it ("interrupted")
        said = [e.get("message", "") for e in events[:-1]]
        assert not [m for m in said if "could not be prepared" in m or "interrupted" in m], said
        hub.wait_for(lambda: hub.server("alice") is None, 30, "alice's server to be stopped")
        log = hub.log_text()
        assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
        # the same on the spawn page, in a browser
        for browser in chromium():
            sign_in(browser, hub, "alice")
            wait_for_text(browser, r"Your server could not start", timeout=60)
            page = spawn_page(browser)
            assert page["text"].count("were not ready within c.Spawner.start_timeout (10 s)") == 1, page["text"]
            assert "interrupted" not in page["text"] and "could not be prepared" not in page["text"], page["text"]
            assert not page["stop_button"]
    finally:
        hub.close()
