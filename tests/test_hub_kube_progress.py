"""Spawn progress for KubeSpawner pods with the init_container delivery (osl_hooks/hub/kube_progress.py).

Real parts: KubeSpawner objects built from a real config (test_hub_support), KubeSpawner's own
`progress()` and its real PodReflector / EventReflector objects holding the data the way they do after a
list/watch (API JSON, camelCase, keyed "namespace/name"); pods whose spec is the one the hooks built,
with statuses modelled on the API reference and validated with kubernetes-validate; the engine's
stdout and termination message from real `osl-hooks start --plan FILE` runs of the plan the hub put in
that pod, on genuine conda envs built with envbuild; the pod log read with KubeSpawner's own API client
(`spawner.api`, kubernetes_asyncio) from a local HTTP server that serves the log endpoint as the
kubelet does (tailLines, sinceSeconds, timestamps). No cluster.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml
from test_hub_support import (
    container,
    env_of,
    hub_user,
    kube_config,
    make_spawner,
    no_kubeconfig,
    run_spawn_hooks,
    serialise,
    spawn_pod,
)

import osl_hooks.hub
from osl_hooks.events import parse_line
from osl_hooks.hub import kube_log, kube_pod, local_progress
from osl_hooks.hub import kube_progress as kp
from osl_hooks.hub import progress as bar
from osl_hooks.status import read_status

REPO = Path(__file__).resolve().parent.parent
RBAC = REPO / "helm" / "osl-hooks-pods-log-rbac.yaml"
Z2JH = Path(os.environ.get("OSL_HOOKS_Z2JH_DIR", REPO.parent / "shared" / "z2jh"))
NS = "jhub"
POD_UID = "5f0c3d2e-8a61-4b7e-9f0a-2c1d9e6b7a41"
IMAGE = "registry.example/base-notebook:1.0"
NODE = "gke-jhub-user-pool-7c9f1d2e-x8kq"
FAST = 0.02  # poll interval in these tests


@pytest.fixture(autouse=True)
def kube(kube, monkeypatch):
    """conftest's `kube`, and no reflector of another test module's KubeSpawners."""
    from kubespawner import KubeSpawner

    monkeypatch.setattr(KubeSpawner, "reflectors", {})  # the reflectors these tests install stay here


# -- real engine runs of the plan the hub put in the pod ---------------------------------------------------


@dataclass
class EngineRun:
    pod: dict | None  # the pod as the hub built it (JSON), delivery init_container
    stdout: str  # stdout and stderr: the container's log
    exit_code: int
    termination_message: str
    status: dict | None = None  # status.json as the start left it (what the hub reads with local spawners)

    @property
    def final(self) -> dict:
        """The engine's finish event, the last line of its termination message."""
        return parse_line(self.termination_message.splitlines()[-1])

    @property
    def ready(self) -> str:
        return f"Your environments are ready ({self.final['seconds']:.1f} s)"


def _stub_kernel_package():
    """A conda package with what osl-hooks looks for to register a kernel (bin/python, ipykernel), tiny."""
    from osl_hooks.demo.envbuild import PackageSpec

    return PackageSpec(
        name="kernel-stub",
        version="1.0",
        files={
            "bin/python": '#!/bin/sh\nexec python3 "$@"\n',
            "lib/python3.11/site-packages/ipykernel/__init__.py": "",
        },
        executable=("bin/python",),
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, EngineRun]:
    """`osl-hooks start` run on the plans of two pods (a start that succeeds, one that fails), and on a plan
    that does not validate."""
    from osl_hooks.demo.envbuild import build_conda_env, demo_packages

    # A plan that does not validate in the pod (slow to explain: runs while the rest is set up).
    invalid = subprocess.Popen(
        ["osl-hooks", "start", "--degraded-ok"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={
            **os.environ,
            "OSL_HOOKS_PLAN": json.dumps({"version": 1, "environments": [{"name": "geo", "mode": "copy"}]}),
        },
    )
    root = tmp_path_factory.mktemp("kube-progress")
    build_conda_env(root / "image/envs/rtc_analysis", [*demo_packages(), _stub_kernel_package()])
    build_conda_env(root / "image/envs/geo")
    setup_d = root / "image/setup.d"
    setup_d.mkdir()
    (setup_d / "20-git.sh").write_text("#!/bin/sh\necho configuring git\n")
    failing = root / "image/30-fail.sh"
    failing.write_text("#!/bin/sh\necho 'licence server unreachable' >&2\nexit 7\n")
    for script in (setup_d / "20-git.sh", failing):
        script.chmod(0o755)
    envs = [
        {
            "name": "rtc_analysis",
            "mode": "synced",
            "source": str(root / "image/envs/rtc_analysis"),
            "kernel": {"name": "osl-rtc", "display_name": "RTC Analysis"},
        },
        {"name": "geo", "mode": "synced", "source": str(root / "image/envs/geo"), "kernel": False},
    ]
    configs = {
        "ok": kube_config(environments=envs, setup_scripts=[str(setup_d)]),
        "failed": kube_config(
            environments=[*envs, {"name": "radar", "mode": "baked", "source": "/opt/conda/envs/radar"}],
            setup_scripts=[str(setup_d), {"path": str(failing), "on_failure": "fail"}],
        ),
    }
    result = {}
    with pytest.MonkeyPatch.context() as mp:
        no_kubeconfig(mp)
        for label, c in configs.items():
            osl_hooks.hub.install(c)
            _, pod = spawn_pod(c, hub_user("alice"))
            init = container(pod, "osl-hooks")
            assert init["command"] == ["osl-hooks", "start", "--degraded-ok"]
            plan = json.loads(env_of(init)["OSL_HOOKS_PLAN"])
            home = root / f"home-{label}"
            home.mkdir()
            plan_file = root / f"plan-{label}.json"
            plan_file.write_text(json.dumps({**plan, "home": str(home)}))
            termination_log = root / f"termination-log-{label}"  # /dev/termination-log in the pod
            termination_log.write_text("")
            done = subprocess.run(
                ["osl-hooks", "start", "--allow-root", "--degraded-ok", "--plan", str(plan_file)],
                capture_output=True,
                text=True,
                env={**os.environ, "OSL_HOOKS_TERMINATION_LOG": str(termination_log)},
                timeout=60,
            )
            status = read_status(home / ".local/state/osl-hooks")
            output = done.stdout + done.stderr
            result[label] = EngineRun(pod, output, done.returncode, termination_log.read_text(), status)
    output, _ = invalid.communicate(timeout=60)
    result["invalid"] = EngineRun(None, output, invalid.returncode, "")
    assert result["ok"].exit_code == 0 and result["ok"].termination_message.startswith("Ready in ")
    assert result["failed"].exit_code == 1
    return result


# -- pods and events shaped as the API returns them --------------------------------------------------------


def ts(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1741082400 + seconds))  # 2025-03-04T10:00:00Z + s


def container_status(name: str, state: dict, *, ready=False, restarts=0, last=None) -> dict:
    waiting = "waiting" in state
    status = {
        "name": name,
        "state": state,
        "lastState": last or {},
        "ready": ready,
        "restartCount": restarts,
        "image": IMAGE,
        "imageID": "" if waiting and not restarts else f"{IMAGE.rsplit(':', 1)[0]}@sha256:{'3f' * 32}",
        "started": "running" in state,
    }
    if not waiting or restarts:
        status["containerID"] = f"containerd://{name.encode().hex().ljust(64, '0')}"
    return status


def waiting(reason: str, message: str | None = None) -> dict:
    return {"waiting": {"reason": reason, **({"message": message} if message else {})}}


def running(at: float) -> dict:
    return {"running": {"startedAt": ts(at)}}


def terminated(code: int, message: str, started: float, finished: float) -> dict:
    return {
        "terminated": {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "message": message,
            "startedAt": ts(started),
            "finishedAt": ts(finished),
            "containerID": f"containerd://{'0d' * 32}",
        }
    }


def api_pod(spec_pod: dict, init: dict, notebook: dict | None = None, phase: str = "Pending") -> dict:
    """The pod the hooks built, as the pod reflector holds it once the API server and kubelet filled it in."""
    pod = copy.deepcopy(spec_pod)
    pod["metadata"].update(namespace=NS, uid=POD_UID, resourceVersion="81734", creationTimestamp=ts(0), generation=1)
    pod["spec"]["nodeName"] = NODE
    init_done = init["state"].get("terminated", {}).get("exitCode") == 0
    notebook = notebook or container_status("notebook", waiting("PodInitializing"))
    ready = notebook["ready"]

    def condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict:
        c = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": ts(1)}
        return c if ok else {**c, "reason": reason, "message": message}

    pod["status"] = {
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", True),
            condition(
                "Initialized", init_done, "ContainersNotInitialized", "containers with incomplete status: [osl-hooks]"
            ),
            condition("Ready", ready, "ContainersNotReady", "containers with unready status: [notebook]"),
            condition("ContainersReady", ready, "ContainersNotReady", "containers with unready status: [notebook]"),
            condition("PodScheduled", True),
        ],
        "hostIP": "10.128.0.7",
        "hostIPs": [{"ip": "10.128.0.7"}],
        "podIP": "10.52.3.17",
        "podIPs": [{"ip": "10.52.3.17"}],
        "startTime": ts(1),
        "qosClass": "Burstable",
        "initContainerStatuses": [init],
        "containerStatuses": [notebook],
    }
    for version in ("1.30", "1.37"):  # hostIPs, PodReadyToStartContainers: Kubernetes >= 1.29
        kubernetes_validate.validate(pod, version, strict=True)
    return pod


def stages(run: EngineRun) -> dict[str, dict]:
    """The pod through a spawn: init container waiting, running, finished; then the notebook running."""
    spec = run.pod
    message = run.termination_message
    code = run.exit_code
    return {
        "waiting": api_pod(spec, container_status("osl-hooks", waiting("PodInitializing"))),
        "running": api_pod(spec, container_status("osl-hooks", running(4))),
        "finished": api_pod(
            spec,
            container_status("osl-hooks", terminated(code, message, 4, 9), ready=code == 0),
            container_status("notebook", waiting("PodInitializing")),
        ),
        "ready": api_pod(
            spec,
            container_status("osl-hooks", terminated(code, message, 4, 9), ready=True),
            container_status("notebook", running(11), ready=True),
            phase="Running",
        ),
    }


_event_count = 0


def k8s_event(pod_name: str, reason: str, message: str, at: float, container_name: str | None = None) -> dict:
    """A core/v1 Event about the pod, as the event reflector holds it (the kubelet's, or the scheduler's)."""
    global _event_count
    _event_count += 1
    scheduler = reason == "Scheduled"
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{pod_name}.{_event_count:016x}",
            "namespace": NS,
            "uid": f"0b7a3c1e-0000-4000-8000-{_event_count:012d}",
            "resourceVersion": str(81700 + _event_count),
            "creationTimestamp": ts(at),
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod_name,
            "namespace": NS,
            "uid": POD_UID,
            "resourceVersion": "81730",
        },
        "reason": reason,
        "message": message,
        "source": {"component": "default-scheduler"} if scheduler else {"component": "kubelet", "host": NODE},
        "type": "Normal",
        "reportingComponent": "default-scheduler" if scheduler else "kubelet",
        "reportingInstance": "" if scheduler else NODE,
    }
    if container_name:
        section = "initContainers" if container_name == "osl-hooks" else "containers"
        event["involvedObject"]["fieldPath"] = f"spec.{section}{{{container_name}}}"
    if scheduler:  # events.k8s.io events seen through core/v1: eventTime, no first/lastTimestamp
        event.update(eventTime=ts(at).replace("Z", ".412345Z"), action="Binding")
    else:
        event.update(firstTimestamp=ts(at), lastTimestamp=ts(at), count=1)
    kubernetes_validate.validate(event, "1.30", strict=True)
    event.setdefault("eventTime", None)  # null in the API's JSON; KubeSpawner reads both
    event.setdefault("lastTimestamp", None)
    return event


def container_events(pod_name: str, name: str, at: float) -> list[dict]:
    return [
        k8s_event(pod_name, "Pulled", f'Container image "{IMAGE}" already present on machine', at, name),
        k8s_event(pod_name, "Created", f"Created container {name}", at + 0.2, name),
        k8s_event(pod_name, "Started", f"Started container {name}", at + 0.4, name),
    ]


# -- the reflectors, and a spawner whose spawn is under way ---------------------------------------------------


@dataclass
class Cluster:
    spawner: object
    pods: object  # kubespawner.spawner.PodReflector
    events: object  # kubespawner.spawner.EventReflector

    @property
    def key(self) -> str:
        return f"{self.spawner.namespace}/{self.spawner.pod_name}"

    def set_pod(self, pod: dict) -> None:
        pod = copy.deepcopy(pod)
        pod["metadata"]["name"] = self.spawner.pod_name
        self.pods.resources[self.key] = pod  # what the watch does with a MODIFIED event

    def add_events(self, events: list[dict]) -> None:
        for event in events:
            self.events.resources[f"{NS}/{event['metadata']['name']}"] = event


def start_spawn(**osl) -> Cluster:
    """Inside the running loop: a KubeSpawner in the middle of start(), with its reflectors loaded."""
    from kubespawner.spawner import EventReflector, KubeSpawner, PodReflector

    c = kube_config(**osl)
    osl_hooks.hub.install(c)
    spawner = make_spawner(c, hub_user("alice"))
    spawner.namespace = NS
    pods = PodReflector(parent=spawner, namespace=NS, labels={"component": spawner.component_label})
    events = EventReflector(parent=spawner, namespace=NS, fields={"involvedObject.kind": "Pod"})
    for reflector, kind in ((pods, "pods"), (events, "events")):
        reflector.first_load_future.set_result(None)  # listed: what _list_and_update signals
        KubeSpawner.reflectors[spawner._get_reflector_key(kind)] = reflector
    spawner._start_future = asyncio.get_running_loop().create_future()
    return Cluster(spawner, pods, events)


# Deadlines, not delays: generous so that a loaded 2-core machine never fails a test that would pass.
DEADLINE = 30.0


async def next_until(gen, seen: list[dict], predicate, timeout: float = DEADLINE) -> dict:
    """Take events from `gen` into `seen` until one matches."""
    deadline = time.monotonic() + timeout
    while True:
        event = await asyncio.wait_for(gen.__anext__(), max(0.01, deadline - time.monotonic()))
        seen.append(event)
        if predicate(event):
            return event


async def drain(gen, seen: list[dict], timeout: float = DEADLINE) -> None:
    """Take events from `gen` until it ends by itself (a generator that never ends fails at the deadline)."""

    async def go():
        async for event in gen:
            seen.append(event)

    await asyncio.wait_for(go(), timeout)


def says(text: str):
    return lambda event: event["message"].endswith(text)


def messages(events: list[dict]) -> list[str]:
    return [e["message"] for e in events]


def assert_progress_sane(events: list[dict]) -> None:
    values = [e["progress"] for e in events if "progress" in e]
    assert all(isinstance(v, int) and 0 <= v <= 100 for v in values), values
    assert values == sorted(values), values  # never backwards


# -- the generator, pod status only (no extra permissions) -----------------------------------------------------


def test_progress_from_pod_status_and_events_replayed_and_ended(runs):
    run = runs["ok"]
    pod = stages(run)

    async def go():
        cluster = start_spawn(environments=[], delivery="init_container")
        name = cluster.spawner.pod_name
        first: list[dict] = []
        gen = kp.kube_progress(cluster.spawner, poll_interval=FAST)

        cluster.set_pod(pod["waiting"])
        cluster.add_events([k8s_event(name, "Scheduled", f"Successfully assigned {NS}/{name} to {NODE}", 2)])
        cluster.add_events(container_events(name, "osl-hooks", 3)[:2])
        await next_until(gen, first, says("Created container osl-hooks"))
        cluster.add_events(container_events(name, "osl-hooks", 3)[2:])
        await next_until(gen, first, says("Started container osl-hooks"))
        cluster.set_pod(pod["running"])
        await next_until(gen, first, says("Preparing your environments (2 configured)"))

        # Another spawn page opens: a new generator replays the same events, in the same order.
        second: list[dict] = []
        gen2 = kp.kube_progress(cluster.spawner, poll_interval=FAST)
        for _ in first:
            second.append(await asyncio.wait_for(gen2.__anext__(), 3))
        assert second == first

        cluster.set_pod(pod["finished"])
        await next_until(gen, first, lambda e: e["message"].startswith("Your environments are ready ("))
        cluster.add_events(container_events(name, "notebook", 10))
        cluster.set_pod(pod["ready"])
        await next_until(gen, first, says("Started container notebook"))

        cluster.spawner._start_future.set_result(None)  # start() returned: KubeSpawner's progress ends
        await drain(gen, first)
        await drain(gen2, second)
        third: list[dict] = []
        await drain(kp.kube_progress(cluster.spawner, poll_interval=FAST), third)  # after the spawn: a replay
        return first, second, third

    first, second, third = asyncio.run(go())
    assert second == first and third == first
    got = messages(first)
    ready = run.ready
    expected_tail = [
        "Pulled",
        "Created container osl-hooks",
        "Started container osl-hooks",
        "Preparing your environments (2 configured)",
        ready,
        "Pulled",
        "Created container notebook",
        "Started container notebook",
    ]
    assert re.fullmatch(
        r"2025-03-04T10:00:02\.412345Z \[Normal\] Successfully assigned jhub/jupyter-alice to .+", got[0]
    )
    assert len(got) == 1 + len(expected_tail), got
    for message, end in zip(got[1:], expected_tail, strict=True):
        assert message.endswith(end) or end == "Pulled" and "already present on machine" in message, (message, end)
    assert_progress_sane(first)
    by_message = {e["message"]: e.get("progress") for e in first}
    assert all(by_message[m] < bar.FIRST for m in got[:4])  # before the init container: under 20%
    assert by_message["Preparing your environments (2 configured)"] == bar.FIRST
    assert by_message[ready] == bar.LAST
    assert all(bar.LAST < by_message[m] <= bar.SERVER for m in got[6:])
    assert all("raw_event" in e for e in first if "[Normal]" in e["message"])  # KubeSpawner's events, as given


def test_pods_without_the_init_container_get_kubespawners_progress():
    """post_start (or a pod osl-hooks did not touch): KubeSpawner's events and numbers, unchanged."""

    async def go():
        cluster = start_spawn(delivery="post_start", environments=[])
        spawner = cluster.spawner
        pod = await serialise(await run_spawn_hooks(make_spawner(spawner.config, spawner.user)))
        assert pod["metadata"]["annotations"]["osl-hooks/delivery"] == "post_start"
        notebook_running = container_status("notebook", running(5), ready=True)
        pod["metadata"].update(namespace=NS, uid=POD_UID)
        pod["status"] = {"phase": "Running", "podIP": "10.52.3.17", "containerStatuses": [notebook_running]}
        cluster.set_pod(pod)
        cluster.add_events(container_events(spawner.pod_name, "notebook", 3))
        spawner._start_future.set_result(None)
        ours: list[dict] = []
        await drain(kp.kube_progress(spawner, poll_interval=FAST), ours)
        theirs = [e async for e in KubeSpawner.progress(spawner)]
        return ours, theirs

    from kubespawner import KubeSpawner

    ours, theirs = asyncio.run(go())
    assert ours == theirs and [e["progress"] for e in ours] == [30, 50, 63]


def test_a_closed_page_leaves_nothing_running_and_events_off_still_shows_the_start(runs):
    pod = stages(runs["ok"])

    async def go():
        cluster = start_spawn(environments=[])
        cluster.set_pod(pod["running"])
        before = asyncio.all_tasks()
        gen = kp.kube_progress(cluster.spawner, poll_interval=FAST)
        first = await asyncio.wait_for(gen.__anext__(), 3)
        await asyncio.sleep(0.1)  # KubeSpawner's generator is waiting in its one-second sleep
        await gen.aclose()  # JupyterHub closes it when the page goes away
        left = asyncio.all_tasks() - before
        # KubeSpawner's events off: the pod status still tells the story; the end of the spawn ends it
        cluster.spawner.events_enabled = False
        cluster.set_pod(pod["finished"])
        seen: list[dict] = []
        gen = kp.kube_progress(cluster.spawner, poll_interval=FAST)
        await next_until(gen, seen, lambda e: e["message"].startswith("Your environments are ready"))
        cluster.spawner._start_future.set_result(None)
        await drain(gen, seen, timeout=1)
        return first, left, seen

    first, left, seen = asyncio.run(go())
    assert first["message"] == "Preparing your environments (2 configured)"
    assert left == set()
    assert messages(seen)[0] == "Preparing your environments (2 configured)" and len(seen) == 2


def test_jupyterhub_progress_through_the_spawner_class_install_sets(runs):
    """JupyterHub's own wrapper (`Spawner._generate_progress`) over the spawner class `install(c)` configures
    (osl-hooks' mixin in front of KubeSpawner), whose progress() hands KubeSpawner pods to kube_progress."""
    pod = stages(runs["ok"])

    async def go():
        from kubespawner import KubeSpawner
        from traitlets.utils.importstring import import_item

        c = kube_config(environments=[])
        osl_hooks.hub.install(c)
        spawner_class = c.JupyterHub.spawner_class
        spawner_class = import_item(spawner_class) if isinstance(spawner_class, str) else spawner_class
        assert issubclass(spawner_class, KubeSpawner) and spawner_class.progress is not KubeSpawner.progress
        cluster = start_spawn(environments=[])
        spawner = spawner_class(_mock=True, user=cluster.spawner.user, config=c)
        spawner.namespace = NS
        spawner._start_future = cluster.spawner._start_future
        spawner._spawn_pending = True
        cluster.set_pod(pod["finished"])
        spawner._start_future.set_result(None)
        seen: list[dict] = []
        await drain(spawner._generate_progress(), seen)
        return seen

    seen = asyncio.run(go())
    ready = runs["ok"].ready
    assert seen == [
        {"progress": 0, "message": "Server requested"},
        {"progress": bar.FIRST, "message": "Preparing your environments (2 configured)"},
        {"progress": bar.LAST, "message": ready},
    ]


def test_settings_come_from_the_hubs_osl_hooks_configuration(runs):
    """The init container's name and the log setting are those of the OSLHooks section install(c) checked."""
    renamed = copy.deepcopy(runs["ok"].pod)
    renamed["spec"]["initContainers"][-1]["name"] = "prepare-envs"

    async def go():
        cluster = start_spawn(environments=[], init_container_name="prepare-envs")
        spawner = cluster.spawner
        hooks = spawner.modify_pod_hook._osl_hooks_runtime.hooks
        before = kp.read_logs_setting(spawner)
        hooks.read_init_container_logs = True  # what `c.OSLHooks.read_init_container_logs = True` gives
        after = kp.read_logs_setting(spawner)
        cluster.set_pod(api_pod(renamed, container_status("prepare-envs", running(4))))
        spawner._start_future.set_result(None)
        seen: list[dict] = []
        await drain(kp.kube_progress(spawner, poll_interval=FAST), seen)
        return before, after, seen

    before, after, seen = asyncio.run(go())
    assert (before, after) == (False, True)
    assert messages(seen) == ["Preparing your environments (2 configured)"]


# -- the generator with the init container's log (pods/log granted) -------------------------------------------


def rfc3339nano(ns: int) -> str:
    """Go's time.RFC3339Nano, as the kubelet stamps log lines: nanoseconds without trailing zeros."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + fraction + "Z"


class FakeLogAPI:
    """GET /api/v1/namespaces/{ns}/pods/{name}/log of an API server, as the kubelet answers it."""

    def __init__(self, forbidden: bool = False):
        self.lines: list[tuple[int, str]] = []
        self.requests: list[tuple[str, str, dict]] = []
        self.forbidden = forbidden

    def write(self, text: str) -> None:
        now = time.time_ns()
        for i, line in enumerate(text.splitlines()):
            self.lines.append((now + i * 1000, line))

    async def handle(self, request):
        from aiohttp import web

        query = dict(request.query)
        self.requests.append((request.method, request.path, query))
        name = request.match_info["name"]
        if self.forbidden:
            return web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": f'pods "{name}" is forbidden: User "system:serviceaccount:{NS}:hub" cannot get '
                    f'resource "pods/log" in API group "" in the namespace "{NS}"',
                    "reason": "Forbidden",
                    "details": {"name": name, "kind": "pods"},
                    "code": 403,
                },
                status=403,
            )
        lines = self.lines
        if "sinceSeconds" in query:
            cutoff = time.time_ns() - int(query["sinceSeconds"]) * 1_000_000_000
            lines = [line for line in lines if line[0] >= cutoff]
        if "tailLines" in query:
            lines = lines[-int(query["tailLines"]) :]
        stamped = query.get("timestamps", "").lower() == "true"
        body = "".join((f"{rfc3339nano(ns)} " if stamped else "") + text + "\n" for ns, text in lines)
        return web.Response(text=body, content_type="text/plain")

    async def start(self, spawner) -> object:
        from aiohttp import web
        from aiohttp.test_utils import TestServer

        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{namespace}/pods/{name}/log", self.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        # KubeSpawner's own client (shared_client("CoreV1Api")), pointed at this server.
        spawner.api.api_client.configuration.host = str(server.make_url("")).rstrip("/")
        return server


def test_progress_from_the_init_container_log(runs):
    run = runs["ok"]
    pod = stages(run)
    lines = run.stdout.splitlines()
    split = next(i for i, line in enumerate(lines) if "Registered kernel" in line)

    async def go():
        cluster = start_spawn(environments=[])
        spawner = cluster.spawner
        api = FakeLogAPI()
        server = await api.start(spawner)
        seen: list[dict] = []
        gen = kp.kube_progress(spawner, read_logs=True, poll_interval=FAST)
        cluster.set_pod(pod["waiting"])
        cluster.add_events(container_events(spawner.pod_name, "osl-hooks", 3))
        await next_until(gen, seen, says("Started container osl-hooks"))
        api.write("\n".join(lines[:split]))  # the engine is copying rtc_analysis
        cluster.set_pod(pod["running"])
        await next_until(gen, seen, lambda e: e["message"].startswith("Synced rtc_analysis"))
        api.write("\n".join(lines[split:]))  # the rest, and the container ends
        cluster.set_pod(pod["finished"])
        await next_until(gen, seen, lambda e: e["message"].startswith("Your environments are ready"))
        spawner._start_future.set_result(None)
        await drain(gen, seen)
        await server.close()
        return seen, api.requests

    seen, requests = asyncio.run(go())
    ours = [e for e in seen if "raw_event" not in e]
    # Every engine line the user should see, in order, each once; the pod status added nothing new.
    assert ours == kube_log.events_from_log(run.stdout)
    assert len(messages(seen)) == len(set(messages(seen)))
    assert_progress_sane(seen)
    # Read with KubeSpawner's client: GET .../pods/<pod>/log (what `get` on pods/log allows), the init
    # container only, with the kubelet's timestamps; the first read takes the tail, later ones what is new.
    paths = {(method, path) for method, path, _ in requests}
    assert paths == {("GET", f"/api/v1/namespaces/{NS}/pods/jupyter-alice/log")}
    queries = [q for _, _, q in requests]
    assert all(q["container"] == "osl-hooks" and q["timestamps"].lower() == "true" for q in queries)
    assert queries[0]["tailLines"] == str(kube_log.LOG_TAIL_LINES) and "sinceSeconds" not in queries[0]
    assert len(queries) >= 2 and all("sinceSeconds" in q and "tailLines" not in q for q in queries[1:])


def test_without_pods_log_permission_the_pod_status_is_used(runs, caplog):
    run = runs["ok"]
    pod = stages(run)

    async def go():
        cluster = start_spawn(environments=[])
        api = FakeLogAPI(forbidden=True)
        server = await api.start(cluster.spawner)
        cluster.set_pod(pod["finished"])
        cluster.spawner._start_future.set_result(None)
        seen: list[dict] = []
        await drain(kp.kube_progress(cluster.spawner, read_logs=True, poll_interval=FAST), seen)
        again: list[dict] = []
        await drain(kp.kube_progress(cluster.spawner, read_logs=True, poll_interval=FAST), again)
        await server.close()
        return seen, again, api.requests

    with caplog.at_level(logging.WARNING):
        seen, again, requests = asyncio.run(go())
    ready = run.ready
    assert messages(seen) == ["Preparing your environments (2 configured)", ready] and again == seen
    assert len(requests) == 1  # denied once: not asked again for this spawn
    warnings = [r.getMessage() for r in caplog.records if "pods/log" in r.getMessage()]
    assert len(warnings) == 1 and "403" in warnings[0]


# -- pure functions ---------------------------------------------------------------------------------------


def test_events_from_log_of_a_real_start(runs):
    run = runs["ok"]
    events = kube_log.events_from_log(run.stdout)
    got = [e["message"] for e in events if "html_message" not in e]  # the ticks (a copy's bytes) apart
    # the engine's own sentences (the hub words only the start and the end, from their numbers)
    expected = [
        r"Preparing your environments \(2 configured\)",
        r"rtc_analysis has no baked manifest: describing it now .*",
        r"Syncing rtc_analysis: [\d.]+ kB to copy into .*",
        r"Synced rtc_analysis: [\d.]+ kB in [\d.]+ s \(\d+ files relocated\)",
        r"Registered kernel RTC Analysis",
        r"geo has no baked manifest: describing it now .*",
        r"Syncing geo: [\d.]+ kB to copy into .*",
        r"Synced geo: [\d.]+ kB in [\d.]+ s \(\d+ files relocated\)",
        r"Running setup script 20-git\.sh",
        r"Setup script 20-git\.sh finished in [\d.]+ s",
        r"Your environments are ready \([\d.]+ s\)",
    ]
    assert len(got) == len(expected), got
    for message, pattern in zip(got, expected, strict=True):
        assert re.fullmatch(pattern, message), (message, pattern)
    assert "[20-git.sh] configuring git" in run.stdout and not any("configuring git" in m for m in got)
    assert_progress_sane(events)
    progress = {e["message"]: e.get("progress") for e in events}
    # two planned envs: rtc_analysis fills 20-47%, geo 47-75%, the end is 80%
    assert [progress[m] for m in got if m.startswith(("Syncing", "Synced"))] == [20, 47, 47, 75]
    assert progress[got[-1]] == bar.LAST and progress[got[0]] == bar.FIRST
    # the same lines as `kubectl logs --timestamps` shows them
    stamped = "\n".join(f"{rfc3339nano(time.time_ns())} {line}" for line in run.stdout.splitlines())
    assert kube_log.events_from_log(stamped) == events


def test_sync_percentage_fills_the_envs_slot(runs):
    from osl_hooks.engine.synced import EnvSync
    from osl_hooks.events import Event

    lines = runs["ok"].stdout.splitlines()
    reader = kube_log.LogReader()
    reader.feed("\n".join(lines[:2]))  # the start event (the planned envs) and its human line
    # a copy a third done, as the engine words it (EnvSync._describe_progress) and reports it (Reporter.progress)
    engine_words = EnvSync._describe_progress(SimpleNamespace(env=SimpleNamespace(name="rtc_analysis")), 1.2e9, 3.4e9)
    assert engine_words == "Syncing rtc_analysis: 1.2 GB of 3.4 GB (35%)"
    event = Event("copy-progress", engine_words, "rtc_analysis", bytes_done=1_200_000_000, bytes_total=3_400_000_000)
    [shown] = reader.feed(f"{event.line()}\nosl-hooks 12:34:56 {engine_words}")
    # 20 + 27.5 * 0.353: the bytes, not the words; the bar's percentage is the one number (no "(35%)")
    words = "Syncing rtc_analysis: 1.2 GB of 3.4 GB"
    assert shown == {"message": words, "progress": 29, "html_message": f'<span class="osl-hooks-tick">{words}</span>'}


def test_events_and_failure_message_of_a_failed_start(runs):
    run = runs["failed"]
    sentence = run.termination_message.splitlines()[0]
    assert sentence == "Start failed: Setup script 30-fail.sh exited with code 7"  # the engine's
    assert run.final["log"] == "~/.local/state/osl-hooks/start.log"
    output = "(last output: [30-fail.sh] licence server unreachable)"  # the failing script's, with the end too
    expected = f"Your environments could not be prepared. {sentence} {output}. The full log is in {run.final['log']}."
    failed = terminated(1, run.termination_message, 4, 9)
    pod = api_pod(run.pod, container_status("osl-hooks", failed))
    assert kube_pod.failure_message(pod) == expected
    assert messages(kube_pod.events_from_pod(pod)) == [
        "Preparing your environments (3 configured)",
        "Error: radar: /opt/conda/envs/radar does not exist in the image",
        # the failing script's last output lines travel with its event
        "Error: Setup script 30-fail.sh exited with code 7 (last output: [30-fail.sh] licence server unreachable)",
        expected,
    ]
    # restartPolicy OnFailure: the kubelet runs it again after a back-off; the last run's message stays
    backoff = api_pod(
        run.pod,
        container_status(
            "osl-hooks",
            waiting("CrashLoopBackOff", "back-off 10s restarting failed container=osl-hooks"),
            restarts=1,
            last=failed,
        ),
    )
    assert kube_pod.failure_message(backoff) == expected
    assert messages(kube_pod.events_from_pod(backoff))[-2:] == [expected, "Trying again after a pause"]
    # running again: not failed (yet); the page says what happened and that it is trying again
    again = api_pod(run.pod, container_status("osl-hooks", running(30), restarts=1, last=failed))
    assert kube_pod.failure_message(again) is None
    assert messages(kube_pod.events_from_pod(again))[-2:] == [
        expected,
        "Trying again to prepare your environments (restart 1)",
    ]
    # ... and it worked the second time (say, the licence server was back)
    ok = runs["ok"].termination_message
    ready = runs["ok"].ready
    worked = api_pod(
        run.pod, container_status("osl-hooks", terminated(0, ok, 30, 35), ready=True, restarts=1, last=failed)
    )
    assert kube_pod.failure_message(worked) is None
    assert messages(kube_pod.events_from_pod(worked))[-3:] == [
        expected,
        "Trying again to prepare your environments (restart 1)",
        ready,
    ]
    # With logs, the same sentence comes from the engine's stdout (shown once: same words).
    assert messages(kube_log.events_from_log(run.stdout))[-1] == expected


def test_failure_message_from_the_log_tail_and_other_failures(runs):
    run = runs["failed"]
    # FallbackToLogsOnError when the engine wrote no termination message: the end of its output.
    tail = "\n".join(run.stdout.splitlines()[-80:])[-2048:]
    pod = api_pod(run.pod, container_status("osl-hooks", terminated(1, tail, 4, 9)))
    assert kube_pod.failure_message(pod) == kube_pod.failure_message(
        api_pod(run.pod, container_status("osl-hooks", terminated(1, run.termination_message, 4, 9)))
    )
    # The engine could not start its report (here: the lock), so it printed its final event alone.
    from osl_hooks.engine.reporter import report_failure_without_home

    out = io.StringIO()
    report_failure_without_home("Start failed: another start on this home held the lock for 900 s", out)
    pod = api_pod(run.pod, container_status("osl-hooks", terminated(1, out.getvalue(), 4, 9)))
    assert kube_pod.failure_message(pod) == (
        "Your environments could not be prepared. Start failed: another start on this home held the lock for 900 s."
    )
    # An older engine (no event lines): its last line as it is, with the exit code.
    note = "osl-hooks: start failed: another start on this home held the lock for 900 s"
    pod = api_pod(run.pod, container_status("osl-hooks", terminated(1, note, 4, 9)))
    assert kube_pod.failure_message(pod) == (
        "Your environments could not be prepared: the osl-hooks init container failed (exit code 1): "
        "start failed: another start on this home held the lock for 900 s"
    )
    # The plan did not validate in the pod (exit code 2; printed to stderr, which the log has too).
    invalid = runs["invalid"]
    assert invalid.exit_code == 2
    pod = api_pod(run.pod, container_status("osl-hooks", terminated(2, invalid.stdout, 4, 9)))
    assert kube_pod.failure_message(pod) == (
        "Your environments could not be prepared. Invalid $OSL_HOOKS_PLAN: "
        "environments[0].mode: 'copy' is not one of ['baked', 'synced', 'linked', 'user']."
    )
    # Not the engine at all: the image has no osl-hooks.
    state = terminated(128, 'exec: "osl-hooks": executable file not found in $PATH', 4, 4)
    state["terminated"]["reason"] = "StartError"
    pod = api_pod(run.pod, container_status("osl-hooks", state))
    assert kube_pod.failure_message(pod) == (
        "Your environments could not be prepared: the osl-hooks init container failed (exit code 128, StartError): "
        'exec: "osl-hooks": executable file not found in $PATH'
    )
    # Nothing failed.
    ok = runs["ok"]
    assert kube_pod.failure_message(stages(ok)["finished"]) is None
    assert kube_pod.failure_message(stages(ok)["running"]) is None


@pytest.mark.parametrize("label", ["ok", "failed"])
def test_one_start_read_by_both_hub_readers_says_the_same(runs, label):
    """The status file (local spawners) and the pod (log, termination message) of one real start give the same
    progress: the same messages, in the same order, at the same percentages, and the same failure sentence."""
    run = runs[label]
    local = local_progress.ProgressReplay().events(run.status)
    from_log = kube_log.LogReader(kube_pod.plan_env_names(run.pod)).feed(run.stdout)
    assert local == from_log
    assert_progress_sane(local)
    assert local[0] == {
        "progress": bar.FIRST,
        "message": f"Preparing your environments ({len(run.status['environments'])} configured)",
    }
    finished = api_pod(run.pod, container_status("osl-hooks", terminated(run.exit_code, run.termination_message, 4, 9)))
    from_pod = kube_pod.events_from_pod(finished)
    # without the log, the pod status has the start, the problems and the end: the same events, the same numbers
    assert len(from_pod) >= 2 and [e for e in local if e in from_pod] == from_pod
    assert from_pod[-1]["message"] == local[-1]["message"]
    if label == "failed":
        assert (
            local_progress.failure_sentence(run.status, 1) == kube_pod.failure_message(finished) == local[-1]["message"]
        )
    else:
        assert local[-1] == {"progress": bar.LAST, "message": run.ready}


def test_events_from_pod_while_waiting(runs):
    spec = runs["ok"].pod
    assert kube_pod.events_from_pod(api_pod(spec, container_status("osl-hooks", waiting("PodInitializing")))) == []
    pulling = api_pod(
        spec,
        container_status("osl-hooks", waiting("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"')),
    )
    assert messages(kube_pod.events_from_pod(pulling)) == [
        f'Your environments cannot be prepared yet (ImagePullBackOff): Back-off pulling image "{IMAGE}"'
    ]
    no_init = copy.deepcopy(spec)
    no_init["spec"]["initContainers"] = []
    assert kube_pod.events_from_pod(no_init) == [] and kube_pod.failure_message(no_init) is None


# -- the RBAC option -----------------------------------------------------------------------------------------


def test_pods_log_rbac_manifests():
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    for doc in docs:
        for version in ("1.25", "1.37"):
            kubernetes_validate.validate(doc, version, strict=True)
    role, binding = docs
    assert role["kind"] == "Role" and binding["kind"] == "RoleBinding"
    # exactly what read_namespaced_pod_log needs (GET .../pods/<pod>/log), nothing more
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    namespace = role["metadata"]["namespace"]
    assert binding["metadata"]["namespace"] == namespace
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub", "namespace": namespace}]
    # The sed line of the file's header changes every namespace.
    header = RBAC.read_text().split("apiVersion:")[0]
    assert "sed 's/namespace: jhub$/namespace: <your namespace>/'" in header
    assert RBAC.read_text().count("namespace: jhub\n") == 3


@pytest.mark.skipif(not (Z2JH / "values.schema.yaml").exists(), reason=f"no z2jh chart data in {Z2JH}")
def test_z2jh_has_no_value_for_extra_hub_rbac_rules():
    """Why the RBAC option is plain manifests: the chart's values cannot add rules to the hub's Role."""
    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    assert set(schema["properties"]["rbac"]["properties"]) == {"enabled", "create"}
    hub = schema["properties"]["hub"]["properties"]
    assert set(hub["serviceAccount"]["properties"]) == {"create", "name", "annotations"}
    assert not [
        key
        for key in list(schema["properties"]) + list(hub)
        if re.search(r"role|rbac|extraObjects", key, re.I) and key not in ("rbac", "loadRoles")
    ]  # loadRoles: JupyterHub's own roles, not Kubernetes'


def offline_start(cluster: Cluster, start_timeout: float) -> object:
    """The cluster's spawner, ready for KubeSpawner's real start() with only its API calls replaced: the pod
    "created" is whatever the test puts in the pod reflector."""
    spawner = cluster.spawner
    spawner.storage_pvc_ensure = False
    spawner.start_timeout = start_timeout

    async def no_watch(*args, **kwargs):
        return None

    async def create_pod(pod, request_timeout):
        return True

    spawner._start_watching_pods = no_watch
    spawner._start_watching_events = no_watch
    spawner._make_create_pod_request = create_pod
    return spawner


def test_a_deliberate_failure_ends_the_spawn_at_once(runs):
    """KubeSpawner's real start(), only the API calls replaced: a crash is left to Kubernetes' retries, but
    osl-hooks' own failure (exit 1) ends the spawn with its sentence instead of waiting for start_timeout."""
    from jupyterhub.spawner import SpawnException

    run = runs["failed"]
    crashed = api_pod(run.pod, container_status("osl-hooks", terminated(137, "", 4, 9)))
    failed = api_pod(run.pod, container_status("osl-hooks", terminated(1, run.termination_message, 4, 9)))

    async def go():
        cluster = start_spawn(environments=[], delivery="init_container")
        spawner = offline_start(cluster, start_timeout=120)
        cluster.set_pod(crashed)
        task = asyncio.ensure_future(spawner.start())
        await asyncio.sleep(2)
        still_waiting = not task.done()
        cluster.set_pod(failed)
        started = time.monotonic()
        with pytest.raises(SpawnException) as info:
            await asyncio.wait_for(task, spawner.start_timeout)
        return still_waiting, time.monotonic() - started, info.value

    still_waiting, seconds, error = asyncio.run(go())
    assert still_waiting, "a crash (exit 137) is retried by Kubernetes, not ended by osl-hooks"
    assert seconds < 120 / 2, "a deliberate failure ends the spawn at once, not at start_timeout"
    assert error.jupyterhub_message == kube_pod.failure_message(failed)
    assert error.jupyterhub_message.startswith("Your environments could not be prepared. Start failed: Setup script")


def test_a_failed_local_start_hands_its_last_steps_to_every_open_page_before_it_ends(runs, tmp_path):
    """JupyterHub ends a progress stream as soon as the spawn is over, handing over only an event the page's
    generator gives without waiting (`iterate_until`): the steps the engine wrote last, the failing one
    included, must still reach every open page. Two pages, one slow to send, follow a real failed start's
    status file through JupyterHub's own `iterate_until`; the spawn fails the moment the start has read the
    engine's last write, as the spawner's `start()` does."""
    from jupyterhub.utils import iterate_until

    from osl_hooks.status import STATUS_FILE

    final = runs["failed"].status
    expected = local_progress.ProgressReplay().events(final)
    assert any(e["message"].startswith("Error: ") for e in expected[-2:]), expected[-2:]
    status_file = tmp_path / STATUS_FILE
    midway = {**final, "state": "running", "events": final["events"][:2], "progress": None}

    async def page(spawn: asyncio.Future, feed: local_progress.StatusFeed, send_seconds: float) -> list[dict]:
        shown = []
        async for event in iterate_until(spawn, feed.follow()):
            shown.append(event)
            await asyncio.sleep(send_seconds)  # JupyterHub's send_event: a write and a flush to the browser
        return shown

    async def go() -> list[list[dict]]:
        spawn = asyncio.get_running_loop().create_future()
        feed = local_progress.StatusFeed()
        feed.state_dir = tmp_path
        feed.pid = final["pid"]
        status_file.write_text(json.dumps(midway))
        assert await feed.read() is not None
        pages = [asyncio.ensure_future(page(spawn, feed, seconds)) for seconds in (0, 0.05)]
        await asyncio.sleep(0.2)  # both pages have shown the first steps and wait for more
        status_file.write_text(json.dumps(final))  # the engine's last write: the failing step, the end
        feed.end(await feed.read())
        spawn.set_exception(RuntimeError("the start failed"))  # start() raises at once
        shown = await asyncio.gather(*pages)
        assert isinstance(spawn.exception(), RuntimeError)
        return shown

    for shown in asyncio.run(go()):
        assert shown == expected


def test_a_successful_local_start_ends_with_the_server_step_and_a_late_page_replays_it_all(runs, tmp_path):
    from osl_hooks.status import STATUS_FILE

    done = runs["ok"].status
    (tmp_path / STATUS_FILE).write_text(json.dumps(done))

    async def go() -> list[dict]:
        feed = local_progress.StatusFeed()
        feed.state_dir = tmp_path
        feed.pid = done["pid"]
        assert await feed.read() == done
        feed.end(done)
        return [event async for event in feed.follow()]  # a page opened after the end

    shown = asyncio.run(go())
    assert shown[:-1] == local_progress.ProgressReplay().events(done)
    assert shown[-1] == {"progress": local_progress.SERVER, "message": local_progress.SERVER_MESSAGE}


def test_a_start_feed_ignores_another_starts_status(runs, tmp_path):
    """A status file left by an earlier start (another engine process) is never shown as this start's."""
    from osl_hooks.status import STATUS_FILE

    (tmp_path / STATUS_FILE).write_text(json.dumps(runs["ok"].status))
    feed = local_progress.StatusFeed()
    feed.state_dir = tmp_path
    feed.pid = runs["ok"].status["pid"] + 1
    assert asyncio.run(feed.read()) is None and feed.shown == []


def test_a_page_opened_before_the_start_follows_the_new_start_not_the_last_one(runs, tmp_path):
    """JupyterHub answers a spawn request at once, so a spawn page can ask for progress before the spawner's
    start() has begun; the previous start's feed (here a failed one) is still on the spawner then, and must not
    be replayed as if it were this start's."""
    from osl_hooks.hub.spawner import OSLHooksSpawnerMixin
    from osl_hooks.status import STATUS_FILE

    class LocalSpawner(OSLHooksSpawnerMixin):
        _osl_hooks_plan = object()  # a local start (what the pre_spawn hook sets)

    async def feed_of(spawn: asyncio.Future, status: dict, directory: Path) -> local_progress.StatusFeed:
        directory.mkdir()
        (directory / STATUS_FILE).write_text(json.dumps(status))
        feed = local_progress.StatusFeed(spawn)
        feed.state_dir, feed.pid = directory, status["pid"]
        feed.end(await feed.read())
        return feed

    async def go() -> list[dict]:
        loop = asyncio.get_running_loop()
        spawner = LocalSpawner()
        spawner._osl_hooks_feed = await feed_of(loop.create_future(), runs["failed"].status, tmp_path / "last")
        spawner._spawn_future = this_spawn = loop.create_future()  # the new spawn, before its start() runs
        page = asyncio.ensure_future(_collect(spawner.progress()))
        await asyncio.sleep(3 * local_progress.STATUS_POLL_SECONDS)
        assert not page.done()  # waiting for this start, showing nothing of the last one
        spawner._osl_hooks_feed = await feed_of(this_spawn, runs["ok"].status, tmp_path / "this")
        return await asyncio.wait_for(page, 10)

    shown = asyncio.run(go())
    assert shown[:-1] == local_progress.ProgressReplay().events(runs["ok"].status)
    assert not [e for e in shown if "could not be prepared" in e["message"]]


async def _collect(events) -> list[dict]:
    return [event async for event in events]
