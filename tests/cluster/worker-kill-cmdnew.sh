#!/bin/bash
# SIGKILL of a resbus-worker in the middle of a cmd_new (each takes 0.5 s)
# while 10 clients run 200 cycles, with two workers (the second in a
# network namespace of its own) and two resbusd on the SQLite store.  The
# unacknowledged Allocate goes back to the pool queue; the other worker
# (or the killed one, started again once RabbitMQ has seen it go) runs it
# again, cmd_delete
# first.  Afterwards every cycle completed and the local driver's
# resources are exactly those `resbus-maint resource-list` lists: nothing
# the killed worker's command made is left behind or counted twice.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/cluster/lib.sh
. "$RESBUS_SRCDIR/tests/cluster/lib.sh"

RC_MULTI_URL=0
rc_setup worker-kill-cmdnew
rb_pools <<'YAML'
cl:
  max: 10
  max_prealloc: 5
  max_starting: 5
  cmd_new: "RESBUS_LOCAL_DELAY=0.5 @DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [cl]
YAML

# Whether worker W runs a cmd_new now (a descendant running local/new).
# shellcheck disable=SC2317 # called through rb_wait_for
in_cmd_new() {
	local pid=${RC_WORKER[$1]}
	ps -eo ppid=,pid=,args= | awk -v root="$pid" '
	    { parent[$2] = $1; line[$2] = $0 }
	    END { for (p in parent) { q = p
		while (q in parent && q != root && q > 1) q = parent[q]
		if (q == root && line[p] ~ /drivers\/local\/new/) { found = 1 } }
		exit !found }'
}

rc_start_worker 1
rc_start_worker 2
rc_start_pair
rb_wait_for "five preallocated resources" 60 rb_local_count_is 5

rc_clients 10 20 cl
rc_wait_cycles 60
RB_WAIT_INTERVAL=0.05 rb_wait_for "worker 1 to run a cmd_new" 60 in_cmd_new 1
rc_kill_worker 1
one_consumer() {
	[ "$(rb_consumers resbus.pool.cl)" = 1 ]
}
RB_WAIT_INTERVAL=1 rb_wait_for "RabbitMQ to drop worker 1's consumer of resbus.pool.cl" \
    30 one_consumer
rc_start_worker 1

rc_wait_clients 240
rc_check
rc_stop_all
rb_done
