#!/usr/bin/env bash
# End to end on a kind cluster with mock responses:
#   create the cluster (k8s/kind/cluster.yaml) -> build the image and load it -> helm install with
#   helm/values-mock.yaml (bundled PostgreSQL, post-install migration) -> rollout -> stream chats through a
#   port-forward -> check /metrics -> delete every server pod and the database pod -> the conversation
#   is still there -> helm test -> helm upgrade (pre-upgrade migration) -> helm test -> uninstall -> delete.
#
# Needs docker (with a running engine), kind, kubectl, helm and python3.
# Environment: CLUSTER (chatstream-e2e), KIND_NODE_IMAGE (override the config's node image, e.g.
# kindest/node:v1.29.14), IMAGE (chatstream:kind-e2e), NAMESPACE (chatstream), LOCAL_PORT (18080),
# KEEP_CLUSTER=1 to keep the cluster afterwards, ARTIFACTS (where logs go on failure).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
CHECKS="$REPO/tests/e2e/kind/checks.py"
CLUSTER="${CLUSTER:-chatstream-e2e}"
IMAGE="${IMAGE:-chatstream:kind-e2e}"
NAMESPACE="${NAMESPACE:-chatstream}"
RELEASE=chatstream
LOCAL_PORT="${LOCAL_PORT:-18080}"
ARTIFACTS="${ARTIFACTS:-$REPO/test-artifacts/kind}"
URL="http://127.0.0.1:$LOCAL_PORT"
WORK="$(mktemp -d)"
COOKIES="$WORK/cookies.txt"
PF_PID=""

log() { printf '\n==> %s\n' "$*"; }

for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "docker cannot reach a running engine" >&2; exit 2; }

stop_port_forward() {
  if [[ -n "$PF_PID" ]]; then
    kill "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
    PF_PID=""
  fi
}

start_port_forward() {
  stop_port_forward
  kubectl -n "$NAMESPACE" port-forward "service/$RELEASE" "$LOCAL_PORT:80" >"$WORK/port-forward.log" 2>&1 &
  PF_PID=$!
  python3 "$CHECKS" wait "$URL" 60
}

cleanup() {
  local status=$?
  stop_port_forward
  if [[ $status -ne 0 ]] && kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "failed ($status): collecting diagnostics in $ARTIFACTS"
    mkdir -p "$ARTIFACTS"
    kubectl -n "$NAMESPACE" get all,pvc,secrets,configmaps,events -o wide >"$ARTIFACTS/objects.txt" 2>&1 || true
    kubectl -n "$NAMESPACE" describe pods >"$ARTIFACTS/pods.txt" 2>&1 || true
    for pod in $(kubectl -n "$NAMESPACE" get pods -o name 2>/dev/null); do
      kubectl -n "$NAMESPACE" logs "$pod" --all-containers --prefix >"$ARTIFACTS/${pod#pod/}.log" 2>&1 || true
    done
    kind export logs "$ARTIFACTS/kind" --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT

log "kind cluster $CLUSTER"
create=(kind create cluster --name "$CLUSTER" --config "$REPO/k8s/kind/cluster.yaml" --wait 180s)
[[ -n "${KIND_NODE_IMAGE:-}" ]] && create+=(--image "$KIND_NODE_IMAGE")
kind get clusters 2>/dev/null | grep -qx "$CLUSTER" || "${create[@]}"
kubectl cluster-info --context "kind-$CLUSTER"
kubectl config use-context "kind-$CLUSTER"

log "build $IMAGE and load it into the nodes"
docker build -t "$IMAGE" "$REPO"
kind load docker-image "$IMAGE" --name "$CLUSTER"

values=(-f "$REPO/helm/values-mock.yaml"
  --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}" --set image.pullPolicy=Never)

log "helm install (mock responses, bundled PostgreSQL)"
helm install "$RELEASE" "$REPO/helm" -n "$NAMESPACE" --create-namespace "${values[@]}" --wait --timeout 10m
kubectl -n "$NAMESPACE" rollout status "deployment/$RELEASE" --timeout=5m
kubectl -n "$NAMESPACE" wait --for=condition=complete "job/$RELEASE-migrate" --timeout=2m
kubectl -n "$NAMESPACE" get pods -o wide

log "stream chats through a port-forward"
start_port_forward
FIRST="Hello from the kind e2e test"
python3 "$CHECKS" chat "$URL" "$COOKIES" "$FIRST"
python3 "$CHECKS" chat "$URL" "$COOKIES" "And a second turn"
python3 "$CHECKS" metrics "$URL" chatstream_queue_depth chatstream_requests_running chatstream_generated_tokens_total

log "history survives the deletion of every server pod and of the database pod"
stop_port_forward
kubectl -n "$NAMESPACE" delete pod --wait=true \
  -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component in (server,database)"
kubectl -n "$NAMESPACE" rollout status "statefulset/$RELEASE-postgresql" --timeout=5m
kubectl -n "$NAMESPACE" rollout status "deployment/$RELEASE" --timeout=5m
kubectl -n "$NAMESPACE" wait --for=condition=ready pod -l "app.kubernetes.io/component=server" --timeout=5m
start_port_forward
python3 "$CHECKS" history "$URL" "$COOKIES" "$FIRST"
python3 "$CHECKS" chat "$URL" "$COOKIES" "A turn after the restart"

log "helm test"
helm test "$RELEASE" -n "$NAMESPACE" --logs --timeout 5m

log "helm upgrade (the migration runs as a pre-upgrade hook) and helm test again"
stop_port_forward
helm upgrade "$RELEASE" "$REPO/helm" -n "$NAMESPACE" "${values[@]}" --set config.max_queue_size=6 \
  --wait --timeout 10m
kubectl -n "$NAMESPACE" rollout status "deployment/$RELEASE" --timeout=5m
helm test "$RELEASE" -n "$NAMESPACE" --logs --timeout 5m
start_port_forward
python3 "$CHECKS" history "$URL" "$COOKIES" "$FIRST"
stop_port_forward

log "helm uninstall"
helm uninstall "$RELEASE" -n "$NAMESPACE" --wait --timeout 5m
log "kind e2e passed"
