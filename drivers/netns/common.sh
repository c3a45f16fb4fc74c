# resbus netns driver: what new, delete, list and livecheck share.
# shellcheck shell=sh disable=SC2034,SC2154 # used and set by the sourcing scripts
# Sourced (POSIX sh), never run.
#
# A resource is the network namespace rb-<RESALLOC_ID>, joined to the
# host by a veth pair rbh<RESALLOC_ID> (host side) / rbn<RESALLOC_ID>
# (namespace side) -- "rb" being RESBUS_NETNS_PREFIX, 1 to 4 of a-z0-9,
# so that two resbus set-ups on one host keep apart -- with a subnet of its own cut from RESBUS_NETNS_SUBNET.
# A state file per namespace (RESBUS_NETNS_STATE/<namespace>) records the
# resource's name and pool, so that `list` can print resource names and
# an orphan `delete`, which knows only RESALLOC_NAME, finds its namespace.

state_dir=${RESBUS_NETNS_STATE:-/run/resbus-netns}
subnet=${RESBUS_NETNS_SUBNET:-10.213.0.0/16}
prefixlen=${RESBUS_NETNS_PREFIXLEN:-30}
nsprefix=${RESBUS_NETNS_PREFIX:-rb}

die() {
	echo "netns/$prog: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" = 0 ] || die "needs root (ip netns, ip link)"
	command -v ip >/dev/null 2>&1 || die "needs iproute2 (the ip command)"
}

is_uint() {
	case $1 in
	''|*[!0-9]*) return 1 ;;
	esac
	return 0
}

# ip_to_int A.B.C.D
ip_to_int() {
	old_ifs=$IFS
	IFS=.
	# shellcheck disable=SC2086
	set -- $1
	IFS=$old_ifs
	[ $# -eq 4 ] || return 1
	for o in "$@"; do
		is_uint "$o" && [ "$o" -le 255 ] || return 1
	done
	echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}

int_to_ip() {
	echo "$((($1 >> 24) & 255)).$((($1 >> 16) & 255)).$((($1 >> 8) & 255)).$(($1 & 255))"
}

# The names of resource ID's namespace and interfaces.
names_for_id() {
	case $nsprefix in
	'' | ?????* | *[!a-z0-9]*) die "RESBUS_NETNS_PREFIX must be 1 to 4 of a-z0-9" ;;
	esac
	ns=$nsprefix-$1
	hif=${nsprefix}h$1
	nif=${nsprefix}n$1
	# Interface names have at most 15 characters.
	[ ${#hif} -le 15 ] || die "resource id $1 is too long for an interface name"
}

# The namespace of resource NAME, from the state files; empty if none.
ns_for_name() {
	[ -d "$state_dir" ] || return 0
	for f in "$state_dir/$nsprefix"-*; do
		[ -f "$f" ] || continue
		if grep -qxF "name=$1" "$f"; then
			echo "${f##*/}"
			return 0
		fi
	done
}

# state_get FILE KEY
state_get() {
	sed -n "s/^$2=//p" "$1" | head -n 1
}

ns_exists() {
	ip netns list 2>/dev/null | awk '{ print $1 }' | grep -qxF "$1"
}
