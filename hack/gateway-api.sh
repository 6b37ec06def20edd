#!/usr/bin/env bash
# The Gateway API CRDs (standard channel) at the pinned version, from the Go module
# sigs.k8s.io/gateway-api (downloaded once into the module cache by `go mod download`).
#
#   hack/gateway-api.sh dir     print the directory of the standard channel's CRDs
#   hack/gateway-api.sh apply   install them in $KUBECONFIG's cluster (server-side apply)
#
# Only the CustomResourceDefinitions are applied: the channel's "safe upgrades"
# ValidatingAdmissionPolicy guards CRD upgrades and is the platform's call.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

crd_dir() {
  local json dir
  # Outside any module, and with the local toolchain only: nothing else is fetched.
  json=$(cd "${TMPDIR:-/tmp}" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json \
    "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  dir=$(printf '%s' "$json" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or "")')
  if [[ -z "$dir" ]]; then
    echo "gateway-api.sh: go mod download failed: $json" >&2
    exit 1
  fi
  echo "$dir/config/crd/standard"
}

case "${1:-}" in
  dir) crd_dir ;;
  apply)
    dir=$(crd_dir)
    files=()
    for f in "$dir"/gateway.networking.k8s.io_*.yaml; do
      [[ "$f" == *_vap_* ]] || files+=(-f "$f")
    done
    kubectl apply --server-side --force-conflicts "${files[@]}" >&2
    kubectl wait --for=condition=Established --timeout=60s crd/httproutes.gateway.networking.k8s.io \
      crd/referencegrants.gateway.networking.k8s.io >&2
    ;;
  *) echo "usage: $0 dir|apply" >&2; exit 2 ;;
esac
