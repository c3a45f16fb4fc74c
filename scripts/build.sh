#!/bin/bash
# Builds resbus out of tree.
#
#   scripts/build.sh [BUILD_DIR] [configure arguments...]
#
# Runs `autoreconf -fi` when configure is missing or older than
# configure.ac or Makefile.am, configures in BUILD_DIR (default `build`,
# relative to the current directory) when it has not been configured with
# the same arguments yet, and runs make -j$(nproc).
set -euo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=${1:-build}
shift || true

if [ ! -x "$srcdir/configure" ] || [ ! -f "$srcdir/Makefile.in" ] ||
    [ "$srcdir/configure.ac" -nt "$srcdir/configure" ] ||
    [ "$srcdir/Makefile.am" -nt "$srcdir/Makefile.in" ]; then
	echo "build.sh: autoreconf -fi" >&2
	(cd "$srcdir" && autoreconf -fi)
fi

mkdir -p "$builddir"
cd "$builddir"

# Reconfigure only when the arguments changed (or never configured).
args="$*"
if [ ! -f Makefile ] || [ ! -f .resbus-configure-args ] ||
    [ "$(cat .resbus-configure-args)" != "$args" ]; then
	echo "build.sh: configure $args" >&2
	"$srcdir/configure" "$@"
	printf '%s' "$args" >.resbus-configure-args
fi

make -j"$(nproc)"
