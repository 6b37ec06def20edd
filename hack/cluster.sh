#!/usr/bin/env bash
# The local cluster: a real kube-apiserver, etcd, controller-manager and scheduler run
# by kwokctl's binary runtime, with kwok faking two nodes and the pods on them.
#
#   hack/cluster.sh up        start (idempotent); prints the kubeconfig path
#   hack/cluster.sh down      stop and delete
#   hack/cluster.sh status    exit 0 when the API server answers
#   hack/cluster.sh env       print `export` lines for PATH and KUBECONFIG
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache_root=${STATICSITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/staticsite-operator}
TOOLS_BIN=${TOOLS_BIN:-$cache_root/$KUBE_VERSION/bin}
CLUSTER_NAME=${CLUSTER_NAME:-staticsite}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$cache_root/kwok}
KUBECONFIG_PATH=${KUBECONFIG_PATH:-$cache_root/kubeconfig}
NODES=${NODES:-2}
# kwokctl looks kubectl up on PATH; ours must win over any other kubectl.
export PATH="$TOOLS_BIN:$PATH"

log() { printf '[cluster] %s\n' "$*" >&2; }

cluster_dir=$KWOK_WORKDIR/clusters/$CLUSTER_NAME

status() { [[ -f "$KUBECONFIG_PATH" ]] && kubectl --kubeconfig "$KUBECONFIG_PATH" --request-timeout=3s get --raw /readyz >/dev/null 2>&1; }

up() {
  if status; then log "already running ($KUBECONFIG_PATH)"; echo "$KUBECONFIG_PATH"; return; fi
  [[ -x "$TOOLS_BIN/kube-apiserver" ]] || "$here/build-tools.sh" >&2
  # A half-dead cluster from an earlier run (a reboot, a killed session) is removed first.
  if [[ -d "$cluster_dir" ]]; then
    log "removing a stale cluster $CLUSTER_NAME"
    kwokctl delete cluster --name "$CLUSTER_NAME" >&2 || rm -rf "$cluster_dir"
  fi
  mkdir -p "$KWOK_WORKDIR"
  local config=$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.yaml
  # Every binary is a local path, so kwokctl never downloads anything. The audit policy
  # records every write (not reads) so tests and the bench can count the operator's writes.
  cat >"$KWOK_WORKDIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # The benchmark runs its operator as this ServiceAccount: log all of its requests, reads too.
  - level: Metadata
    users: ["system:serviceaccount:staticsite-bench:operator"]
  - level: None
    verbs: [get, list, watch]
  - level: None
    resources: [{group: coordination.k8s.io, resources: [leases]}]
  - level: Metadata
EOF
  cat >"$config" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: $KUBE_VERSION
  etcdVersion: ${ETCD_VERSION#v}
  kubeApiserverBinary: $TOOLS_BIN/kube-apiserver
  kubeControllerManagerBinary: $TOOLS_BIN/kube-controller-manager
  kubeSchedulerBinary: $TOOLS_BIN/kube-scheduler
  kubectlBinary: $TOOLS_BIN/kubectl
  etcdBinary: $TOOLS_BIN/etcd
  kwokControllerBinary: $TOOLS_BIN/kwok
  kubeAuditPolicy: $KWOK_WORKDIR/audit-policy.yaml
  kubeAdmission: true
  kubeAuthorization: true
EOF
  local t0; t0=$(date +%s)
  log "starting cluster $CLUSTER_NAME (kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION) on 127.0.0.1"
  kwokctl create cluster --name "$CLUSTER_NAME" --config "$config" --kubeconfig "" \
    --wait 120s >&2 || { log "kwokctl failed; component logs are in $cluster_dir/logs/"; exit 1; }
  cp "$cluster_dir/kubeconfig.yaml" "$KUBECONFIG_PATH"
  log "adding $NODES fake nodes"
  kwokctl scale node --name "$CLUSTER_NAME" --replicas "$NODES" >&2
  kubectl --kubeconfig "$KUBECONFIG_PATH" wait --for=condition=Ready node --all --timeout=60s >&2
  log "ready in $(($(date +%s) - t0))s; kubeconfig: $KUBECONFIG_PATH"
  echo "$KUBECONFIG_PATH"
}

down() {
  if [[ -d "$cluster_dir" ]]; then
    kwokctl delete cluster --name "$CLUSTER_NAME" >&2
  fi
  rm -f "$KUBECONFIG_PATH"
  log "cluster $CLUSTER_NAME deleted"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export PATH=\"$TOOLS_BIN:\$PATH\" KUBECONFIG=\"$KUBECONFIG_PATH\"" ;;
  audit-log) echo "$cluster_dir/logs/audit.log" ;;
  *) echo "usage: $0 up|down|status|env|audit-log" >&2; exit 2 ;;
esac
