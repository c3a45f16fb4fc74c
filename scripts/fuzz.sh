#!/bin/bash
# Builds the libFuzzer targets and runs each over its corpus.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 30)
#
# Builds in build-fuzz/ (configure --enable-fuzzing CC=clang; or in
# $RESBUS_FUZZ_BUILDDIR, which `make fuzz` sets to its own build), then
# for each target fuzz_<name> of tests/fuzz:
#   1. runs every input of tests/fuzz/corpus/<name>/ once, whole (the
#      saved inputs, among them a reproducer of each past finding);
#   2. fuzzes for SECONDS_PER_TARGET, starting from that corpus, with
#      new inputs kept in <build>/fuzz/corpus/<target>/ (the tree's corpus
#      is never written).
# $RESBUS_FUZZ_JOBS targets run at once (default: the number of CPUs).
# Fails if any target crashes, leaks, hits a sanitizer or an assertion,
# or times out on one input; the input is saved as
# <build>/fuzz/artifacts/<target>-crash-* and the log beside it.
# Reproduce with:  <build>/tests/fuzz/<target> <input>...
set -uo pipefail

srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-30}
builddir=${RESBUS_FUZZ_BUILDDIR:-$srcdir/build-fuzz}
jobs=${RESBUS_FUZZ_JOBS:-$(nproc)}
targets=(fuzz_msg fuzz_xmlrpc fuzz_conf_server fuzz_conf_pools
	fuzz_conf_worker fuzz_tags)

case $seconds in
'' | *[!0-9]*)
	echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
	exit 2
	;;
esac

if [ -z "${RESBUS_FUZZ_BUILDDIR:-}" ]; then
	# build.sh runs make for everything configure enabled; only the
	# libraries and the fuzz targets are needed here.
	mkdir -p "$builddir"
	if [ ! -x "$srcdir/configure" ] || [ ! -f "$srcdir/Makefile.in" ] ||
	    [ "$srcdir/configure.ac" -nt "$srcdir/configure" ] ||
	    [ "$srcdir/Makefile.am" -nt "$srcdir/Makefile.in" ]; then
		echo "fuzz.sh: autoreconf -fi" >&2
		(cd "$srcdir" && autoreconf -fi) || exit 1
	fi
	if [ ! -f "$builddir/Makefile" ] ||
	    ! grep -q -- '--enable-fuzzing' "$builddir/config.status"; then
		echo "fuzz.sh: configure --enable-fuzzing CC=clang" >&2
		(cd "$builddir" &&
		    "$srcdir/configure" --enable-fuzzing CC=clang \
		    >configure.out 2>&1) || {
			tail -n 30 "$builddir/configure.out" >&2
			exit 1
		}
	fi
fi
echo "fuzz.sh: building the targets in $builddir" >&2
if ! make -C "$builddir" -j"$(nproc)" fuzz-targets \
    >"$builddir/fuzz-build.out" 2>&1; then
	tail -n 40 "$builddir/fuzz-build.out" >&2
	echo "fuzz.sh: build failed (full output in $builddir/fuzz-build.out)" >&2
	exit 1
fi

out="$builddir/fuzz"
mkdir -p "$out/artifacts" "$out/logs"

# The dictionary of a target, if it has one.
dict_of() {
	case $1 in
	fuzz_xmlrpc) echo "-dict=$srcdir/tests/fuzz/xmlrpc.dict" ;;
	fuzz_conf_*) echo "-dict=$srcdir/tests/fuzz/conf.dict" ;;
	esac
}

# Runs one target; its log goes to $out/logs/<target>.log.
run_one() {
	local t=$1 bin="$builddir/tests/fuzz/$1" log="$out/logs/$1.log"
	local seeds="$srcdir/tests/fuzz/corpus/${1#fuzz_}" dict rc
	dict=$(dict_of "$t")
	mkdir -p "$out/corpus/$t"
	{
		echo "== $t: the saved corpus, each input once, whole"
		# -runs=0 with no -max_len: every input loaded at its full
		# size and run once.
		"$bin" -runs=0 -timeout=25 -rss_limit_mb=2048 \
		    -artifact_prefix="$out/artifacts/$t-" "$seeds"
		rc=$?
		if [ "$rc" -eq 0 ] && [ "$seconds" -gt 0 ]; then
			echo "== $t: fuzzing for ${seconds}s"
			# shellcheck disable=SC2086
			"$bin" -max_total_time="$seconds" -timeout=25 \
			    -rss_limit_mb=2048 -max_len=16384 \
			    -print_final_stats=1 $dict \
			    -artifact_prefix="$out/artifacts/$t-" \
			    "$out/corpus/$t" "$seeds"
			rc=$?
		fi
		echo "== $t: exit $rc"
		echo "$rc" >"$out/logs/$t.rc"
	} >"$log" 2>&1
}

for t in "${targets[@]}"; do
	rm -f "$out/logs/$t.rc"
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n
	done
	run_one "$t" &
done
wait

crash_lines='^==[0-9]+==ERROR|runtime error|Assertion|^SUMMARY'
crash_lines="$crash_lines|Test unit written"
failed=0
for t in "${targets[@]}"; do
	log="$out/logs/$t.log"
	if [ "$(cat "$out/logs/$t.rc" 2>/dev/null)" = 0 ]; then
		execs=$(grep -m1 'stat::number_of_executed_units' "$log" |
		    sed 's/.*: *//')
		cov=$(grep -E '^#[0-9]+ +DONE ' "$log" | tail -n1 |
		    grep -o 'cov: [0-9]*' || true)
		echo "fuzz.sh: $t: ok, ${execs:-0} executions${cov:+, $cov}"
	else
		failed=$((failed + 1))
		echo "fuzz.sh: $t: FAILED (log: $log)"
		grep -E -A40 "$crash_lines" "$log" | head -n 80 | grep . ||
		    tail -n 20 "$log"
	fi
done

if [ "$failed" -gt 0 ]; then
	echo "fuzz.sh: $failed of ${#targets[@]} targets failed" >&2
	exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets passed (${seconds}s each)"
