#!/bin/bash
# server.yaml `classes` as users see them: with every resource taken, a
# high-class ticket queued after a low-class one gets the next resource;
# default_class applies to a ticket without --class; a class's cap on a
# pool holds at every instant (replayed from resbusd's log while tickets
# of the class come and go) and a ticket only the capped pool can serve
# waits with the reason; a class with on_demand: false never starts an
# on-demand resource; an unknown class is refused.  Run once per store
# (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/policy/lib.sh
. "$RESBUS_SRCDIR/tests/policy/lib.sh"

pol_begin policy-classes "$@"

pol_server_yaml 'classes:
  low: {priority: 0}
  high: {priority: 10}
  auto: {priority: 5, caps: {pa: 2}}
  nod: {priority: 0, on_demand: false}
default_class: high'

rb_pools <<'EOF'
pp:
  max: 2
  max_prealloc: 2
  max_starting: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [pt]
pa:
  max: 4
  max_prealloc: 4
  max_starting: 4
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags:
    - name: ct
      priority: 10
    - capt
pb:
  max: 4
  max_prealloc: 4
  max_starting: 4
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [ct]
od:
  max: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags_on_demand: [odt]
EOF

classes=$RB_TMP/classes
: >"$classes"
# take CLASS ARGS...: a ticket of CLASS ("-": no --class), recorded.
take() {
	local cls=$1 id
	shift
	if [ "$cls" = - ]; then
		id=$(rb_resbus ticket "$@") || rb_fail "resbus ticket $* failed ($?)"
		echo "$id high" >>"$classes"
	else
		id=$(rb_resbus ticket --class "$cls" "$@") ||
		    rb_fail "resbus ticket --class $cls $* failed ($?)"
		echo "$id $cls" >>"$classes"
	fi
	echo "$id"
}
serve() {
	rb_resbus ticket-wait "$1" --timeout 30 >/dev/null ||
	    rb_fail "ticket $1 was not served within 30 s ($?)"
}
close() {
	rb_resbus ticket-close "$1" >/dev/null || rb_fail "ticket-close $1 failed ($?)"
}
free_in() {
	[ "$(pol_maint resource-list --up | grep -c "pool=$1 .*ticket=NULL")" -ge "$2" ]
}

rb_start_worker
rb_start_broker
rb_wait_for "2 free resources in pool pp" 60 free_in pp 2

# (a) unknown class: refused at once, with the reason, exit 1.
err=$(rb_resbus ticket --tag pt --class nosuch 2>&1 >/dev/null)
rb_assert_eq 1 "$?" "exit status of a ticket of an unknown class"
rb_assert_match 'no ticket class "nosuch"' "$err" "error of an unknown class"
rb_assert_eq "" "$(pol_maint ticket-list)" "tickets after the refusal"

# Whether ticket ID waits with a reason: the scheduler has queued it.
has_waiting_reason() {
	[ -n "$(pol_waiting "$1")" ]
}

# (b) priority: both resources of pp taken; a low ticket, then a high
# one; one resource comes free: the high ticket gets it.
h1=$(take low --tag pt)
h2=$(take low --tag pt)
serve "$h1"
serve "$h2"
tl=$(take low --tag pt)
rb_wait_for "ticket $tl to wait for a resource" 10 has_waiting_reason "$tl"
th=$(take high --tag pt)
pol_stays_open 2 "$tl" "$th"
close "$h1"
serve "$th"
rb_assert_eq OPEN "$(pol_state "$tl")" "the low ticket once the high one is served"
close "$h2"
serve "$tl"

# (c) default_class (high) for a ticket without --class: queued after a
# low one, it is served first.
tl2=$(take low --tag pt)
rb_wait_for "ticket $tl2 to wait for a resource" 10 has_waiting_reason "$tl2"
td=$(take - --tag pt)
pol_stays_open 2 "$tl2" "$td"
close "$th"
serve "$td"
rb_assert_eq OPEN "$(pol_state "$tl2")" "the low ticket once the default-class one is served"
close "$tl"
serve "$tl2"
close "$td"
close "$tl2"

# (d) the cap: auto holds at most 2 of pa.  Four auto tickets: two in pa
# (the better pool), two in pb.
rb_wait_for "4 free resources in pools pa and pb" 60 \
    eval 'free_in pa 4 && free_in pb 4'
auto=()
for i in 1 2 3 4; do
	auto+=("$(take auto --tag ct)")
done
pools=
for t in "${auto[@]}"; do
	serve "$t"
	pools+="$(pol_pool "$t") "
done
rb_assert_eq "pa pa pb pb " "$(tr ' ' '\n' <<<"$pools" | sort | grep . | tr '\n' ' ')" \
    "pools of four auto tickets"
# Another class is not capped: two low tickets get pa's two free ones.
l1=$(take low --tag ct)
l2=$(take low --tag ct)
serve "$l1"
serve "$l2"
rb_assert_eq "pa pa" "$(pol_pool "$l1") $(pol_pool "$l2")" "pools of the low tickets"
close "$l1"
close "$l2"
# A tag only pa provides: auto holds 2 of pa already, so it waits with
# the reason while pa has free resources.
rb_wait_for "free resources in pool pa" 60 free_in pa 2
tc=$(take auto --tag capt)
reason_is() {
	[ "$(pol_waiting "$1")" = "$2" ]
}
rb_wait_for "ticket $tc to wait for the cap" 20 \
    reason_is "$tc" "class auto at its cap in every pool that provides capt"
pol_stays_open 2 "$tc"
close "${auto[0]}"
serve "$tc"
rb_assert_eq pa "$(pol_pool "$tc")" "pool of the capt ticket"
close "$tc"
for t in "${auto[@]:1}"; do
	close "$t"
done

# Tickets of auto come and go from three clients at once (and low ones
# beside them); the replay checks the cap after every step.
churn() {
	local cls=$1 n=$2 i id
	for ((i = 0; i < n; i++)); do
		id=$(rb_resbus ticket --class "$cls" --tag ct) || exit 1
		echo "$id $cls" >>"$classes"
		rb_resbus ticket-wait "$id" --timeout 60 >/dev/null || exit 1
		sleep "0.$((RANDOM % 5))"
		rb_resbus ticket-close "$id" >/dev/null || exit 1
	done
}
pids=()
for c in auto auto auto auto low; do
	churn "$c" 8 &
	pids+=("$!")
	rb_track "$!"
done
for p in "${pids[@]}"; do
	wait "$p" || rb_fail "a client of the churn failed"
done
out=$(python3 "$RESBUS_SRCDIR/tests/policy/replay.py" "$RB_TMP/resbusd.out" \
    --classes "$classes" --cap auto:pa=2) || rb_fail "cap exceeded: $out"
rb_log "$out"
rb_assert_match 'auto@pa=2( |;)' "$out" "the peak of auto in pa (the cap reached)"
rb_assert_match 'auto@pb=[2-4]' "$out" "the peak of auto in pb"

# (e) on_demand: false: a nod ticket starts nothing, however long it
# waits; a low ticket of the same tag starts a resource.
od_starts() {
	pol_log_count ': starting in pool od '
}
tn=$(take nod --tag odt)
pol_stays_open 5 "$tn"
rb_assert_eq 0 "$(od_starts)" "on-demand starts for a class without on_demand"
rb_log "the nod ticket waits: $(pol_waiting "$tn")"
to=$(take low --tag odt)
serve "$to"
n=$(od_starts)
# (Equal priorities, so the older nod ticket may take the first resource
# that comes up; the low ticket then starts another.)
{ [ "$n" -ge 1 ] && [ "$n" -le 2 ]; } ||
    rb_fail "$n on-demand starts for one low and one nod ticket (expected 1 or 2)"
rb_log "$n on-demand start(s); the nod ticket is $(pol_state "$tn")"
if [ "$(pol_state "$tn")" = OPEN ]; then
	pol_stays_open 3 "$tn"
	rb_assert_eq "$n" "$(od_starts)" "on-demand starts while the nod ticket waits"
fi
close "$tn"
close "$to"

rb_done
