#!/usr/bin/env bash
# `make e2e-kind`: the operator as users run it, on a real cluster with real pods.
#
#   1. creates a kind cluster (or reuses one of that name),
#   2. builds the image from ./Dockerfile and loads it into the cluster's nodes,
#   3. installs the chart (Helm's SDK from .venv: no helm binary needed), watching one
#      namespace, and waits until the operator pod is Ready: the real image, the real
#      securityContext (non-root, read-only root filesystem) and the real probes,
#   4. smoke test: the minimal example (with a small web server as its model server) goes
#      through approval to Succeeded, driven by the in-cluster operator,
#   5. runs the end-to-end suite with AIDEPLOY_TEST_KUBECONFIG pointing at the cluster.
#
# Needs docker (with a running engine), kind and kubectl on PATH, and `make install` done.
# Environment: KIND_CLUSTER (default aideploy-e2e), IMAGE (default aideploy-operator:e2e),
# SMOKE_IMAGE (the smoke test's model server, default nginx:1.27-alpine),
# KEEP_CLUSTER=1 to keep the cluster afterwards, PYTEST_ARGS for the suite,
# SKIP_SUITE=1 to stop after the smoke test.
set -euo pipefail

cd "$(dirname "$0")/.."
CLUSTER="${KIND_CLUSTER:-aideploy-e2e}"
IMAGE="${IMAGE:-aideploy-operator:e2e}"
SMOKE_IMAGE="${SMOKE_IMAGE:-nginx:1.27-alpine}"
RELEASE=aideploy
OPERATOR_NS=aideploy-system
SMOKE_NS=aideploy-e2e
PYTHON=.venv/bin/python

log() { printf '[e2e-kind] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
[[ -x "$PYTHON" ]] || die "no $PYTHON: run 'make install' first"
docker info >/dev/null 2>&1 || die "docker has no running engine"

WORK="$(mktemp -d)"
export KUBECONFIG="$WORK/kubeconfig"
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    log "failed; operator logs:"
    kubectl -n "$OPERATOR_NS" logs "deploy/$RELEASE-aideploy-operator" --tail=200 2>/dev/null || true
  fi
  if [[ "${KEEP_CLUSTER:-0}" != "1" ]]; then
    log "deleting kind cluster $CLUSTER (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  else
    log "cluster kept: kind get kubeconfig --name $CLUSTER"
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "reusing kind cluster $CLUSTER"
else
  log "creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --wait 180s
fi
kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG"

log "building $IMAGE"
docker build --tag "$IMAGE" .
log "loading $IMAGE into $CLUSTER"
kind load docker-image "$IMAGE" --name "$CLUSTER"

kubectl create namespace "$SMOKE_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null

log "installing the chart (watching $SMOKE_NS)"
"$PYTHON" - "$RELEASE" "$OPERATOR_NS" "$IMAGE" "$SMOKE_NS" <<'EOF'
import sys

import helm_python

release, namespace, image, watched = sys.argv[1:]
repository, _, tag = image.rpartition(":")
values = {
    "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
    "watchNamespaces": [watched],
    "logFormat": "plain",
    # The smoke test approves as kind's admin (group system:masters), through the webhook.
    "approvers": {
        "roles": {
            role: {"groups": ["system:masters"]}
            for role in ("system-owner", "deployment-manager")
        }
    },
}
with helm_python.Config(namespace=namespace) as config:
    config.uninstall(release, ignore_not_found=True)
    done = config.install(
        "charts/aideploy-operator", release, values, namespace=namespace, create_namespace=True
    )
    print(f"release {done['name']}: {done['status']}", file=sys.stderr)
EOF
kubectl -n "$OPERATOR_NS" rollout status "deploy/$RELEASE-aideploy-operator" --timeout=180s

log "smoke test: examples/minimal-risk.yaml through approval to Succeeded"
"$PYTHON" - "$SMOKE_IMAGE" >"$WORK/smoke.yaml" <<'EOF'
import sys

import yaml

from aideploy.api.constants import CHECKLIST_ITEMS

body = yaml.safe_load(open("examples/minimal-risk.yaml"))
container = body["spec"]["template"]["spec"]["containers"][0]
container["image"] = sys.argv[1]
container.pop("readinessProbe", None)
container.pop("env", None)
container["ports"] = [{"containerPort": 80}]
body["spec"]["serving"]["port"] = 80
body["metadata"]["annotations"] = {
    f"checklist.aideploy.io/{item}": "yes e2e smoke test" for item in CHECKLIST_ITEMS
}
yaml.safe_dump(body, sys.stdout)
EOF
NAME="$("$PYTHON" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$WORK/smoke.yaml")"
kubectl -n "$SMOKE_NS" delete aideployment "$NAME" --ignore-not-found >/dev/null
kubectl -n "$SMOKE_NS" apply -f "$WORK/smoke.yaml"

wait_phase() {
  local phase="$1" deadline=$((SECONDS + ${2:-180})) current=""
  while ((SECONDS < deadline)); do
    current="$(kubectl -n "$SMOKE_NS" get aideployment "$NAME" -o jsonpath='{.status.phase}')"
    [[ "$current" == "$phase" ]] && return 0
    sleep 2
  done
  kubectl -n "$SMOKE_NS" get aideployment "$NAME" -o yaml >&2
  die "$NAME did not reach $phase (phase: ${current:-none})"
}
wait_phase AwaitingApproval 60
DIGEST="$(kubectl -n "$SMOKE_NS" get aideployment "$NAME" -o jsonpath='{.status.specDigest}')"
kubectl -n "$SMOKE_NS" annotate aideployment "$NAME" --overwrite \
  "approval.aideploy.io/system-owner=$DIGEST; by=e2e; smoke test" \
  "approval.aideploy.io/deployment-manager=$DIGEST; by=e2e; smoke test" >/dev/null
wait_phase Succeeded 300
kubectl -n "$SMOKE_NS" get aideployment "$NAME"
log "smoke test passed"

if [[ "${SKIP_SUITE:-0}" == "1" ]]; then
  exit 0
fi
log "running the end-to-end suite against $CLUSTER"
AIDEPLOY_TEST_KUBECONFIG="$KUBECONFIG" .venv/bin/pytest tests/integration -q ${PYTEST_ARGS:-}
