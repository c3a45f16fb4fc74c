#!/bin/bash
# resalloc's server.yaml has no admins, and whoever can read the server's
# configuration administers it.  Without `admins`, the login of the
# broker's own amqp_url is the admin: resbus-maint with the broker's
# configuration (resource-delete, pool-pause, ticket-close) works, while
# another RabbitMQ user is refused.  An explicit list replaces that
# default: with `admins: [that other user]`, the broker's login is refused
# and the other user may.  Run once per store (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store admins-default "$@"

OTHER="resbus-test-other-$$-$RANDOM"
rb_add_user "$OTHER" secret
OTHER_URL="amqp://$OTHER:secret@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
maint() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" "$@"
}
other_maint() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" \
	    --amqp-url "$OTHER_URL" "$@"
}
rb_pools <<'EOF'
ad:
  max: 2
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [ad]
EOF
refused() { # USER-LABEL CMD...: run by that user, refused as not an admin
	local who=$1 user=$2 err
	shift 2
	err=$("$who" "$@" 2>&1)
	rb_assert_eq 1 "$?" "exit status of '$*' by $user"
	rb_assert_match "user \"$user\" is not one of the admins in server.yaml" \
	    "$err" "refusal of '$*' by $user"
}

grep -q '^admins' "$RB_CONF/server.yaml" && rb_fail "server.yaml has admins"
rb_start_worker
rb_start_broker
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1

# The broker's own login (guest) administers.
t=$(rb_resbus ticket --tag ad) || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$t" --timeout 60 >/dev/null || rb_fail "ticket-wait $t failed"
id=$(maint resource-list | sed -n "s/^\([0-9]*\) - .* ticket=$t\$/\1/p")
rb_assert_match '^[0-9]+$' "$id" "the resource of ticket $t"
refused other_maint "$OTHER" resource-delete "$id"
refused other_maint "$OTHER" pool-pause ad
maint resource-delete "$id" || rb_fail "resource-delete $id by the broker's login failed ($?)"
rb_wait_for "ticket $t to fail" 30 sh -c \
    "'$RB_RESBUS' ticket-check $t 2>&1 | grep -q 'assigned resource failed'"
maint pool-pause ad || rb_fail "pool-pause by the broker's login failed ($?)"
maint pool-resume ad || rb_fail "pool-resume by the broker's login failed ($?)"
maint ticket-close "$t" || rb_fail "ticket-close by the broker's login failed ($?)"

# An explicit list replaces the default.
rb_stop_broker
RB_SERVER_EXTRA="admins: [\"$OTHER\"]"
rb_server_yaml
rb_start_broker
refused maint guest pool-pause ad
other_maint pool-pause ad || rb_fail "pool-pause by $OTHER, an admin now, failed ($?)"
other_maint pool-resume ad || rb_fail "pool-resume by $OTHER failed ($?)"

rb_done
