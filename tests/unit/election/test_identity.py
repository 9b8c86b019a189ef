"""Election identities per pod incarnation (coordinator/core/identity.py, issue 16 item 3)."""

from __future__ import annotations

import pytest

from coordinator.core.identity import incarnation_identity, names_another_incarnation, pod_of, uid_of


def test_two_incarnations_of_one_pod_are_two_candidates() -> None:
    old = incarnation_identity("memgraph-0", "0b0e6c1e-aaaa")
    new = incarnation_identity("memgraph-0", "0b0e6c1e-bbbb")
    assert old != new
    assert pod_of(old) == pod_of(new) == "memgraph-0"
    assert (uid_of(old), uid_of(new)) == ("0b0e6c1e-aaaa", "0b0e6c1e-bbbb")


@pytest.mark.parametrize("holder, pod, uid", [
    ("memgraph-0", "memgraph-0", ""),  # written by an agent before identities carried the UID
    ("standalone-host-1", "standalone-host-1", ""),  # the standalone coordinator: not a pod
    ("", "", ""),  # no holder
    ("my-db-memgraph-12_3f2a-uid", "my-db-memgraph-12", "3f2a-uid"),
])
def test_a_holder_reads_back_as_its_pod_and_uid(holder: str, pod: str, uid: str) -> None:
    assert (pod_of(holder), uid_of(holder)) == (pod, uid)


def test_without_a_uid_the_identity_is_the_name() -> None:
    assert incarnation_identity("standalone-host-1", "") == "standalone-host-1"


def test_only_a_holder_naming_a_different_uid_is_another_incarnation() -> None:
    assert names_another_incarnation("memgraph-0_uid-old", "uid-new")
    assert not names_another_incarnation("memgraph-0_uid-new", "uid-new")
    assert not names_another_incarnation("memgraph-0", "uid-new")  # an older agent's bare name
