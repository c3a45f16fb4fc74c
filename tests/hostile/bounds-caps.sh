#!/bin/bash
# Caps on what one user can make resbusd hold.  One user once held 100k
# open tickets, and every distinct tag set stayed forever.  Now
# max_open_tickets_per_owner (3 here) refuses mallory's fourth open
# ticket with a clear Error while alice still gets hers, and max_tagsets
# (5 here) refuses a sixth distinct tag set while the known ones still
# serve.  Refusals make no tag set.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup bounds-caps
rb_pools <<'EOF2'
demo:
  max: 2
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [demo, a, b, c, d, e, f]
EOF2
rbh_server_yaml "max_open_tickets_per_owner: 3
max_tagsets: 5"
rbh_start
rb_wait_for "the preallocated resource" 60 rb_local_count_is 1

req() { # USER TAG: the answer to a TicketRequest for TAG
	rbh_amqp "$1" publish TicketRequest "{'tags': ['$2']}" \
	    --exchange resbus.ticket --key "$2" --wait 20 ||
	    rb_fail "no answer to $1's request for $2 ($?)"
}
id_of() {
	sed -n 's/^ticket_id=//p' <<<"$1"
}

# (a) open tickets per owner.  Tag set demo (1 of 5).
m=()
for i in 1 2 3; do
	out=$(req mallory demo)
	id=$(id_of "$out")
	rb_assert_match '^[0-9]+$' "$id" "mallory's ticket $i: $out"
	m+=("$id")
done
out=$(req mallory demo)
rbh_error_reply 'open tickets.*3|3.*open tickets' "$out" "mallory's fourth ticket"
rb_log "mallory's fourth ticket: $(grep ^message= <<<"$out")"
a=$(rbh_take alice --tag demo)
rbh_resbus mallory ticket-close "${m[0]}" || rb_fail "ticket-close ${m[0]} failed"
out=$(req mallory demo)
m[0]=$(id_of "$out")
rb_assert_match '^[0-9]+$' "${m[0]}" "mallory's ticket after a close: $out"
for id in "${m[@]}" "$a"; do
	owner=mallory
	[ "$id" = "$a" ] && owner=alice
	rbh_resbus "$owner" ticket-close "$id" || rb_fail "ticket-close $id failed"
done

# (b) distinct tag sets: demo, a, b and c make four.
for t in a b c; do
	rbh_cycle bob --tag "$t"
done
# Refusals for tags nobody provides (asked for: such tickets wait by
# default) make none: d is still the fifth.
for t in nosuch1 nosuch2 nosuch3; do
	out=$(rbh_amqp bob publish TicketRequest \
	    "{'tags': ['$t'], 'refuse_unprovidable': True}" \
	    --exchange resbus.ticket --key "$t" --wait 20) ||
	    rb_fail "no answer to bob's request for $t ($?)"
	rbh_error_reply "no pool provides tag $t" "$out" "a request for $t"
done
rbh_cycle bob --tag d
out=$(req bob e)
rbh_error_reply 'tag sets.*5|5.*tag sets' "$out" "a sixth tag set"
rb_log "a sixth tag set: $(grep ^message= <<<"$out")"
rb_assert_no_match '^resbus\.ticket\.e$' "$(rb_queues)" "queues"
rbh_cycle bob --tag a

rbh_after_attack alice --tag demo
rb_done
