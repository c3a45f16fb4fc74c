# Helpers of the policy scenario tests (tests/scenario/policy-*.sh),
# sourced after tests/lib.sh (bash).
#
# A policy test starts with
#
#   . "$RESBUS_SRCDIR/tests/lib.sh"
#   . "$RESBUS_SRCDIR/tests/policy/lib.sh"
#   pol_begin NAME "$@"
#
# which, without an argument, runs the test once per store (SQLite,
# PostgreSQL) and exits with the outcome; with the store as argument it
# sets the test up on that store.  Owners are RabbitMQ users
# (pol_user), and `pol_as OWNER ARGS...` runs `resbus ARGS...` logged in
# as that owner: resbusd takes a ticket's owner from the AMQP user_id.
# shellcheck shell=bash

declare -A POL_URL=()
declare -A POL_LOGIN=()

# pol_begin NAME [STORE]: the per-store driver, then rb_setup NAME-STORE.
pol_begin() {
	local name=$1 store rc=0
	shift
	if [ $# -eq 0 ]; then
		for store in sqlite postgresql; do
			bash "$0" "$store" || {
				echo "FAIL: $name failed on the $store store" >&2
				rc=1
			}
		done
		exit "$rc"
	fi
	rb_setup "$name-$1"
	case $1 in
	sqlite) ;;
	postgresql) rb_use_postgres ;;
	*) rb_fail "unknown store '$1'" ;;
	esac
	RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
	[ -x "$RB_MAINT" ] || rb_fail "$RB_MAINT is missing: build it first"
}

# pol_server_yaml TEXT: server.yaml with the test's basics and TEXT (the
# policy keys); the status page is off unless TEXT sets http_listen.
pol_server_yaml() {
	RB_SERVER_EXTRA=$1
	case $1 in
	*http_listen:*) ;;
	*) RB_SERVER_EXTRA+=$'\nhttp_listen: "off"' ;;
	esac
	rb_server_yaml
}

# pol_user NAME: a RabbitMQ user for owner NAME, with a login unique to
# this run (users are node-wide); its login in POL_LOGIN[NAME].
pol_user() {
	local login="pt$1$$"
	rb_add_user "$login" "pw-$1"
	# shellcheck disable=SC2034 # read by the tests
	POL_LOGIN[$1]=$login
	POL_URL[$1]="amqp://$login:pw-$1@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"
}

# pol_as OWNER ARGS...: resbus ARGS... as OWNER.
pol_as() {
	local who=$1
	shift
	[ -n "${POL_URL[$who]:-}" ] || rb_fail "pol_as: no user $who"
	rb_resbus --amqp-url "${POL_URL[$who]}" "$@"
}

# pol_take OWNER ARGS...: a ticket as OWNER (ARGS: --tag... and so on);
# prints its id, fails the test if it is refused.
pol_take() {
	local who=$1 id
	shift
	id=$(pol_as "$who" ticket "$@") ||
	    rb_fail "resbus ticket $* as $who failed ($?)"
	printf '%s\n' "$id"
}

pol_maint() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" "$@"
}

# The ticket-list line of ticket ID (empty once it is closed).
pol_line() {
	pol_maint ticket-list | grep "^$1 - "
}

# The state of ticket ID as ticket-list shows it; CLOSED when not listed.
pol_state() {
	local line
	line=$(pol_maint ticket-list) || rb_fail "resbus-maint ticket-list failed"
	line=$(grep "^$1 - " <<<"$line")
	if [ -z "$line" ]; then
		echo CLOSED
		return
	fi
	line=${line#*state=}
	echo "${line%% *}"
}

pol_state_is() {
	[ "$(pol_state "$1")" = "$2" ]
}

# The waiting reason of ticket ID in ticket-list (without the quotes).
pol_waiting() {
	pol_line "$1" | sed -n 's/.* waiting="\(.*\)"$/\1/p'
}

# Whether ticket ID is served: ticket-check succeeds.
pol_served() {
	rb_resbus ticket-check "$1" >/dev/null 2>&1
}

# Whether ticket ID is closed: ticket-check says so.
pol_closed() {
	local err
	err=$(rb_resbus ticket-check "$1" 2>&1 >/dev/null) && return 1
	grep -q 'already closed ticket' <<<"$err"
}

# The data of served ticket ID.
pol_data() {
	rb_resbus ticket-check "$1" || rb_fail "ticket-check $1 failed ($?)"
}

# pol_pool_of DATA: the pool of a local resource from its data
# (local:ROOT/POOL_ID_DATETIME): POOL.
pol_pool_of() {
	local n=${1#local:"$RESBUS_LOCAL_ROOT"/}
	echo "${n%%_*}"
}

# The pool of served ticket ID's resource.
pol_pool() {
	pol_pool_of "$(pol_data "$1")"
}

# pol_stays_open SECONDS ID...: fails the test if any ticket ID gets a
# resource or closes within SECONDS.
pol_stays_open() {
	local secs=$1
	shift
	RB_WAIT_INTERVAL=0.5 rb_hold_for "tickets $* should still wait" \
	    "$secs" pol_all_open "$@"
}

# Whether every ticket ID is OPEN; says which one is not.
pol_all_open() {
	local id st
	for id in "$@"; do
		st=$(pol_state "$id")
		if [ "$st" != OPEN ]; then
			echo "ticket $id should still wait, but it is $st"
			return 1
		fi
	done
}

# Resbusd log lines matching the extended regex $1, counted.
pol_log_count() {
	grep -cE -- "$1" "$RB_TMP/resbusd.out"
}
