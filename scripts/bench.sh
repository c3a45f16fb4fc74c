#!/bin/bash
# The benchmark, as root from anywhere in a checkout:
#
#   bash scripts/bench.sh
#
# Installs what is missing (scripts/deps.sh), builds in build-bench/ with
# optimisation and without sanitizers, and runs `make bench` there
# (bench/run.sh: private RabbitMQ and PostgreSQL, the floor, then every
# figure with its ratio and target, one table at the end).  The BENCH_*
# variables of bench/README.md pass through.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
case ${1:-} in
-h | --help)
	sed -n '2,10s/^# \{0,1\}//p' "$0"
	exit 0
	;;
"") ;;
*)
	echo "usage: bash scripts/bench.sh" >&2
	exit 2
	;;
esac
build=$(pwd)/build-bench
bash scripts/deps.sh
bash scripts/build.sh "$build" CFLAGS="-O2 -g"
exec make -C "$build" bench
