# Shared by hack/cluster.sh, hack/node.sh and hack/images.sh (sourced, never run).
# Paths, pinned versions, the node's network plan and small helpers, in one place.
# shellcheck shell=bash

hack_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$hack_dir/versions.env"

cache_root=${STATICSITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/staticsite-operator}
TOOLS_BIN=${TOOLS_BIN:-$cache_root/$KUBE_VERSION/bin}
CLUSTER_NAME=${CLUSTER_NAME:-staticsite}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$cache_root/kwok}
KUBECONFIG_PATH=${KUBECONFIG_PATH:-$cache_root/kubeconfig}
cluster_dir=$KWOK_WORKDIR/clusters/$CLUSTER_NAME
# kwokctl looks kubectl up on PATH; ours must win over any other kubectl. /usr/sbin has
# ip, iptables and the kubelet's mount helpers.
export PATH="$TOOLS_BIN:$PATH:/usr/sbin:/sbin"

# --- The real node's network: all of it inside 100.64.0.0/10 (shared address space),
# none of it in 10/8, 172.16/12 or 192.168/16. docs/local-cluster.md explains each range.
SERVICE_CIDR=100.64.0.0/16        # ClusterIPs: 65k Services (kube-apiserver's default is a /24)
KUBERNETES_SERVICE_IP=100.64.0.1  # the first ClusterIP: the `kubernetes` Service
NODE_POD_CIDR=100.96.0.0/24       # pods on the real node (host-local IPAM on the bridge)
NODE_IP=100.96.0.1                # the bridge's address: kubelet, and the API server for pods
FAKE_POD_CIDR=100.100.0.0/16      # kwok's fake pod IPs (never routed: a blackhole route)
SHARED_RANGE=100.64.0.0/10        # everything above; nothing in it may leave this machine
NODE_BRIDGE=ssbr0
NODE_NAME=staticsite-node
# The real node is tainted: a pod lands there only from a namespace that opts in (a
# default toleration and node selector, through the PodTolerationRestriction and
# PodNodeSelector admission plugins: `hack/cluster.sh use-real-node NS`). Every other
# pod (integration tests, the bench) goes to the fake nodes, as before.
REAL_NODE_TAINT_KEY=staticsite.dev/real-node
REAL_NODE_LABEL_KEY=staticsite.dev/node
REAL_NODE_LABEL_VALUE=real
FAKE_NODE_LABEL=type=kwok

node_home=$cache_root/node          # survives: containerd's image store, kubelet dir, logs
node_run=/run/staticsite-node       # gone at reboot: sockets, pidfiles, runtime state
CONTAINERD_SOCK=$node_run/containerd.sock

# log/die print with the calling script's tag: [cluster], [node], [images].
log() { printf '[%s %4ss] %s\n' "$log_tag" "$SECONDS" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$log_tag" "$*" >&2; exit 1; }

# apt_need PACKAGE FILE: install a Debian package when FILE (something it ships) is missing.
apt_need() {
  [[ -e "$2" ]] && return
  log "installing Debian's $1 (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; } ||
    die "could not install $1: run 'sudo apt-get install $1' and re-run"
}

kube() { kubectl --kubeconfig "$KUBECONFIG_PATH" --request-timeout=10s "$@"; }

api_up() { [[ -f "$KUBECONFIG_PATH" ]] && kube get --raw /readyz >/dev/null 2>&1; }

# --- Daemons started by the project: one pidfile each under $node_run ----------------
pidfile() { echo "$node_run/$1.pid"; }

# daemon_pid NAME: the PID when NAME runs (its pidfile names a live process that still
# runs the binary it was started with), else nothing.
daemon_pid() {
  local f pid exe
  f=$(pidfile "$1")
  [[ -f "$f" ]] || return 0
  read -r pid exe <"$f" || true
  [[ -n "$pid" && -d /proc/$pid ]] || return 0
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$exe" ]] && echo "$pid"
  return 0
}

# start_daemon NAME LOGFILE BINARY ARGS...: start in its own session, detached.
start_daemon() {
  local name=$1 logfile=$2 bin=$3; shift 3
  mkdir -p "$node_run" "$(dirname "$logfile")"
  setsid "$bin" "$@" >>"$logfile" 2>&1 </dev/null &
  echo "$! $(readlink -f "$bin")" >"$(pidfile "$name")"
}

# stop_daemon NAME [SECONDS]: TERM, then KILL after SECONDS (default 10); by pidfile only.
stop_daemon() {
  local name=$1 wait=${2:-10} pid i
  pid=$(daemon_pid "$name")
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait * 10; i++)); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    if [[ -d /proc/$pid ]]; then log "$name ($pid) did not stop in ${wait}s: KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$(pidfile "$name")"
}

# wait_until SECONDS COMMAND...: poll COMMAND every half second; false on time-out.
wait_until() {
  local limit=$1 i; shift
  for ((i = 0; i < limit * 2; i++)); do "$@" && return 0; sleep 0.5; done
  return 1
}
