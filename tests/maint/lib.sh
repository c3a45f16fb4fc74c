# shellcheck shell=bash
#
# What the resbus-maint tests (tests/scenario/maint*.sh) share: resbus-maint
# as the admin, and the checks they wait on.  Sourced after tests/lib.sh,
# once RB_CONF is set.

maint() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" "$@"
}

# Lines of resource-list [ARGS] that match REGEX.
count_resources() {
	local re=$1
	shift
	maint resource-list "$@" | grep -cE -- "$re"
}

# Whether the command after N prints N.
count_is() {
	local n=$1
	shift
	[ "$("$@")" -eq "$n" ]
}

# Whether ticket $1 is in state $2 in ticket-list.
ticket_state_is() {
	maint ticket-list | grep -q "^$1 - state=$2 "
}
