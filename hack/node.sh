#!/usr/bin/env bash
# The real node of the local cluster: containerd and runc run real containers, the
# kubelet registers node "staticsite-node", kube-proxy programs Services with iptables.
# hack/cluster.sh calls it; docs/local-cluster.md explains the design.
#
#   hack/node.sh net       the bridge, routes, sysctls and firewall (before the API server)
#   hack/node.sh up        certificates, containerd, kubelet, kube-proxy, API relay (idempotent)
#   hack/node.sh down      drain, stop, unmount, and remove everything `net` and `up` made
#   hack/node.sh status    exit 0 when every daemon runs and the node is Ready
#
# Everything lives under ~/.cache/staticsite-operator/node (images survive a restart) and
# /run/staticsite-node (sockets, pidfiles, runtime state). Nothing goes to /etc or /var/lib.
set -euo pipefail
log_tag=node
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pki=$node_home/pki
DAEMONS=(containerd kubelet kube-proxy api-relay)
# The firewall's chains, hooked first into INPUT and FORWARD.
CHAIN_IN=STATICSITE-INPUT
CHAIN_FWD=STATICSITE-FORWARD

ipt() { iptables -w 10 "$@"; }

# --- Network -----------------------------------------------------------------------------

# sysctl_set KEY VALUE: set a host sysctl, remembering the first value seen so `down`
# can put it back.
sysctl_set() {
  local key=$1 value=$2 file=/proc/sys/${1//.//}
  mkdir -p "$node_run"
  grep -q "^$key=" "$node_run/sysctl.saved" 2>/dev/null || echo "$key=$(cat "$file")" >>"$node_run/sysctl.saved"
  echo "$value" >"$file"
}

sysctl_restore() {
  local key value
  [[ -f "$node_run/sysctl.saved" ]] || return 0
  while IFS='=' read -r key value; do echo "$value" >"/proc/sys/${key//.//}" || true; done <"$node_run/sysctl.saved"
  rm -f "$node_run/sysctl.saved"
}

# chain TABLE NAME HOOK: an empty chain of ours, jumped to first from HOOK.
chain() {
  ipt -t "$1" -N "$2" 2>/dev/null || ipt -t "$1" -F "$2"
  ipt -t "$1" -C "$3" -j "$2" 2>/dev/null || ipt -t "$1" -I "$3" 1 -j "$2"
}

unchain() {
  while ipt -t "$1" -D "$3" -j "$2" 2>/dev/null; do :; done
  ipt -t "$1" -F "$2" 2>/dev/null || true
  ipt -t "$1" -X "$2" 2>/dev/null || true
}

# firewall [API_PORT]: pods reach nothing on the host but the API server (through the
# relay), nothing outside this machine, and nothing outside reaches the node's addresses.
firewall() {
  chain filter "$CHAIN_IN" INPUT
  ipt -A "$CHAIN_IN" -i lo -j RETURN
  ipt -A "$CHAIN_IN" -i "$NODE_BRIDGE" -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  if [[ -n "${1:-}" ]]; then
    ipt -A "$CHAIN_IN" -i "$NODE_BRIDGE" -d "$NODE_IP" -p tcp --dport "$1" -j RETURN
  fi
  ipt -A "$CHAIN_IN" -i "$NODE_BRIDGE" -j DROP
  ipt -A "$CHAIN_IN" -d "$NODE_POD_CIDR" -j DROP
  chain filter "$CHAIN_FWD" FORWARD
  ipt -A "$CHAIN_FWD" -i "$NODE_BRIDGE" -o "$NODE_BRIDGE" -j RETURN
  ipt -A "$CHAIN_FWD" -i "$NODE_BRIDGE" -j DROP
  ipt -A "$CHAIN_FWD" -o "$NODE_BRIDGE" -j DROP
}

net_up() {
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null ||
    die "the kernel has no br_netfilter: Services between pods on the bridge cannot work here"
  apt_need iptables /usr/sbin/iptables
  apt_need conntrack /usr/sbin/conntrack
  apt_need socat /usr/bin/socat
  apt_need containernetworking-plugins /usr/lib/cni/bridge
  if ip -4 addr show | grep -q "inet $NODE_IP/" && ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    die "$NODE_IP is already on another interface: another cluster's node? ($(ip -4 -o addr show | grep "$NODE_IP/"))"
  fi
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge
  ip addr replace "$NODE_IP/${NODE_POD_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # The host reaches ClusterIPs through the bridge (kube-proxy rewrites them to pod IPs
  # there); the rest of the shared range, fake pod IPs included, goes nowhere.
  ip route replace "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  ip route replace blackhole "$SHARED_RANGE"
  sysctl_set net.ipv4.ip_forward 1                  # pod -> Service -> pod is forwarded
  sysctl_set net.bridge.bridge-nf-call-iptables 1   # ...and must see kube-proxy's NAT on the bridge
  firewall
}

# drop_chains IPTABLES TABLE PREFIX: remove chains named PREFIX* and every jump to them.
drop_chains() {
  local cmd=$1 table=$2 prefix=$3 c rule chains
  chains=$("$cmd" -w 10 -t "$table" -S 2>/dev/null | sed -n "s/^-N \($prefix[A-Za-z0-9_-]*\)$/\1/p")
  [[ -n "$chains" ]] || return 0
  for c in $chains; do "$cmd" -w 10 -t "$table" -F "$c"; done
  "$cmd" -w 10 -t "$table" -S | { grep -E -- "-j $prefix" || true; } | sed 's/^-A /-D /' | while read -r rule; do
    eval "\"\$cmd\" -w 10 -t $table $rule" || true   # eval: -S quotes comments the way a shell reads them
  done
  for c in $chains; do "$cmd" -w 10 -t "$table" -X "$c" || true; done
}

# What the kubelet and kube-proxy leave in both families after `kube-proxy --cleanup`
# (the kubelet's KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), and portmap's
# CNI-HOSTPORT-* chains, which outlive the pods that needed them.
drop_node_chains() {
  local cmd table
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle; do
      drop_chains "$cmd" "$table" KUBE-
      drop_chains "$cmd" "$table" CNI-
    done
  done
}

net_down() {
  unchain filter "$CHAIN_IN" INPUT
  unchain filter "$CHAIN_FWD" FORWARD
  drop_node_chains
  ip route del blackhole "$SHARED_RANGE" 2>/dev/null || true
  ip route del "$SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  sysctl_restore
}

# --- Certificates, issued by the cluster's own CA (kwokctl keeps ca.key in its pki) -------

# issue NAME SUBJECT EXTENSIONS: NAME.crt/.key signed by the cluster CA.
issue() {
  local name=$1 subject=$2 ext=$3
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subject" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$cluster_dir/pki/ca.key" \
    -CAcreateserial -days 30 -extfile <(printf '%s\n' "$ext") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
  chmod 600 "$pki/$name.key"
}

# kubeconfig NAME: NAME.kubeconfig for the client certificate NAME.crt.
kubeconfig() {
  cat >"$node_home/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$pki/ca.crt"}}]
users: [{name: $1, user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}}]
contexts: [{name: local, context: {cluster: local, user: $1}}]
current-context: local
EOF
}

certificates() {
  mkdir -p "$pki"
  [[ -f "$cluster_dir/pki/ca.key" ]] || die "no CA key in $cluster_dir/pki: start the cluster with hack/cluster.sh up"
  # A new cluster has a new CA: issue again only then.
  if cmp -s "$cluster_dir/pki/ca.crt" "$pki/ca.crt" && [[ -f "$pki/kubelet-serving.crt" ]]; then return; fi
  log "issuing the node's certificates from the cluster CA"
  cp "$cluster_dir/pki/ca.crt" "$pki/ca.crt"
  issue kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
  issue kubelet-serving "/CN=$NODE_NAME" \
    "$(printf 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:%s,DNS:%s' "$NODE_IP" "$NODE_NAME")"
  issue kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
}

# --- Configuration files ---------------------------------------------------------------

containerd_config() {
  local pause_ref=$1
  mkdir -p "$node_home/cni/net.d"
  cat >"$node_home/containerd.toml" <<EOF
# Generated by hack/node.sh. Every path is the project's own: no /etc, /var/lib or /opt.
version = 3
root = "$node_home/containerd"
state = "$node_run/containerd"
imports = []
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs", "io.containerd.nri.v1.nri"]

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      # Built here (hack/images.sh): there is no registry to pull registry.k8s.io/pause from.
      sandbox = "$pause_ref"
  [plugins.'io.containerd.cri.v1.runtime']
    # The VM withholds CAP_SYS_RESOURCE: lowering a sandbox's oom_score_adj fails with
    # "can't get final child's PID from pipe: EOF" unless containerd keeps it >= its own.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_cdi = false
    cdi_spec_dirs = []
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$TOOLS_BIN/runc"
        SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ["/usr/lib/cni"]
      conf_dir = "$node_home/cni/net.d"
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
  [plugins.'io.containerd.internal.v1.opt']
    path = "$node_home/containerd-opt"
EOF
  # Debian's plugins (v1.1.1): a bridge whose gateway address the host already holds
  # (net_up), no masquerading (pods talk to nothing outside), hairpin for a pod that
  # reaches itself through its Service.
  cat >"$node_home/cni/net.d/10-staticsite.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "staticsite",
  "plugins": [
    {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$node_run/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

kubelet_config() {
  cat >"$node_home/kubelet.yaml" <<EOF
# Generated by hack/node.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$pki/kubelet-serving.crt"
tlsPrivateKeyFile: "$pki/kubelet-serving.key"
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
podLogsDir: "$node_home/pod-logs"
# No systemd, and only cgroup v1 on this kind of machine (1.36 refuses v1 without this).
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# Images are built into containerd here, never pulled: nothing to verify them against.
imagePullCredentialsVerificationPolicy: NeverVerify
# No cluster DNS and no host resolver in pods: the tests use IP addresses only.
resolvConf: ""
clusterDomain: cluster.local
# The disk is shared with everything else: never evict or garbage-collect images on its
# account (the image store is the project's cache).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
shutdownGracePeriod: 0s
# Only namespaces that opt in (hack/cluster.sh use-real-node) get pods here.
registerWithTaints: [{key: "$REAL_NODE_TAINT_KEY", value: "true", effect: NoSchedule}]
serializeImagePulls: false
EOF
  cat >"$node_home/kube-proxy.yaml" <<EOF
# Generated by hack/node.sh.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: "$node_home/kube-proxy.kubeconfig"}
hostnameOverride: $NODE_NAME
clusterCIDR: $NODE_POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
# No NodePorts on 127.0.0.1: that needs route_localnet, which exposes localhost to the bridge.
iptables: {localhostNodePorts: false, minSyncPeriod: 1s}
# 0: leave the host's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# --- Daemons ---------------------------------------------------------------------------

containerd_up() {
  [[ -n "$(daemon_pid containerd)" ]] && return
  log "starting containerd $CONTAINERD_VERSION (store: $node_home/containerd)"
  # The shim and runc are found on PATH; ours come first.
  PATH="$TOOLS_BIN:$PATH" start_daemon containerd "$node_home/logs/containerd.log" \
    "$TOOLS_BIN/containerd" --config "$node_home/containerd.toml"
  wait_until 30 ctr_ok || die "containerd did not answer in 30s: see $node_home/logs/containerd.log"
}

ctr_ok() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }

kubelet_up() {
  [[ -n "$(daemon_pid kubelet)" ]] && return
  log "starting kubelet $KUBE_VERSION as node $NODE_NAME ($NODE_IP)"
  start_daemon kubelet "$node_home/logs/kubelet.log" "$TOOLS_BIN/kubelet" \
    --config="$node_home/kubelet.yaml" --kubeconfig="$node_home/kubelet.kubeconfig" \
    --root-dir="$node_home/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --node-labels="$REAL_NODE_LABEL_KEY=$REAL_NODE_LABEL_VALUE" --v=1
}

kube_proxy_up() {
  [[ -n "$(daemon_pid kube-proxy)" ]] && return
  log "starting kube-proxy $KUBE_VERSION (iptables)"
  start_daemon kube-proxy "$node_home/logs/kube-proxy.log" "$TOOLS_BIN/kube-proxy" \
    --config="$node_home/kube-proxy.yaml" --v=1
}

# The API server listens on 127.0.0.1 only (kwokctl's components and kubeconfigs are
# wired to it), where pods cannot reach it. The relay listens on the bridge address
# only, at the same port, which is the `kubernetes` Service's endpoint.
api_relay_up() {
  local pid; pid=$(daemon_pid api-relay)
  if [[ -n "$pid" ]] && grep -q "TCP-LISTEN:$api_port," "/proc/$pid/cmdline"; then return; fi
  stop_daemon api-relay
  log "relaying $NODE_IP:$api_port (bridge) to the API server on 127.0.0.1:$api_port"
  start_daemon api-relay "$node_home/logs/api-relay.log" /usr/bin/socat \
    "TCP-LISTEN:$api_port,bind=$NODE_IP,reuseaddr,fork" "TCP:127.0.0.1:$api_port"
}

node_ready() {
  [[ "$(kube get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# The node serves one cluster at a time: the first to start it owns it until `down`.
owner_id="$CLUSTER_NAME $KWOK_WORKDIR"
owner() { cat "$node_run/owner" 2>/dev/null || true; }
owned_by_another() {
  local o; o=$(owner)
  [[ -n "$o" && "$o" != "$owner_id" ]] && [[ -n "$(daemon_pid kubelet)$(daemon_pid containerd)" ]]
}

up() {
  if owned_by_another; then
    die "the real node serves cluster '$(owner)': stop that one first, or start this one with REAL_NODE=0"
  fi
  [[ -x "$TOOLS_BIN/kubelet" && -x "$TOOLS_BIN/containerd" ]] || "$hack_dir/build-tools.sh" >&2
  api_up || die "the API server is not running: start the cluster with hack/cluster.sh up"
  api_port=$(sed -n 's#^ *server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$KUBECONFIG_PATH" | head -1)
  [[ -n "$api_port" ]] || die "no https://127.0.0.1:PORT server in $KUBECONFIG_PATH"
  net_up
  echo "$owner_id" >"$node_run/owner"
  firewall "$api_port"
  certificates
  kubeconfig kubelet
  kubeconfig kube-proxy
  mkdir -p "$node_home/logs" "$node_home/pod-logs" "$node_home/kubelet" "$node_run"
  containerd_config "$(STATICSITE_IMAGES_QUIET=1 "$hack_dir/images.sh" ref pause)"
  kubelet_config
  containerd_up
  "$hack_dir/images.sh" build pause
  kubelet_up
  kube_proxy_up
  api_relay_up
  wait_until 90 node_ready || die "node $NODE_NAME not Ready after 90s: see $node_home/logs/kubelet.log"
  log "node $NODE_NAME Ready"
}

# --- Teardown --------------------------------------------------------------------------

# Pods go through the kubelet while it runs, so CNI and volume teardown happen the normal way.
drain() {
  [[ -n "$(daemon_pid kubelet)" ]] && api_up || return 0
  log "deleting the pods on $NODE_NAME"
  kubectl --kubeconfig "$KUBECONFIG_PATH" delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
    --grace-period=1 --timeout=60s >/dev/null 2>&1 || log "some pods were still terminating after 60s"
}

# Whatever the kubelet left: containers, shims (their pidfiles are in containerd's state).
sweep_containers() {
  ctr_ok || return 0
  local c
  for c in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true
  done
  sleep 1
  for c in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks delete -f "$c" >/dev/null 2>&1 || true
    ctr --address "$CONTAINERD_SOCK" -n k8s.io containers delete "$c" >/dev/null 2>&1 || true
  done
}

stop_shims() {
  local f pid
  for f in "$node_run"/containerd/io.containerd.runtime.v2.task/*/*/shim.pid; do
    [[ -f "$f" ]] || continue
    pid=$(cat "$f")
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$TOOLS_BIN/containerd-shim-runc-v2" ]] && kill -KILL "$pid" 2>/dev/null
  done
  # A shim whose task directory is already gone has no pidfile left: it is still ours when
  # it runs our shim binary for our containerd's socket (and no other shim can).
  for f in /proc/[0-9]*; do
    pid=${f#/proc/}
    [[ "$(readlink "$f/exe" 2>/dev/null)" == "$TOOLS_BIN/containerd-shim-runc-v2" ]] || continue
    tr '\0' ' ' <"$f/cmdline" 2>/dev/null | grep -q -- "-address $CONTAINERD_SOCK " && kill -KILL "$pid" 2>/dev/null
  done
  return 0
}

# Mounts under our directories, deepest first; network namespaces are mounts too.
unmount_all() {
  local m
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($node_home|$node_run)/" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
}

# The kubelet's pod cgroups (cgroupfs driver, v1: one tree per controller) and BuildKit's.
remove_cgroups() {
  local root
  for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/buildkit; do
    [[ -d "$root" ]] || continue
    find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null || log "could not remove all of $root"
  done
}

down() {
  if owned_by_another; then log "the real node serves cluster '$(owner)': left alone"; return; fi
  drain
  stop_daemon kubelet 20
  stop_daemon api-relay
  stop_daemon kube-proxy
  if [[ -x "$TOOLS_BIN/kube-proxy" ]]; then
    "$TOOLS_BIN/kube-proxy" --cleanup --v=0 >/dev/null 2>&1 || log "kube-proxy --cleanup reported errors"
  fi
  sweep_containers
  stop_daemon containerd 20
  stop_shims
  unmount_all
  remove_cgroups
  net_down
  rm -rf "$node_run"
  log "node $NODE_NAME stopped; images kept in $node_home/containerd"
}

status() {
  local d
  for d in "${DAEMONS[@]}"; do [[ -n "$(daemon_pid "$d")" ]] || return 1; done
  node_ready
}

case "${1:-}" in
  net) if owned_by_another; then die "the real node serves cluster '$(owner)': start this one with REAL_NODE=0"; fi
       net_up ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 net|up|down|status" >&2; exit 2 ;;
esac
