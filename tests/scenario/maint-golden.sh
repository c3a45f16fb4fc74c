#!/bin/bash
# resbus-maint's output, byte for byte: every command, text and --json,
# by an admin and by a user who is not one, with its stdout, its stderr
# and its exit status compared with tests/golden/maint/NAME.out.  The
# scenario is deterministic: fixed pools, resources started one at a
# time by a driver that prints fixed data (with quotes, a backslash, a
# tab, a control character, non-ASCII text, a character outside the BMP
# and a byte that is not UTF-8, between blanks that resalloc-maint
# strips), a paused pool with a ticket waiting on it, a ticket taken by
# a delegate for its owner, a deleted resource,
# and the refusals and warnings.  Run once per store (SQLite,
# PostgreSQL): both give the same output.
#
# With RESBUS_GOLDEN_UPDATE=1 the golden files are written instead of
# compared (only to be done with resbus-maint's output as it should be).
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck disable=SC2317 # functions called through rb_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"
. "$RESBUS_SRCDIR/tests/maint/lib.sh"

# Without an argument the test runs itself once per store.
rb_per_store maint-golden "$@"

RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
[ -x "$RB_MAINT" ] || rb_fail "$RB_MAINT is missing: build it first"
GOLDEN=$RESBUS_SRCDIR/tests/golden/maint
mkdir -p "$RB_TMP/golden"

# guest is the admin, and a delegate; a second user is neither.
RB_SERVER_EXTRA='admins: [guest]
delegates: [guest]'
rb_server_yaml
nobody="resbus-golden-nobody-$$-$RANDOM"
rb_add_user "$nobody" secret
NOBODY_URL="amqp://$nobody:secret@127.0.0.1:$RESBUS_TEST_AMQP_PORT/$(rb_urlencode "$RB_VHOST")"

# The driver: the same data for every resource but its id_in_pool.
cat >"$RB_TMP/golden-new" <<'EOF'
#!/bin/sh
printf ' \t host-%s "q" \\ caf\303\251 \360\237\230\200 \001 \177 \377 end\n\n' \
    "$RESALLOC_ID_IN_POOL"
EOF
chmod +x "$RB_TMP/golden-new"

rb_pools <<'EOF'
mp:
  max: 3
  max_prealloc: 2
  max_starting: 1
  cmd_new: "@STATEDIR@/golden-new"
  cmd_delete: "true"
  tags: [mt, extra]
pp:
  max: 1
  max_prealloc: 0
  cmd_new: "@STATEDIR@/golden-new"
  cmd_delete: "true"
  tags: [pt]
EOF

# What varies from run to run, and only that, is replaced:
normalise() {
	# resource names end in the time the resource was started
	# (pool_ID_YYYYMMDD_HHMMSS);
	sed -E -e 's/(_[0-9]{8})_[0-9]{8}_[0-9]{6}/\1_YYYYMMDD_HHMMSS/g' \
	    -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z/TIME/g' \
	    -e 's/("start_ms_avg": )[0-9]+\.[0-9]/\1MS/' \
	    -e 's/pid [0-9]+ on [^ ,]+/pid PID on HOST/g' \
	    -e 's/heard [0-9]+\.[0-9] s ago/heard N s ago/g' \
	    -e 's/epoch [0-9]+/epoch N/g' \
	    -e "s/$nobody/NOBODY/g" \
	    -e "s|$RB_TMP|TMP|g"
	# ISO 8601 times (created, last_start, broker-status) are when
	# things happened; start_ms_avg is how long the starts took; the
	# active resbusd's pid and host, and when it heard a standby, are
	# this run's; the leadership epoch is 0 on SQLite and counts the
	# takeovers of a PostgreSQL store; the user who is not an admin is a
	# RabbitMQ user of the whole node, named uniquely per run; the
	# test's files (pools.yaml in reload's error) are in a fresh
	# directory.
}

# golden NAME [--nobody] ARGS...: runs resbus-maint ARGS (as the user who
# is not an admin with --nobody) and compares its exit status, stdout
# and stderr with tests/golden/maint/NAME.out.
golden() {
	local name=$1 rc out=$RB_TMP/golden/$1
	local -a url=()
	shift
	if [ "$1" = --nobody ]; then
		url=(--amqp-url "$NOBODY_URL")
		shift
	fi
	timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" "${url[@]}" "$@" \
	    >"$out.stdout" 2>"$out.stderr"
	rc=$?
	{
		echo "# resbus-maint${url:+ (not an admin)} $*"
		echo "# exit $rc"
		echo "# stdout"
		cat "$out.stdout"
		echo "# stderr"
		cat "$out.stderr"
	} | normalise >"$out.out"
	# JSON is what Python's json.dumps(indent=4) prints, as
	# resalloc-maint's is; the golden files are resbus-maint's own.
	case "$rc $* " in
	"0 "*" --json "*)
		python3 -c 'import json, sys
sys.stdout.write(json.dumps(json.load(sys.stdin), indent=4) + "\n")' \
		    <"$out.stdout" >"$out.python" ||
		    rb_fail "resbus-maint $* printed no JSON"
		cmp -s "$out.python" "$out.stdout" || {
			diff -u "$out.python" "$out.stdout" >&2
			rb_fail "resbus-maint $* prints JSON that" \
			    "json.dumps(indent=4) would print otherwise"
		}
		;;
	esac
	if [ "${RESBUS_GOLDEN_UPDATE:-}" = 1 ]; then
		cp "$out.out" "$GOLDEN/$name.out"
		return
	fi
	[ -f "$GOLDEN/$name.out" ] || rb_fail "no golden file $GOLDEN/$name.out"
	diff -u "$GOLDEN/$name.out" "$out.out" >&2 ||
	    rb_fail "resbus-maint $* differs from $GOLDEN/$name.out"
}


# Usage errors and no broker: nothing is sent.
golden usage-none
golden usage-unknown bogus
golden usage-option resource-list --all
golden usage-delete resource-delete x1
golden usage-ticket-close ticket-close abc
golden help --help
golden no-broker --timeout 5 pool-list

rb_start_worker
rb_start_broker
rb_wait_for "two UP resources" 60 count_is 2 count_resources ' status=UP '

golden resource-list resource-list
golden resource-info-1 resource-info 1
golden resource-info-name resource-info "$(maint resource-list | awk '$1 == 2 { print $3 }')"

# A paused pool, and a ticket that waits on it.
golden pool-pause pool-pause pp
t1=$(rb_resbus ticket --tag pt) || rb_fail "resbus ticket failed ($?)"
rb_wait_for "ticket $t1 to wait" 30 ticket_state_is "$t1" OPEN
# A ticket that takes a resource; the pool starts a third.
t2=$(rb_resbus ticket --tag mt --sandbox 'bob/proj') || rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$t2" --timeout 60 >/dev/null || rb_fail "ticket-wait $t2 failed"
rb_wait_for "three UP resources" 60 count_is 3 count_resources ' status=UP '
# A free resource deleted; the pool starts a fourth in its place.
free=$(maint resource-list --up | awk '$NF == "ticket=NULL" { print $1; exit }')
golden resource-delete-free resource-delete "$free"
rb_wait_for "resource $free to go" 60 count_is 0 count_resources "^$free - "
rb_wait_for "three UP resources again" 60 count_is 3 count_resources ' status=UP '
golden resource-info-deleted resource-info "$free"
# A delegate's ticket for alice.
t3=$(rb_resbus ticket --tag extra --owner alice --sandbox alice/proj-1) ||
    rb_fail "resbus ticket failed ($?)"
rb_resbus ticket-wait "$t3" --timeout 60 >/dev/null || rb_fail "ticket-wait $t3 failed"
rb_wait_for "three UP resources, two taken" 60 \
    count_is 1 count_resources ' status=UP .*ticket=NULL$'
rb_wait_for "no resource starting" 60 count_is 0 count_resources ' status=STARTING '
rb_hold_for "no resource starting" 1 count_is 0 count_resources ' status=STARTING '

golden resource-list-2 resource-list
golden resource-list-up resource-list --up
golden resource-list-json resource-list --json
golden resource-list-up-json resource-list --up --json
golden resource-info-3 resource-info 3
golden resource-info-nosuch resource-info nosuch
golden ticket-list ticket-list
golden ticket-list-json ticket-list --json
golden pool-list pool-list
golden pool-list-json pool-list --json
golden broker-status broker-status
golden foreach-default foreach-resource
golden foreach-command foreach-resource --command 'printf "%s|%s|%s\n" {name} {state} "{data_utf8}"'
golden foreach-bad foreach-resource --command 'echo {bogus}'
golden resource-logs-nosuch resource-logs nosuch

# Someone who is not an admin: reading, without the resources' data.
golden nobody-resource-list --nobody resource-list
golden nobody-resource-list-json --nobody resource-list --json
golden nobody-resource-info --nobody resource-info 3
golden nobody-ticket-list --nobody ticket-list
golden nobody-ticket-list-json --nobody ticket-list --json
golden nobody-pool-list-json --nobody pool-list --json
golden nobody-broker-status --nobody broker-status
for cmd in "resource-delete 3" "resource-delete --all" "resource-delete --unused" \
    "ticket-close $t2" "pool-pause mp" "pool-resume pp" "pool-drain mp" "reload"; do
	# shellcheck disable=SC2086 # split on purpose
	golden "nobody-${cmd// /_}" --nobody $cmd
done

# Refusals and warnings to the admin.
golden resource-delete-warn resource-delete 999999
golden resource-delete-warn2 resource-delete 999998 999999
golden ticket-close-nosuch ticket-close 999999
golden pool-pause-nosuch pool-pause nosuch
golden pool-resume-nosuch pool-resume nosuch
golden pool-drain-nosuch pool-drain nosuch
cp "$RB_CONF/pools.yaml" "$RB_TMP/pools.good"
echo 'mp: [broken' >"$RB_CONF/pools.yaml"
golden reload-broken reload
cp "$RB_TMP/pools.good" "$RB_CONF/pools.yaml"
golden reload reload

# The admin's actions: the ticket closed gives its resource back, the
# free resources of the paused pool mp are deleted, the waiting ticket is
# closed, and pp resumed.
golden ticket-close ticket-close "$t2"
rb_wait_for "two free resources" 60 \
    count_is 2 count_resources ' status=UP .*ticket=NULL$'
golden pool-pause-mp pool-pause mp
golden resource-delete-unused resource-delete --unused
rb_wait_for "only the taken resource" 60 count_is 1 count_resources .
golden pool-drain pool-drain mp
golden ticket-close-waiting ticket-close "$t1"
golden pool-resume pool-resume pp
# pp preallocates nothing and no ticket waits for it any more.
rb_hold_for "only the taken resource after pool-resume pp" 1 \
    count_is 1 count_resources .
golden ticket-list-end ticket-list
golden resource-list-end resource-list
golden pool-list-end pool-list
golden pool-list-end-json pool-list --json

rb_done
