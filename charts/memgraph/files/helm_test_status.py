"""`helm test` of the memgraph chart: is the HA cluster healthy? (standard library only)

Role: ask the leader agent's Service for `GET /api/v1/status` (STATUS_URL) until the document says
`cluster.healthy` or TIMEOUT_SECONDS have passed; print one line per attempt and the problems; exit 0 when
healthy, 1 otherwise. Sends `Authorization: Bearer $HA_API_TOKEN` when that is set (haAgent.statusAuth).
Must never: wait without a bound, print the token, or import anything outside the standard library.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

REQUEST_TIMEOUT_S = 5.0
PAUSE_S = 3.0
MAX_ATTEMPTS = 1000


def fetch(url: str, token: str) -> dict:
    """The status document; raises OSError or ValueError on any failure."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:
        doc = json.loads(resp.read().decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("the status is not a JSON object")
    return doc


def verdict(doc: dict) -> tuple[bool, str]:
    """(healthy, one line for people) from a status document."""
    cluster = doc.get("cluster") or {}
    line = (
        f"main={cluster.get('main')} sync_replica={cluster.get('sync_replica')} "
        f"leader={cluster.get('leader')} ready_replicas={len(cluster.get('ready_replicas') or [])}"
        f"/{cluster.get('expected_replicas')}"
    )
    if cluster.get("healthy") is True:
        return True, "healthy: " + line
    problems = "; ".join(str(p) for p in cluster.get("problems") or []) or str(cluster.get("verdict"))
    return False, f"NOT healthy: {line}: {problems}"


def main(env: dict[str, str], clock=time.monotonic, sleep=time.sleep) -> int:
    url = env.get("STATUS_URL", "")
    if not url:
        print("STATUS_URL is not set", file=sys.stderr)
        return 2
    token = env.get("HA_API_TOKEN", "")
    deadline = clock() + float(env.get("TIMEOUT_SECONDS", "120"))
    last = "no answer"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            healthy, last = verdict(fetch(url, token))
        except urllib.error.HTTPError as exc:
            healthy, last = False, f"HTTP {exc.code} from {url}"
        except (OSError, ValueError) as exc:
            healthy, last = False, f"{type(exc).__name__} asking {url}: {exc}"
        print(f"attempt {attempt}: {last}", flush=True)
        if healthy:
            return 0
        if clock() + PAUSE_S > deadline:
            break
        sleep(PAUSE_S)
    print(f"FAILED: the cluster was not healthy in time; last: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(dict(os.environ)))
