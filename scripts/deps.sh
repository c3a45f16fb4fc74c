#!/bin/bash
# Installs, as root on Debian 12, every Debian package needed to build,
# test and run resbus.  A fast no-op when everything is installed already.
# Package installation never starts system services: the RabbitMQ and
# PostgreSQL that the tests and the quick start use are private instances
# started by scripts/rabbitmq.sh and scripts/postgres.sh.
set -euo pipefail

PACKAGES=(
	# build
	build-essential autoconf automake libtool pkg-config
	protobuf-c-compiler libprotobuf-c-dev librabbitmq-dev libev-dev
	libyaml-dev libsqlite3-dev libpq-dev libbsd-dev check
	libmicrohttpd-dev libjson-c-dev libxml2-dev
	# fuzz targets (scripts/fuzz.sh): clang's libFuzzer and sanitizers
	clang libclang-rt-14-dev
	# static analysis (scripts/analyze.sh): scan-build
	clang-tools-14
	# make format-check: the pinned formatter
	clang-format-14
	# run and test
	rabbitmq-server postgresql postgresql-15 amqp-tools sqlite3
	procps iproute2 iputils-ping util-linux bsdutils coreutils findutils gawk sed grep
	curl chromium
	# the cluster tests' relay into a worker's network namespace
	socat
	# the hostile tests' AMQP client (tests/hostile/amqp.py)
	python3 python3-pika
	# the notification schemas' test (tests/schemas/validate.py)
	python3-jsonschema
	# the Grafana dashboard's test runs its queries in a real Prometheus
	prometheus
	# the Python example client (examples/python/): protobuf code made
	# by protoc at test time
	protobuf-compiler python3-protobuf
	# packaging checks (make distcheck)
	xz-utils gzip tar
	# the RPM and Debian packages (scripts/pkgcheck.sh): rpmbuild and
	# rpmlint, find-debuginfo's eu-strip, dpkg-buildpackage with
	# debhelper, lintian; systemd (systemd-sysusers, systemd-analyze) and
	# logrotate to check what the .debs install
	rpm rpmlint debugedit elfutils file
	dpkg-dev debhelper lintian
	systemd logrotate
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != installed ]; then
		missing+=("$pkg")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run this script as root to install them" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# Keep package scripts from starting system services while we install.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
cleanup() {
	if [ -n "$own_policy" ]; then
		rm -f "$policy"
	fi
}
trap cleanup EXIT

install() {
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

lists_present() {
	compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

if ! lists_present; then
	apt-get update -q
	install
elif ! install; then
	echo "deps.sh: install failed; refreshing the package lists" >&2
	apt-get update -q
	install
fi
