"""The KubeSpawner path of the fleet figures: a start's summary read from the pod status.

Real parts as in test_hub_kube_progress: KubeSpawner objects of the class `install(c)` configures, KubeSpawner's
own start() (only its API calls replaced), its real PodReflector holding the pod the hooks built with a status
validated against the Kubernetes schemas, and the termination message of a real `osl-hooks start` of that
pod's plan. The hub reads the summary once, when start() is over (ready or failed), keeps it in the spawner's
state (JupyterHub's database), and counts it in the metrics.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from test_hub_kube_progress import (  # noqa: F401 (kube, runs: fixtures)
    api_pod,
    container_status,
    kube,
    offline_start,
    running,
    runs,
    start_spawn,
    terminated,
)

from osl_hooks.events import parse_line
from osl_hooks.hub.fleet import STATE_KEY
from osl_hooks.hub.start_record import record_from_final


def starts(outcome: str) -> float:
    return REGISTRY.get_sample_value("osl_hooks_starts_total", {"outcome": outcome}) or 0.0


@pytest.mark.parametrize("label", ["ok", "failed"])
def test_the_summary_is_read_from_the_pod_status_once_per_spawn(runs, label):  # noqa: F811 (the fixture)
    from jupyterhub.spawner import SpawnException

    run = runs[label]
    init = container_status("osl-hooks", terminated(run.exit_code, run.termination_message, 4, 9), ready=True)
    if label == "ok":
        pod = api_pod(run.pod, init, container_status("notebook", running(11), ready=True), phase="Running")
    else:
        pod = api_pod(run.pod, init)
    counted = starts(label)

    async def go():
        cluster = start_spawn(environments=[], delivery="init_container")
        spawner = offline_start(cluster, start_timeout=60)
        cluster.set_pod(pod)
        try:
            await asyncio.wait_for(spawner.start(), spawner.start_timeout)
        except SpawnException:
            assert label == "failed"
        state = spawner.get_state()
        restarted = type(spawner)(_mock=True, user=spawner.user, config=spawner.config)  # after a hub restart
        restarted.load_state(state)
        return state, restarted.get_state()

    state, after_restart = asyncio.run(go())
    final = parse_line(run.termination_message.splitlines()[-1])
    assert state[STATE_KEY] == record_from_final(final) == after_restart[STATE_KEY]
    record = state[STATE_KEY]
    assert record["outcome"] == label and record["summary"] == final["summary"]
    assert [env["name"] for env in record["summary"]["envs"]][:2] == ["rtc_analysis", "geo"]
    # the same figures as the start left in its status file (what local spawners read)
    assert record["summary"] == run.status["events"][-1]["summary"]
    assert starts(label) == counted + 1
