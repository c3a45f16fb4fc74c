#!/bin/bash
# A pool whose cmd_new fails at once, while a ticket waits for it: the
# pool waits 1 s after the first failure, then 2, 4, 8 (doubling up to a
# minute) -- not a tight loop of starts against a cloud's API -- and says
# so in the ticket's waiting reason; the start that finally succeeds
# serves the ticket.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup start-backoff
STARTS=$RB_TMP/starts
# The first four starts fail, the fifth runs the local driver.  The pool
# preallocates one resource: max 1, so no replacement follows.
cat >"$RB_TMP/flaky-new" <<SH
#!/bin/sh
date +%s.%N >>"$STARTS"
[ "\$(wc -l <"$STARTS")" -gt 4 ] && exec "$RB_DRIVERDIR/new"
echo "no capacity left" >&2
exit 1
SH
chmod +x "$RB_TMP/flaky-new"
rb_pools <<YAML
flaky:
  max: 1
  max_prealloc: 1
  cmd_new: "$RB_TMP/flaky-new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [flaky]
YAML

rb_start_worker
rb_start_broker
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint

id=$(rb_resbus ticket --tag flaky) || rb_fail "resbus ticket failed ($?)"
starts() {
	if [ -f "$STARTS" ]; then wc -l <"$STARTS"; else echo 0; fi
}
# shellcheck disable=SC2317 # called through rb_wait_for
reason_says_waits() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" ticket-list \
	    --json 2>/dev/null |
	    grep -q "pool flaky waits after [0-9] failed starts"
}
# shellcheck disable=SC2317 # called through rb_wait_for
two_starts() { [ "$(starts)" -ge 2 ]; }
rb_wait_for "two failed starts" 30 two_starts
rb_wait_for "the waiting reason to name the wait after failed starts" 20 \
    reason_says_waits
rb_resbus ticket-wait "$id" --timeout 60 >/dev/null ||
    rb_fail "ticket $id was not served after the failures ($?)"
rb_assert_eq 5 "$(starts)" "starts: four failures and the success"

# The gaps between starts: at least 1, 2, 4 and 8 s (the wait after each
# failure), and not much more (a timer, not a poll).
gaps=$(awk 'NR > 1 { printf "%.2f ", $1 - prev } { prev = $1 }' "$STARTS")
rb_log "seconds between starts: $gaps"
read -r -a g <<<"$gaps"
want=(1 2 4 8)
for i in 0 1 2 3; do
	awk -v got="${g[$i]}" -v w="${want[$i]}" \
	    'BEGIN { exit !(got >= w - 0.05 && got < w + 3) }' ||
	    rb_fail "gap $((i + 1)) between starts is ${g[$i]} s, expected about ${want[$i]} s"
done
rb_resbus ticket-close "$id" || rb_fail "resbus ticket-close $id failed ($?)"
rb_done
