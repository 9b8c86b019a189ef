"""`memgraph-ha`: the operator's command line (status, switchover, pause, resume, diverged, rollout).

Role: `status`, `switchover [--to POD]`, `pause`, `resume` and `diverged list|purge` talk to an agent's
HTTP API (any agent answers; non-leaders forward to the leader), e.g. through `kubectl port-forward
svc/<name>-agent 8080`:
`--url` (env MEMGRAPH_HA_URL, default http://127.0.0.1:8080), bearer token `--token` (env
MEMGRAPH_HA_TOKEN) for the mutating calls. `rollout restart` talks to the Kubernetes API (kubeconfig or
in-cluster) and to Memgraph at the pod IPs (ctl.rollout). `--output text|json` everywhere.
Exit codes: 0 done, 1 failed (or refused), 2 bad arguments (with a message saying which).

Must never: print the token, retry a mutating call on its own, or hide the server's error text.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import requests

from coordinator.core import defaults
from coordinator.edge.logs import setup_logging
from ctl.rollout import Rollout, RolloutError, RolloutOptions, UsageError
from ctl.rollout_strategy import results_table

DEFAULT_URL = f"http://127.0.0.1:{defaults.AGENT_PORT}"
SWITCHOVER_TIMEOUT_S = 130.0  # the leader holds the call for the switchover (agent forward: 120 s)


class CliError(Exception):
    """A failure to report on stderr with exit code 1."""


def _positive(value: str) -> float:
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}") from None
    if not f > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return f


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {value!r}")
    return int(value)


def _file(value: str) -> str:
    if not Path(value).is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return value


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def _api_parent(default_url: str | None, url_help: str) -> argparse.ArgumentParser:
    env = os.environ
    api = argparse.ArgumentParser(add_help=False)
    api.add_argument("--url", type=_url, default=env.get("MEMGRAPH_HA_URL") or default_url, help=url_help)
    api.add_argument("--token", default=env.get("MEMGRAPH_HA_TOKEN"),
                     help="bearer token for switchover/pause/resume, and status when the agents ask for it "
                     "(env MEMGRAPH_HA_TOKEN)")
    return api


def package_version() -> str:
    """The installed memgraph-ha distribution's version (setup.cfg), as the images carry it."""
    try:
        return metadata.version("memgraph-ha")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    env = os.environ
    api = _api_parent(DEFAULT_URL, f"agent API (env MEMGRAPH_HA_URL; default {DEFAULT_URL}), e.g. through "
                      "`kubectl port-forward svc/<name>-agent 8080`")
    ro_api = _api_parent(None, "agent API for a switchover under the manual strategy (env MEMGRAPH_HA_URL; "
                         "default: the Lease holder's pod)")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--output", "-o", choices=("text", "json"), default="text")
    ap = argparse.ArgumentParser(prog="memgraph-ha", description="Operate a memgraph-ha cluster.")
    ap.add_argument("--version", action="version", version=f"memgraph-ha {package_version()}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser("status", parents=[api, out], help="the cluster status (pods, roles, replicas)")
    sw = sub.add_parser("switchover", parents=[api, out], help="move the MAIN role (planned, no write lost)")
    sw.add_argument("--to", metavar="POD", help="the pod to promote (default: the coordinator's choice)")
    sub.add_parser("pause", parents=[api, out], help="pause the coordinator (no failover, no switchover)")
    sub.add_parser("resume", parents=[api, out], help="resume the coordinator")
    dv = sub.add_parser("diverged", help="archives of diverged data kept on the pods' volumes (I4)")
    dv_sub = dv.add_subparsers(dest="diverged_command", metavar="ACTION", required=True)
    dl = dv_sub.add_parser("list", parents=[api, out], help="every archive: pod, name, size, generation")
    dl.add_argument("pod", nargs="?", metavar="POD", help="only this pod's archives")
    dp = dv_sub.add_parser("purge", parents=[api, out], help="remove one archive (at the pod's next start)",
                           description="The only way diverged data is ever deleted: by name, by you. The "
                           "pod's init container removes it at the pod's next start.")
    dp.add_argument("pod", metavar="POD")
    dp.add_argument("archive", metavar="ARCHIVE", help="its name, as `memgraph-ha diverged list` shows it")
    ro = sub.add_parser("rollout", help="restart the StatefulSet's pods safely")
    ro_sub = ro.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    rs = ro_sub.add_parser("restart", parents=[ro_api, out], help="restart pods one at a time, MAIN last",
                           description="Restart pods one at a time (highest ordinal first, the MAIN last), "
                           "each waited Ready and the cluster healthy before the next.")
    which = rs.add_mutually_exclusive_group(required=True)
    which.add_argument("--pod", action="append", metavar="NAME", help="restart this pod (repeatable)")
    which.add_argument("--all", action="store_true", help="restart every pod of the StatefulSet")
    rs.add_argument("--namespace", "-n", default=env.get("MEMGRAPH_HA_NAMESPACE") or "default")
    rs.add_argument("--statefulset", default=env.get("MEMGRAPH_HA_STATEFULSET") or "memgraph")
    rs.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    rs.add_argument("--timeout", type=_positive, metavar="S",
                    help="per pod, from its first action to healthy (default: delete grace + 180 s)")
    rs.add_argument("--force", action="store_true", help="start even when the cluster is not healthy")
    rs.add_argument("--verbose", "-v", action="store_true", help="log the library's INFO lines on stderr")
    rs.add_argument("--kubeconfig", type=_file, default=env.get("KUBECONFIG") or None,
                    help="kubeconfig (env KUBECONFIG; default: in-cluster config, then ~/.kube/config)")
    rs.add_argument("--bolt-port", type=_port, help="Memgraph Bolt port (default: the container's bolt port)")
    rs.add_argument("--replication-port", type=_port,
                    default=int(env.get("MEMGRAPH_REPLICATION_PORT") or defaults.REPLICATION_PORT),
                    help="replica port, for a switchover run by this command (default %(default)s)")
    rs.add_argument("--memgraph-user", default=env.get("MEMGRAPH_USER", ""),
                    help="Memgraph user (env MEMGRAPH_USER; password from MEMGRAPH_PASSWORD)")
    rs.add_argument("--lease", help="Lease name (default: the agent's HA_LEASE_NAME, else <statefulset>-ha)")
    rs.add_argument("--lease-wait", type=_positive, default=60.0, metavar="S",
                    help="without agents: how long to wait to lead the Lease (default %(default)s)")
    return ap


# ---- agent API commands ---------------------------------------------------------------------------


def _call(
    method: str, url: str, token: str | None, body: dict[str, Any] | None, timeout: Any
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.request(method, url, json=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        base = url.split("/api/")[0]
        raise CliError(f"cannot reach the agent at {base} ({type(exc).__name__}); is "
                       "`kubectl port-forward svc/<name>-agent 8080` running, or is --url right?") from None
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise CliError(f"{url} answered {resp.status_code} without a JSON object")
    if resp.status_code >= 400:
        hint = " (check --token / MEMGRAPH_HA_TOKEN)" if resp.status_code == 401 else ""
        raise CliError(f"{resp.status_code} {doc.get('error') or doc.get('outcome') or 'error'}: "
                       f"{doc.get('detail') or ''}{hint}".rstrip())
    return doc


def _yes(v: Any) -> str:
    return "yes" if v else "no"


def status_text(doc: dict[str, Any]) -> list[str]:
    c = doc.get("cluster") or {}
    sync = c.get("sync_replica")
    lines = [
        f"MAIN {c.get('main') or '-'}  sync replica {sync or '-'} ({c.get('sync_mode') or '-'})  "
        f"generation {c.get('generation', '-')}  leader {c.get('leader') or '-'}  "
        f"paused {_yes(c.get('paused'))}",
    ]
    rows = [("POD", "ROLE", "LABEL", "READY", "REPLICA", "BEHIND", "SYNC")]
    for p in doc.get("pods") or []:
        rep = p.get("replica") or {}
        role = p.get("role") or ("unreachable" if not p.get("memgraph_reachable") else "-")
        if p.get("terminating"):
            role += " (terminating)"
        if p.get("diverged"):
            role += " (diverged)"
        rows.append((
            str(p.get("name")), role, str(p.get("role_label") or "-"), _yes(p.get("ready")),
            f"{rep.get('mode')} {rep.get('status')}" if rep else "-",
            str(rep.get("behind")) if rep else "-",
            "*" if p.get("is_sync_replica") else "",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(f"verdict: {c.get('verdict') or '-'}")
    problems = c.get("problems") or []
    lines.append("healthy" if c.get("healthy") else "NOT healthy: " + ("; ".join(problems) or "see verdict"))
    return lines


def archives_text(doc: dict[str, Any], pod: str | None) -> list[str]:
    """One line per archive of diverged data in a status document, and what is pending or refused."""
    rows = [("POD", "ARCHIVE", "BYTES", "GENERATION", "CREATED", "HOLDS")]
    notes: list[str] = []
    for p in doc.get("pods") or []:
        data = p.get("data") or {}
        if pod and p.get("name") != pod:
            continue
        for a in data.get("archives") or []:
            rows.append((str(p.get("name")), str(a.get("name")), str(a.get("bytes")),
                         str(a.get("generation")), str(a.get("created")), ",".join(a.get("holds") or [])))
        if data.get("archives_omitted"):
            notes.append(f"{p.get('name')}: {data['archives_omitted']} older archive(s) not listed "
                         f"({data.get('archived_bytes')} bytes in all)")
        if data.get("outcome") in ("refused", "failed"):
            notes.append(f"{p.get('name')}: re-seed {data['outcome']}: {data.get('reason')}")
    reseed = (doc.get("cluster") or {}).get("reseed")
    if reseed:
        notes.append(f"re-seed of {reseed['pod']}: {reseed['step']} (generation {reseed['generation']})")
    if len(rows) == 1:
        return ["no archives" + (f" on {pod}" if pod else ""), *notes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows] + notes


def _diverged(args: argparse.Namespace, out: TextIO) -> int:
    if args.diverged_command == "list":
        doc = _call("GET", args.url + "/api/v1/status", None, None, 10.0)
        text = archives_text(doc, args.pod)
    else:
        if not args.token:
            raise _Usage("diverged purge needs the API token: --token or MEMGRAPH_HA_TOKEN")
        body = {"pod": args.pod, "archive": args.archive}
        doc = _call("POST", args.url + "/api/v1/diverged/purge", args.token, body, 10.0)
        text = [f"purge of {args.archive} on {args.pod} recorded: {doc.get('detail') or ''}".rstrip()]
    print(json.dumps(doc, indent=2) if args.output == "json" else "\n".join(text), file=out)
    return 0


def _agent_command(args: argparse.Namespace, out: TextIO) -> int:
    cmd = args.command
    if cmd == "diverged":
        return _diverged(args, out)
    if cmd != "status" and not args.token:
        raise _Usage(f"{cmd} needs the API token: --token or MEMGRAPH_HA_TOKEN")
    if cmd == "status":
        doc = _call("GET", args.url + "/api/v1/status", args.token, None, 10.0)  # HA_STATUS_AUTH=token
        text = status_text(doc)
    elif cmd == "switchover":
        body = {"to": args.to} if args.to else {}
        doc = _call("POST", args.url + "/api/v1/switchover", args.token, body, (5.0, SWITCHOVER_TIMEOUT_S))
        text = [f"switchover {doc.get('outcome')}: {doc.get('old_main')} -> {doc.get('new_main')} "
                f"in {doc.get('duration_s')}s"]
    else:
        doc = _call("POST", f"{args.url}/api/v1/{cmd}", args.token, {}, 10.0)
        text = [f"coordinator {'paused' if doc.get('paused') else 'resumed'} (answered by "
                f"{doc.get('answered_by') or '-'})"]
    print(json.dumps(doc, indent=2) if args.output == "json" else "\n".join(text), file=out)
    return 0


# ---- rollout ---------------------------------------------------------------------------------------


def _rollout(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    opts = RolloutOptions(
        namespace=args.namespace,
        statefulset=args.statefulset,
        pods=args.pod,
        dry_run=args.dry_run,
        timeout_s=args.timeout,
        force=args.force,
        kubeconfig=args.kubeconfig,
        url=args.url,
        token=args.token,
        bolt_port=args.bolt_port,
        replication_port=args.replication_port,
        memgraph_user=args.memgraph_user,
        memgraph_password=os.environ.get("MEMGRAPH_PASSWORD", ""),
        lease=args.lease,
        lease_wait_s=args.lease_wait,
    )
    stream = err if args.output == "json" else out
    progress: Callable[[str], None] = lambda line: print(line, file=stream, flush=True)  # noqa: E731
    try:
        rollout = Rollout(opts, progress)
    except Exception as exc:  # kubeconfig / in-cluster config problems
        raise CliError(f"cannot set up the Kubernetes client: {type(exc).__name__}: {exc}") from None
    try:
        report = rollout.run()
    except UsageError as exc:
        raise _Usage(str(exc)) from None
    except RolloutError as exc:
        raise CliError(str(exc)) from None
    finally:
        rollout.close()
    if report.refused:
        print(f"memgraph-ha: refused: {report.refused}", file=err)
    if args.output == "json":
        print(json.dumps(report.to_json(opts.namespace, opts.statefulset, opts.dry_run), indent=2), file=out)
    elif report.results:
        print("\n".join(results_table(report.results)), file=out)
    return 0 if report.ok else 1


class _Usage(Exception):
    """A bad argument found after parsing: message and exit code 2."""


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed the usage and the reason
        return int(exc.code) if isinstance(exc.code, int) else 2
    if not logging.getLogger().handlers:  # a console run (a host program keeps its own logging)
        level = "INFO" if getattr(args, "verbose", False) else "ERROR"
        setup_logging("logfmt", level, stream=err)
    try:
        if args.command == "rollout":
            return _rollout(args, out, err)
        return _agent_command(args, out)
    except _Usage as exc:
        print(f"memgraph-ha: error: {exc}", file=err)
        return 2
    except CliError as exc:
        print(f"memgraph-ha: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        print("memgraph-ha: interrupted", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
