#!/bin/bash
# (Functions here run from traps, which shellcheck cannot see.)
# shellcheck disable=SC2317
# The whole test run, as root from anywhere in the checkout:
#
#   bash scripts/test.sh
#
# Installs what is missing (scripts/deps.sh), builds in build/ with
# -Werror and the sanitizers, starts a private RabbitMQ and PostgreSQL in
# a fresh build/test-state on free ports, runs `make check`, checks the
# formatting (make format-check), then runs clang's static analyzer
# (scripts/analyze.sh, in build-analyze/) beside a short pass of the fuzz
# targets (scripts/fuzz.sh, clang, in build-fuzz/) and the package check
# (scripts/pkgcheck.sh), and then `make distcheck` against them, and
# stops both services however it ends.  The last line printed is "N
# passed, N failed", from automake's totals of `make check` plus one each
# for the format check, the analysis, the fuzz pass and the package check
# (ERROR and XPASS count as failed, and a failed build or distcheck counts
# as one failure more).
# Exits non-zero if anything failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
top=$(pwd)
build="$top/build"
state="$build/test-state"
start=$(date +%s)

step() {
	echo "==> [$(($(date +%s) - start))s] $*"
}

passed=0
failed=0
skipped=0
summary() {
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
}

stop_services() {
	bash scripts/postgres.sh stop "$state" >/dev/null 2>&1 || true
	bash scripts/rabbitmq.sh cluster-stop "$state" >/dev/null 2>&1 || true
	bash scripts/rabbitmq.sh stop "$state" >/dev/null 2>&1 || true
}

finish() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "${analyze_pid:-}" ]; then
		kill "$analyze_pid" 2>/dev/null
	fi
	step "stopping RabbitMQ and PostgreSQL"
	stop_services
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1
	fi
	step "done"
	summary
	if [ "$failed" -gt 0 ]; then
		exit 1
	fi
	exit 0
}
trap finish EXIT
trap 'echo "test.sh: interrupted" >&2; exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
	echo "test.sh: must be run as root (it installs packages and runs" \
	    "RabbitMQ and PostgreSQL as their own users)" >&2
	exit 1
fi

step "dependencies"
bash scripts/deps.sh || exit 1

step "build (--enable-werror --enable-sanitizers)"
if ! bash scripts/build.sh "$build" --enable-werror --enable-sanitizers; then
	echo "test.sh: build failed" >&2
	exit 1
fi

step "RabbitMQ and PostgreSQL in $state"
# Anything left from an earlier, interrupted run.
stop_services
rm -rf "$state"
bash scripts/rabbitmq.sh start "$state" auto || exit 1
bash scripts/postgres.sh start "$state" auto || exit 1
# The cluster tests' 3 RabbitMQ nodes (tests/cluster/lib.sh).
bash scripts/rabbitmq.sh cluster-start "$state" 3 || exit 1
set -a
# shellcheck source=/dev/null
. "$state/env"
set +a

# Read a total from automake's test-suite.log ("# PASS:  3").
total() {
	local v
	v=$(grep -m1 "^# $1: *[0-9]" "$build/test-suite.log" 2>/dev/null |
	    sed 's/.*: *//')
	echo "${v:-0}"
}

# counted STATUS NAME OUT KEEP: one counted test that ended with STATUS,
# its output in $build/OUT: the lines matching KEEP (a regex; empty:
# none) when it passed, the last 100 lines when it failed.
counted() {
	local rc=$1 name=$2 out=$build/$3 keep=$4
	if [ "$rc" -eq 0 ]; then
		[ -z "$keep" ] || grep -E "$keep" "$out" || true
		passed=$((passed + 1))
	else
		tail -n 100 "$out"
		echo "test.sh: $name failed (full output in $out)" >&2
		failed=$((failed + 1))
	fi
}

step "make check"
rm -f "$build/test-suite.log"
# The scenario tests spend their time waiting on RabbitMQ, drivers and
# timers, not on the CPU: four at once keep two cores busy.
make -C "$build" -j4 check VERBOSE=1 AM_COLOR_TESTS=no
check_rc=$?
if [ -f "$build/test-suite.log" ]; then
	passed=$(total PASS)
	skipped=$(total SKIP)
	failed=$(($(total FAIL) + $(total ERROR) + $(total XPASS)))
fi
if [ "$check_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "test.sh: make check failed before its tests ran" >&2
	failed=1
fi

# The sources as the pinned formatter writes them (make format-check,
# clang-format 14): one counted test.
step "format check (make format-check)"
make -C "$build" format-check >"$build/format.out" 2>&1
counted $? "the format check" format.out ''

# clang's static analyzer over a build of its own, one compiler at a time
# beside the fuzz pass and the package check (the timing-bound tests of
# make check are over by now): one counted test, collected after them.
step "static analysis (scripts/analyze.sh), in the background"
JOBS=1 bash scripts/analyze.sh "$top/build-analyze" >"$build/analyze.out" 2>&1 &
analyze_pid=$!

# A short pass of every fuzz target over its saved corpus (which holds a
# reproducer of each past finding), then fuzzing from it: one counted
# test, in build-fuzz/ with clang.
step "fuzz pass (scripts/fuzz.sh 20)"
bash scripts/fuzz.sh 20 >"$build/fuzz.out" 2>&1
counted $? "the fuzz pass" fuzz.out '^fuzz.sh:'

# The RPM and Debian packages (scripts/pkgcheck.sh): built from the
# tarball with their unit tests (check_store against this run's
# PostgreSQL), rpmlint and lintian, the .debs installed, checked
# (resbusd --check-config on /etc/resbus, ...) and purged: one counted
# test.  The full builds, not a shortened form: they take about two
# minutes, without sanitizers.
step "packages (scripts/pkgcheck.sh)"
bash scripts/pkgcheck.sh >"$build/pkgcheck.out" 2>&1
counted $? "the package check" pkgcheck.out '^pkgcheck.sh:|checked;'

step "static analysis (scripts/analyze.sh)"
wait "$analyze_pid"
counted $? "the static analysis" analyze.out '^analyze.sh:'
analyze_pid=

# distcheck proves the tarball: it builds out of tree from it with
# -Werror, installs, uninstalls and cleans up.  The whole suite has just
# run against this very source; the tarball's build runs the unit tests
# and the basic scenario, which exercise every binary it built.
step "make distcheck"
if make -C "$build" -j2 distcheck VERBOSE=1 AM_COLOR_TESTS=no \
    DISTCHECK_CONFIGURE_FLAGS=--enable-werror \
    TESTS='$(UNIT_TESTS) tests/scenario/basic.sh' \
    >"$build/distcheck.out" 2>&1; then
	grep -E '^# (TOTAL|PASS|FAIL|ERROR):|archives ready|^resbus-' \
	    "$build/distcheck.out" || true
else
	tail -n 300 "$build/distcheck.out"
	echo "test.sh: make distcheck failed (full output in" \
	    "$build/distcheck.out)" >&2
	failed=$((failed + 1))
fi
exit 0
