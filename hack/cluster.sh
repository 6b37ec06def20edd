#!/usr/bin/env bash
# The local cluster: a real kube-apiserver, etcd, controller-manager and scheduler run
# by kwokctl's binary runtime; kwok fakes two nodes (and the pods on them) for scale;
# hack/node.sh adds one real node (containerd, kubelet, kube-proxy) that runs real
# containers, for namespaces that ask for it. docs/local-cluster.md explains the design.
#
#   hack/cluster.sh up                  start (idempotent; recovers a half-dead earlier run)
#   hack/cluster.sh down                stop and delete everything `up` made (images are kept)
#   hack/cluster.sh status              exit 0 when the API server answers and the node is Ready
#   hack/cluster.sh env                 print `export` lines for PATH and KUBECONFIG
#   hack/cluster.sh use-real-node NS    pods of namespace NS go to the real node
#
# There is one real node per machine (its network is fixed, see hack/lib.sh). It belongs
# to the default cluster; other clusters (CLUSTER_NAME=..., such as the bench's) have
# fake nodes only, unless REAL_NODE=1. REAL_NODE=0 leaves it out of the default one.
set -euo pipefail
log_tag=cluster
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES=${NODES:-2}
# The controller-manager's client rate limit (requests/s; burst twice that). Empty: its
# defaults (20, 30). The bench's scale run raises it: at 10,000 sites the Deployment and
# ReplicaSet writes, about 26/s, set the whole cluster's pace (1.3 sites/s).
KCM_API_QPS=${KCM_API_QPS:-}
if [[ $CLUSTER_NAME == staticsite ]]; then REAL_NODE=${REAL_NODE:-1}; else REAL_NODE=${REAL_NODE:-0}; fi

status() {
  api_up || return 1
  [[ $REAL_NODE == 0 ]] || "$hack_dir/node.sh" status
}

# The controller-manager's client rate limit, when KCM_API_QPS is set (the bench: at its
# default of 20/s the Deployment controller paces every rollout of a few hundred sites).
kcm_patch() {
  [[ -n $KCM_API_QPS ]] || return 0
  cat <<EOF
  - name: kube-controller-manager
    extraArgs:
      - {key: kube-api-qps, value: "$KCM_API_QPS"}
      - {key: kube-api-burst, value: "$((KCM_API_QPS * 2))"}
EOF
}

# The API server: Services from the big range; admission plugins that let a namespace
# choose the fake nodes; the node's address for pods (through node.sh's relay) and for
# the API server's own calls to the kubelet (logs, exec, port-forward).
kwokctl_config() {
  local config=$1 pki=$cluster_dir/pki
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
  # Pods reach the API server at the kubernetes Service's IP, and the node's address.
  kubeApiserverCertSANs: [$KUBERNETES_SERVICE_IP, $NODE_IP]
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - {key: service-cluster-ip-range, value: $SERVICE_CIDR}
      - {key: advertise-address, value: $NODE_IP}
      - {key: enable-admission-plugins, value: "NodeRestriction,PodNodeSelector,PodTolerationRestriction"}
      - {key: kubelet-client-certificate, value: $pki/admin.crt}
      - {key: kubelet-client-key, value: $pki/admin.key}
      - {key: kubelet-certificate-authority, value: $pki/ca.crt}
      - {key: kubelet-preferred-address-types, value: InternalIP}
$(kcm_patch)
  # kwokctl lets kwok manage every node by default: it would fake the real one too.
  - name: kwok-controller
    extraArgs:
      - {key: manage-all-nodes, value: "false"}
      - {key: manage-nodes-with-annotation-selector, value: "kwok.x-k8s.io/node=fake"}
      # Fake pod IPs: out of 10/8 (kwok's default), and blackholed on the host.
      - {key: cidr, value: $FAKE_POD_CIDR}
EOF
}

# kwokctl reads $KWOK_WORKDIR/kwok.yaml before any --config: the node resource there is
# what every `kwokctl scale node` on this work dir adds (here and in bench/).
fake_node_resource() {
  cat >"$KWOK_WORKDIR/kwok.yaml" <<EOF
# Fake nodes: pod CIDRs in the fake pod range, addresses on loopback (where kwok serves
# their kubelet API), never kwok's defaults in 10/8 and 192.0.2/24.
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlResource
metadata: {name: node}
parameters:
  podCIDR: ${FAKE_POD_CIDR%.*.*}.0.0/24
  nodeIP: 127.0.0.1
template: |-
  apiVersion: v1
  kind: Node
  metadata:
    name: {{ Name }}
    annotations: {kwok.x-k8s.io/node: fake}
    labels: {kubernetes.io/hostname: "{{ Name }}", kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok}
  spec:
    podCIDR: {{ AddCIDR .podCIDR Index }}
    podCIDRs: [{{ AddCIDR .podCIDR Index }}]
  status:
    addresses: [{type: InternalIP, address: {{ AddIP .nodeIP Index | Quote }}}]
    allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
    capacity: {cpu: "32", memory: 256Gi, pods: "110"}
    nodeInfo: {architecture: amd64, operatingSystem: linux}
EOF
}

audit_policy() {
  # The audit policy records every write (not reads) so tests and the bench can count
  # the operator's writes.
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
}

control_plane_up() {
  # A half-dead cluster from an earlier run (a reboot, a killed session) is removed first.
  if [[ -d "$cluster_dir" ]]; then
    log "removing a stale cluster $CLUSTER_NAME"
    [[ $REAL_NODE == 0 ]] || "$hack_dir/node.sh" down
    kwokctl delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || rm -rf "$cluster_dir"
  fi
  mkdir -p "$KWOK_WORKDIR"
  audit_policy
  fake_node_resource
  local config=$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.yaml
  kwokctl_config "$config"
  log "starting cluster $CLUSTER_NAME (kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION) on 127.0.0.1"
  # kwokctl logs JSON lines: kept in a file, shown when it fails.
  kwokctl create cluster --name "$CLUSTER_NAME" --config "$config" --kubeconfig "" --wait 120s \
    >"$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.log" 2>&1 ||
    { tail -20 "$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.log" >&2; die "kwokctl failed; component logs are in $cluster_dir/logs/"; }
  cp "$cluster_dir/kubeconfig.yaml" "$KUBECONFIG_PATH"
  log "adding $NODES fake nodes"
  kwokctl scale node --name "$CLUSTER_NAME" --replicas "$NODES" >>"$KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.log" 2>&1 ||
    die "kwokctl scale node failed: see $KWOK_WORKDIR/$CLUSTER_NAME.kwokctl.log"
  kube wait --for=condition=Ready node -l "$FAKE_NODE_LABEL" --timeout=60s >/dev/null
}

up() {
  if status; then log "already running ($KUBECONFIG_PATH)"; echo "$KUBECONFIG_PATH"; return; fi
  [[ -x "$TOOLS_BIN/kube-apiserver" && -x "$TOOLS_BIN/kubelet" ]] || "$hack_dir/build-tools.sh" >&2
  local t0=$SECONDS
  # The bridge address must exist before the API server advertises it.
  [[ $REAL_NODE == 0 ]] || "$hack_dir/node.sh" net
  api_up || control_plane_up
  [[ $REAL_NODE == 0 ]] || "$hack_dir/node.sh" up
  log "ready in $((SECONDS - t0))s; kubeconfig: $KUBECONFIG_PATH"
  echo "$KUBECONFIG_PATH"
}

down() {
  [[ $REAL_NODE == 0 ]] || "$hack_dir/node.sh" down
  if [[ -d "$cluster_dir" ]]; then
    kwokctl delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || die "kwokctl delete cluster $CLUSTER_NAME failed"
  fi
  rm -f "$KUBECONFIG_PATH"
  log "cluster $CLUSTER_NAME deleted"
}

# use_real_node NS: the namespace's pods tolerate the real node's taint and select it.
use_real_node() {
  local ns=${1:?usage: $0 use-real-node NAMESPACE}
  local toleration='[{"key": "'$REAL_NODE_TAINT_KEY'", "operator": "Exists", "effect": "NoSchedule"}]'
  kube annotate namespace "$ns" --overwrite \
    "scheduler.alpha.kubernetes.io/defaultTolerations=$toleration" \
    "scheduler.alpha.kubernetes.io/node-selector=$REAL_NODE_LABEL_KEY=$REAL_NODE_LABEL_VALUE" >/dev/null
}

case "${1:-}" in
  up) up ;;
  use-real-node) use_real_node "${2:-}" ;;
  down) down ;;
  status) status ;;
  env) echo "export PATH=\"$TOOLS_BIN:\$PATH\" KUBECONFIG=\"$KUBECONFIG_PATH\"" ;;
  audit-log) echo "$cluster_dir/logs/audit.log" ;;
  *) echo "usage: $0 up|down|status|env|audit-log|use-real-node NS" >&2; exit 2 ;;
esac
