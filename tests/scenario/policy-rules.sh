#!/bin/bash
# server.yaml `tag_rules` as users see them: a ticket whose labels
# (owner/project/chroot/package) match a rule gets the rule's tag and is
# served by the pool that has it; a ticket whose labels do not match is
# served by the normal pool; a rule's {owner} falls back to the AMQP user
# when the ticket has no owner label, and the label wins when it has
# one; a rule without a subject uses the default one.  ticket-list shows
# the tags after the rules.  Run once per store (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/policy/lib.sh
. "$RESBUS_SRCDIR/tests/policy/lib.sh"

pol_begin policy-rules "$@"

pol_server_yaml 'tag_rules:
  - {subject: "{owner}/{project}/{chroot}/{package}", match: ".*/chromium$", add: [powerful]}
  - {subject: "{owner}", match: "^ptvip", add: [powerful, bigdisk]}
  - {match: "^[^/]*/[^/]*/[^/]*/kernel$", add: [powerful]}'

# x86 alone prefers the normal pool; only strong has powerful.
rb_pools <<'EOF'
normal:
  max: 2
  max_prealloc: 2
  max_starting: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags:
    - name: x86
      priority: 10
strong:
  max: 2
  max_prealloc: 2
  max_starting: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [x86, powerful, bigdisk]
EOF

pol_user plain
pol_user vip

rb_start_worker
rb_start_broker

free_in() {
	[ "$(pol_maint resource-list --up | grep -c "pool=$1 .*ticket=NULL")" -ge "$2" ]
}
both_free() {
	free_in normal 2 && free_in strong 2
}

# check WHO POOL TAGS ARGS...: a ticket of WHO with ARGS is served by
# POOL, and ticket-list shows TAGS for it.
check() {
	local who=$1 pool=$2 tags=$3 id
	shift 3
	rb_wait_for "free resources in both pools" 60 both_free
	id=$(pol_take "$who" --tag x86 "$@")
	rb_resbus ticket-wait "$id" --timeout 30 >/dev/null ||
	    rb_fail "ticket $id ($*) was not served ($?)"
	rb_assert_match "^$id - state=READY tags=$tags resource=${pool}_" \
	    "$(pol_line "$id")" "ticket-list line of the ticket of $who with $*"
	rb_assert_eq "$pool" "$(pol_pool "$id")" "pool of the ticket of $who with $*"
	rb_resbus ticket-close "$id" >/dev/null || rb_fail "ticket-close $id failed"
}

copr="--label owner=praiskup --label project=chrome --label chroot=fedora-rawhide-x86_64"
# shellcheck disable=SC2086 # split on purpose
{
	check plain strong powerful,x86 $copr --label package=chromium
	check plain normal x86 $copr --label package=firefox
	check plain normal x86 $copr --label package=notchromium
	check plain normal x86
	check plain strong powerful,x86 $copr --label package=kernel
	# {owner} is the AMQP user without an owner label ...
	check vip strong bigdisk,powerful,x86 --label package=firefox
	# ... and the label when there is one.
	check vip normal x86 --label owner=someone --label package=firefox
	check plain strong bigdisk,powerful,x86 --label owner=ptvip-by-label
}

rb_assert_eq 0 "$(pol_log_count ' -> FAILED')" "tickets that failed"
rb_done
