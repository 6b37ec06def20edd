# Sourced by fetch-git.sh and fetch-archive.sh (POSIX sh: busybox or dash), which define
# die(), DEST and $work first. The last steps before a fetched tree is served.
#
# nginx serves the pod's files with symlinks followed and no per-request ownership
# check (the check cost a third of nginx's throughput), so the tree is made safe here,
# once, before anything reaches DEST. A pod's content never changes after this step.
#
#   symlinks       kept only when they resolve, through any chain, to an existing file or
#                  directory inside the tree. Every other one is REMOVED, with a line on
#                  stderr: absolute links, links that climb out (`..` at the top, chains
#                  ending outside), dangling links and loops. Repositories often hold
#                  such links for their own tooling (node_modules/.bin, a developer's
#                  absolute paths); they could never serve anything, so the site still
#                  deploys, and their URLs answer 404 like any missing file.
#   special files  devices, FIFOs, sockets: REFUSED (exit 45, naming them). No build
#                  makes them; a FIFO would block the nginx worker that opens it.
#                  (Unprivileged, busybox tar skips devices with a warning and GNU tar
#                  fails on them; FIFOs it creates.)
#   hard links     kept when every name of the file is inside the tree (tar stores
#                  duplicates so). A file with a name outside (a tar hard link to
#                  /etc/passwd, or through a symlinked directory) is REFUSED (exit 45):
#                  busybox tar run as root creates such links; GNU tar and an
#                  unprivileged busybox tar refuse them, but the check does not rely on it.
#
# The tree is checked where it was fetched, $work/tree.XXXXXX: a link that climbs out
# and comes back in would have to name that random directory, so what resolves inside
# here resolves to the same file once moved to DEST.

# confine TREE: refuse special files and hard links to outside, remove the symlinks that leave.
confine() {
	special=$(cd "$1" && find . \( -type b -o -type c -o -type p -o -type s \) -print | head -n 5 | tr '\n' ' ')
	[ -z "$special" ] || die 45 "refusing special files (devices, FIFOs, sockets are never site content): $special"
	# Inode numbers with fewer names in the tree than links on disk. `stat` prints no file
	# name, so no name can confuse the count.
	escaped=$(cd "$1" && find . -type f -links +1 -exec stat -c '%i %h' {} + |
		awk '{ n[$1]++; links[$1] = $2 } END { for (i in n) if (n[i] < links[i]) print i }' | head -n 1)
	if [ -n "$escaped" ]; then
		die 45 "refusing a hard link to a file outside the content:" "$(cd "$1" && find . -inum "$escaped" -print | head -n 1)"
	fi
	root=$(cd "$1" && pwd -P)
	# One `sh` per batch of links, given as arguments: no name is ever split or globbed.
	# shellcheck disable=SC2016 # expanded by the inner shell
	(cd "$1" && find . -type l -exec sh -c '
		root=$1 who=$2
		shift 2
		for link; do
			target=$(readlink "$link") || target=?
			case $target in
			/*) ;;
			*)
				if [ -e "$link" ] && real=$(readlink -f "$link"); then
					case $real in "$root" | "$root"/*) continue ;; esac
				fi
				;;
			esac
			printf "%s: removed the symlink %s -> %s: it leads outside the content, or nowhere\n" \
				"$who" "${link#./}" "$target" >&2
			rm -f "$link"
		done' sh "$root" "$who" {} +)
}

# publish TREE: make it readable by nginx whatever its UID (and writable by us, so a later
# run can clear it), then replace DEST's contents with it.
publish() {
	find "$1" ! -type l -exec chmod u+rwX,go+rX,go-w {} +
	for f in "$DEST"/* "$DEST"/.[!.]* "$DEST"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		[ "$f" = "$work" ] || rm -rf "$f"
	done
	for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		mv "$f" "$DEST/"
	done
}
