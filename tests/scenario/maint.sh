#!/bin/bash
# resbus-maint against a running resbusd and worker: every command, its
# output lines parsed the way resalloc's shell tests parse
# resalloc-maint's (count resource-list lines, grep `resource=` in
# ticket-list), the operators' actions and what they do to resources and
# tickets, and the admin check: every command that changes anything is
# refused to a RabbitMQ user not in server.yaml's admins, and changes
# nothing then.
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
. "$RESBUS_SRCDIR/tests/maint/lib.sh"

rb_setup maint
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
[ -x "$RB_MAINT" ] || rb_fail "$RB_MAINT is missing: build it first"

# guest is the admin; a second user is not.
RB_SERVER_EXTRA='admins: [guest, "someone-else"]'
rb_server_yaml
nobody="resbus-test-nobody-$$-$RANDOM"
rb_add_user "$nobody" secret
NOBODY_URL="amqp://$nobody:secret@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"

rb_pools <<'EOF'
mp:
  max: 4
  max_prealloc: 2
  max_starting: 2
  cmd_new: "@DRIVERDIR@/new"
  cmd_delete: "@DRIVERDIR@/delete"
  tags: [mt, extra]
EOF

# resbus-maint as the user who is not an admin.
nobody_maint() {
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" \
	    --amqp-url "$NOBODY_URL" "$@"
}

# Whether pool mp started nothing since $1 starts and has no resource.
paused_pool_idle() {
	[ "$(grep -c 'starting in pool mp ' "$RB_TMP/resbusd.out")" -eq "$1" ] &&
	    [ "$(rb_local_count)" -eq 0 ]
}


# The free UP resources of pool $1: "ID NAME" lines.
free_resources() {
	maint resource-list --up |
	    awk -v pool="$1" '$4 == "pool=" pool && $NF == "ticket=NULL" { print $1, $3 }'
}

# (a) usage errors exit 2, before anything is sent.
for args in "" "no-such-command" "resource-list --all" "ticket-list --up" \
    "resource-delete" "resource-delete --all --unused" "resource-delete x1" \
    "pool-pause" "pool-pause a b" "resource-info" "ticket-close abc" \
    "--timeout x pool-list" "resource-list --bogus"; do
	# shellcheck disable=SC2086 # split on purpose
	maint $args >/dev/null 2>&1
	rb_assert_eq 2 "$?" "exit status of 'resbus-maint $args'"
done
out=$(maint --version) || rb_fail "resbus-maint --version failed"
rb_assert_match '^resbus-maint [0-9]' "$out" "--version"
maint --help | grep -q 'resource-delete' || rb_fail "--help lacks resource-delete"

# Without a broker, a command says so and sends nothing.
err=$(maint --timeout 5 pool-drain mp 2>&1) &&
    rb_fail "pool-drain without resbusd succeeded"
rb_assert_match 'resbusd is not running' "$err" "pool-drain without resbusd"

rb_start_worker
rb_start_broker

# The command sent while resbusd was down did not wait to run later.
rb_wait_for "two preallocated resources" 60 count_is 2 count_resources ' pool=mp ' --up
rb_assert_no_match 'paused' "$(maint pool-list)" "pool-list after the early pool-drain"

# (b) resource-list: resalloc-maint's line format.
lines=$(maint resource-list) || rb_fail "resource-list failed ($?)"
rb_log "resource-list:"$'\n'"$lines"
while read -r line; do
	rb_assert_match '^[0-9]+ - mp_[^ ]+ pool=mp tags=mt,extra status=UP releases=0 ticket=NULL$' \
	    "$line" "resource-list line"
done <<<"$lines"
read -r rid rname <<<"$(free_resources mp | head -n 1)"

# pool-list (resbus's format).
rb_assert_match '^mp max=4 starting=0 free=2 .*taken=0 ' "$(maint pool-list)" "pool-list"

# (c) resource-info: by ID and by name, indent-4 JSON.
info=$(maint resource-info "$rid") || rb_fail "resource-info $rid failed ($?)"
rb_log "resource-info $rid:"$'\n'"$info"
rb_assert_eq '{' "$(head -n 1 <<<"$info")" "first line of resource-info"
rb_assert_match "^    \"id\": $rid,\$" "$info" "resource-info id"
rb_assert_match "^    \"name\": \"$rname\",\$" "$info" "resource-info name"
rb_assert_match '^    "pool": "mp",$' "$info" "resource-info pool"
rb_assert_match '^    "state": "UP",$' "$info" "resource-info state"
rb_assert_match "^    \"data\": \"local:$RESBUS_LOCAL_ROOT/$rname\",\$" "$info" \
    "resource-info data (stripped of its newline)"
rb_assert_match '^    "ticket_id": null,$' "$info" "resource-info ticket_id"
rb_assert_match '^    "created": "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z",$' "$info" \
    "resource-info created"
if command -v python3 >/dev/null; then
	python3 -m json.tool <<<"$info" >/dev/null ||
	    rb_fail "resource-info is not valid JSON"
fi
by_name=$(maint resource-info "$rname") || rb_fail "resource-info $rname failed ($?)"
rb_assert_eq "$info" "$by_name" "resource-info by name"
err=$(maint resource-info nosuch 2>&1)
rb_assert_eq 1 "$?" "exit status of resource-info nosuch"
rb_assert_match 'Unknown resource: nosuch' "$err" "resource-info nosuch"

# --json where it makes sense.
json=$(maint resource-list --json) || rb_fail "resource-list --json failed"
rb_assert_eq '[' "$(head -n 1 <<<"$json")" "resource-list --json"
rb_assert_eq 2 "$(grep -c '^        "pool": "mp",$' <<<"$json")" \
    "resources in resource-list --json"

# (d) a ticket: ticket-list shows its resource; resource-list its ticket.
t1=$(rb_resbus ticket --tag mt) || rb_fail "resbus ticket failed ($?)"
d1=$(rb_resbus ticket-wait "$t1" --timeout 60) || rb_fail "ticket-wait $t1 failed ($?)"
n1=${d1#local:"$RESBUS_LOCAL_ROOT"/}
tl=$(maint ticket-list) || rb_fail "ticket-list failed ($?)"
rb_log "ticket-list:"$'\n'"$tl"
rb_assert_match "^$t1 - state=[A-Z]+ tags=mt resource=$n1 owner=guest\$" "$tl" "ticket-list line"
rb_assert_eq 1 "$(grep -c 'resource=' <<<"$tl")" "assigned tickets in ticket-list"
rb_assert_match "^[0-9]+ - $n1 pool=mp tags=mt,extra status=UP releases=0 ticket=$t1\$" \
    "$(maint resource-list --up)" "resource-list line of the taken resource"
t1id=$(maint resource-list | awk -v n="$n1" '$3 == n { print $1 }')
json=$(maint ticket-list --json) || rb_fail "ticket-list --json failed"
rb_assert_match "^        \"resource\": \"$n1\",\$" "$json" "ticket-list --json"
json=$(maint pool-list --json) || rb_fail "pool-list --json failed"
rb_assert_match '^        "taken": 1,$' "$json" "pool-list --json"
if command -v python3 >/dev/null; then
	for args in "resource-list --json" "ticket-list --json" "pool-list --json"; do
		# shellcheck disable=SC2086 # split on purpose
		maint $args | python3 -m json.tool >/dev/null ||
		    rb_fail "$args is not valid JSON"
	done
fi

rb_wait_for "three UP resources (one taken)" 60 \
    count_is 3 count_resources ' status=UP '

# (e) nothing that changes anything is allowed to a user not in admins,
# and the refusals change nothing.
for args in "resource-delete $t1id" "resource-delete --all" \
    "resource-delete --unused" "ticket-close $t1" "pool-pause mp" \
    "pool-resume mp" "pool-drain mp" "reload"; do
	cmd=${args%% *}
	# shellcheck disable=SC2086 # split on purpose
	err=$(nobody_maint $args 2>&1)
	rb_assert_eq 1 "$?" "exit status of '$args' by $nobody"
	rb_assert_eq "resbus-maint: $cmd: user \"$nobody\" is not one of the admins in server.yaml" \
	    "$err" "refusal of '$args'"
done
rb_assert_match "^$t1 - state=[A-Z]+ tags=mt resource=$n1 owner=guest\$" "$(maint ticket-list)" \
    "ticket $t1 after the refusals"
rb_hold_for "three UP resources after the refusals" 1 \
    count_is 3 count_resources ' status=UP '
rb_assert_no_match 'paused' "$(maint pool-list)" "pool-list after the refusals"
# Reading is allowed to anyone.
nobody_maint resource-list >/dev/null || rb_fail "resource-list by $nobody failed"
nobody_maint ticket-list >/dev/null || rb_fail "ticket-list by $nobody failed"
grep -q "control: pool-pause refused to user \"$nobody\"" "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log the refusal"

# (f) resource-delete of a taken resource: its ticket FAILED, the resource
# deleted, and replaced.
maint resource-delete "$t1id" || rb_fail "resource-delete $t1id failed ($?)"
rb_wait_for "ticket $t1 to fail" 30 ticket_state_is "$t1" FAILED
err=$(rb_resbus ticket-check "$t1" 2>&1) && rb_fail "ticket-check $t1 succeeded after the delete"
rb_assert_match 'assigned resource failed' "$err" "ticket-check of the failed ticket"
rb_wait_for "resource $n1 to be deleted" 60 rb_local_gone "$n1"
rb_wait_for "resource $t1id to leave resource-list" 30 \
    count_is 0 count_resources "^$t1id - "
rb_wait_for "two free resources again" 60 \
    count_is 2 count_resources ' pool=mp .*ticket=NULL$' --up
# A resource that is not UP: a warning, not a failure.
err=$(maint resource-delete 999999 2>&1) || rb_fail "resource-delete 999999 failed ($?)"
rb_assert_match 'warning: resource-delete: resource 999999 is not an UP resource' "$err" \
    "resource-delete of no resource"

# (g) ticket-close by an operator.
maint ticket-close "$t1" || rb_fail "ticket-close $t1 failed ($?)"
rb_assert_no_match "^$t1 - " "$(maint ticket-list)" "ticket-list after ticket-close $t1"
rb_assert_eq 0 "$(maint ticket-list | wc -l)" "ticket-list lines with no tickets"
err=$(maint ticket-close "$t1" 2>&1) && rb_fail "a second ticket-close $t1 succeeded"
rb_assert_match "ticket-close: no open ticket $t1" "$err" "second ticket-close"

# (h) pool-pause stops preallocation: delete the free resources and
# nothing restarts; a ticket waits and says why.
maint pool-pause mp || rb_fail "pool-pause mp failed ($?)"
rb_assert_match '^mp .* paused$' "$(maint pool-list)" "pool-list of a paused pool"
starts=$(grep -c 'starting in pool mp ' "$RB_TMP/resbusd.out")
maint resource-delete --unused || rb_fail "resource-delete --unused failed ($?)"
rb_wait_for "the free resources to be deleted" 60 rb_local_count_is 0
rb_wait_for "pool mp to have no resources" 30 count_is 0 count_resources ' pool=mp '
t2=$(rb_resbus ticket --tag extra) || rb_fail "resbus ticket failed ($?)"
rb_hold_for "no start in the paused pool" 3 paused_pool_idle "$starts"
tl=$(maint ticket-list)
rb_log "ticket-list:"$'\n'"$tl"
rb_assert_match "^$t2 - state=OPEN tags=extra owner=guest waiting=\".+\"\$" "$tl" \
    "ticket-list line of a waiting ticket"
rb_assert_eq 0 "$(grep -c 'resource=' <<<"$tl")" "assigned tickets while paused"
# pool-resume starts it again, and serves the ticket.
maint pool-resume mp || rb_fail "pool-resume mp failed ($?)"
rb_assert_no_match 'paused' "$(maint pool-list)" "pool-list after pool-resume"
d2=$(rb_resbus ticket-wait "$t2" --timeout 60) || rb_fail "ticket-wait $t2 failed ($?)"
n2=${d2#local:"$RESBUS_LOCAL_ROOT"/}
rb_wait_for "two free resources after pool-resume" 60 \
    count_is 2 count_resources ' pool=mp .*ticket=NULL$' --up
rb_assert_match "^$t2 - state=[A-Z]+ tags=extra resource=$n2 owner=guest\$" "$(maint ticket-list)" \
    "ticket-list line of the served ticket"

# (i) pool-drain deletes the free resources, not the taken one.
maint pool-drain mp || rb_fail "pool-drain mp failed ($?)"
rb_wait_for "the free resources to be drained" 60 rb_local_count_is 1
rb_assert_eq 1 "$(count_resources ' pool=mp ')" "resources of the drained pool"
rb_assert_match " - $n2 pool=mp .* status=UP releases=0 ticket=$t2\$" \
    "$(maint resource-list)" "the taken resource after pool-drain"
rb_assert_match '^mp .* paused$' "$(maint pool-list)" "pool-list of a drained pool"
rb_hold_for "one resource of the drained pool" 2 rb_local_count_is 1
rb_resbus ticket-close "$t2" || rb_fail "ticket-close $t2 failed ($?)"
maint pool-resume mp || rb_fail "pool-resume mp failed ($?)"
rb_wait_for "two free resources after resuming the drained pool" 60 \
    count_is 2 count_resources ' pool=mp .*ticket=NULL$' --up

# (j) reload picks up a new pool; a broken pools.yaml is refused and the
# running pools stay.  The new pool's cmd_new prints shell syntax, for
# foreach-resource below.
cp "$RB_CONF/pools.yaml" "$RB_TMP/pools.good"
echo 'mp: [broken' >"$RB_CONF/pools.yaml"
err=$(maint reload 2>&1) && rb_fail "reload of a broken pools.yaml succeeded"
rb_assert_match '^resbus-maint: reload: pools.yaml not reloaded: .*pools.yaml:[0-9]+' \
    "$err" "reload of a broken pools.yaml"
rb_assert_match '^mp max=4 ' "$(maint pool-list)" "pool-list after a failed reload"
cp "$RB_TMP/pools.good" "$RB_CONF/pools.yaml"
cat >>"$RB_CONF/pools.yaml" <<EOF
fresh:
  max: 1
  max_prealloc: 1
  cmd_new: "echo 'x \$(touch $RB_TMP/injected) \"q\" {name} \u00e9'"
  cmd_delete: "true"
  tags: [fr]
EOF
rb_assert_no_match '^fresh ' "$(maint pool-list)" "pool-list before reload"
maint reload || rb_fail "reload failed ($?)"
rb_assert_match '^fresh max=1 ' "$(maint pool-list)" "pool-list after reload"
# resbus-worker reads the commands of its pools at start only.
rb_stop_worker
rb_start_worker
rb_wait_for "a resource of the new pool" 60 \
    count_is 1 count_resources ' pool=fresh tags=fr status=UP ' --up
rb_assert_match "^    \"data\": \"x \\\$\\(touch $RB_TMP/injected\\) \\\\\"q\\\\\" \\{name\\} \\\\u00e9\",\$" \
    "$(maint resource-info "$(maint resource-list | awk '$4 == "pool=fresh" { print $3 }')")" \
    "resource-info data with quotes and a non-ASCII character"

# (k) foreach-resource: once per live resource, values from the
# environment, never spliced into the shell text.
out=$(maint foreach-resource) || rb_fail "foreach-resource failed ($?)"
rb_assert_eq "$(maint resource-list | awk '{ print $3 }' | sort)" "$(sort <<<"$out")" \
    "foreach-resource with the default command"
out=$(maint foreach-resource --command 'echo "{name}|{state}|{data_utf8}" '"'{{x}}'") ||
    rb_fail "foreach-resource --command failed ($?)"
rb_log "foreach-resource:"$'\n'"$out"
rb_assert_eq 3 "$(wc -l <<<"$out")" "foreach-resource lines"
fname=$(maint resource-list | awk '$4 == "pool=fresh" { print $3 }')
rb_assert_match "^$fname\\|UP\\|x \\\$\\(touch $RB_TMP/injected\\) \"q\" \\{name\\} é \\{x\\}\$" \
    "$out" "foreach-resource line of the resource with shell syntax in its data"
rb_assert_match "^mp_[^|]+\\|UP\\|local:$RESBUS_LOCAL_ROOT/mp_[^ ]+ \\{x\\}\$" \
    "$out" "foreach-resource line of an mp resource"
out=$(maint foreach-resource --command "echo {data_utf8}; echo '{name}'") ||
    rb_fail "foreach-resource --command (unquoted, single-quoted) failed ($?)"
rb_assert_match "^$fname\$" "$out" "single-quoted {name}"
rb_assert_match "^x \\\$\\(touch $RB_TMP/injected\\) \"q\" \\{name\\} é\$" "$out" \
    "unquoted {data_utf8}"
[ ! -e "$RB_TMP/injected" ] || rb_fail "a resource's data ran as shell code"
out=$(maint foreach-resource --command 'echo {name} {bogus}' 2>"$RB_TMP/err")
rb_assert_eq 1 "$?" "exit status of foreach-resource with an unknown placeholder"
rb_assert_eq "" "$out" "output of foreach-resource with an unknown placeholder"
rb_assert_eq 3 "$(grep -c 'unknown placeholder {bogus}' "$RB_TMP/err")" \
    "errors of foreach-resource with an unknown placeholder"

# (l) resource-logs: tail -F of the hook logs, by ID or name.
read -r rid rname <<<"$(free_resources mp | head -n 1)"
out=$(timeout 3 "$RB_MAINT" --config-dir "$RB_CONF" resource-logs "$rname" 2>&1)
rb_assert_eq 124 "$?" "resource-logs runs until stopped"
hooks=$(printf '%s/hooks/%06d' "$RB_LOGDIR" "$rid")
rb_assert_match "^==> ${hooks}_alloc <==\$" "$out" "resource-logs by name"
out=$(timeout 3 "$RB_MAINT" --config-dir "$RB_CONF" resource-logs "$rid" 2>&1)
rb_assert_match "^==> ${hooks}_alloc <==\$" "$out" "resource-logs by ID"
rb_assert_match "${hooks}_terminate" "$out" "resource-logs follows _terminate"
err=$(maint resource-logs nosuch 2>&1)
rb_assert_eq 1 "$?" "exit status of resource-logs nosuch"
rb_assert_match 'Unknown resource: nosuch' "$err" "resource-logs nosuch"

# (m) resource-delete --all: every UP resource, taken ones too.
t3=$(rb_resbus ticket --tag fr) || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$t3" --timeout 60 >/dev/null || rb_fail "ticket-wait $t3 failed ($?)"
maint pool-pause mp || rb_fail "pool-pause mp failed ($?)"
maint pool-pause fresh || rb_fail "pool-pause fresh failed ($?)"
maint resource-delete --all || rb_fail "resource-delete --all failed ($?)"
rb_wait_for "ticket $t3 to fail" 30 ticket_state_is "$t3" FAILED
rb_wait_for "every resource to be deleted" 60 count_is 0 count_resources .
rb_assert_match "^resbus-maint: pool-pause: Unknown pool: nosuch\$" \
    "$(maint pool-pause nosuch 2>&1)" "pool-pause of an unknown pool"

# (n) broker-status: which resbusd is active (this one, on SQLite: epoch
# 0), for anyone; the same line as its log.
out=$(nobody_maint broker-status) || rb_fail "broker-status failed ($?)"
rb_assert_match "^active: resbusd pid $RB_BROKER_PID on [^ ]+, since 20[0-9-]+T[0-9:]+Z, epoch 0\$" \
    "$out" "broker-status"
grep -q "active: this resbusd (pid $RB_BROKER_PID on " "$RB_TMP/resbusd.out" ||
    rb_fail "resbusd did not log that it is the active broker"

rb_done
