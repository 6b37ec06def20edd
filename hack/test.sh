#!/usr/bin/env bash
# Run a command (the test suite) against the local cluster with the images built:
#
#   hack/test.sh COMMAND [ARGS...]
#
# Starts the cluster when it is not running and stops it again afterwards (KEEP_CLUSTER=1
# keeps it), so `make test` leaves no daemon, bridge, chain or mount behind. Builds the
# images that are missing first, in the open, so their progress lines are seen.
set -euo pipefail
log_tag=test
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

started=0
if ! "$hack_dir/cluster.sh" status; then
  "$hack_dir/cluster.sh" up >/dev/null
  started=1
fi
stop() {
  if [[ $started == 1 && -z "${KEEP_CLUSTER:-}" ]]; then "$hack_dir/cluster.sh" down >/dev/null; fi
}
trap stop EXIT
"$hack_dir/images.sh" build
"$@"
