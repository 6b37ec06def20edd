#!/bin/sh
# Fill DEST with exactly one commit of a git repository: the init container of a
# StaticSite pod whose content is spec.content.git (run with `sh` in alpine/git).
#
# Configured by the environment only; nothing is ever spliced into this text:
#   GIT_URL         http(s) URL of the repository, without credentials, query or fragment
#   GIT_SHA         the commit to serve, 40 hex digits (the operator resolved the ref)
#   GIT_TOKEN_FILE  optional: a file holding an access token (the mounted Secret key).
#                   It is sent as HTTP basic auth, x-access-token:<token>, through git's
#                   GIT_CONFIG_* environment: never in an argv, never printed.
#   DEST            the directory to fill (the pod's emptyDir); its contents are replaced
#
# Exit status: 0 fetched; 2 bad configuration; 43 the commit is not in the repository;
# 44 authentication required or refused; 1 anything else (network...: git's own message
# is on stderr).
#
# The tree reaches DEST only once it is complete and verified: it is checked out in a
# temporary directory inside DEST (the one place a read-only pod can write), its .git
# removed (nginx must never serve the repository), and then moved in.
set -eu

die() {
	code=$1
	shift
	printf 'fetch-git: %s\n' "$*" >&2
	exit "$code"
}

[ -n "${GIT_URL:-}" ] || die 2 "GIT_URL is not set"
[ -n "${GIT_SHA:-}" ] || die 2 "GIT_SHA is not set"
[ -n "${DEST:-}" ] || die 2 "DEST is not set"
case $GIT_URL in
http://* | https://*) ;;
*) die 2 "GIT_URL: only http:// and https:// URLs are supported" ;;
esac
authority=${GIT_URL#*://}
case ${authority%%/*} in
*@*) die 2 "GIT_URL must not hold credentials: give the token in GIT_TOKEN_FILE" ;;
esac
case $GIT_URL in
*[[:space:][:cntrl:]?#]*) die 2 "GIT_URL: no whitespace, query or fragment allowed" ;;
esac
GIT_SHA=$(printf '%s' "$GIT_SHA" | tr 'A-F' 'a-f')
case $GIT_SHA in
*[!0-9a-f]*) die 2 "GIT_SHA must be a full commit SHA (40 hex digits)" ;;
esac
[ ${#GIT_SHA} -eq 40 ] || die 2 "GIT_SHA must be a full commit SHA (40 hex digits)"
case $DEST in
/?*) DEST=${DEST%/} ;;
*) die 2 "DEST must be an absolute path other than /" ;;
esac

# Nothing from the image or the caller may change what git does, or make it print headers.
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
	GIT_TRACE GIT_TRACE_CURL GIT_TRACE_CURL_NO_DATA GIT_TRACE_PACKET GIT_TRACE_PACK_ACCESS GIT_TRACE_SETUP \
	GIT_TRACE_PERFORMANCE GIT_TRACE_SHALLOW GIT_TRACE2 GIT_TRACE2_EVENT GIT_TRACE2_PERF GIT_CURL_VERBOSE \
	GIT_SSL_NO_VERIFY GIT_ASKPASS SSH_ASKPASS GIT_PROXY_COMMAND
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 GIT_ALLOW_PROTOCOL=http:https
export GIT_HTTP_LOW_SPEED_LIMIT=1000 GIT_HTTP_LOW_SPEED_TIME=60 # give up on a stalled transfer
export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=credential.helper GIT_CONFIG_VALUE_0=
if [ -n "${GIT_TOKEN_FILE:-}" ]; then
	[ -f "$GIT_TOKEN_FILE" ] && [ -r "$GIT_TOKEN_FILE" ] || die 2 "GIT_TOKEN_FILE is not a readable file"
	token=$(tr -d ' \t\r\n' <"$GIT_TOKEN_FILE") # a Secret made with `echo` ends in a newline
	if [ -n "$token" ]; then
		# printf is a shell builtin and base64 reads stdin: the token is in no process's argv.
		auth=$(printf 'x-access-token:%s' "$token" | base64 | tr -d '\n')
		export GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_1=http.extraHeader GIT_CONFIG_VALUE_1="Authorization: Basic $auth"
	fi
	unset token auth
fi

mkdir -p "$DEST"
rm -rf "$DEST"/.staticsite-fetch.* # left by a run that was killed
work=$(mktemp -d "$DEST/.staticsite-fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
export HOME="$work"
tree="$work/tree"
git init -q "$tree"
cd "$tree"
git remote add origin "$GIT_URL"

has_commit() { git cat-file -e "$GIT_SHA^{commit}" 2>/dev/null; }
heads_and_tags() { git fetch -q --no-tags "$@" origin '+refs/heads/*:refs/remotes/origin/*' '+refs/tags/*:refs/tags/*'; }
if ! direct=$(git fetch -q --no-tags --depth 1 origin "$GIT_SHA" 2>&1); then
	# Some servers refuse a want by SHA (uploadpack.allowReachableSHA1InWant off, protocol
	# v0). The commit is then usually a branch or tag tip, else somewhere in the history.
	if ! fallback=$(heads_and_tags --depth 1 2>&1); then
		printf '%s\n' "fetch-git: fetching the commit: $direct" "fetch-git: fetching branches and tags: $fallback" >&2
		case $fallback in # git asks for a username when the server answers 401
		*"could not read Username"* | *"Authentication failed"* | *" 401"* | *" 403"*)
			die 44 "authentication required or refused by $GIT_URL: check the token (secretRef)" ;;
		esac
		die 1 "cannot fetch from $GIT_URL"
	fi
	if ! has_commit && [ -f .git/shallow ]; then
		heads_and_tags --unshallow || die 1 "cannot fetch the history of $GIT_URL"
	fi
	has_commit || die 43 "commit $GIT_SHA not found in $GIT_URL: $direct"
fi
has_commit || die 43 "commit $GIT_SHA not found in $GIT_URL"
git -c advice.detachedHead=false checkout -q --detach "$GIT_SHA"
head=$(git rev-parse HEAD)
[ "$head" = "$GIT_SHA" ] || die 1 "checked out $head instead of $GIT_SHA"
cd /
rm -rf "$tree/.git"

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
printf 'fetched %s from %s\n' "$GIT_SHA" "$GIT_URL"
