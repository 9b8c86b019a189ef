"""A checker of a pod spec against the Pod Security Standards "baseline" and "restricted" profiles.

Role: the rules as the Kubernetes documentation states them ("Pod Security Standards",
kubernetes.io/docs/concepts/security/pod-security-standards, profile details for Baseline and Restricted,
policy version latest), each a small function over the pod spec (and pod annotations) that returns the
violations it finds, worded after the control it enforces. `violations(spec, profile)` runs them all.
Must never: accept what the documented control forbids (where the doc says "undefined/nil" or a value
list, the check allows exactly that), or need a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Spec = dict[str, Any]

# Baseline "Capabilities": "Adding additional capabilities beyond those listed below must be disallowed."
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
# Baseline "SELinux": allowed spec.*.securityContext.seLinuxOptions.type values.
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Baseline "Sysctls": "Sysctls can disable security mechanisms ... must be disallowed except for an
# allowed 'safe' subset."
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
# Restricted "Volume Types": "In addition to restricting HostPath volumes, the restricted policy limits
# usage of non-core volume types to those defined through PersistentVolumes."
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def containers(spec: Spec) -> Iterator[dict[str, Any]]:
    """Every container the standards cover: containers, initContainers, ephemeralContainers."""
    for key in ("containers", "initContainers", "ephemeralContainers"):
        yield from spec.get(key) or []


def _sc(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("securityContext") or {}


def _where(ctr: dict[str, Any]) -> str:
    return f"container {ctr.get('name')!r}"


# ---- baseline ---------------------------------------------------------------------------------------


def host_process(spec: Spec) -> list[str]:
    """HostProcess: windowsOptions.hostProcess must be undefined or false."""
    scopes = [("pod", _sc(spec))] + [(_where(c), _sc(c)) for c in containers(spec)]
    return [
        f"{w}: windowsOptions.hostProcess"
        for w, sc in scopes
        if (sc.get("windowsOptions") or {}).get("hostProcess")
    ]


def host_namespaces(spec: Spec) -> list[str]:
    """Host Namespaces: hostNetwork, hostPID, hostIPC undefined or false."""
    return [f"pod: {key}" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]


def privileged(spec: Spec) -> list[str]:
    """Privileged Containers: securityContext.privileged undefined or false."""
    return [f"{_where(c)}: privileged" for c in containers(spec) if _sc(c).get("privileged")]


def baseline_capabilities(spec: Spec) -> list[str]:
    """Capabilities: capabilities.add only from the baseline list."""
    out = []
    for c in containers(spec):
        extra = set((_sc(c).get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        out += [f"{_where(c)}: adds capability {cap}" for cap in sorted(extra)]
    return out


def host_path(spec: Spec) -> list[str]:
    """HostPath Volumes: must be forbidden."""
    return [f"volume {v.get('name')!r}: hostPath" for v in spec.get("volumes") or [] if "hostPath" in v]


def host_ports(spec: Spec) -> list[str]:
    """Host Ports: hostPort undefined or 0."""
    return [
        f"{_where(c)}: hostPort {p['hostPort']}"
        for c in containers(spec)
        for p in c.get("ports") or []
        if p.get("hostPort")
    ]


def app_armor(spec: Spec, annotations: dict[str, str]) -> list[str]:
    """AppArmor: appArmorProfile.type undefined, RuntimeDefault or Localhost; the annotation likewise."""
    out = []
    scopes = [("pod", _sc(spec))] + [(_where(c), _sc(c)) for c in containers(spec)]
    for w, sc in scopes:
        kind = (sc.get("appArmorProfile") or {}).get("type")
        if kind not in (None, "RuntimeDefault", "Localhost"):
            out.append(f"{w}: appArmorProfile {kind}")
    for key, value in annotations.items():
        allowed = value == "runtime/default" or value.startswith("localhost/")
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not allowed:
            out.append(f"annotation {key}: {value}")
    return out


def selinux(spec: Spec) -> list[str]:
    """SELinux: type from the allowed list; user and role undefined."""
    out = []
    scopes = [("pod", _sc(spec))] + [(_where(c), _sc(c)) for c in containers(spec)]
    for w, sc in scopes:
        opts = sc.get("seLinuxOptions") or {}
        if opts.get("type", "") not in SELINUX_TYPES:
            out.append(f"{w}: seLinuxOptions.type {opts['type']}")
        out += [f"{w}: seLinuxOptions.{key}" for key in ("user", "role") if opts.get(key)]
    return out


def proc_mount(spec: Spec) -> list[str]:
    """/proc Mount Type: undefined or Default."""
    return [
        f"{_where(c)}: procMount {_sc(c)['procMount']}"
        for c in containers(spec)
        if _sc(c).get("procMount") not in (None, "Default")
    ]


def baseline_seccomp(spec: Spec) -> list[str]:
    """Seccomp: seccompProfile.type must not be Unconfined."""
    scopes = [("pod", _sc(spec))] + [(_where(c), _sc(c)) for c in containers(spec)]
    return [
        f"{w}: seccompProfile Unconfined"
        for w, sc in scopes
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined"
    ]


def sysctls(spec: Spec) -> list[str]:
    """Sysctls: only the safe subset."""
    return [
        f"pod: sysctl {s.get('name')}"
        for s in _sc(spec).get("sysctls") or []
        if s.get("name") not in SAFE_SYSCTLS
    ]


# ---- restricted -------------------------------------------------------------------------------------


def volume_types(spec: Spec) -> list[str]:
    """Volume Types: only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim,
    projected, secret."""
    out = []
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        out += [f"volume {v.get('name')!r}: type {k}" for k in sorted(kinds - RESTRICTED_VOLUME_TYPES)]
    return out


def privilege_escalation(spec: Spec) -> list[str]:
    """Privilege Escalation: allowPrivilegeEscalation must be set to false (every container)."""
    return [
        f"{_where(c)}: allowPrivilegeEscalation not false"
        for c in containers(spec)
        if _sc(c).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(spec: Spec) -> list[str]:
    """Running as Non-root: runAsNonRoot true on the pod, or on every container; no container false."""
    pod = _sc(spec).get("runAsNonRoot")
    out = []
    for c in containers(spec):
        own = _sc(c).get("runAsNonRoot")
        if own is False or (own is None and pod is not True):
            out.append(f"{_where(c)}: runAsNonRoot not true")
    return out


def run_as_user(spec: Spec) -> list[str]:
    """Running as Non-root user: runAsUser must not be 0 (pod or container)."""
    scopes = [("pod", _sc(spec))] + [(_where(c), _sc(c)) for c in containers(spec)]
    return [f"{w}: runAsUser 0" for w, sc in scopes if sc.get("runAsUser") == 0]


def restricted_seccomp(spec: Spec) -> list[str]:
    """Seccomp (v1.19+): RuntimeDefault or Localhost on the pod, or on every container."""
    pod = (_sc(spec).get("seccompProfile") or {}).get("type")
    out = []
    for c in containers(spec):
        own = (_sc(c).get("seccompProfile") or {}).get("type")
        effective = own or pod
        if effective not in ("RuntimeDefault", "Localhost"):
            out.append(f"{_where(c)}: seccompProfile {effective or 'unset'}")
    return out


def restricted_capabilities(spec: Spec) -> list[str]:
    """Capabilities (v1.22+): drop ALL; add only NET_BIND_SERVICE."""
    out = []
    for c in containers(spec):
        caps = _sc(c).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{_where(c)}: capabilities.drop lacks ALL")
        out += [f"{_where(c)}: adds capability {a}" for a in caps.get("add") or [] if a != "NET_BIND_SERVICE"]
    return out


BASELINE: tuple[Callable[[Spec], list[str]], ...] = (
    host_process,
    host_namespaces,
    privileged,
    baseline_capabilities,
    host_path,
    host_ports,
    selinux,
    proc_mount,
    baseline_seccomp,
    sysctls,
)
RESTRICTED = (
    *BASELINE,
    volume_types,
    privilege_escalation,
    run_as_non_root,
    run_as_user,
    restricted_seccomp,
    restricted_capabilities,
)


def violations(
    spec: Spec, profile: str = "restricted", annotations: dict[str, str] | None = None
) -> list[str]:
    """Every violation of `profile` ("baseline" or "restricted") by a pod spec; empty when it passes."""
    checks = {"baseline": BASELINE, "restricted": RESTRICTED}[profile]
    found = [v for check in checks for v in check(spec)]
    return found + app_armor(spec, annotations or {})
