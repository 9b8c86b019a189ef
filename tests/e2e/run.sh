#!/usr/bin/env bash
# e2e on a real cluster. With E2E_KUBECONFIG set, uses that cluster (the agent image must be pullable
# there: E2E_AGENT_IMAGE). Otherwise creates a kind cluster, builds the agent image and loads it.
# Needs: kind + docker (only without E2E_KUBECONFIG), the repo's .venv.  Cleans up what it creates.
set -euo pipefail
cd "$(dirname "$0")/../.."
CLUSTER="${E2E_KIND_CLUSTER:-memgraph-ha-e2e}"
export E2E_AGENT_IMAGE="${E2E_AGENT_IMAGE:-memgraph-ha-agent:e2e}"
created=""
cleanup() {
  if [[ -n "$created" && -z "${E2E_KEEP:-}" ]]; then kind delete cluster --name "$CLUSTER"; fi
}
trap cleanup EXIT
if [[ -z "${E2E_KUBECONFIG:-}" ]]; then
  command -v kind >/dev/null || { echo "kind not found and E2E_KUBECONFIG not set" >&2; exit 2; }
  export E2E_KUBECONFIG="${TMPDIR:-/tmp}/memgraph-ha-e2e.kubeconfig"
  kind create cluster --name "$CLUSTER" --image "${E2E_KIND_NODE:-kindest/node:v1.33.1}" \
       --kubeconfig "$E2E_KUBECONFIG" --wait 180s
  created=1
  docker build --target agent -t "$E2E_AGENT_IMAGE" .
  kind load docker-image "$E2E_AGENT_IMAGE" --name "$CLUSTER"
fi
timeout 3600 .venv/bin/python -m pytest tests/e2e -m e2e -v --timeout 3000 "$@"
