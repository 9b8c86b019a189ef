"""`memgraph-ha rollout restart` as a Job in the cluster: a suspended CronJob holding the Job template,
with its own ServiceAccount, Role and RoleBinding (off by default)."""

from __future__ import annotations

from tests.chart import render as r

VALUES = {
    "haAgent": {"enabled": True, "apiToken": {"existingSecret": "mg-ha-token"}},
    "rolloutJob": {"enabled": True, "extraArgs": ["--timeout", "900"]},
    "secrets": {"enabled": True},
}


def test_rollout_job_is_off_by_default(ha_docs) -> None:
    _, docs = ha_docs
    assert not [d for d in docs if d["kind"] == "CronJob"]


def test_cronjob_never_runs_by_itself_and_runs_the_rollout_command() -> None:
    docs = r.render(VALUES)
    cron = r.find(docs, "CronJob", "memgraph-rollout")
    assert cron["spec"]["suspend"] is True
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 7200
    pod = job["template"]["spec"]
    ctr = pod["containers"][0]
    assert ctr["command"] == ["memgraph-ha", "rollout", "restart", "--all"]
    assert ctr["args"] == [
        "--namespace",
        "db",
        "--statefulset",
        "memgraph",
        "--lease",
        "memgraph-ha",
        "--replication-port",
        "10000",
        "--timeout",
        "900",
    ]
    env = r.env_entries(ctr)
    assert env["MEMGRAPH_HA_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "mg-ha-token"
    assert env["MEMGRAPH_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "memgraph-secrets"
    assert pod["serviceAccountName"] == "memgraph-rollout" and pod["automountServiceAccountToken"] is True
    assert ctr["image"] == "ghcr.io/memgraph-ha/memgraph-ha-coordinator:0.1.0"


def test_rollout_role_grants_what_the_command_calls_and_nothing_cluster_scoped() -> None:
    """rollout: read_namespaced_stateful_set; list/read/delete_namespaced_pod, the pod watch and label
    patches of the coordinator it runs without agents; the Lease election; Events."""
    docs = r.render(VALUES)
    role = r.find(docs, "Role", "memgraph-rollout")
    assert r.role_rules(role) == sorted(
        [
            (("apps",), ("statefulsets",), ("memgraph",), ("get",)),
            (("",), ("pods",), (), ("delete", "get", "list", "patch", "watch")),
            (("coordination.k8s.io",), ("leases",), (), ("create",)),
            (("coordination.k8s.io",), ("leases",), ("memgraph-ha",), ("get", "patch", "update")),
            (("",), ("events",), (), ("create", "patch")),
        ]
    )
    binding = r.find(docs, "RoleBinding", "memgraph-rollout")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "memgraph-rollout", "namespace": "db"}]
    assert r.find(docs, "ServiceAccount", "memgraph-rollout")["automountServiceAccountToken"] is False


def test_notes_tell_how_to_start_a_rollout() -> None:
    assert "kubectl -n db create job --from=cronjob/memgraph-rollout rollout-$(date +%s)" in r.notes(VALUES)
