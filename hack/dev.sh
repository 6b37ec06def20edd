#!/usr/bin/env bash
# `make dev`: the example sites, served by real nginx pods on the real node, each on a
# http://127.0.0.1:PORT of its own, while the operator runs here in the terminal (edit,
# Ctrl-C, `make dev` again: no image to rebuild). Ctrl-C stops the operator and the
# port-forwards; the cluster keeps running (`make cluster-down` stops it).
#
#   hack/dev.sh PYTHON     PYTHON: the venv's python (the operator is `python -m staticsite_operator`)
set -euo pipefail
log_tag=dev
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

python=${1:?usage: $0 PATH-TO-VENV-PYTHON}
root=$(cd "$hack_dir/.." && pwd)
NAMESPACE=default
supervisors=()

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# forward SITE PORT: keep 127.0.0.1:PORT forwarded to the site's Service. A port-forward
# ends when its pod goes (a rollout replaces the pods): start it again, on the same port.
forward() {
  local site=$1 port=$2 child=
  trap '[[ -n "$child" ]] && kill "$child" 2>/dev/null; exit 0' TERM
  while true; do
    kubectl --kubeconfig "$KUBECONFIG_PATH" -n "$NAMESPACE" port-forward --address 127.0.0.1 \
      "service/$site" "$port:80" >>"$node_home/logs/dev-port-forward.log" 2>&1 &
    child=$!
    wait "$child" || true
    sleep 1
  done
}

cleanup() {
  local pid
  for pid in "${supervisors[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${supervisors[@]}"; do wait "$pid" 2>/dev/null || true; done
  log "port-forwards stopped; the cluster still runs (make cluster-down stops it)"
}

main() {
  "$hack_dir/cluster.sh" up >/dev/null
  local env_lines; env_lines=$("$hack_dir/images.sh" env)
  local nginx_image fetcher_image operator_image
  operator_image=$(sed -n 's/^OPERATOR_IMAGE=//p' <<<"$env_lines")
  nginx_image=$(sed -n 's/^NGINX_IMAGE=//p' <<<"$env_lines")
  fetcher_image=$(sed -n 's/^FETCHER_IMAGE=//p' <<<"$env_lines")
  kube apply --server-side --force-conflicts -f "$root/crds/" >/dev/null
  kube wait --for=condition=Established crd/staticsites.staticsite.dev --timeout=60s >/dev/null
  "$hack_dir/cluster.sh" use-real-node "$NAMESPACE"
  local sites site port
  sites=$(kube apply --server-side -f "$root/examples/" -o name | sed 's#.*/##')
  mkdir -p "$node_home/logs"
  trap cleanup EXIT
  echo
  for site in $sites; do
    port=$(free_port)
    forward "$site" "$port" &
    supervisors+=($!)
    printf '  %-8s http://127.0.0.1:%s/\n' "$site" "$port"
  done
  echo
  log "the URLs answer once the operator has rolled out each site (a few seconds); nginx is $nginx_image"
  log "operator starting; in another shell: eval \"\$(hack/cluster.sh env)\"; kubectl get staticsites -A"
  KUBECONFIG=$KUBECONFIG_PATH STATICSITE_LISTEN_ADDRESS=127.0.0.1 STATICSITE_HEALTH_PORT=8081 \
    STATICSITE_NGINX_IMAGE=$nginx_image STATICSITE_FETCHER_IMAGE=$fetcher_image \
    STATICSITE_ROUTES_IMAGE=$operator_image "$python" -m staticsite_operator
}

main
