#!/usr/bin/env bash
# `make run`: the operator against KUBECONFIG, or against the local control plane when
# KUBECONFIG is unset (started here if it is not running). Arguments go to the operator.
#
# One operator per checkout: a second `make run` would reconcile the same objects beside
# the first one, so it refuses while the first holds the lock.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
# The local control plane's state (and this script's lock); tests point it elsewhere.
STATE="${AIDEPLOY_LOCAL_DIR:-.local}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
LOCAL_KUBECONFIG="$STATE/kubeconfig"
say() { printf '[make run] %s\n' "$*" >&2; }

exec 9>"$STATE/operator.lock"
if ! flock -n 9; then
  holder="$(cat "$STATE/operator.pid" 2>/dev/null || true)"
  say "an operator of this checkout is already running${holder:+ (pid $holder)}: stop it first (Ctrl-C in its terminal${holder:+, or kill $holder})"
  exit 1
fi

local_plane=""
if [[ -z "${KUBECONFIG:-}" || "${KUBECONFIG}" == "$LOCAL_KUBECONFIG" ]]; then
  # Also when KUBECONFIG is the local one left over from an earlier `cluster-down`: a
  # stale kubeconfig of ours means "start it again", not "retry for ever".
  "$BIN/python" -m tests.support.localcluster up --dir "$STATE" >/dev/null
  export KUBECONFIG="$LOCAL_KUBECONFIG"
  local_plane=yes
  say "using the local control plane: export KUBECONFIG=$LOCAL_KUBECONFIG"
fi

finish() {
  rm -f "$STATE/operator.pid"
  if [[ -n "$local_plane" ]]; then
    say "the local control plane is still running; 'make cluster-down' stops it"
  fi
}
trap finish EXIT
# Ctrl-C reaches the operator too (same process group); this shell only waits for it to
# stop, then says how to stop the control plane.
trap ':' INT TERM
status=0
# The pid file names the operator itself (exec keeps the pid), for the refusal above.
bash -c 'echo $$ >"$0"; exec "$@"' "$STATE/operator.pid" \
  "$BIN/python" -m aideploy --install-crds crds "$@" || status=$?
exit "$status"
