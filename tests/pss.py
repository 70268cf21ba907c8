"""A checker of the Kubernetes "restricted" Pod Security Standard, written from its published rules.

https://kubernetes.io/docs/concepts/security/pod-security-standards/ (policy version "latest", Kubernetes
1.25-1.37): the restricted policy is every baseline control plus its own. `violations(pod)` returns one line
per broken control, naming the field (`spec.initContainers[1](osl-hooks).securityContext.runAsNonRoot: ...`),
as Pod Security Admission would reject the pod. The checks read the pod as the API gets it (camelCase JSON).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Restricted: the only volume sources allowed (`image` since Kubernetes 1.33 made image volumes beta).
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
    "image",
}
SECCOMP_RESTRICTED = {"RuntimeDefault", "Localhost"}


def containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field path, container) for every container of every kind."""
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(spec.get(kind) or []):
            yield f"spec.{kind}[{i}]({c.get('name')})", c


def violations(pod: dict[str, Any]) -> list[str]:
    """Every restricted-policy control the pod breaks (empty: Pod Security Admission would admit it)."""
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    problems = _pod_level(pod, spec, psc)
    for where, container in containers(spec):
        problems += [f"{where}.{p}" for p in container_problems(container, psc)]
    return problems


def _pod_level(pod: dict[str, Any], spec: dict[str, Any], psc: dict[str, Any]) -> list[str]:
    problems = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"spec.{key}: must be false (host namespaces)")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("spec.securityContext.windowsOptions.hostProcess: must be false")
    for i, volume in enumerate(spec.get("volumes") or []):
        sources = set(volume) - {"name"}
        if sources - RESTRICTED_VOLUMES:
            problems.append(f"spec.volumes[{i}]({volume.get('name')}): {', '.join(sorted(sources))} is not allowed")
    problems += [f"spec.securityContext.{p}" for p in _selinux_apparmor_seccomp(psc)]
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"spec.securityContext.sysctls: {sysctl.get('name')} is not a safe sysctl")
    if psc.get("runAsUser") == 0:
        problems.append("spec.securityContext.runAsUser: must not be 0")
    if psc.get("runAsNonRoot") is False:
        problems.append("spec.securityContext.runAsNonRoot: must be true or unset")
    for key, value in (pod.get("metadata", {}).get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            problems.append(f"metadata.annotations[{key}]: {value!r} is not runtime/default or localhost/*")
    return problems


def _selinux_apparmor_seccomp(sc: dict[str, Any]) -> list[str]:
    problems = []
    selinux = sc.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in SELINUX_TYPES:
        problems.append(f"seLinuxOptions.type: {selinux['type']!r} is not allowed")
    for key in ("user", "role"):
        if selinux.get(key):
            problems.append(f"seLinuxOptions.{key}: must be unset")
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"appArmorProfile.type: {apparmor!r} is not RuntimeDefault or Localhost")
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_RESTRICTED:
        problems.append(f"seccompProfile.type: {seccomp!r} is not RuntimeDefault or Localhost")
    return problems


def container_problems(container: dict[str, Any], psc: dict[str, Any]) -> list[str]:
    """The controls one container breaks, given the pod's securityContext (for the pod-or-container rules)."""
    sc = container.get("securityContext") or {}
    problems = []
    # Baseline allows adding a few default capabilities; restricted allows only NET_BIND_SERVICE (checked below).
    if sc.get("privileged"):
        problems.append("securityContext.privileged: must be false")
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("securityContext.windowsOptions.hostProcess: must be false")
    if sc.get("procMount", "Default") != "Default":
        problems.append("securityContext.procMount: must be Default")
    for i, port in enumerate(container.get("ports") or []):
        if port.get("hostPort"):
            problems.append(f"ports[{i}].hostPort: must be 0 or unset")
    problems += [f"securityContext.{p}" for p in _selinux_apparmor_seccomp(sc)]
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("securityContext.allowPrivilegeEscalation: must be false")
    if sc.get("runAsNonRoot") is False or (sc.get("runAsNonRoot") is not True and psc.get("runAsNonRoot") is not True):
        problems.append("securityContext.runAsNonRoot: must be true (here or in the pod's securityContext)")
    if sc.get("runAsUser") == 0:
        problems.append("securityContext.runAsUser: must not be 0")
    if "seccompProfile" not in sc and (psc.get("seccompProfile") or {}).get("type") not in SECCOMP_RESTRICTED:
        problems.append("securityContext.seccompProfile.type: must be RuntimeDefault or Localhost (here or the pod's)")
    capabilities = sc.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("securityContext.capabilities.drop: must include ALL")
    added = set(capabilities.get("add") or [])
    if added - {"NET_BIND_SERVICE"}:
        problems.append(f"securityContext.capabilities.add: only NET_BIND_SERVICE, not {', '.join(sorted(added))}")
    return problems
