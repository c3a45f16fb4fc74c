#!/bin/bash
# A team's own pool, served only by the team's worker, set up as README's
# "A team's own pool" says.  The broker's pools.yaml declares pool `team`
# with `worker: external` and no commands (--check-config accepts it and
# says so); the central worker, started with the broker's configuration
# directory, serves pool `shared` and never consumes `team` (its ticket
# waits while only the central worker runs); the team's worker -- a
# RabbitMQ user of its own limited to resbus.pool.team, a worker.yaml and
# a pools.yaml with the commands -- then serves it: its cmd_new runs with
# the team's environment and logs into the team's log directory.
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

rb_setup team-pool

# The team's RabbitMQ user: a worker's grants, for its pool only.
TEAM="team-$$-$RANDOM"
rb_ctl add_user "$TEAM" teampw >/dev/null || rb_fail "cannot add user $TEAM"
RB_USERS+=("$TEAM")
rb_ctl set_permissions -p "$RB_VHOST" "$TEAM" \
    '^(amq\.gen-.*|resbus\.pool\.team)$' \
    '^(amq\.gen-.*|resbus\.pool\.team|resbus\.event|resbus\.dead)$' \
    '^(amq\.gen-.*|resbus\.pool\.team|resbus\.event|resbus\.job)$' \
    >/dev/null || rb_fail "cannot set the permissions of $TEAM"
TEAM_URL="amqp://$TEAM:teampw@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"

# The broker's side: results from the team's worker are believed, beside
# the central worker's (the broker's own login, guest).
RB_SERVER_EXTRA="workers: [guest, \"$TEAM\"]"
rb_server_yaml
rb_pools <<'EOF'
shared:
  max: 1
  max_prealloc: 1
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [shared]
team:
  worker: external
  max: 2
  max_prealloc: 1
  tags: [teamtag]
EOF
out=$("$RB_RESBUSD" --check-config --config-dir "$RB_CONF" 2>&1) ||
    rb_fail "--check-config refused the pool without commands: $out"
rb_assert_match 'configuration OK, 2 pools \(1 with worker: external' "$out" \
    "--check-config"

# A pool with worker: external and a cmd_new is refused.
mkdir -p "$RB_TMP/bad"
cp "$RB_CONF/server.yaml" "$RB_TMP/bad/"
printf 'team:\n  worker: external\n  cmd_new: /bin/true\n' >"$RB_TMP/bad/pools.yaml"
out=$("$RB_RESBUSD" --check-config --config-dir "$RB_TMP/bad" 2>&1) &&
    rb_fail "--check-config accepted worker: external with a cmd_new: $out"
rb_assert_match 'pools.yaml:[0-9]+:[0-9]+: pool "team": worker: external takes no cmd_new' \
    "$out" "--check-config of worker: external with a cmd_new"

# The team's side, in a directory of its own.
TEAMDIR=$RB_TMP/team
mkdir -p "$TEAMDIR/logs" "$RB_TMP/teamlocal"
cat >"$TEAMDIR/pools.yaml" <<EOF
team:
  max: 2
  max_prealloc: 1
  cmd_new: "$RB_DRIVERDIR/new"
  cmd_delete: "$RB_DRIVERDIR/delete"
  tags: [teamtag]
EOF
cat >"$TEAMDIR/worker.yaml" <<EOF
amqp_url: "$TEAM_URL"
pools_file: pools.yaml
logdir: "$TEAMDIR/logs"
broker_users: [guest]
EOF

# A worker told to serve it with the broker's file has no commands for it.
out=$(timeout 30 "$RB_WORKER" --config-dir "$RB_CONF" --pool team 2>&1)
rb_assert_eq 1 "$?" "exit status of resbus-worker --pool team"
rb_assert_match "pools.yaml: pool 'team' has worker: external, no commands to serve it with" \
    "$out" "resbus-worker --pool team"

rb_start_worker
rb_start_broker
grep -q "pool team: worker: external in $RB_CONF/pools.yaml, not served here" \
    "$RB_TMP/worker.out" || rb_fail "the central worker did not say it leaves pool team"

# The central worker serves shared ...
t1=$(rb_resbus ticket --tag shared) || rb_fail "resbus ticket --tag shared failed ($?)"
data=$(rb_resbus ticket-wait "$t1" --timeout 60) || rb_fail "ticket-wait $t1 failed ($?)"
rb_assert_match "^local:$RESBUS_LOCAL_ROOT/shared_" "$data" "data of the shared ticket"
# ... and not team: the queue has no consumer, the start waits in it.
t2=$(rb_resbus ticket --tag teamtag) || rb_fail "resbus ticket --tag teamtag failed ($?)"
team_untouched() {
	if out=$(rb_resbus ticket-check "$t2" 2>&1); then
		echo "the team's ticket was served without the team's worker: $out"
		return 1
	fi
	if grep -q 'team_' "$RB_TMP/worker.out"; then
		echo "the central worker handled a job of pool team"
		return 1
	fi
	if compgen -G "$RESBUS_LOCAL_ROOT/team_*" >/dev/null; then
		echo "a team resource was made by the central worker"
		return 1
	fi
}
RB_WAIT_INTERVAL=0.5 rb_hold_for "ticket $t2 of pool team to wait for the team's worker" \
    3 team_untouched
rb_assert_eq 0 "$(rb_consumers resbus.pool.team)" "consumers of resbus.pool.team"

# The team's worker, with its own environment, serves it.
echo "===== team worker ($(date +%T))" >"$RB_TMP/team-worker.out"
RESBUS_LOCAL_ROOT=$RB_TMP/teamlocal "$RB_WORKER" --config "$TEAMDIR/worker.yaml" \
    </dev/null >>"$RB_TMP/team-worker.out" 2>&1 &
TEAM_PID=$!
rb_track "$TEAM_PID"
data=$(rb_resbus ticket-wait "$t2" --timeout 60) ||
    rb_fail "ticket-wait $t2 with the team's worker failed ($?); its log: $(tail -20 "$RB_TMP/team-worker.out")"
rb_assert_match "^local:$RB_TMP/teamlocal/team_" "$data" "data of the team's ticket"
rb_assert_eq 1 "$(rb_consumers resbus.pool.team)" "consumers of resbus.pool.team"
compgen -G "$TEAMDIR/logs/hooks/*_alloc" >/dev/null ||
    rb_fail "no hook log in the team's log directory"
grep -q "serving pool team from queue resbus.pool.team" "$RB_TMP/team-worker.out" ||
    rb_fail "the team's worker does not say it serves pool team"

# Closing deletes the team's resource through the team's worker.
r2=${data#local:"$RB_TMP/teamlocal"/}
rb_resbus ticket-close "$t2" || rb_fail "ticket-close $t2 failed"
rb_resbus ticket-close "$t1" || rb_fail "ticket-close $t1 failed"
rb_wait_for "the team's worker to delete $r2" 60 test ! -e "$RB_TMP/teamlocal/$r2"
rb_check_daemons
rb_alive "$TEAM_PID" || rb_fail "the team's worker died"
kill -TERM "$TEAM_PID"
wait "$TEAM_PID"
rb_assert_eq 0 "$?" "exit status of the team's worker after SIGTERM"

rb_done
