"""coordinator.runtime.known_deletions: a deletion the leader read from the API server counts in its view
until its pod watch shows it (or shows another incarnation, or no pod), and never touches another
incarnation of the same name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from coordinator.core.model import PodView
from coordinator.runtime.known_deletions import KnownDeletions


def pod(i: int, uid: str = "", terminating: bool = False) -> PodView:
    return PodView(f"memgraph-{i}", i, f"198.18.0.{i + 2}", uid or f"uid-{i}", ready=True, phase="Running",
                   terminating=terminating)


@dataclass
class LateWatch:
    """The pod list as a lagging watch cache has it."""

    pods: list[PodView] = field(default_factory=lambda: [pod(0), pod(1), pod(2)])
    patched: list[str] = field(default_factory=list)

    def list_pods(self) -> list[PodView]:
        return list(self.pods)

    def expected_replicas(self) -> int | None:
        return 3

    def patch_labels(self, pod: str, labels: Mapping[str, str | None]) -> None:
        self.patched.append(pod)

    def emit_event(self, reason: str, message: str, pod: str = "", warning: bool = False) -> None:
        pass

    def reseed_pod(self, pod: str, uid: str, generation: int) -> None:
        pass


def terminating(view: KnownDeletions) -> dict[str, bool]:
    return {p.name: p.terminating for p in view.list_pods()}


def test_a_noted_deletion_counts_while_the_watch_still_shows_the_pod_as_it_was() -> None:
    kube = LateWatch()
    view = KnownDeletions(kube)
    assert terminating(view) == {"memgraph-0": False, "memgraph-1": False, "memgraph-2": False}
    view.note("memgraph-1", "uid-1")
    assert terminating(view) == {"memgraph-0": False, "memgraph-1": True, "memgraph-2": False}
    assert terminating(view)["memgraph-1"], "it lasts across views"


def test_another_incarnation_of_the_name_is_never_marked_and_ends_the_entry() -> None:
    kube = LateWatch()
    view = KnownDeletions(kube)
    view.note("memgraph-1", "uid-1")
    kube.pods[1] = pod(1, uid="uid-1b")  # the watch shows the re-created pod
    assert terminating(view)["memgraph-1"] is False
    kube.pods[1] = pod(1)  # an older event of the first incarnation arrives late: the entry is gone
    assert terminating(view)["memgraph-1"] is False


def test_the_entry_ends_once_the_watch_shows_the_deletion_or_the_pod_gone() -> None:
    kube = LateWatch()
    view = KnownDeletions(kube)
    view.note("memgraph-1", "uid-1")
    view.note("memgraph-2", "uid-2")
    kube.pods[1] = replace(kube.pods[1], terminating=True)
    del kube.pods[2]
    assert terminating(view) == {"memgraph-0": False, "memgraph-1": True}
    kube.pods[1] = pod(1)  # a late event without the deletionTimestamp no longer matters: caught up
    kube.pods.append(pod(2))
    assert terminating(view) == {"memgraph-0": False, "memgraph-1": False, "memgraph-2": False}


def test_everything_but_the_list_is_the_inner_ports() -> None:
    kube = LateWatch()
    view = KnownDeletions(kube)
    view.patch_labels("memgraph-0", {"memgraph-ha.io/role": "main"})
    assert kube.patched == ["memgraph-0"] and view.expected_replicas() == 3
