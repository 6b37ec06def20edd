#!/bin/sh
# Fill DEST with the contents of a checksummed archive: the init container of a StaticSite
# pod whose content is spec.content.archive (run with `sh` in alpine/git: busybox applets).
#
# Configured by the environment only; nothing is ever spliced into this text:
#   ARCHIVE_URL       http(s) URL of a .tar.gz/.tgz or .tar (the format is read from the
#                     file itself), without credentials
#   ARCHIVE_SHA256    the archive's SHA-256, 64 hex digits: nothing else is trusted, so
#                     the transfer itself needs no integrity of its own
#   STRIP_COMPONENTS  optional, default 0: leading path components to drop (tar's
#                     --strip-components), e.g. 1 for a top-level directory
#   DEST              the directory to fill (the pod's emptyDir); its contents are replaced
#
# Exit status: 0 extracted; 2 bad configuration; 42 checksum mismatch; 3 not an archive
# this script reads, or nothing left after stripping; 1 anything else (download, extract).
#
# Nothing reaches DEST unless the whole archive was verified and extracted: the download
# and the extraction happen in a temporary directory inside DEST, whose contents are
# replaced only at the end. tar (busybox or GNU) refuses to write outside its directory.
set -eu

die() {
	code=$1
	shift
	printf 'fetch-archive: %s\n' "$*" >&2
	exit "$code"
}

[ -n "${ARCHIVE_URL:-}" ] || die 2 "ARCHIVE_URL is not set"
[ -n "${ARCHIVE_SHA256:-}" ] || die 2 "ARCHIVE_SHA256 is not set"
[ -n "${DEST:-}" ] || die 2 "DEST is not set"
STRIP_COMPONENTS=${STRIP_COMPONENTS:-0}
case $ARCHIVE_URL in
http://* | https://*) ;;
*) die 2 "ARCHIVE_URL: only http:// and https:// URLs are supported" ;;
esac
authority=${ARCHIVE_URL#*://}
case ${authority%%/*} in
*@*) die 2 "ARCHIVE_URL must not hold credentials" ;;
esac
case $ARCHIVE_URL in
*[[:space:][:cntrl:]]*) die 2 "ARCHIVE_URL: no whitespace allowed" ;;
esac
shown=${ARCHIVE_URL%%[?#]*} # a query may carry a signature: keep it out of logs
expected=$(printf '%s' "$ARCHIVE_SHA256" | tr 'A-F' 'a-f')
case $expected in
*[!0-9a-f]*) die 2 "ARCHIVE_SHA256 must be 64 hex digits" ;;
esac
[ ${#expected} -eq 64 ] || die 2 "ARCHIVE_SHA256 must be 64 hex digits"
case $STRIP_COMPONENTS in
'' | *[!0-9]*) die 2 "STRIP_COMPONENTS must be a whole number" ;;
esac
[ ${#STRIP_COMPONENTS} -le 2 ] || die 2 "STRIP_COMPONENTS is too large"
case $DEST in
/?*) DEST=${DEST%/} ;;
*) die 2 "DEST must be an absolute path other than /" ;;
esac

mkdir -p "$DEST"
rm -rf "$DEST"/.staticsite-fetch.* # left by a run that was killed
work=$(mktemp -d "$DEST/.staticsite-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
archive="$work/archive"
tree="$work/tree"
mkdir "$tree"

# A download may take 10 minutes at most. (Not wget -T: Debian's busybox lacks it, and
# crashes on it; `timeout` is an applet everywhere.)
bounded() {
	if command -v timeout >/dev/null 2>&1; then timeout 600 "$@"; else "$@"; fi
}
if command -v wget >/dev/null 2>&1; then
	bounded wget -q -O "$archive" "$ARCHIVE_URL" || die 1 "cannot download $shown"
elif command -v curl >/dev/null 2>&1; then
	bounded curl -fsSL --proto =http,https --proto-redir =http,https --connect-timeout 30 \
		-o "$archive" "$ARCHIVE_URL" || die 1 "cannot download $shown"
else
	die 1 "neither wget nor curl is installed"
fi

actual=$(sha256sum "$archive" | cut -d ' ' -f 1)
if [ "$actual" != "$expected" ]; then
	printf 'checksum mismatch: expected %s, got %s\n' "$expected" "$actual" >&2
	exit 42
fi

if [ "$(head -c 2 "$archive")" = "$(printf '\037\213')" ]; then
	compression=z
elif [ "$(head -c 262 "$archive" | tail -c 5)" = ustar ]; then
	compression=
else
	die 3 "$shown is not a .tar.gz, .tgz or .tar archive"
fi
extract() {
	[ "$STRIP_COMPONENTS" -eq 0 ] || set -- --strip-components "$STRIP_COMPONENTS"
	tar -x${compression}f "$archive" -C "$tree" --no-same-permissions "$@"
}
# Not as root, busybox tar cannot fill a read-only directory it has just made (a Nix
# build's output is all 0555): make those writable and extract again, a level deeper
# each time. --no-same-permissions keeps tar from locking them again.
passes=1
until extract 2>"$work/tar.log"; do
	locked=$(find "$tree" -type d ! -perm -200)
	if [ -z "$locked" ] || [ $passes -ge 64 ]; then
		cat "$work/tar.log" >&2
		die 1 "cannot extract $shown"
	fi
	find "$tree" -type d ! -perm -200 -exec chmod u+rwx {} +
	passes=$((passes + 1))
done
[ -n "$(ls -A "$tree")" ] || die 3 "$shown holds no files after stripping $STRIP_COMPONENTS path components"

# Readable by nginx whatever its UID; writable by us, so a later run can clear it.
find "$tree" ! -type l -exec chmod u+rwX,go+rX,go-w {} +
for f in "$DEST"/* "$DEST"/.[!.]* "$DEST"/..?*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	[ "$f" = "$work" ] || rm -rf "$f"
done
for f in "$tree"/* "$tree"/.[!.]* "$tree"/..?*; do
	[ -e "$f" ] || [ -L "$f" ] || continue
	mv "$f" "$DEST/"
done
printf 'fetched %s (sha256 %s)\n' "$shown" "$actual"
