# resbus openstack driver: what new, delete, list and livecheck share.
# Sourced (POSIX sh), never run.
# shellcheck shell=sh disable=SC2034,SC2154 # used and set by the sourcing scripts
#
# A resource is one server named RESALLOC_NAME with the property
# resbus-pool=<pool>.  The cloud and its credentials are the openstack
# CLI's own: OS_CLOUD with the worker host's clouds.yaml, or the OS_*
# variables of an openrc file.

openstack_cmd=${RESBUS_OPENSTACK_CLI:-openstack}

die() {
	echo "openstack/$prog: $*" >&2
	exit 1
}

# The server of the resource: an "id=<uuid>" line of base64 data $1,
# else the name $2.
server_ref() {
	id=
	if [ -n "$1" ]; then
		id=$(printf '%s' "$1" | base64 -d 2>/dev/null |
		    sed -n 's/^id=\([0-9a-fA-F-]\{1,64\}\)$/\1/p' | head -n 1)
	fi
	echo "${id:-$2}"
}
