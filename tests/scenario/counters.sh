#!/bin/bash
# named_counters: every new resource gets the smallest value of the
# counter that no live resource holds, in cmd_new's environment as
# RESALLOC_NAMED_COUNTER_<name>; the values are shared by every pool that
# names the counter, and a value comes back into use once its resource is
# deleted.  A pool without the counter does not see the variable.  Run
# once per store (SQLite, PostgreSQL).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store counters "$@"

# cmd_new: the local driver's, keeping the counter's value in the
# resource's directory and in the data the ticket gets.
cat >"$RB_TMP/new" <<EOF
#!/bin/sh
out=\$("$RB_DRIVERDIR/new") || exit 1
dir=\${out#local:}
echo "\${RESALLOC_NAMED_COUNTER_ip-unset}" >"\$dir/ip"
echo "\$RESALLOC_POOL_ID \$RESALLOC_NAME \${RESALLOC_NAMED_COUNTER_ip-unset}" >>"$RB_TMP/counters"
echo "\$out ip=\${RESALLOC_NAMED_COUNTER_ip-unset}"
EOF
chmod +x "$RB_TMP/new"

rb_pools <<'EOF'
a:
  max: 2
  max_prealloc: 2
  cmd_new: "@STATEDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  named_counters: [ip]
  tags: [a]
b:
  max: 2
  max_prealloc: 2
  cmd_new: "@STATEDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  named_counters: [ip]
  tags: [b]
c:
  max: 1
  max_prealloc: 1
  cmd_new: "@STATEDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [c]
EOF

# "name value" of every live resource of pools a and b, sorted by value.
live_values() {
	local d
	for d in "$RESBUS_LOCAL_ROOT"/a_* "$RESBUS_LOCAL_ROOT"/b_*; do
		[ -f "$d/ip" ] || continue
		echo "${d##*/} $(cat "$d/ip")"
	done | sort -k2,2n
}

# Whether pools a and b have two resources each, all with a value.
settled() {
	[ "$(live_values | grep -c '^a_')" -eq 2 ] &&
	    [ "$(live_values | grep -c '^b_')" -eq 2 ] &&
	    [ "$(rb_local_resources | grep -c '^[ab]_')" -eq 4 ]
}

# The four live resources hold 0, 1, 2 and 3: shared by both pools (each
# pool alone would hold 0 and 1) and always the smallest free values.
check_values() {
	local vals
	vals=$(live_values | awk '{ print $2 }' | tr '\n' ' ')
	rb_assert_eq "0 1 2 3 " "$vals" "$1: counter values of the live resources ($(live_values | tr '\n' ' '))"
}

rb_start_worker
rb_start_broker

rb_wait_for "two resources in each of pools a and b" 60 settled
rb_wait_for "the resource of pool c" 60 compgen -G "$RESBUS_LOCAL_ROOT/c_*/ip"
check_values "after preallocation"
rb_assert_eq unset "$(cat "$RESBUS_LOCAL_ROOT"/c_*/ip)" \
    "RESALLOC_NAMED_COUNTER_ip in a pool without the counter"

# Churn: take a resource of one pool, close its ticket; the replacement
# gets exactly the freed value (all the others are held).
for pool in a b b a a b; do
	t=$(rb_resbus ticket --tag "$pool") || rb_fail "resbus ticket failed ($?)"
	data=$(rb_resbus ticket-wait "$t" --timeout 60) ||
	    rb_fail "ticket-wait $t failed ($?)"
	rb_assert_match "^local:$RESBUS_LOCAL_ROOT/${pool}_[^ ]+ ip=[0-3]$" "$data" \
	    "data of ticket $t"
	name=${data#local:"$RESBUS_LOCAL_ROOT"/}
	name=${name%% *}
	v=${data##*ip=}
	rb_resbus ticket-close "$t" || rb_fail "ticket-close $t failed ($?)"
	rb_wait_for "cmd_delete to remove $name" 60 rb_local_gone "$name"
	rb_wait_for "pools a and b to refill" 60 settled
	check_values "after closing ticket $t of pool $pool"
	new=$(live_values | awk -v v="$v" '$2 == v { print $1 }')
	rb_assert_match "^${pool}_" "$new" \
	    "resource holding the freed value $v of $name"
	rb_log "pool $pool: $name freed ip=$v, $new got it"
done

# resbusd restarts: the values held come back from the store.
rb_stop_broker
rb_start_broker

# Two values freed at once, one in each pool: the two replacements take
# exactly those two values between them.
ta=$(rb_resbus ticket --tag a) || rb_fail "resbus ticket failed ($?)"
tb=$(rb_resbus ticket --tag b) || rb_fail "resbus ticket failed ($?)"
for t in "$ta" "$tb"; do
	rb_resbus ticket-wait "$t" --timeout 60 >/dev/null ||
	    rb_fail "ticket-wait $t failed ($?)"
done
rb_resbus ticket-close "$tb" || rb_fail "ticket-close $tb failed ($?)"
rb_resbus ticket-close "$ta" || rb_fail "ticket-close $ta failed ($?)"
rb_wait_for "pools a and b to refill" 60 settled
rb_hold_for "pools a and b to stay at two resources each" 1 settled
check_values "after closing tickets of both pools"

# cmd_new always saw the variable in pools a and b, never in c.
bad=$(awk '$1 != "c" && $3 == "unset"' "$RB_TMP/counters")
[ -z "$bad" ] || rb_fail "cmd_new without RESALLOC_NAMED_COUNTER_ip: $bad"
bad=$(awk '$1 == "c" && $3 != "unset"' "$RB_TMP/counters")
[ -z "$bad" ] || rb_fail "cmd_new of pool c with RESALLOC_NAMED_COUNTER_ip: $bad"

rb_done
