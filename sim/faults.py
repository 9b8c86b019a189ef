"""Fault injection over the emulated cluster: the faults of the scenario suite and of `make soak`.

Role: one small function (or context manager) per fault, each acting through the controls the emulators
offer for tests (`PodRuntime` kill/freeze/hold, `MemgraphProcess.admin` cut/delay/isolate,
`KubeEmulator` outage/latency) and, where the fault has a duration, recording its window in the run's
`Timeline` (API outages as `OutageWindow`), so the invariant checker judges the run against what was
really done. `FaultLog` keeps a line per injected fault with its monotonic time, for reports and for
replaying a soak seed.

How close the emulation gets (documented limits):
- kill -9 of Memgraph or of the agent: exact (SIGKILL of the process group); the kubelet restarts the
  container with CrashLoopBackOff (`sim.backoff`: the first restart at once, then 10 s, 20 s, ...),
  unless the container is held (`hold`: kept down as long as the test needs).
- a hung process (`hang`): the container's process is stopped (SIGSTOP) and so answers nothing, its
  listening socket still completing TCP handshakes (the kernel's backlog) as a hung server's does.
- pod delete with/without preStop: the API server sets deletionTimestamp, the kubelet runs (or skips) the
  real hook, then SIGTERM, then SIGKILL at the grace period; `grace_s=0` is a force delete.
- API latency / outage: every request of the agents (real `kubernetes` client) is delayed / refused /
  answered 503 / hung. The emulated kubelet and StatefulSet controller write the store directly and so
  keep working through an outage (in a real cluster the kubelet's status updates would be lost too).
- partition (`partition`, network namespaces only): nftables in the pod's namespace drops packets
  silently (`sim.partition`): the pod cut from everything, from its peers, from the API server, or from
  given peers, in one direction or both; connections hang, nothing is refused, localhost inside the pod
  keeps working. With `node=True` it is a node partition: the node's kubelet reaches no API server
  (`KubeletState.PARTITIONED`), so the pod stays Ready until the node lifecycle controller's grace ends
  (`sim.nodeloop`). `cut_off`, `cut_replication` and `node_loss(partition)` use it when the pods have
  namespaces.
- without namespaces (loopback), `cut_off` emulates a partition: the pod's Memgraph refuses new Bolt
  connections and all replication traffic (`isolate`), every other Memgraph drops replication to and
  from it (`cut`), and the pod's agent is stopped (SIGSTOP). Kinder than a real partition: connections
  open before the cut keep working and a refused connect fails at once.
- slow replica (`slow_replication`): the MAIN's outgoing replication requests sleep `ms` first. The
  emulator delays per sending instance, so every replica of that MAIN is equally slow.
- node loss (`node_loss`), two variants: `freeze` (the node is paused: every process of the pod and the
  node's kubelet stop) and `partition` (the node is cut off: the pod's traffic is dropped as by `cut_off`
  but for the kubelet's own probes, node-local, and the kubelet runs on locally but reaches no API
  server). Either way the kubelet stops reporting and
  the node lifecycle controller (`sim.nodeloop`) marks the pod not Ready after the node-monitor grace
  period; a delete leaves it Terminating until a force delete (`force_delete`).
- kubelet death (`kubelet_down`): the kubelet of the pod's node is gone, the containers run on: no probes,
  no restarts, no status, nothing removed. `kubelet_unreachable`: the kubelet runs but reaches no API
  server (with `partition` inside it, a node partition whose network heals before the kubelet acts).
- commit windows (`commit_fault`): the pod's Memgraph crashes (kill -9, restarted by the kubelet) or
  freezes (SIGSTOP, until `resume_memgraph`) at a chosen step of its next write commit (`wal_written`,
  `votes_in`, `local_commit`, `finalized`; reference memgraph-replication.md 7.1-7.2), exactly as the
  emulator's commit control does; `votes_in` + `stop` is the paused MAIN of 7.2.
- stopped Memgraph (`pause_memgraph`, `resume_memgraph`): SIGSTOP / SIGCONT of the pod's Memgraph alone;
  Bolt connections are still accepted by the kernel and never answered, as with a real stopped process.
- busy Bolt workers (`busy_workers`): N of the pod's Memgraph Bolt workers (default all) run a query of
  S seconds; new queries queue, SHOW REPLICATION ROLE is still answered by the high-priority worker.
- volume from an older MAIN (`write_offline`): while the pod's Memgraph is down, its data directory is
  opened by a standalone emulator started as MAIN with no replicas (`--replication-restore-state-on-
  startup false`), which commits writes no other instance has: the old-MAIN-with-unique-writes case of
  reference memgraph-replication.md 4.1.

Must never: leave a fault active after its context ends (every context manager heals in `finally`),
wait without a bound, or be imported by agent/ or coordinator/.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from neo4j import GraphDatabase

from sim import partition as nft
from sim import proc
from sim.cluster import SimCluster
from sim.kubelet import memgraph_data_dir
from sim.memgraph.control import MemgraphProcess
from sim.nodes import KubeletState
from sim.timeline import OutageWindow, Timeline

log = logging.getLogger(__name__)


@dataclass
class FaultLog:
    """What was injected, when (monotonic seconds), in order."""

    lines: list[tuple[float, str]] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.lines.append((time.monotonic(), text))
        log.info("fault: %s", text)

    def render(self, t0: float) -> list[str]:
        return [f"[{t - t0:7.2f}s] {text}" for t, text in self.lines]


NO_LOG = FaultLog()


# ---- processes -------------------------------------------------------------------------------------


def kill_memgraph(cluster: SimCluster, pod: str, hold: bool = False, flog: FaultLog = NO_LOG) -> None:
    """kill -9 of the pod's Memgraph. With `hold`, the kubelet does not restart it until `release`."""
    rt = cluster.runtime(pod)
    if hold:
        rt.held.add("memgraph")
    rt.kill_memgraph()
    flog.add(f"kill -9 memgraph of {pod}" + (" (held down)" if hold else ""))


def kill_agent(cluster: SimCluster, pod: str, hold: bool = False, flog: FaultLog = NO_LOG) -> None:
    """kill -9 of the pod's agent (its process group). With `hold`, not restarted until `release`."""
    rt = cluster.runtime(pod)
    if hold:
        rt.held.add("agent")
    rt.kill_agent()
    flog.add(f"kill -9 agent of {pod}" + (" (held down)" if hold else ""))


def release(cluster: SimCluster, pod: str, flog: FaultLog = NO_LOG) -> None:
    """Let the kubelet restart the pod's held containers (and the StatefulSet re-create a held pod)."""
    cluster.held_pods.discard(pod)
    with contextlib.suppress(KeyError):
        cluster.runtime(pod).held.clear()
    flog.add(f"release {pod}")


def delete_pod(cluster: SimCluster, pod: str, run_hook: bool = True, grace_s: float | None = None,
               hold: bool = False, flog: FaultLog = NO_LOG) -> None:
    """Delete the pod (preStop hook unless `run_hook` is False). With `hold`, it is not re-created until
    `release` (a volume can be prepared meanwhile)."""
    if hold:
        cluster.held_pods.add(pod)
    cluster.delete_pod(pod, grace_s=grace_s, run_hook=run_hook)
    flog.add(f"delete pod {pod}" + ("" if run_hook else " without preStop")
             + (f" grace={grace_s:g}s" if grace_s is not None else "") + (" (held)" if hold else ""))


def wait_pod_gone(cluster: SimCluster, pod: str, old_uid: str | None, timeout_s: float) -> None:
    """Until the incarnation `old_uid` of `pod` has finished terminating (bounded)."""
    def gone() -> bool:
        return all(i.runtime.uid != old_uid for i in cluster.kubelets.all())
    cluster.wait_for(gone, timeout_s, f"{pod} ({old_uid}) terminated")


# ---- node loss and partition -----------------------------------------------------------------------


@contextlib.contextmanager
def node_loss(cluster: SimCluster, pod: str, variant: str = "freeze",
              flog: FaultLog = NO_LOG) -> Iterator[str]:
    """The node of `pod` is lost for the block (`freeze` or `partition`, see the module docstring);
    yields the node's name. On exit the node is back (its kubelet reports again)."""
    if variant not in ("freeze", "partition"):
        raise ValueError(f"node loss variant {variant!r}")
    node, rt = cluster.node_of(pod), cluster.runtime(pod)
    with contextlib.ExitStack() as undo:
        if variant == "freeze":
            cluster.set_kubelet(node, KubeletState.FROZEN)
            rt.freeze()
            undo.callback(rt.thaw)
            undo.callback(cluster.set_kubelet, node, KubeletState.RUNNING)
        elif namespaced(cluster):  # the node's uplink cut: its kubelet's probes still reach the pod
            undo.enter_context(partition(cluster, pod, "all", node=True))  # the kubelet back on exit
        else:
            cluster.set_kubelet(node, KubeletState.PARTITIONED)
            undo.enter_context(cut_off(cluster, pod))
            undo.callback(cluster.set_kubelet, node, KubeletState.RUNNING)
        flog.add(f"{node} of {pod} lost ({variant})")
        try:
            yield node
        finally:
            flog.add(f"{node} of {pod} back")


def kubelet_down(cluster: SimCluster, pod: str,
                 flog: FaultLog = NO_LOG) -> contextlib.AbstractContextManager[str]:
    """The kubelet of `pod`'s node is dead for the block (the containers run on); restarted on exit."""
    return _kubelet_in(cluster, pod, KubeletState.DEAD, "dead", "restarted", flog)


def kubelet_unreachable(cluster: SimCluster, pod: str,
                        flog: FaultLog = NO_LOG) -> contextlib.AbstractContextManager[str]:
    """The kubelet of `pod`'s node reaches no API server for the block (it acts locally; the node
    controller hears nothing): with `partition(..., node=True)` inside it, a node partition whose network
    heals before the kubelet acts again, as when its pod watch reconnects late. Yields the node's name."""
    return _kubelet_in(cluster, pod, KubeletState.PARTITIONED, "cut from the API server",
                       "reaches the API server again", flog)


@contextlib.contextmanager
def _kubelet_in(cluster: SimCluster, pod: str, state: KubeletState, what: str, back: str,
                flog: FaultLog) -> Iterator[str]:
    node = cluster.node_of(pod)
    cluster.set_kubelet(node, state)
    flog.add(f"kubelet of {node} ({pod}) {what}")
    try:
        yield node
    finally:
        cluster.set_kubelet(node, KubeletState.RUNNING)
        flog.add(f"kubelet of {node} {back}")


@contextlib.contextmanager
def hang(cluster: SimCluster, pod: str, container: str = "memgraph",
         flog: FaultLog = NO_LOG) -> Iterator[None]:
    """The container's process hangs (SIGSTOP) for the block, its port still open; resumed on exit."""
    rt = cluster.runtime(pod)
    rt.signal_container(container, signal.SIGSTOP)
    flog.add(f"{container} of {pod} hung (SIGSTOP)")
    try:
        yield
    finally:
        rt.signal_container(container, signal.SIGCONT)
        flog.add(f"{container} of {pod} resumed")


def force_delete(cluster: SimCluster, pod: str, flog: FaultLog = NO_LOG) -> None:
    """`kubectl delete pod --grace-period=0 --force`."""
    cluster.force_delete(pod)
    flog.add(f"force delete {pod}")


def _memgraphs(cluster: SimCluster) -> dict[str, MemgraphProcess]:
    return {n: rt.memgraph for n, rt in cluster.runtimes.items()}


def namespaced(cluster: SimCluster) -> bool:
    return cluster.net is not None and cluster.net.bed.namespaced


@contextlib.contextmanager
def partition(cluster: SimCluster, pod: str, scope: str = "all", direction: str = "both",
              hosts: tuple[str, ...] = (), ports: tuple[int, ...] = (), node: bool = False,
              timeline: Timeline | None = None, outage: str = "api",
              flog: FaultLog = NO_LOG) -> Iterator[None]:
    """Packets around `pod` dropped silently while the block runs (nftables in its namespace). `node`:
    a node partition (its kubelet reports nothing: Ready kept until the node controller's grace; its
    probes, node-local, still reach the pod). A cut from the API server goes into
    `timeline` as an outage window of kind `outage` ("api": the MAIN's control plane; "leader") with a
    healthy MAIN (I7). Raises nft.Unsupported without network namespaces."""
    rt = cluster.runtime(pod)
    if rt.box.net is None or cluster.net is None:
        reason = cluster.net.bed.reason if cluster.net is not None else "cluster not started"
        raise nft.Unsupported(f"partitions need network namespaces ({reason})")
    cut = nft.Cut(scope, direction, hosts, ports, node=node)
    nft.apply(rt.box.net, cut, cluster.net.bed.topology(cluster.kube.port))
    cluster.cut_pods[pod] = cut.describe()
    node_name = cluster.node_of(pod) if node else None
    kubelet_before = KubeletState.RUNNING
    if node_name is not None:
        kubelet_before = cluster.nodes.node(node_name).kubelet
        cluster.set_kubelet(node_name, KubeletState.PARTITIONED)
    start = time.monotonic()
    flog.add(f"{pod} {cut.describe()}" + (f" (node partition: {node_name} unreachable)" if node else ""))
    try:
        yield
    finally:
        if node_name is not None:  # back as it was (`kubelet_unreachable` around it keeps it cut)
            cluster.set_kubelet(node_name, kubelet_before)
        with contextlib.suppress(Exception):
            nft.heal(rt.box.net)
        cluster.cut_pods.pop(pod, None)
        if timeline is not None and scope == "api":
            timeline.outages.append(OutageWindow(start, time.monotonic(), outage, True))
        flog.add(f"{pod} healed")


@contextlib.contextmanager
def cut_off(cluster: SimCluster, pod: str, flog: FaultLog = NO_LOG) -> Iterator[None]:
    """A network partition around one pod (see the module docstring for how close this gets)."""
    if namespaced(cluster):
        with partition(cluster, pod, "all", flog=flog):
            yield
        return
    rt = cluster.runtime(pod)
    ip = rt.ip
    others = {n: mg for n, mg in _memgraphs(cluster).items() if n != pod}
    rt.memgraph.isolate()
    for mg in others.values():
        with contextlib.suppress(Exception):
            mg.cut(ip)
    agent = rt.agent
    _signal(agent, signal.SIGSTOP)
    flog.add(f"{pod} cut off (bolt, replication and agent traffic dropped)")
    try:
        yield
    finally:
        _signal(agent, signal.SIGCONT)
        with contextlib.suppress(Exception):
            rt.memgraph.unisolate()
        for mg in others.values():
            with contextlib.suppress(Exception):
                mg.heal(ip)
        flog.add(f"{pod} reconnected")


@contextlib.contextmanager
def cut_replication(cluster: SimCluster, a: str, b: str, flog: FaultLog = NO_LOG) -> Iterator[None]:
    """Drop replication traffic between the Memgraphs of pods `a` and `b` (both directions; with
    namespaces: every TCP packet between the two pods to or from the replication port)."""
    ra, rb = cluster.runtime(a), cluster.runtime(b)
    if namespaced(cluster):
        ports = (cluster.ports["replication"],)
        with partition(cluster, a, "hosts", hosts=(rb.ip,), ports=ports, flog=flog):
            yield
        return
    ra.memgraph.cut(rb.ip)
    rb.memgraph.cut(ra.ip)
    flog.add(f"replication link {a} <-> {b} cut")
    try:
        yield
    finally:
        for rt, peer in ((ra, rb.ip), (rb, ra.ip)):
            with contextlib.suppress(Exception):
                rt.memgraph.heal(peer)
        flog.add(f"replication link {a} <-> {b} healed")


@contextlib.contextmanager
def slow_replication(cluster: SimCluster, pod: str, ms: int, flog: FaultLog = NO_LOG) -> Iterator[None]:
    """Every replication request sent by `pod`'s Memgraph (a MAIN) waits `ms` first."""
    mg = cluster.runtime(pod).memgraph
    mg.delay(ms)
    flog.add(f"replication from {pod} delayed {ms} ms")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            mg.delay(0)
        flog.add(f"replication from {pod} no longer delayed")


def commit_fault(cluster: SimCluster, pod: str, step: str, action: str, flog: FaultLog = NO_LOG) -> None:
    """Crash (`crash`) or freeze (`stop`) the pod's Memgraph at `step` of its next write commit."""
    cluster.runtime(pod).memgraph.arm_commit_fault(step, action)
    flog.add(f"memgraph of {pod} will {action} at {step} of its next commit")


def pause_memgraph(cluster: SimCluster, pod: str, flog: FaultLog = NO_LOG) -> None:
    """SIGSTOP to the pod's Memgraph (a frozen process or VM), returning once every thread stopped; the
    agent and the pod object stay as they are."""
    cluster.runtime(pod).memgraph.pause()
    flog.add(f"memgraph of {pod} stopped (SIGSTOP)")


def resume_memgraph(cluster: SimCluster, pod: str, flog: FaultLog = NO_LOG) -> None:
    """SIGCONT to a Memgraph frozen by a `stop` commit fault (it carries on from where it stopped)."""
    cluster.runtime(pod).memgraph.resume()
    flog.add(f"memgraph of {pod} resumed")


def busy_workers(cluster: SimCluster, pod: str, seconds: float, workers: int | None = None,
                 flog: FaultLog = NO_LOG) -> None:
    """`workers` (default all) Bolt workers of the pod's Memgraph run a query of `seconds`."""
    cluster.runtime(pod).memgraph.busy(seconds, workers)
    flog.add(f"{'all' if workers is None else workers} Bolt worker(s) of {pod} busy for {seconds:g}s")


# ---- the Kubernetes API server -----------------------------------------------------------------------


@contextlib.contextmanager
def api_outage(cluster: SimCluster, timeline: Timeline | None = None, mode: str = "refuse",
               main_healthy: bool = True, flog: FaultLog = NO_LOG) -> Iterator[None]:
    """The API server is unreachable for the duration of the block; the window goes into `timeline`."""
    cluster.kube.outage(mode)
    start = time.monotonic()
    flog.add(f"API server outage ({mode})")
    try:
        yield
    finally:
        cluster.kube.clear_outage()
        end = time.monotonic()
        if timeline is not None:
            timeline.outages.append(OutageWindow(start, end, "api", main_healthy))
        flog.add(f"API server back after {end - start:.1f}s")


@contextlib.contextmanager
def api_latency(cluster: SimCluster, ms: float, flog: FaultLog = NO_LOG) -> Iterator[None]:
    """Every API request answers `ms` late."""
    cluster.kube.set_latency(ms)
    flog.add(f"API latency {ms:g} ms")
    try:
        yield
    finally:
        cluster.kube.clear_latency()
        flog.add("API latency cleared")


# ---- data ----------------------------------------------------------------------------------------------


def write_offline(cluster: SimCluster, pod: str, ids: list[str], label: str = "W",
                  flog: FaultLog = NO_LOG, new_epoch: bool = False) -> set[str]:
    """Commit `ids` into the data directory of `pod` while its Memgraph is down (held or pod held away):
    a standalone emulator on that directory, started as MAIN with no replicas. Returns every id of
    `label` the directory holds afterwards. A replica's writes made so continue its epoch, which a MAIN
    takes as "ahead in the same epoch" (silent, reference 7.2); `new_epoch` first demotes and promotes the
    standalone instance, as a pod that acted as MAIN after a promotion did, so the writes are in an epoch
    no other instance has and the pod comes back diverged (reference 4.1)."""
    rt = cluster.runtimes.get(pod)
    if rt is not None and rt.memgraph.alive:
        raise RuntimeError(f"memgraph of {pod} is running; hold it down first")
    lib = memgraph_data_dir(cluster.workdir / "pvc" / pod)
    ip = rt.ip if rt is not None and not rt.box.namespaced else "127.0.0.1"  # a tool on the node
    mg = MemgraphProcess(lib, host=ip, bolt_port=proc.free_port(ip),
                         extra_args=("--replication-restore-state-on-startup", "false"))
    user, password = cluster.cfg.memgraph_auth or ("", "")
    mg.user, mg.password = (user or None), (password or None)
    mg.start()
    try:
        driver = GraphDatabase.driver(mg.bolt_uri, auth=(user, password) if user else None,
                                      connection_timeout=3.0, max_transaction_retry_time=0.0)
        try:
            with driver.session() as session:
                if new_epoch:
                    port = proc.free_port(ip)
                    session.run(f"SET REPLICATION ROLE TO REPLICA WITH PORT {port}").consume()
                    session.run("SET REPLICATION ROLE TO MAIN").consume()
                for i in ids:
                    session.run(f"CREATE (:{label} {{id: $id, at: 0.0}})", id=i).consume()
                held = {str(r["id"]) for r in session.run(f"MATCH (n:{label}) RETURN n.id AS id")}
        finally:
            driver.close()
    finally:
        mg.stop()
    flog.add(f"{len(ids)} write(s) committed offline into the volume of {pod}")
    return held


def _signal(p: subprocess.Popen[bytes] | None, sig: signal.Signals) -> None:
    if p is not None and p.poll() is None:
        proc.signal_group(p.pid, sig)
