#!/bin/bash
# Runs clang's static analyzer (scan-build, Debian's clang-tools) over the
# whole build and fails on any finding not listed in scripts/analyze.supp.
#
#   scripts/analyze.sh [BUILD_DIR]      (default: build-analyze)
#
# A finding is "FILE: MESSAGE [CHECKER]" without line numbers, so that
# unrelated edits keep a suppression valid; each suppression in
# analyze.supp says why the finding is wrong or wanted.  Suppressions that
# no longer match are reported, so that the list only shrinks.  JOBS sets
# make's parallelism (default 1: CI runs this beside the tests).
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=${1:-$srcdir/build-analyze}
supp=$srcdir/scripts/analyze.supp
scan="scan-build-14"

command -v "$scan" >/dev/null || {
	echo "analyze.sh: $scan is missing (scripts/deps.sh installs clang-tools-14)" >&2
	exit 1
}
if [ ! -x "$srcdir/configure" ] || [ "$srcdir/configure.ac" -nt "$srcdir/configure" ] ||
    [ "$srcdir/Makefile.am" -nt "$srcdir/Makefile.in" ]; then
	(cd "$srcdir" && autoreconf -fi)
fi
rm -rf "$builddir"
mkdir -p "$builddir"
cd "$builddir"
"$scan" "$srcdir/configure" >configure.out 2>&1 || {
	tail -n 30 configure.out >&2
	echo "analyze.sh: configure failed" >&2
	exit 1
}
# Only resbus's own sources: the generated protobuf code is not ours.
"$scan" --exclude "$builddir/proto" -o "$builddir/reports" \
    make -j"${JOBS:-1}" >make.out 2>&1 || {
	tail -n 50 make.out >&2
	echo "analyze.sh: the build failed" >&2
	exit 1
}
grep -E '^[^ ]+:[0-9]+:[0-9]+: warning: .*\[[a-zA-Z.]+\]$' make.out |
    sed -E "s|^$srcdir/||; s|^([^:]+):[0-9]+:[0-9]+: warning: |\1: |" |
    sort -u >findings.txt || true
grep -v -e '^#' -e '^$' "$supp" | sort -u >supp.txt
new=$(comm -23 findings.txt supp.txt)
stale=$(comm -13 findings.txt supp.txt)
total=$(wc -l <findings.txt)
if [ -n "$stale" ]; then
	echo "analyze.sh: suppressions that match nothing any more (remove them):" >&2
	printf '  %s\n' "$stale" >&2
fi
if [ -n "$new" ]; then
	echo "analyze.sh: new findings (reports in $builddir/reports):" >&2
	while IFS= read -r f; do
		grep -F -- ": warning: ${f#*: }" make.out |
		    grep -F -- "${f%%: *}:" | sed 's/^/  /' >&2
	done <<<"$new"
	exit 1
fi
echo "analyze.sh: $total findings, all in scripts/analyze.supp with their reason"
