# resbus podman driver: what new, delete, list and livecheck share.
# Sourced (POSIX sh), never run.
# shellcheck shell=sh disable=SC2034,SC2154 # used and set by the sourcing scripts
#
# A resource is a container named after RESALLOC_NAME (characters podman
# does not take become "-"), labelled resbus.pool=<pool> and
# resbus.name=<RESALLOC_NAME>.  Deterministic names let an orphan `delete`,
# which knows only the resource's name, find its container.

podman_cmd=${RESBUS_PODMAN_CLI:-podman}

die() {
	echo "podman/$prog: $*" >&2
	exit 1
}

# The container name of resource name $1.
container_name() {
	printf '%s' "$1" | sed -e 's/[^A-Za-z0-9_.-]/-/g' -e 's/^[^A-Za-z0-9]/c/'
}
