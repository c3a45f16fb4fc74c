#!/bin/bash
# Zero-padded numeric requirements (memory>=000...0001) are valid tags,
# and a few of them once made a tag-set key over 255 bytes: the queue
# declare failed, resbusd lost its connection and exited, and the tag
# set's row, already committed, did the same at every start.  Now a
# numeric requirement has one canonical form (memory>=0001 is memory>=1),
# so such a request is served like its canonical twin through one short
# queue, and a key that is long even in canonical form is refused with an
# Error.  resbusd keeps running, restarts, and serves the same request
# sent again while it was down.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/hostile/lib.sh
. "$RESBUS_SRCDIR/tests/hostile/lib.sh"

rbh_setup tagkey
rb_pools <<'EOF2'
num:
  max: 3
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  cmd_list: "@DRIVERDIR@/list"
  tags: [demo, memory=32, disk=100, cpus=8, gpus=1, net=10]
EOF2
rbh_start
rb_wait_for "one preallocated resource" 60 rb_local_count_is 1

# Five requirements of 64 bytes each (the longest tag), all meaning >= 1.
pad() { # NAME: NAME>=0...01, 64 bytes
	local z
	z=$(printf '%0*d' $((64 - ${#1} - 3)) 0)
	echo "$1>=${z}1"
}
tags="'demo'"
for t in memory disk cpus gpus net; do
	tags+=", '$(pad "$t")'"
done
rb_log "tags: $tags"

# (a) as a raw client: accepted, served through a short queue.
take() {
	rbh_amqp mallory publish TicketRequest "{'tags': [$tags]}" \
	    --exchange resbus.ticket --key "$1" --wait 20 --print ticket_id
}
canon='cpus>=1+demo+disk>=1+gpus>=1+memory>=1+net>=1'
id=$(take "$canon") || rb_fail "no answer to the zero-padded request ($?)"
rb_assert_match '^[0-9]+$' "$id" "the ticket of the zero-padded request"
data=$(rbh_resbus mallory ticket-wait "$id" --timeout 60) ||
    rb_fail "ticket-wait $id failed ($?)"
rb_assert_match '^local:.*/num_' "$data" "the zero-padded ticket's resource"
rbh_resbus mallory ticket-close "$id" || rb_fail "ticket-close $id failed"
queues=$(rb_queues)
rb_assert_no_match '000' "$queues" "queue names"
rb_assert_match '^resbus\.ticket\..*memory>=1' "$queues" "the canonical queue"
long=$(awk 'length($0) > 255' <<<"$queues")
rb_assert_eq "" "$long" "queue names over 255 bytes"

# Under another routing key (two of the tags as sent): refused.
raw="demo+$(pad memory)"
out=$(rbh_amqp mallory publish TicketRequest "{'tags': [$tags]}" \
    --exchange resbus.ticket --key "$raw" --wait 20) ||
    rb_fail "no answer to the request under its raw key ($?)"
rbh_error_reply 'canonical' "$out" "the zero-padded request under its raw key"

# (b) the same through the CLI, with a padded tag among others.
rbh_cycle alice --tag demo --tag "$(pad memory)" --tag 'disk>=0100'

# (c) a key long even in canonical form: refused with an Error.
long_tags=$(python3 -c "print(', '.join(repr('t%02d' % j + 'x' * 40) for j in range(8)))")
out=$(rbh_amqp mallory publish TicketRequest "{'tags': [$long_tags]}" \
    --exchange resbus.ticket --key t00 --wait 20) ||
    rb_fail "no answer to the request with a long key ($?)"
rbh_error_reply 'tag' "$out" "a request whose tag-set key is over 200 bytes"
rb_assert_no_match 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' "$(rb_queues)" \
    "queues after the long key"

rbh_after_attack alice --tag demo

# (d) restarted, with the zero-padded request waiting for it.
rb_stop_broker
rbh_amqp mallory publish TicketRequest "{'tags': [$tags]}" \
    --exchange resbus.ticket --key "$canon" --reply-to nobody ||
    rb_fail "cannot publish while resbusd is down"
rbh_start_broker
RBH_BROKER_STARTS=2
waiting_request_taken() {
	rbh_maint admin ticket-list | grep -q 'memory>=1'
}
rb_wait_for "resbusd to take the request sent while it was down" 30 \
    waiting_request_taken
rbh_after_attack alice --tag demo
rb_assert_no_match '000' "$(rb_queues)" "queue names after the restart"
rb_done
