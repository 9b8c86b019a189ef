"""The coordinator actions of an emulated cluster's run, read from the emulators' own records.

Role: map every address of the run to its pod incarnation (`SimCluster.made`; a run never gives an
address twice, so on the namespaced bed an address names one incarnation), read the API emulator's
audit log (`sim.kube.audit`) and every incarnation's Memgraph command audit (`sim.memgraph.audit`),
and keep the records that are coordinator actions, as `sim.check_leaders.Act`s, by this rule (read from
agent/ and coordinator/edge/: which requests only the leader makes):
- API, successful requests only (a refused one -- 401 for a replaced pod's token, 409 for a stale
  Lease -- changed nothing), from a pod's address:
  - a Lease write (create, update, patch): only the holder's succeed (compare-and-swap on the
    resourceVersion), so each is the leader's: claim, renewal, record annotations. One that leaves no
    holder is a release (`Act.release`: the end of that incarnation's tenure);
  - a pod patch or delete on ANOTHER pod (the role and leader labels, a re-seed's stamp and delete:
    coordinator.edge.kube);
  - a patch of its OWN pod, except one that only removes the role label: that is the preStop hook's
    patch of its own pod (agent/prestop.py, `_replica`), which any agent makes;
  - an Event (coordinator.edge.kube.emit_event is the only writer of Events);
  - any other mutating request from a pod (none is expected: counted, not ignored).
- Memgraph: every audited command (SET REPLICATION ROLE, REGISTER/DROP REPLICA, CREATE SNAPSHOT),
  whatever its answer, that came from a pod's address -- the coordinator reaches every Memgraph, its own
  pod's too, at the pod's address. A command from 127.0.0.1 is the receiving pod's own agent (its guard
  demoting its local Memgraph, agent/guard.py, through MEMGRAPH_HOST=127.0.0.1): not a coordinator's.
Records from no pod's address (the test harness, on the bridge) are counted apart, not judged; so are
the agent-local records. The rule needs the namespaced bed (one address per incarnation).

Must never: change the cluster, or attribute a record to a pod by its name alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sim.check_leaders import Act, Actor
from sim.cluster import ROLE_LABEL, SimCluster
from sim.kube.audit import AuditRecord
from sim.memgraph import audit as memgraph_audit
from sim.memgraph.audit import Command

LOCALHOST = "127.0.0.1"
PRESTOP_OWN_PATCH = {"metadata": {"labels": {ROLE_LABEL: None}}}


@dataclass
class Gathered:
    acts: list[Act] = field(default_factory=list)
    unattributed: int = 0  # records from addresses that are no pod's (the test harness)
    local: int = 0  # agent-local records: own-pod preStop patches, local Memgraph commands
    refused: int = 0  # API writes from pods that did not succeed (not actions)


def actors(cluster: SimCluster) -> dict[str, Actor]:
    """Every incarnation of the run by its address."""
    return {rt.ip: Actor(rt.name, rt.uid) for rt in cluster.made}


def api_acts(records: Iterable[AuditRecord], by_ip: Mapping[str, Actor], out: Gathered) -> None:
    """The coordinator actions among the API audit records (the rule in the module docstring)."""
    for r in records:
        actor = by_ip.get(r.source_ip)
        if actor is None:
            out.unattributed += 1
            continue
        if not r.ok:
            out.refused += 1
            continue
        if r.resource == "pods" and r.verb == "patch" and r.name == actor.pod and not r.subresource \
                and r.patch_body() == PRESTOP_OWN_PATCH:
            out.local += 1
            continue
        what = f"{r.verb} {r.resource}/{r.name}" if r.name else f"{r.verb} {r.resource}"
        release = r.resource == "leases" and r.holder == ""
        out.acts.append(Act(r.completed, actor, what + (" (release)" if release else ""), "api", release))


def memgraph_acts(commands: Iterable[Command], receiver: Actor, by_ip: Mapping[str, Actor],
                  out: Gathered) -> None:
    """The coordinator actions among one incarnation's Memgraph command audit."""
    for cmd in commands:
        if cmd.peer == LOCALHOST:
            out.local += 1
            continue
        actor = by_ip.get(cmd.peer)
        if actor is None:
            out.unattributed += 1
            continue
        answer = f" -> {cmd.error}" if cmd.error else ""
        out.acts.append(Act(cmd.t, actor, f"{cmd.command} on {receiver}{answer}", "memgraph"))


def gather(cluster: SimCluster) -> Gathered:
    """The run's coordinator actions so far, from the API emulator and every Memgraph of the run."""
    by_ip = actors(cluster)
    out = Gathered()
    api_acts(cluster.kube.audit_records(), by_ip, out)
    for rt in cluster.made:
        if rt.memgraph.audit_file is not None:
            memgraph_acts(memgraph_audit.read(rt.memgraph.audit_file), Actor(rt.name, rt.uid), by_ip, out)
    out.acts.sort(key=lambda a: a.t)
    return out
