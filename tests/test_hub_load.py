"""Several users at once on a real local hub with the `wrap` delivery and the documented settings: every server
becomes ready (none fails at start_timeout) and the hub API keeps answering; the latencies are printed, never
asserted against this machine's speed. The 50-user storm next to a baseline without osl-hooks is
benchmarks/bench_storm.py."""

from __future__ import annotations

import shutil

import pytest
from conftest import wait_for_copy
from localhub import Hub, storm, wrap_hub_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]
USERS = 5


def test_a_small_storm_gets_every_server_ready(tmp_path, python_image):
    homes = tmp_path / "homes"
    users = [f"user{i}" for i in range(USERS)]
    for user in users:
        (homes / user).mkdir(parents=True)
    osl = f'c.OSLHooks.environments = [{{"name": "py", "mode": "synced", "source": {str(python_image / "envs/py")!r}}}]'
    # docs/hub.md, Timeouts: start_timeout = the first start's work for one synced env (120 + 30 s), rounded up.
    # http_timeout counts only the single-user server's own start after osl-hooks is done (local spawners): five
    # Jupyter servers starting at once on a loaded 2-core machine can take longer than JupyterHub's default 30 s,
    # which is no part of what this test checks.
    hub = Hub.with_config(tmp_path, wrap_hub_config(homes, osl, start_timeout=300, http_timeout=180))
    try:
        hub.wait_for(lambda: hub.api("GET", "/hub/api/")[0] == 200, 60, "the hub to answer")
        assert "osl-hooks:" not in hub.log_text()  # the documented settings hold the work: no warning
        result = storm(hub, users, timeout=600)
        figures = result.summary()
        print(f"\nstorm of {USERS}: {figures}")
        assert result.failed == {} and len(result.ready) == USERS, result.failed
        assert result.api_latencies and result.api_errors == 0  # the hub API answered throughout
        # The documented default makes first copies in the background: every user's own copy is complete later.
        for user in users:
            assert wait_for_copy(homes / user, "py")["state"] == "done"
            assert (homes / user / ".local/envs/py/conda-meta").is_dir()
    finally:
        hub.close()
