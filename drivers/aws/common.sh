# resbus aws driver: what new, delete, list and livecheck share.
# shellcheck shell=sh disable=SC2154 # prog is set by the sourcing script
# Sourced (POSIX sh), never run.
#
# Instances carry two tags: Name=<RESALLOC_NAME> and
# <RESBUS_AWS_POOL_TAG>=<RESALLOC_POOL_ID> (default tag key resbus-pool),
# so that `list` finds the pool's instances and an orphan `delete`, which
# knows only the resource's name, finds its instance.  Credentials and the
# region are the aws CLI's own business: the worker host's ~/.aws, its
# AWS_PROFILE / AWS_REGION / AWS_* environment, or an instance role.

pool_tag=${RESBUS_AWS_POOL_TAG:-resbus-pool}
aws_cmd=${RESBUS_AWS_CLI:-aws}

die() {
	echo "aws/$prog: $*" >&2
	exit 1
}

# Instance ids of resource NAME in POOL that are not terminated.
ids_by_name() {
	"$aws_cmd" ec2 describe-instances \
	    --filters "Name=tag:Name,Values=$1" "Name=tag:$pool_tag,Values=$2" \
	    "Name=instance-state-name,Values=pending,running,stopping,stopped" \
	    --query 'Reservations[].Instances[].InstanceId' --output text
}

# Instance ids written in base64 resource data $1 (lines "id=i-...").
ids_from_data() {
	[ -n "$1" ] || return 0
	printf '%s' "$1" | base64 -d 2>/dev/null |
	    sed -n 's/^id=\(i-[0-9a-f]\{1,32\}\)$/\1/p'
}
