#!/usr/bin/env bash
# Container images for the real node, built here: no Docker, no registry.
#
#   hack/images.sh build [NAME...]   build what is missing (default: all) into containerd
#   hack/images.sh ref NAME          the image reference of NAME (built or not yet)
#   hack/images.sh env               NAME_IMAGE=ref lines for every image (built first)
#   hack/images.sh prune             shrink BuildKit's cache (every build does it too)
#
# Images (hack/images/NAME/): pause (the pod sandbox), nginx and fetcher (site pods),
# fixture (the e2e tests' git and file server), python (the operator image's base, an OCI
# layout only) and operator (the repo's Dockerfile). Every image but pause and operator
# is a Debian root filesystem made by mmdebstrap, wrapped by a small Dockerfile.
#
# BuildKit runs with its containerd worker in containerd's k8s.io namespace: a built
# image is at once an image the kubelet can run, with no export or import step.
# Tags are staticsite.local/NAME:<...>-<hash of the inputs>: a second run finds the tag
# and builds nothing; a changed input makes a new tag. Never `latest` (the kubelet
# would try to pull it), never an upstream name.
set -euo pipefail
log_tag=images
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root=$(cd "$hack_dir/.." && pwd)
defs=$hack_dir/images
work=$node_home/images              # build contexts, the python OCI layout, ref files
BUILDKIT_SOCK=$node_run/buildkitd.sock
ALL=(pause nginx fetcher fixture python operator)
PREFIX=staticsite.local

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# inputs_hash NAME: 12 hex digits over everything the image is made from.
inputs_hash() {
  local name=$1
  {
    if [[ -d "$defs/$name" ]]; then (cd "$defs/$name" && find . -type f -print0 | sort -z | xargs -0 sha256sum); fi
    case $name in
      python) cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true ;;
      operator)
        ref python
        (cd "$root" && sha256sum Dockerfile .dockerignore pyproject.toml README.md &&
          find operator -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum)
        ;;
    esac
  } | sha256sum | cut -c1-12
}

# ref NAME: the reference NAME has (or will have) for the current inputs. Debian images
# carry their main package's version, known once built: the ref file remembers it.
ref() {
  local name=$1 hash
  hash=$(inputs_hash "$name")
  if [[ -f "$work/$name-$hash.ref" ]]; then cat "$work/$name-$hash.ref"; else echo "$PREFIX/$name:$hash"; fi
}

present() {
  local name=$1 hash r
  hash=$(inputs_hash "$name")
  [[ -f "$work/$name-$hash.ref" ]] || return 1
  r=$(cat "$work/$name-$hash.ref")
  if [[ $name == python ]]; then [[ -f "$work/python-$hash/index.json" ]]; return; fi
  ctr_k8s images ls -q "name==$r" 2>/dev/null | grep -qx "$r"
}

# --- BuildKit daemon: started for a build, stopped when this script exits -------------
buildkit_up() {
  [[ -n "$(daemon_pid buildkitd)" ]] && return
  ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1 || die "containerd is not running: hack/cluster.sh up starts it"
  log "starting buildkitd $BUILDKIT_VERSION (containerd worker, namespace k8s.io)"
  start_daemon buildkitd "$node_home/logs/buildkitd.log" "$TOOLS_BIN/buildkitd" \
    --root "$node_home/buildkit" --addr "unix://$BUILDKIT_SOCK" \
    --oci-worker=false --containerd-worker=true --containerd-worker-addr "$CONTAINERD_SOCK" \
    --containerd-worker-namespace k8s.io --containerd-worker-net host
  trap 'stop_daemon buildkitd' EXIT
  wait_until 30 buildctl --addr "unix://$BUILDKIT_SOCK" debug workers >/dev/null 2>&1 ||
    die "buildkitd did not answer in 30s: see $node_home/logs/buildkitd.log"
}

# buildctl_build CONTEXT DOCKERFILE_DIR OUTPUT [OPTIONS...]: the Dockerfile frontend built
# into BuildKit. cmdline= keeps it from fetching the `# syntax=` frontend from Docker Hub.
buildctl_build() {
  local context=$1 dockerfile=$2 output=$3; shift 3
  buildctl --addr "unix://$BUILDKIT_SOCK" build --progress=quiet --frontend dockerfile.v0 \
    --opt cmdline= --local "context=$context" --local "dockerfile=$dockerfile" --output "$output" "$@" \
    2> >(grep -v "failed check for fsverity support" >&2)
}

# --- Debian root filesystems --------------------------------------------------------------
rootfs() {
  local name=$1 dir=$2
  local SUITE PACKAGES HOST_CA=0
  # shellcheck source=/dev/null
  source "$defs/$name/image.env"
  apt_need mmdebstrap /usr/bin/mmdebstrap
  local hooks=(
    # UID 101 gets a name, so tools that look the user up (git, ssh) do not fail.
    --customize-hook='echo "site:x:101:101:site:/tmp:/usr/sbin/nologin" >>"$1/etc/passwd"'
    --customize-hook='echo "site:x:101:" >>"$1/etc/group"'
  )
  if [[ $HOST_CA == 1 ]]; then
    hooks+=(--customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"'
            --customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true'
            --customize-hook='chroot "$1" update-ca-certificates >/dev/null')
  fi
  log "$name: mmdebstrap $SUITE ($PACKAGES)"
  mmdebstrap --quiet --variant=essential --include="${PACKAGES// /,}" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' "${hooks[@]}" \
    "$SUITE" "$dir/rootfs.tar" http://deb.debian.org/debian >"$dir/mmdebstrap.log" 2>&1 ||
    { tail -20 "$dir/mmdebstrap.log" >&2; die "mmdebstrap failed for $name (log: $dir/mmdebstrap.log)"; }
}

# debian_version DIR PACKAGE: the upstream version of PACKAGE in the root filesystem.
# (awk reads to the end: an early exit would kill tar with SIGPIPE, and pipefail the script.)
debian_version() {
  tar -xOf "$1/rootfs.tar" ./var/lib/dpkg/status |
    awk -v p="$2" '$1 == "Package:" {hit = ($2 == p)} hit && $1 == "Version:" && !v {v = $2} END {print v}' |
    sed 's/^[0-9]*://; s/-[^-]*$//; s/[^A-Za-z0-9_.-]/_/g'
}

# --- One image ---------------------------------------------------------------------------
build_one() {
  local name=$1 hash dir r t0=$SECONDS
  hash=$(inputs_hash "$name")
  dir=$work/$name-$hash
  rm -rf "$dir"; mkdir -p "$dir"
  r=$PREFIX/$name:$hash
  case $name in
    pause)
      gcc -static -O2 -o "$dir/pause" "$defs/pause/pause.c" || die "gcc -static failed: apt-get install gcc libc6-dev"
      cp "$defs/pause/Dockerfile" "$dir/"
      ;;
    nginx | fetcher | fixture | python)
      rootfs "$name" "$dir"
      cp -r "$defs/$name/." "$dir/"
      case $name in
        nginx) r=$PREFIX/nginx:$(debian_version "$dir" nginx)-$hash ;;
        fetcher) r=$PREFIX/fetcher:git-$(debian_version "$dir" git)-$hash ;;
        python) r=$PREFIX/python:$(debian_version "$dir" python3)-$hash ;;
      esac
      ;;
  esac
  buildkit_up
  log "$name: building $r"
  case $name in
    python)
      buildctl_build "$dir" "$dir" "type=oci,dest=$dir/oci,tar=false"
      mv "$dir/oci"/* "$dir/" && rmdir "$dir/oci"
      ;;
    operator)
      local base base_dir digest
      base=$(ref python); base_dir=$work/python-$(inputs_hash python)
      digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
        "$base_dir/index.json")
      buildctl_build "$root" "$root" "type=image,name=$r,unpack=true" \
        --oci-layout "pybase=$base_dir" --opt "context:$base=oci-layout://pybase@$digest" \
        --opt "build-arg:PYTHON_IMAGE=$base"
      ;;
    *)
      buildctl_build "$dir" "$dir" "type=image,name=$r,unpack=true"
      ;;
  esac
  rm -f "$dir/rootfs.tar"
  echo "$r" >"$work/$name-$hash.ref"
  log "$name: $r ($((SECONDS - t0))s)"
  forget_older "$name" "$hash" "$r"
}

# forget_older NAME HASH REF: the earlier builds of NAME go (their tags, contexts and ref
# files), so that the store holds one image per name and containerd can collect the rest.
forget_older() {
  local name=$1 hash=$2 r=$3 old
  for old in $(ctr_k8s images ls -q 2>/dev/null | grep "^$PREFIX/$name:" || true); do
    [[ $old == "$r" ]] || ctr_k8s images rm "$old" >/dev/null 2>&1
  done
  for old in "$work/$name"-*; do
    [[ $old == "$work/$name-$hash" || $old == "$work/$name-$hash.ref" ]] || rm -rf "$old"
  done
  forget_unnamed
}

# The CRI plugin also names every image it has seen by its ID (sha256:<config digest>):
# such a name whose image no tag points at any more would keep its layers forever.
forget_unnamed() {
  local listing kept id digest
  listing=$(ctr_k8s images ls 2>/dev/null | awk 'NR > 1 {print $1, $3}')
  kept=$(awk '$1 !~ /^sha256:/ {print $2}' <<<"$listing")
  awk '$1 ~ /^sha256:/' <<<"$listing" | while read -r id digest; do
    grep -qx "$digest" <<<"$kept" || ctr_k8s images rm "$id" >/dev/null 2>&1 || true
  done
}

build() {
  local names=("$@") name
  [[ ${#names[@]} -gt 0 ]] || names=("${ALL[@]}")
  mkdir -p "$work"
  for name in "${names[@]}"; do
    [[ -d "$defs/$name" || $name == operator ]] || die "no image named $name (known: ${ALL[*]})"
    # The operator image is built on the python base: that comes first.
    [[ $name == operator ]] && ! present python && build_one python
    if present "$name"; then
      [[ -n "${STATICSITE_IMAGES_QUIET:-}" ]] || log "$name: cached ($(ref "$name"))"
    else
      build_one "$name"
    fi
  done
  if [[ -n "$(daemon_pid buildkitd)" ]]; then prune; fi
}

# BuildKit's own cache (intermediate stages, contexts) is dropped: the images are
# cached by tag, and a rebuild of the operator image re-runs its pip install anyway.
# So are its build histories, whose leases would keep every earlier image's layers.
prune() {
  forget_unnamed
  buildkit_up
  buildctl --addr "unix://$BUILDKIT_SOCK" prune-histories >/dev/null
  buildctl --addr "unix://$BUILDKIT_SOCK" prune --all >/dev/null
}

env_lines() {
  build
  local name
  for name in "${ALL[@]}"; do
    [[ $name == python ]] && continue
    echo "${name^^}_IMAGE=$(ref "$name")"
  done
}

cmd=${1:-}; shift || true
case $cmd in
  build) build "$@" ;;
  ref) ref "$1" ;;
  env) env_lines ;;
  prune) prune ;;
  *) echo "usage: $0 build [NAME...] | ref NAME | env | prune" >&2; exit 2 ;;
esac
