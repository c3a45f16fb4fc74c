#!/bin/bash
# The netns driver through the whole system, as root: a ticket of an
# on-demand pool makes a network namespace with a veth pair; the address
# the ticket gets answers from the host (ping, or without ping a TCP
# reset from the namespace's kernel); closing the ticket removes the
# namespace, its interfaces and its state file.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck disable=SC2119 # rb_start_* take optional arguments
# shellcheck source=tests/lib.sh
. "${RESBUS_SRCDIR:?run via make check or scripts/test.sh}/tests/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null ||
    ! ip netns add rbtprobe$$ 2>/dev/null; then
	# Never skipped: CI runs the suite as root, as scripts/test.sh says.
	echo "FAIL: worker-netns: needs root and ip netns (run the suite" \
	    "as root, as scripts/test.sh does)" >&2
	exit 1
fi
ip netns del rbtprobe$$

# Namespaces of an earlier, failed run of this test.
for ns in $(ip netns list | awk '$1 ~ /^rbt-[0-9]+$/ { print $1 }'); do
	ip netns del "$ns"
done

rb_setup worker-netns
NETNS="RESBUS_NETNS_PREFIX=rbt RESBUS_NETNS_SUBNET=10.213.200.0/24 RESBUS_NETNS_STATE=$RB_TMP/netns"
D=$RESBUS_SRCDIR/drivers/netns
rb_pools <<EOF
netns:
  max: 2
  tags_on_demand: [netns]
  cmd_new: "$NETNS $D/new"
  cmd_delete: "$NETNS $D/delete"
  cmd_livecheck: "$NETNS $D/livecheck"
  cmd_list: "$NETNS $D/list"
EOF

reachable() {
	if command -v ping >/dev/null; then
		ping -c1 -W2 "$1"
	else
		# A refused connection is an answer from the namespace's kernel.
		local out
		out=$(timeout 3 bash -c "exec 3<>/dev/tcp/$1/9" 2>&1)
		case $out in *refused*) return 0 ;; esac
		return 1
	fi
}

rb_start_worker
rb_start_broker
id=$(rb_resbus ticket --tag netns) || rb_fail "resbus ticket failed ($?)"
addr=$(rb_resbus ticket-wait "$id" --timeout 60) || rb_fail "ticket-wait $id failed ($?)"
rb_assert_match '^10\.213\.200\.[0-9]+$' "$addr" "the ticket's address"
ns=$(ip netns list | awk '$1 ~ /^rbt-[0-9]+$/ { print $1 }')
rb_assert_match '^rbt-[0-9]+$' "$ns" "the namespace"
rb_assert_match "inet $addr/30" "$(ip -n "$ns" addr show)" "the namespace's address"
reachable "$addr" >/dev/null 2>&1 || rb_fail "$addr does not answer from the host"
# The pool's list names the resource; livecheck passes.
listed=$(env RESALLOC_POOL_ID=netns RESBUS_NETNS_PREFIX=rbt \
    RESBUS_NETNS_STATE="$RB_TMP/netns" "$D/list")
rb_assert_match '^netns_' "$listed" "netns list"
env RESALLOC_ID="${ns#rbt-}" RESBUS_NETNS_PREFIX=rbt RESBUS_NETNS_STATE="$RB_TMP/netns" \
    "$D/livecheck" 2>/dev/null || rb_fail "livecheck of $ns failed"

rb_resbus ticket-close "$id" || rb_fail "ticket-close $id failed ($?)"
# Once resbus counts the resource as ended (its cmd_delete has finished),
# nothing of it is left.
RB_MAINT=$RESBUS_BUILDDIR/resbus-maint
ended() {
	[ -z "$(timeout -k 5 60 "$RB_MAINT" --config-dir "$RB_CONF" \
	    resource-list | grep ' pool=netns ')" ]
}
rb_wait_for "the resource of $ns to end" 60 ended
ip netns list | awk '{ print $1 }' | grep -qx "$ns" && rb_fail "namespace $ns is left"
ip link show "rbth${ns#rbt-}" >/dev/null 2>&1 && rb_fail "host interface of $ns is left"
[ -e "$RB_TMP/netns/$ns" ] && rb_fail "state file of $ns is left"
rb_done
