"""The restricted Pod Security Standard checker (tests/pss.py) on a pod that passes and on known-bad pods."""

from __future__ import annotations

import copy

import pss
import pytest

GOOD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "jupyter-nina", "annotations": {}},
    "spec": {
        "securityContext": {"fsGroup": 100, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [
            {
                "name": "osl-hooks",
                "image": "notebook:1",
                "securityContext": {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "containers": [
            {
                "name": "notebook",
                "image": "notebook:1",
                "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                "securityContext": {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                },
            }
        ],
        "volumes": [
            {"name": "home", "persistentVolumeClaim": {"claimName": "claim-nina"}},
            {"name": "env-gis", "image": {"reference": "registry.example/envs/gis:1", "pullPolicy": "IfNotPresent"}},
        ],
    },
}


def test_a_restricted_pod_passes():
    import kubernetes_validate

    assert pss.violations(GOOD) == []
    kubernetes_validate.validate(GOOD, "1.33", strict=True)  # image volumes: Kubernetes 1.33 and later


def init_sc(pod):
    return pod["spec"]["initContainers"][0]["securityContext"]


def notebook(pod):
    return pod["spec"]["containers"][0]


BAD = {
    "host network": (lambda p: p["spec"].update(hostNetwork=True), "spec.hostNetwork"),
    "host PID": (lambda p: p["spec"].update(hostPID=True), "spec.hostPID"),
    "hostPath volume": (
        lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "spec.volumes[2](h): hostPath",
    ),
    "nfs volume": (
        lambda p: p["spec"]["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
        "spec.volumes[2](n): nfs",
    ),
    "privileged": (lambda p: init_sc(p).update(privileged=True), "(osl-hooks).securityContext.privileged"),
    "privilege escalation unset": (
        lambda p: init_sc(p).pop("allowPrivilegeEscalation"),
        "(osl-hooks).securityContext.allowPrivilegeEscalation",
    ),
    "runAsNonRoot unset anywhere": (
        lambda p: init_sc(p).pop("runAsNonRoot"),
        "(osl-hooks).securityContext.runAsNonRoot",
    ),
    "runAsNonRoot false despite the pod": (
        lambda p: (p["spec"]["securityContext"].update(runAsNonRoot=True), init_sc(p).update(runAsNonRoot=False)),
        "(osl-hooks).securityContext.runAsNonRoot",
    ),
    "runAsNonRoot false in the pod": (
        lambda p: p["spec"]["securityContext"].update(runAsNonRoot=False),
        "spec.securityContext.runAsNonRoot: must be true or unset",
    ),
    "runAsUser 0 in the container": (
        lambda p: init_sc(p).update(runAsUser=0),
        "(osl-hooks).securityContext.runAsUser",
    ),
    "runAsUser 0 in the pod": (
        lambda p: p["spec"]["securityContext"].update(runAsUser=0),
        "spec.securityContext.runAsUser",
    ),
    "no seccomp profile": (
        lambda p: p["spec"]["securityContext"].pop("seccompProfile"),
        "(notebook).securityContext.seccompProfile.type",
    ),
    "unconfined seccomp": (
        lambda p: init_sc(p).update(seccompProfile={"type": "Unconfined"}),
        "(osl-hooks).securityContext.seccompProfile.type: 'Unconfined'",
    ),
    "capabilities not dropped": (
        lambda p: init_sc(p).pop("capabilities"),
        "(osl-hooks).securityContext.capabilities.drop",
    ),
    "a capability added": (
        lambda p: notebook(p)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]),
        "(notebook).securityContext.capabilities.add: only NET_BIND_SERVICE, not NET_ADMIN",
    ),
    "host port": (lambda p: notebook(p)["ports"][0].update(hostPort=8888), "(notebook).ports[0].hostPort"),
    "proc mount": (lambda p: init_sc(p).update(procMount="Unmasked"), "(osl-hooks).securityContext.procMount"),
    "unsafe sysctl": (
        lambda p: p["spec"]["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "sysctls: kernel.msgmax",
    ),
    "SELinux user": (
        lambda p: init_sc(p).update(seLinuxOptions={"user": "system_u"}),
        "(osl-hooks).securityContext.seLinuxOptions.user",
    ),
    "AppArmor unconfined": (
        lambda p: init_sc(p).update(appArmorProfile={"type": "Unconfined"}),
        "(osl-hooks).securityContext.appArmorProfile.type",
    ),
    "AppArmor annotation": (
        lambda p: p["metadata"]["annotations"].update(
            {"container.apparmor.security.beta.kubernetes.io/notebook": "unconfined"}
        ),
        "metadata.annotations[container.apparmor",
    ),
    "an ephemeral container": (
        lambda p: p["spec"].update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        "spec.ephemeralContainers[0](debug).securityContext.allowPrivilegeEscalation",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_known_bad_pods_are_caught(case):
    break_it, expected = BAD[case]
    pod = copy.deepcopy(GOOD)
    break_it(pod)
    problems = pss.violations(pod)
    assert any(expected in p for p in problems), problems


def test_the_init_container_must_not_be_weaker_than_the_notebook_container():
    from test_hub_support import osl_hooks_weakens_security

    pod = copy.deepcopy(GOOD)
    assert osl_hooks_weakens_security(pod) == []
    init_sc(pod).pop("capabilities")
    assert osl_hooks_weakens_security(pod) == ["securityContext.capabilities.drop: must include ALL"]
    notebook(pod)["securityContext"].pop("capabilities")  # the admin's choice for both: not osl-hooks' doing
    assert osl_hooks_weakens_security(pod) == []
