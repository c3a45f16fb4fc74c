#!/bin/bash
# A mixed load under the whole policy: three classes (explicit, the
# default, over auto over scratch), caps of auto and scratch on the
# pools, per-owner and total limits on `powerful` and a per-owner limit
# on everything, two pools.  Five owners (RabbitMQ users) run four
# clients each; a client takes a ticket of a random class and tag (some
# scratch ones with a deadline), holds it briefly and closes it, for a
# few hundred tickets in all.  Then resbusd's log is replayed
# (tests/policy/replay.py): at no instant is a cap or a limit exceeded,
# and no ticket got a resource that a waiting ticket of a higher class,
# held back by no limit or cap, could have had and still waited for
# after that scheduling step.  Every ticket ended
# served or explained: closed at its deadline, or still waiting with a
# reason; every waiting ticket in ticket-list, sampled during the run,
# says why it waits.  Run once per store (SQLite, PostgreSQL).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
# shellcheck source=tests/policy/lib.sh
. "$RESBUS_SRCDIR/tests/policy/lib.sh"

pol_begin policy-mixed "$@"

# (replay.py gets the same numbers below.)
pol_server_yaml 'classes:
  scratch: {priority: 0, caps: {pa: 2}}
  auto: {priority: 5, caps: {pa: 3, pb: 2}}
  explicit: {priority: 10}
default_class: explicit
limits:
  - {tag: powerful, per_owner: 2}
  - {tag: powerful, total: 4}
  - {per_owner: 3}'

rb_pools <<'EOF'
pa:
  max: 5
  max_prealloc: 5
  max_starting: 5
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [x86, powerful]
pb:
  max: 4
  max_prealloc: 4
  max_starting: 4
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags:
    - name: x86
      priority: 10
EOF

owners=(o1 o2 o3 o4 o5)
for o in "${owners[@]}"; do
	pol_user "$o"
done

rb_start_worker
rb_start_broker
all_up() {
	[ "$(pol_maint resource-list --up | grep -c 'ticket=NULL')" -eq 9 ]
}
rb_wait_for "the 9 preallocated resources" 60 all_up

classes=$RB_TMP/classes   # ID CLASS OWNER TAG
fates=$RB_TMP/fates       # ID served | ID unserved REASON
errors=$RB_TMP/client-errors
: >"$classes"
: >"$fates"
: >"$errors"

# client OWNER ITERATIONS: takes, holds and closes tickets as OWNER; stops
# early once the load has run RUN_S seconds.
RUN_S=50
load_start=$(date +%s)
client() {
	local who=$1 n=$2 i id cls tag args reason
	for ((i = 0; i < n; i++)); do
		[ $(($(date +%s) - load_start)) -lt "$RUN_S" ] || break
		case $((RANDOM % 3)) in
		0) cls=scratch ;;
		1) cls=auto ;;
		*) cls=explicit ;;
		esac
		tag=x86
		[ $((RANDOM % 10)) -ge 3 ] || tag=powerful
		args=(--tag "$tag")
		# Half of the explicit tickets get their class by default_class.
		if [ "$cls" != explicit ] || [ $((RANDOM % 2)) -eq 0 ]; then
			args+=(--class "$cls")
		fi
		if [ "$cls" = scratch ] && [ $((RANDOM % 4)) -eq 0 ]; then
			args+=(--deadline 3)
		fi
		if ! id=$(pol_as "$who" ticket "${args[@]}" 2>>"$errors"); then
			echo "$who: resbus ticket ${args[*]} failed" >>"$errors"
			return 1
		fi
		echo "$id $cls $who $tag" >>"$classes"
		if pol_as "$who" ticket-wait "$id" --timeout 20 >/dev/null 2>&1; then
			echo "$id served" >>"$fates"
			sleep "0.$((RANDOM % 4))"
		else
			reason=$(pol_waiting "$id")
			echo "$id unserved ${reason:-(none)}" >>"$fates"
		fi
		if ! pol_as "$who" ticket-close "$id" >/dev/null 2>>"$errors"; then
			echo "$who: ticket-close $id failed" >>"$errors"
			return 1
		fi
	done
}

# sampler: every waiting ticket in ticket-list has a reason.
sampler() {
	local list
	while :; do
		list=$(pol_maint ticket-list) || echo "ticket-list failed" >>"$RB_TMP/unexplained"
		grep ' state=OPEN ' <<<"$list" | grep -v ' resource=' |
		    grep -v ' waiting="[^"]' >>"$RB_TMP/unexplained"
		grep -c ' state=OPEN ' <<<"$list" >>"$RB_TMP/open-samples"
		# The sampling period (a sample costs resbusd a full
		# ticket-list), not a wait: the loop runs until killed.
		sleep 1.5
	done
}
: >"$RB_TMP/unexplained"
: >"$RB_TMP/open-samples"
sampler &
sampler_pid=$!
rb_track "$sampler_pid"

rb_log "load: ${#owners[@]} owners x 4 clients for up to ${RUN_S}s"
pids=()
for o in "${owners[@]}"; do
	for c in 1 2 3 4; do
		client "$o" 20 &
		pids+=("$!")
		rb_track "$!"
	done
done
bad=0
for p in "${pids[@]}"; do
	wait "$p" || bad=$((bad + 1))
done
rb_kill "$sampler_pid"
rb_check_daemons
[ "$bad" -eq 0 ] || rb_fail "$bad client(s) failed: $(head -n 5 "$errors")"

n=$(wc -l <"$classes")
rb_log "load done after $(($(date +%s) - load_start))s: $n tickets," \
    "$(grep -c ' served$' "$fates") served," \
    "$(grep -c ' unserved ' "$fates") not served (most waiting in a" \
    "ticket-list sample: $(sort -n "$RB_TMP/open-samples" | tail -n 1))"
[ "$n" -ge 200 ] || rb_fail "only $n tickets in the load (expected a few hundred)"
for c in explicit auto scratch; do
	rb_log "class $c: $(awk -v c="$c" '$2 == c' "$classes" | wc -l) tickets"
done

# Every ticket served or explained.
while read -r id fate reason; do
	case $fate in
	served) ;;
	unserved)
		if grep -q "ticket $id: deadline passed" "$RB_TMP/resbusd.out"; then
			continue
		fi
		[ "$reason" != "(none)" ] ||
		    rb_fail "ticket $id was neither served, nor closed at a deadline, nor had a waiting reason"
		rb_log "ticket $id waited 20 s: $reason"
		;;
	esac
done <"$fates"
rb_assert_eq "$n" "$(wc -l <"$fates")" "tickets with a fate"
[ ! -s "$RB_TMP/unexplained" ] ||
    rb_fail "waiting tickets without a reason in ticket-list: $(head -n 3 "$RB_TMP/unexplained")"
# Deadlines closed only tickets with a deadline that had no resource.
while read -r id; do
	grep -q "ticket $id: got resource" "$RB_TMP/resbusd.out" &&
	    rb_fail "ticket $id was closed at its deadline though it was served"
done < <(sed -n 's/.*ticket \([0-9]*\): deadline passed.*/\1/p' "$RB_TMP/resbusd.out")
rb_assert_eq "" "$(pol_maint ticket-list)" "ticket-list after the load"
rb_assert_eq 0 "$(pol_log_count ' -> FAILED')" "tickets that failed"

# The replay: caps, limits and class order at every step.
out=$(python3 "$RESBUS_SRCDIR/tests/policy/replay.py" "$RB_TMP/resbusd.out" \
    --classes "$classes" \
    --prio scratch=0 --prio auto=5 --prio explicit=10 \
    --cap scratch:pa=2 --cap auto:pa=3 --cap auto:pb=2 \
    --limit powerful:per_owner=2 --limit powerful:total=4 \
    --limit '*:per_owner=3' \
    --pool pa=x86,powerful --pool pb=x86 --strict-priority)
rc=$?
rb_log "$out"
[ "$rc" -eq 0 ] || rb_fail "the replay of resbusd's log found violations (above)"
# The load reached the caps and limits, so they were tested.
rb_assert_match 'auto@pa=3( |;)' "$out" "auto's peak in pa"
rb_assert_match 'powerful:total=4( |$)' "$out" "the peak of powerful in total"

rb_done
