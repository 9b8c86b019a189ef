"""Election identities: one per pod incarnation (issue 16 item 3).

Role: build the identity an agent runs for in the Lease election from its pod's name and UID, and read
the pod name back out of a Lease holder. A StatefulSet gives a recreated pod the same name but a new UID,
so an identity of the name alone lets an old incarnation (partitioned, force-deleted, still running) and
the new one both take the Lease as "theirs" (client-go treats a Lease naming its own identity as held,
reference kubernetes-and-helm B.3) and two coordinators act. `<pod>_<uid>` tells them apart; pod names
are DNS-1123 labels, so `_` never occurs in one and the split is unambiguous. A holder written before
this scheme (a bare pod name, e.g. during an upgrade) reads as that pod with no known UID.

Must never: do I/O, or treat two identities of one pod name as the same candidate.
"""

from __future__ import annotations

SEPARATOR = "_"


def incarnation_identity(pod_name: str, uid: str) -> str:
    """The election identity of this incarnation of `pod_name`; the bare name only when no UID is known
    (a coordinator that is not in a pod)."""
    return f"{pod_name}{SEPARATOR}{uid}" if uid else pod_name


def pod_of(identity: str) -> str:
    """The pod name a Lease holder names ("" for none)."""
    return identity.split(SEPARATOR, 1)[0]


def uid_of(identity: str) -> str:
    """The pod UID a Lease holder names ("" when it names none: an older agent, or not a pod)."""
    _, sep, uid = identity.partition(SEPARATOR)
    return uid if sep else ""


def names_another_incarnation(holder: str, pod_uid: str | None) -> bool:
    """The holder names a UID and it is not `pod_uid` (the current pod of that name): an earlier
    incarnation holds the Lease, and no agent answers for it at that pod's address."""
    uid = uid_of(holder)
    return bool(uid) and uid != pod_uid
