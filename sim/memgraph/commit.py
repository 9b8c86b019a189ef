"""The MAIN's write commit, step by step as reference memgraph-replication 7.1 reads it in Memgraph's source.

Role: one write transaction from commit timestamp to the client's answer, in Memgraph's order
(`src/storage/v2/inmemory/storage.cpp:1084-1290`, `src/storage/v2/replication/replication_transaction.cpp`,
memgraph/memgraph df0f636):
1. The engine (commit) lock and a commit timestamp, held to the end: one commit at a time.
2. StartTransactionReplication on every replica: a SYNC/STRICT_SYNC replica that is not ready is a
   failure (a "no" vote when a STRICT_SYNC replica takes part); an ASYNC one is skipped silently.
3. The transaction goes to the local WAL, `commit=false` when a STRICT_SYNC replica takes part (2PC).
4. ShipDeltas: STRICT_SYNC replicas vote (PrepareCommit, 30 s). Without 2PC, SYNC replicas get the
   transaction and are waited for, ASYNC ones get it in the background. With 2PC, SYNC replicas are
   SKIPPED (`replication_transaction.cpp:75-90`): their stream was opened (state `replicating`) and is
   dropped, so the next commit finds them "replicating", marks them invalid and (with 2PC) aborts;
   `UpdateCommitTsInfo` still moves their `ts` to this commit (7.1 last paragraph).
5. Without 2PC: visible locally whatever the replicas said; SYNC failures are reported AFTER the commit
   ("Transaction is still committed on the main instance ..."). With 2PC and every vote yes: the WAL flag
   flipped in place, visible, ldt advances; a "no" leaves the WAL entry `commit=false` (skipped at replay).
6. FinalizeCommit to each STRICT_SYNC replica in turn (10 s each); ASYNC replicas get the transaction now
   (decision yes) or their stream aborted. A failed finalize is NOT reported to the client.
7. The answer: success, or the v3.10-3.12 ReplicationException text of `storage_error.cpp`
   (`FormatReplicationError`) wrapped as `Replication Exception: ... Check the status ...`.
The test controls of `controls.py` fire between these steps (`wal_written`, `votes_in`, `local_commit`,
`finalized`).

Must never: make a 2PC transaction visible before every vote is in, report a finalize failure, or release
the commit lock before the answer is decided.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sim.memgraph.errors import ReplicationCommitError, ReplicationQueryError
from sim.memgraph.replica_client import TIMEOUT, ReplicaClient, Stream

if TYPE_CHECKING:
    from sim.memgraph.controls import CommitFaults
    from sim.memgraph.replication import Replication

log = logging.getLogger(__name__)
NOT_MAIN_COMMIT = "Cannot commit because instance is not main anymore."


def format_replication_error(failures: list[tuple[str, str, str]], committed: bool) -> str:
    """FormatReplicationError (storage_error.cpp): failures grouped by (mode, reason), in order."""
    groups: list[tuple[tuple[str, str], list[str]]] = []
    for name, mode, reason in failures:
        for key, names in groups:
            if key == (mode, reason):
                names.append(name)
                break
        else:
            groups.append(((mode, reason), [name]))
    parts = []
    for (mode, reason), names in groups:
        if len(names) == 1:
            parts.append(f"Failed to replicate to {mode} replica '{names[0]}': {reason}.")
            continue
        joined = ", ".join(f"'{n}'" for n in names[:-1]) + f" and '{names[-1]}'"
        plural = reason.replace("replica is", "replicas are", 1).replace("replica has", "replicas have", 1)
        parts.append(f"Failed to replicate to {mode} replicas {joined}: {plural}.")
    msg = " ".join(parts)
    msg += (" Replica will be recovered automatically." if len(failures) == 1
            else " Replicas will be recovered automatically.")
    msg += (" Transaction is still committed on the main instance and other alive replicas." if committed
            else " Transaction was aborted on all instances.")
    timed_out = [name for name, _, reason in failures if reason == TIMEOUT]
    if timed_out:
        msg += (f" Main reached an RPC timeout while replicating to [{', '.join(timed_out)}]. One possible"
                " reason for this error is that the replica is down and in that case make sure to recover it."
                " If all of your replicas are up and running normally, then please try setting a smaller"
                " parameter value for 'deltas_batch_progress_size' using 'SET COORDINATOR SETTING' query on"
                " the coordinator.")
    return f"Replication Exception: {msg} Check the status of the replicas using 'SHOW REPLICAS' query."


def commit_write(repl: Replication, ops: list[dict[str, object]], controls: CommitFaults) -> int:
    """Commit one write transaction; returns its commit timestamp or raises. Holds the replication-state
    read lock throughout (so REGISTER, DROP and role changes fail meanwhile) and the engine lock."""
    with repl.state_lock.read(), repl.commit_lock:
        if repl.role != "main":
            raise ReplicationQueryError(NOT_MAIN_COMMIT)
        st = repl.storage
        commit_ts, prev_ldt = st.next_commit_ts(), st.ldt
        with repl.lock:
            clients = [c for c in repl.replicas.values() if c.status is not None]
        two_pc = any(c.cfg.mode == "strict_sync" for c in clients)
        streams: dict[ReplicaClient, Stream] = {}
        failures: list[tuple[str, str, str]] = []
        for c in clients:
            stream, reason = c.start_txn()
            if stream is not None:
                streams[c] = stream
            elif c.cfg.mode != "async":
                failures.append((c.cfg.name, c.cfg.mode.upper(), reason))
        rec = {"ops": ops, "commit_ts": commit_ts, "prev_ldt": prev_ldt, "epoch": st.epoch}
        pos = st.write_wal(commit_ts, ops, committed=not two_pc)
        controls.reached("wal_written")
        _ship_deltas(streams, rec, two_pc, failures)
        controls.reached("votes_in")
        ok = not failures
        if ok or not two_pc:
            st.make_visible(commit_ts, ops, pos, flip=two_pc)
        controls.reached("local_commit")
        finalize_failed = _finalize(streams, commit_ts, ok, rec) if two_pc else set()
        if ok or not two_pc:
            failed = {name for name, _, _ in failures} | finalize_failed
            for c in clients:  # UpdateCommitTsInfo: every non-ASYNC client that did not fail
                if c.cfg.mode != "async" and c.cfg.name not in failed:
                    c.note_committed(commit_ts)
        controls.reached("finalized")
        if failures:
            text = format_replication_error(failures, committed=not two_pc)
            raise ReplicationCommitError(text, committed=not two_pc)
        return commit_ts


def _ship_deltas(streams: dict[ReplicaClient, Stream], rec: dict[str, object], two_pc: bool,
                 failures: list[tuple[str, str, str]]) -> None:
    """ShipDeltas (replication_transaction.cpp:40-100)."""
    already = {name for name, _, _ in failures}
    for c, stream in streams.items():
        reason = ""
        if c.cfg.mode == "strict_sync":
            reason = c.prepare(stream, rec)
        elif not two_pc and c.cfg.mode == "sync":
            reason = c.ship_sync(stream, rec)
        elif not two_pc:
            c.ship_async(stream, rec)
        if reason and c.cfg.name not in already:
            failures.append((c.cfg.name, c.cfg.mode.upper(), reason))


def _finalize(streams: dict[ReplicaClient, Stream], commit_ts: int, decision: bool,
              rec: dict[str, object]) -> set[str]:
    """FinalizeTransaction (replication_transaction.cpp:103-130); returns the failed finalizes."""
    failed: set[str] = set()
    for c, stream in streams.items():
        if c.cfg.mode == "strict_sync":
            if not c.finalize(stream, commit_ts, decision):
                log.warning("FinalizeCommit to %s failed (not reported to the client)", c.cfg.name)
                failed.add(c.cfg.name)
        elif c.cfg.mode == "async" and decision:
            c.ship_async(stream, rec)
        else:
            stream.release()  # SYNC: skipped by 2PC; ASYNC after a "no": AbortRpcClient
    return failed
