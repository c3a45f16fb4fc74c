#!/bin/bash
# The RPM and Debian packages, end to end, as root on Debian 12 from
# anywhere in the checkout:
#
#   bash scripts/pkgcheck.sh
#
# Installs what is missing (scripts/deps.sh), then in a temporary
# directory, leaving the checkout as it was:
#
#   1. the tarball: configure and `make dist`, as a release is made;
#   2. RPM: rpmlint on dist/rpm/resbus.spec, `rpmbuild -bb` from the
#      tarball, rpmlint on the packages it built.  Debian's rpm cannot
#      resolve Fedora's BuildRequires (its rpm database is empty), so
#      rpmbuild runs with --nodeps against Debian's libraries, which
#      scripts/deps.sh installed; dist/rpm/macros.fedora-compat adds the
#      macros a Fedora buildroot has (systemd-rpm-macros, debuginfo) and
#      dist/rpm/rpmlint.toml is Fedora's rpmlint configuration as far as
#      it concerns resbus, with resbus's own reasoned filters;
#   3. Debian: the tarball as resbus_VERSION.orig.tar.gz, unpacked (it
#      carries debian/), `dpkg-buildpackage -us -uc`, lintian on the .changes
#      (source and binary packages; debian/*.lintian-overrides say why
#      for what they silence), then `apt-get install` of the four .debs,
#      checks of what they installed (resbusd --check-config on
#      /etc/resbus, the user resbus, the configuration's owner and mode,
#      logrotate's reading of its file, the units), and `apt-get purge`.
#
# Both builds run the unit tests (%check, dh_auto_test), check_store's
# PostgreSQL cases included: against the server named by
# RESBUS_TEST_PG_HOST and RESBUS_TEST_PG_PORT when they are set (as
# scripts/test.sh sets them), else against a private one started here.
# Only the scenario tests, which need RabbitMQ, are left to `make check`.
#
# The install is undone: the packages are purged, and the user resbus is
# removed again if this script's install made it.  It refuses to start
# when a resbus package is installed already, which it would purge.
#
# Exits non-zero, with the reason on the last line, if anything failed.
# RESBUS_PKGCHECK_KEEP=1 keeps the temporary directory (logs, packages).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$(pwd)
start=$(date +%s)
packages=(resbus resbus-server resbus-worker resbus-drivers)

step() {
	echo "pkgcheck.sh: [$(($(date +%s) - start))s] $*"
}

fail() {
	echo "pkgcheck.sh: FAILED: $*" >&2
	exit 1
}

# show_log FILE: the end of a failed step's log.
show_log() {
	echo "----- $1 (last 60 lines) -----" >&2
	tail -n 60 "$1" >&2
}

if [ "$(id -u)" -ne 0 ]; then
	fail "must be run as root (it installs and purges packages)"
fi

step "dependencies"
bash scripts/deps.sh || fail "scripts/deps.sh could not install what is needed"

for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	if [ -n "$status" ] && [ "$status" != not-installed ]; then
		fail "package $p is installed already ($status); this check" \
		    "would purge it: remove it first"
	fi
done

version=$(sed -n 's/^AC_INIT(\[resbus\], \[\([^]]*\)\].*/\1/p' configure.ac)
spec_version=$(sed -n 's/^Version: *//p' dist/rpm/resbus.spec)
deb_version=$(dpkg-parsechangelog -l debian/changelog -S Version)
[ -n "$version" ] || fail "no version in configure.ac's AC_INIT"
if [ "$spec_version" != "$version" ]; then
	fail "dist/rpm/resbus.spec has Version $spec_version," \
	    "configure.ac $version"
fi
if [ "${deb_version%-*}" != "$version" ]; then
	fail "debian/changelog has version $deb_version, configure.ac $version"
fi

work=$(mktemp -d /tmp/resbus-pkgcheck.XXXXXX)
# The private PostgreSQL runs as the user postgres, under $work.
chmod 755 "$work"
pg_started=
installed=
user_made=
cleanup() {
	local rc=$?
	trap - EXIT
	if [ -n "$installed" ]; then
		apt-get purge -y -q -o DPkg::Lock::Timeout=300 "${packages[@]}" \
		    >"$work/cleanup-purge.log" 2>&1 || true
	fi
	if [ -n "$user_made" ] && getent passwd resbus >/dev/null; then
		userdel resbus >/dev/null 2>&1 || true
		groupdel resbus >/dev/null 2>&1 || true
	fi
	if [ -n "$pg_started" ]; then
		bash scripts/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
	fi
	if [ "${RESBUS_PKGCHECK_KEEP:-}" = 1 ] || [ "$rc" -ne 0 ]; then
		echo "pkgcheck.sh: logs and packages kept in $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "pkgcheck.sh: interrupted" >&2; exit 130' INT TERM

jobs=$(nproc)
[ "$jobs" -le 2 ] || jobs=2

# ---- 1. the tarball ---------------------------------------------------------
step "make dist (resbus $version)"
if [ ! -x configure ] || [ ! -f Makefile.in ] ||
    [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi >"$work/autoreconf.log" 2>&1 ||
	    { show_log "$work/autoreconf.log"; fail "autoreconf"; }
fi
mkdir "$work/dist"
if ! (cd "$work/dist" && "$top/configure" && make dist-gzip) \
    >"$work/dist.log" 2>&1; then
	show_log "$work/dist.log"
	fail "configure and make dist (log: $work/dist.log)"
fi
tarball=$work/dist/resbus-$version.tar.gz
[ -f "$tarball" ] || fail "make dist made no $tarball"

# ---- PostgreSQL for check_store ---------------------------------------------
if [ -z "${RESBUS_TEST_PG_HOST:-}" ] || [ -z "${RESBUS_TEST_PG_PORT:-}" ]; then
	step "a private PostgreSQL for the unit tests"
	pg_started=1
	bash scripts/postgres.sh start "$work/pg" auto >"$work/pg.log" 2>&1 ||
	    { show_log "$work/pg.log"; fail "scripts/postgres.sh start"; }
	set -a
	# shellcheck source=/dev/null
	. "$work/pg/env"
	set +a
fi

# ---- 2. RPM -------------------------------------------------------------------
# rpmlint_ok LOG: rpmlint's exit status says whether there were errors;
# warnings fail as well, but for the one about the License placeholder,
# which stays visible until the project has chosen a license.
rpmlint_ok() {
	local rc=$1 log=$2 bad
	bad=$(grep -E ': [EW]: ' "$log" |
	    grep -v -E ': W: invalid-license LicenseRef-resbus-undecided$' || true)
	if [ "$rc" -ne 0 ] || [ -n "$bad" ]; then
		cat "$log" >&2
		return 1
	fi
	grep -E 'checked;' "$log" || true
}

rpmlint_cmd=(rpmlint -c "$top/dist/rpm/rpmlint.toml")
step "rpmlint dist/rpm/resbus.spec"
rc=0
"${rpmlint_cmd[@]}" "$top/dist/rpm/resbus.spec" >"$work/rpmlint-spec.log" 2>&1 ||
    rc=$?
rpmlint_ok "$rc" "$work/rpmlint-spec.log" || fail "rpmlint on the spec"

step "rpmbuild -bb --nodeps"
rpmtop=$work/rpmbuild
mkdir -p "$rpmtop/SOURCES"
cp "$tarball" dist/rpm/resbus.sysusers "$rpmtop/SOURCES/"
if ! rpmbuild -bb --nodeps \
    --load "$top/dist/rpm/macros.fedora-compat" \
    --define "_topdir $rpmtop" \
    --define "_smp_mflags -j$jobs" \
    "$top/dist/rpm/resbus.spec" >"$work/rpmbuild.log" 2>&1; then
	show_log "$work/rpmbuild.log"
	fail "rpmbuild (log: $work/rpmbuild.log)"
fi
grep -E '^# (TOTAL|PASS|FAIL|ERROR):' "$work/rpmbuild.log" || true
# The packages the spec makes; the -debuginfo and -debugsource ones are
# find-debuginfo's, and rpmlint's checks of them are not Fedora's.
rpms=()
for p in "${packages[@]}"; do
	f=$(find "$rpmtop/RPMS" -name "$p-$version-*.rpm")
	[ -n "$f" ] || fail "rpmbuild made no package $p"
	rpms+=("$f")
done
grep -q 'PASS: tests/unit/check_store' "$work/rpmbuild.log" ||
    fail "%check did not run check_store"

step "rpmlint on the packages"
rc=0
"${rpmlint_cmd[@]}" "${rpms[@]}" >"$work/rpmlint-rpms.log" 2>&1 || rc=$?
rpmlint_ok "$rc" "$work/rpmlint-rpms.log" || fail "rpmlint on the packages"

# ---- 3. Debian ----------------------------------------------------------------
step "dpkg-buildpackage -us -uc"
debdir=$work/deb
mkdir "$debdir"
cp "$tarball" "$debdir/resbus_$version.orig.tar.gz"
tar -C "$debdir" -xzf "$tarball"
[ -f "$debdir/resbus-$version/debian/control" ] ||
    fail "the tarball has no debian/ (EXTRA_DIST in Makefile.am)"
if ! (cd "$debdir/resbus-$version" &&
    DEB_BUILD_OPTIONS="parallel=$jobs" dpkg-buildpackage -us -uc) \
    >"$work/dpkg-buildpackage.log" 2>&1; then
	show_log "$work/dpkg-buildpackage.log"
	fail "dpkg-buildpackage (log: $work/dpkg-buildpackage.log)"
fi
grep -E '^# (TOTAL|PASS|FAIL|ERROR):' "$work/dpkg-buildpackage.log" || true
grep -q 'PASS: tests/unit/check_store' "$work/dpkg-buildpackage.log" ||
    fail "dh_auto_test did not run check_store"
changes=$(find "$debdir" -maxdepth 1 -name "resbus_${deb_version}_*.changes")
[ -n "$changes" ] || fail "dpkg-buildpackage made no .changes"

step "lintian"
# Errors and warnings fail; the informational tags are shown.
if ! lintian --fail-on error,warning --display-info "$changes" \
    >"$work/lintian.log" 2>&1; then
	cat "$work/lintian.log" >&2
	fail "lintian"
fi
# One line per tag: how often, and the first place.
grep -E '^[EWIPXNO]: ' "$work/lintian.log" |
    awk '{ tag = $1 " " $2 " " $3; n[tag]++; if (!(tag in first)) {
	    first[tag] = $0; order[++k] = tag } }
	END { for (i = 1; i <= k; i++) printf "  %dx %s\n", n[order[i]],
	    first[order[i]] }' || true

step "apt-get install the .debs"
debs=()
for p in "${packages[@]}"; do
	f=$(find "$debdir" -maxdepth 1 -name "${p}_${deb_version}_*.deb")
	[ -n "$f" ] || fail "dpkg-buildpackage made no package $p"
	debs+=("$f")
done
getent passwd resbus >/dev/null || user_made=1
installed=1
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends -o DPkg::Lock::Timeout=300 "${debs[@]}" \
    >"$work/install.log" 2>&1; then
	show_log "$work/install.log"
	fail "apt-get install of the .debs"
fi

step "what the packages installed"
out=$(resbusd --check-config 2>&1) ||
    fail "resbusd --check-config on /etc/resbus: $out"
echo "  resbusd --check-config: $out"
out=$(resbusd --check-config --config-dir /usr/share/resbus/examples 2>&1) ||
    fail "resbusd --check-config on /usr/share/resbus/examples: $out"
for b in resbus resbus-maint resbus-xmlrpc resbus-worker; do
	"$b" --version >/dev/null 2>&1 || fail "$b --version"
done
getent passwd resbus >/dev/null || fail "no user resbus after the install"
for f in /etc/resbus/server.yaml /etc/resbus/pools.yaml; do
	mode=$(stat -c '%U:%G %a' "$f")
	[ "$mode" = "root:resbus 640" ] || fail "$f is $mode, not root:resbus 640"
done
# The example pool's commands are the installed local driver's.
grep -q '"/usr/share/resbus/drivers/local/new"' /etc/resbus/pools.yaml ||
    fail "/etc/resbus/pools.yaml does not name the installed local driver"
[ -x /usr/share/resbus/drivers/local/new ] ||
    fail "/usr/share/resbus/drivers/local/new is not installed"
logrotate -d /etc/logrotate.d/resbus-server >"$work/logrotate.log" 2>&1 ||
    { cat "$work/logrotate.log" >&2; fail "logrotate -d /etc/logrotate.d/resbus-server"; }
if grep -q '^error:' "$work/logrotate.log"; then
	cat "$work/logrotate.log" >&2
	fail "logrotate -d /etc/logrotate.d/resbus-server"
fi
units=(resbusd.service resbus-xmlrpc.service resbus-worker.service
    resbus-worker@.service)
for u in "${units[@]}"; do
	[ -f "/lib/systemd/system/$u" ] || fail "unit $u is not installed"
done
if ! SYSTEMD_LOG_LEVEL=warning systemd-analyze verify \
    /lib/systemd/system/resbusd.service \
    /lib/systemd/system/resbus-xmlrpc.service \
    /lib/systemd/system/resbus-worker.service \
    >"$work/verify.log" 2>&1; then
	cat "$work/verify.log" >&2
	fail "systemd-analyze verify of the units"
fi
echo "  resbus $version: binaries, user resbus, /etc/resbus (root:resbus 640)," \
    "logrotate, units: as expected"

step "apt-get purge"
if ! apt-get purge -y -q -o DPkg::Lock::Timeout=300 "${packages[@]}" \
    >"$work/purge.log" 2>&1; then
	show_log "$work/purge.log"
	fail "apt-get purge"
fi
installed=
[ ! -e /usr/sbin/resbusd ] || fail "/usr/sbin/resbusd is still there after the purge"
[ ! -e /etc/resbus ] || fail "/etc/resbus is still there after the purge"

step "done: rpm and deb packages built, linted, installed and purged"
