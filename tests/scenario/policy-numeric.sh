#!/bin/bash
# Numeric tags: preallocated pools tagged memory=16, memory=64 and
# memory=128, and on-demand ones tagged ram=16, ram=64 and ram=128.
# Among equal tag priorities the smallest pool that fits wins: a ticket
# asking `memory>=32` gets the 64 one, `memory>=100` the 128 one,
# `memory<=20` the 16 one, `memory>16` the 64 one, and with 64 taken
# `memory>=32` the 128 one; `ram>=32` starts one resource, in the ram=64
# pool.  With --refuse-unprovidable, `memory>=512` (no pool provides it)
# is refused with a clear message and exit status 1, and so is a ticket
# that combines tags no single pool has.  Run once per store (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/policy/lib.sh
. "$RESBUS_SRCDIR/tests/policy/lib.sh"

pol_begin policy-numeric "$@"
pol_server_yaml ''

# Listed largest first, so neither file order nor resource IDs (the
# largest pool's resource is started first) make the right answers.
rb_pools <<'EOF'
mbig:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [x86, memory=128]
mmid:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [x86, memory=64]
msmall:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [x86, memory=16, arm]
obig:
  max: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand: [ram=128]
omid:
  max: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand: [ram=64]
osmall:
  max: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand: [ram=16]
EOF

rb_start_worker
rb_start_broker

# Wrong pool choices are collected and reported together at the end, so
# one wrong answer does not hide the others.
wrong=()
choice_is() {
	# EXPECTED ACTUAL WHAT
	if [ "$1" != "$2" ]; then
		rb_log "WRONG: $3: expected '$1', got '$2'"
		wrong+=("$3: expected '$1', got '$2'")
	fi
}

# (a) refused ARGS...: a ticket that no pool can serve is refused, when
# it asks for that: exit 1, the message, nothing listed.
refused() {
	local msg=$1 err rc
	shift
	err=$(rb_resbus ticket --refuse-unprovidable "$@" 2>&1 >/dev/null)
	rc=$?
	rb_assert_eq 1 "$rc" "exit status of resbus ticket $*"
	rb_assert_match "$msg" "$err" "error of resbus ticket $*"
}
refused 'no pool provides tag memory>=512' --tag 'memory>=512'
refused 'no pool provides tag memory<8' --tag x86 --tag 'memory<8'
refused 'no pool provides tag gpu' --tag x86 --tag gpu
refused 'no single pool provides all of the tags' --tag arm --tag 'memory>=32'
rb_assert_eq "" "$(pol_maint ticket-list)" "tickets after the refusals"

# (b) on-demand pools: the start is made in the smallest pool that fits.
starts() {
	pol_log_count ': starting in pool o'
}
# od_pool_for TAG: the pool whose start serves a ticket with TAG.
od_pool_for() {
	local before id
	before=$(starts)
	id=$(rb_resbus ticket --tag "$1") || rb_fail "resbus ticket $1 failed ($?)"
	if ! rb_resbus ticket-wait "$id" --timeout 8 >/dev/null; then
		echo "none (not served in 8 s; waiting=\"$(pol_waiting "$id")\")"
		rb_resbus ticket-close "$id" >/dev/null || rb_fail "ticket-close $id failed"
		return
	fi
	rb_assert_eq $((before + 1)) "$(starts)" "on-demand starts for $1"
	pol_pool "$id"
	rb_resbus ticket-close "$id" >/dev/null || rb_fail "ticket-close $id failed"
}
choice_is omid "$(od_pool_for 'ram>=32')" "on-demand pool for ram>=32"
choice_is obig "$(od_pool_for 'ram>=100')" "on-demand pool for ram>=100"
choice_is osmall "$(od_pool_for 'ram<64')" "on-demand pool for ram<64"

# (c) preallocated pools: of the free resources, the smallest that fits.
all_free() {
	[ "$(pol_maint resource-list --up | grep -c 'pool=m.*ticket=NULL')" -eq 3 ]
}

# pool_for TAG...: the pool a ticket with TAGs is served by (closed
# right after), with every pool's resource free first.
pool_for() {
	local args=() tag id
	for tag in "$@"; do
		args+=(--tag "$tag")
	done
	rb_wait_for "a free resource in every pool" 60 all_free
	id=$(rb_resbus ticket "${args[@]}") || rb_fail "resbus ticket $* failed ($?)"
	rb_resbus ticket-wait "$id" --timeout 30 >/dev/null ||
	    rb_fail "ticket $id ($*) was not served ($?)"
	pol_pool "$id"
	rb_resbus ticket-close "$id" >/dev/null || rb_fail "ticket-close $id failed"
}

choice_is mmid "$(pool_for 'memory>=32')" "pool for memory>=32"
choice_is mbig "$(pool_for 'memory>=100')" "pool for memory>=100"
choice_is msmall "$(pool_for 'memory<=20')" "pool for memory<=20"
choice_is mmid "$(pool_for 'memory>16')" "pool for memory>16"
choice_is mbig "$(pool_for 'memory>64')" "pool for memory>64"
choice_is msmall "$(pool_for 'memory<64')" "pool for memory<64"
choice_is mmid "$(pool_for x86 'memory>=64' 'memory<=64')" "pool for memory=64 by a range"
choice_is msmall "$(pool_for x86 'memory>=1')" "pool for memory>=1"

# With mmid taken, memory>=32 is served by the next that fits.
rb_wait_for "a free resource in every pool" 60 all_free
t1=$(rb_resbus ticket --tag 'memory>=32') || rb_fail "resbus ticket failed"
rb_resbus ticket-wait "$t1" --timeout 30 >/dev/null || rb_fail "ticket $t1 not served"
choice_is mmid "$(pol_pool "$t1")" "pool of the first memory>=32 ticket"
t2=$(rb_resbus ticket --tag 'memory>=32') || rb_fail "resbus ticket failed"
rb_resbus ticket-wait "$t2" --timeout 30 >/dev/null || rb_fail "ticket $t2 not served"
choice_is mbig "$(pol_pool "$t2")" "pool of the second memory>=32 ticket"
rb_resbus ticket-close "$t1" >/dev/null || rb_fail "ticket-close $t1 failed"
rb_resbus ticket-close "$t2" >/dev/null || rb_fail "ticket-close $t2 failed"

if [ ${#wrong[@]} -gt 0 ]; then
	rb_fail "${#wrong[@]} wrong pool choice(s): $(printf '%s; ' "${wrong[@]}")"
fi
rb_done
