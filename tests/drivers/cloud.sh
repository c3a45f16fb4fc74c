#!/bin/bash
# The cloud drivers (aws, openstack, kubernetes, podman, libvirt) and the
# wait-for-ssh helper, each run against a fake of its CLI on PATH: a shell
# script named like the real tool (a fake aws CLI, a fake openstack CLI, a
# fake kubectl, a fake podman, a fake virsh and virt-install) that records
# its arguments to a file and prints canned output.  The test checks the
# calls each driver made and what it printed.  No real cloud, cluster or
# hypervisor is ever contacted: the fakes come first on PATH and the test
# fails if a name resolves anywhere else.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

SRC=${RESBUS_SRCDIR:?run via make check}
D=$SRC/drivers
T=$(mktemp -d "${TMPDIR:-/tmp}/resbus-test-cloud.XXXXXX") || exit 1
FAILS=0
CHECKS=0
trap '[ "$FAILS" -eq 0 ] && rm -rf "$T"' EXIT

fail() {
	echo "FAIL: cloud: $*" >&2
	FAILS=$((FAILS + 1))
}
ok() {
	CHECKS=$((CHECKS + 1))
}
# until_true SECONDS CMD...: runs CMD every POLL_S seconds until it
# succeeds (status 0) or SECONDS pass (status 1).
POLL_S=0.1
until_true() {
	local end=$(($(date +%s) + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep "$POLL_S"
	done
}
# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then ok; else fail "$1: expected '$2', got '$3'"; fi
}
# called WHAT FIXED_STRING: a recorded call contains the string
called() {
	if grep -qF -- "$2" "$T/calls"; then ok; else
		fail "$1: no call with '$2'; calls were:"
		sed 's/^/    /' "$T/calls" >&2
	fi
}
not_called() {
	if grep -qF -- "$2" "$T/calls"; then
		fail "$1: unexpected call with '$2'"
		sed 's/^/    /' "$T/calls" >&2
	else ok; fi
}
reset() {
	: >"$T/calls"
}
b64() {
	printf '%s' "$1" | base64 -w0
}

mkdir -p "$T/bin"
export PATH="$T/bin:$PATH"
export FAKE_CALLS=$T/calls
# Nothing that could point a real client anywhere.
export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent
export KUBECONFIG=/nonexistent OS_CLOUD='' LIBVIRT_DEFAULT_URI=test:///nowhere
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY OS_AUTH_URL

# Every fake starts by recording "tool [arg] [arg]...".
fake() {
	{
		echo '#!/bin/sh'
		echo "# A fake $1 for the resbus driver tests: records, prints canned output."
		# shellcheck disable=SC2016
		echo '{ printf "%s" "${0##*/}"; printf " [%s]" "$@"; echo; } >>"$FAKE_CALLS"'
		cat
	} >"$T/bin/$1"
	chmod +x "$T/bin/$1"
	[ "$(command -v "$1")" = "$T/bin/$1" ] || fail "the fake $1 is not first on PATH"
}

# ---- fake aws CLI ------------------------------------------------------------
fake aws <<'EOF'
args=" $* "
case $args in
*" run-instances "*) echo i-0abc123 ;;
*" wait instance-running "*) [ "${FAKE_AWS_WAIT_FAIL:-0}" = 1 ] && exit 255; exit 0 ;;
*" terminate-instances "*) echo '{"TerminatingInstances": []}' ;;
*" describe-instances "*"--instance-ids "*"PrivateIpAddress"*) echo 10.1.2.3 ;;
*" describe-instances "*"--instance-ids "*"State.Name"*) echo "${FAKE_AWS_STATE:-running}" ;;
*" describe-instances "*"Name=tag:Name,Values=aws_orphan "*) printf 'i-0def456\n' ;;
*" describe-instances "*"Name=tag:Name,Values="*) : ;;
*" describe-instances "*"Tags"*) printf 'aws_7_x\taws_8_y\n' ;;
*) echo "fake aws: unexpected call: $*" >&2; exit 2 ;;
esac
EOF

export RESALLOC_POOL_ID=awspool RESBUS_AWS_IMAGE=ami-123
reset
out=$(RESALLOC_NAME=aws_7_x RESBUS_AWS_PRINT_ID=1 RESBUS_AWS_KEY_NAME=builder \
    "$D/aws/new" 2>"$T/err") || fail "aws new exited $?: $(cat "$T/err")"
expect_eq "aws new output" "10.1.2.3
id=i-0abc123" "$out"
called "aws new" "aws [ec2] [run-instances] [--count] [1] [--image-id] [ami-123] [--instance-type] [t3.small] [--tag-specifications] [ResourceType=instance,Tags=[{Key=Name,Value=aws_7_x},{Key=resbus-pool,Value=awspool}]] [--key-name] [builder]"
called "aws new waits" "[ec2] [wait] [instance-running] [--instance-ids] [i-0abc123]"
not_called "aws new" "terminate-instances"

reset
out=$(RESALLOC_NAME=aws_7_x "$D/aws/new" 2>"$T/err") || fail "aws new exited $?"
expect_eq "aws new output without the id" "10.1.2.3" "$out"

# A start that never becomes usable terminates what it made.
reset
if RESALLOC_NAME=aws_7_x FAKE_AWS_WAIT_FAIL=1 "$D/aws/new" >"$T/out" 2>"$T/err"; then
	fail "aws new succeeded although the instance never ran"
else ok; fi
called "aws new clean-up" "[ec2] [terminate-instances] [--instance-ids] [i-0abc123]"
expect_eq "aws new output on failure" "" "$(cat "$T/out")"

# delete: the id decoded from RESALLOC_RESOURCE_DATA, no look-up.
reset
RESALLOC_NAME=aws_7_x RESALLOC_RESOURCE_DATA=$(b64 "10.1.2.3
id=i-0abc123
") "$D/aws/delete" 2>"$T/err" || fail "aws delete exited $?: $(cat "$T/err")"
called "aws delete" "aws [ec2] [terminate-instances] [--instance-ids] [i-0abc123]"
not_called "aws delete with data" "describe-instances"

# An orphan delete knows only the name: found by its tags.
reset
RESALLOC_ID=0 RESALLOC_NAME=aws_orphan "$D/aws/delete" 2>"$T/err" ||
    fail "aws orphan delete exited $?: $(cat "$T/err")"
called "aws orphan delete looks up" "[Name=tag:Name,Values=aws_orphan] [Name=tag:resbus-pool,Values=awspool]"
called "aws orphan delete" "[ec2] [terminate-instances] [--instance-ids] [i-0def456]"

# Nothing to delete is success, and terminates nothing.
reset
RESALLOC_NAME=aws_gone RESALLOC_RESOURCE_DATA=$(b64 "10.9.9.9") "$D/aws/delete" 2>"$T/err" ||
    fail "aws delete of nothing exited $?"
not_called "aws delete of nothing" "terminate-instances"

reset
out=$("$D/aws/list" 2>"$T/err") || fail "aws list exited $?"
expect_eq "aws list" "aws_7_x
aws_8_y" "$out"
called "aws list filters the pool" "[Name=tag:resbus-pool,Values=awspool]"

reset
RESALLOC_NAME=aws_7_x RESALLOC_RESOURCE_DATA=$(b64 "10.1.2.3
id=i-0abc123") "$D/aws/livecheck" 2>/dev/null || fail "aws livecheck of a running instance failed"
if RESALLOC_NAME=aws_7_x FAKE_AWS_STATE=stopped RESALLOC_RESOURCE_DATA=$(b64 "id=i-0abc123") \
    "$D/aws/livecheck" 2>/dev/null; then
	fail "aws livecheck of a stopped instance succeeded"
else ok; fi
unset RESBUS_AWS_IMAGE

# ---- fake openstack CLI ------------------------------------------------------
fake openstack <<'EOF'
args=" $* "
case $args in
*" server create "*) echo 7d1c6a4e-0000-4000-8000-000000000001 ;;
*" server show "*"os_gone "*) echo "No server with a name or ID of 'os_gone' exists." >&2; exit 1 ;;
*" server show "*" status "*) echo "${FAKE_OS_STATUS:-ACTIVE}" ;;
*" server show "*" addresses "*) echo "{'private': ['fd00::5', '192.168.42.7']}" ;;
*" server show "*" id "*) echo 7d1c6a4e-0000-4000-8000-000000000001 ;;
*" server delete "*) : ;;
*" server list "*) printf 'os_1_a\nos_2_b\n' ;;
*) echo "fake openstack: unexpected call: $*" >&2; exit 2 ;;
esac
EOF
export RESALLOC_POOL_ID=ospool RESBUS_OPENSTACK_IMAGE=fedora-40 RESBUS_OPENSTACK_FLAVOR=m1.large
reset
out=$(RESALLOC_NAME=os_1_a RESBUS_OPENSTACK_NETWORK=private RESBUS_OPENSTACK_PRINT_ID=1 \
    "$D/openstack/new" 2>"$T/err") || fail "openstack new exited $?: $(cat "$T/err")"
expect_eq "openstack new output" "192.168.42.7
id=7d1c6a4e-0000-4000-8000-000000000001" "$out"
called "openstack new" "openstack [server] [create] [--image] [fedora-40] [--flavor] [m1.large] [--property] [resbus-pool=ospool] [--wait]"
called "openstack new network and name" "[--network] [private] [os_1_a]"
reset
if RESALLOC_NAME=os_1_a FAKE_OS_STATUS=ERROR "$D/openstack/new" >/dev/null 2>&1; then
	fail "openstack new succeeded with a server in ERROR"
else ok; fi
called "openstack new clean-up" "[server] [delete] [7d1c6a4e-0000-4000-8000-000000000001]"
reset
RESALLOC_NAME=os_1_a RESALLOC_RESOURCE_DATA=$(b64 "192.168.42.7
id=7d1c6a4e-0000-4000-8000-000000000001") "$D/openstack/delete" 2>/dev/null ||
    fail "openstack delete exited $?"
called "openstack delete by the id in the data" "openstack [server] [delete] [--wait] [7d1c6a4e-0000-4000-8000-000000000001]"
reset
RESALLOC_ID=0 RESALLOC_NAME=os_orphan "$D/openstack/delete" 2>/dev/null ||
    fail "openstack orphan delete exited $?"
called "openstack orphan delete by name" "openstack [server] [delete] [--wait] [os_orphan]"
reset
RESALLOC_NAME=os_gone "$D/openstack/delete" 2>/dev/null || fail "openstack delete of nothing failed"
not_called "openstack delete of nothing" "[server] [delete]"
out=$("$D/openstack/list" 2>/dev/null) || fail "openstack list exited $?"
expect_eq "openstack list" "os_1_a
os_2_b" "$out"
called "openstack list filters the pool" "[server] [list] [--property] [resbus-pool=ospool]"
RESALLOC_NAME=os_1_a "$D/openstack/livecheck" 2>/dev/null || fail "openstack livecheck of an ACTIVE server failed"
if RESALLOC_NAME=os_1_a FAKE_OS_STATUS=SHUTOFF "$D/openstack/livecheck" 2>/dev/null; then
	fail "openstack livecheck of a SHUTOFF server succeeded"
else ok; fi
unset RESBUS_OPENSTACK_IMAGE RESBUS_OPENSTACK_FLAVOR

# ---- fake kubectl --------------------------------------------------------------
fake kubectl <<'EOF'
args=" $* "
case $args in
*" run "*) echo "pod/$3 created" ;;
*" wait "*) [ "${FAKE_K8S_READY:-1}" = 1 ] || exit 1; echo condition met ;;
*" get pod "*"podIP"*) echo 10.244.1.17 ;;
*" get pod "*"phase"*) echo "${FAKE_K8S_PHASE:-Running}" ;;
*" get pods "*) printf 'k8s_1_A\nk8s_2_b\n' ;;
*" delete pod "*) echo deleted ;;
*) echo "fake kubectl: unexpected call: $*" >&2; exit 2 ;;
esac
EOF
export RESALLOC_POOL_ID=k8spool RESBUS_K8S_IMAGE=quay.io/fedora/fedora:40
reset
out=$(RESALLOC_NAME=k8s_1_A RESBUS_K8S_NAMESPACE=builders "$D/kubernetes/new" 2>"$T/err") ||
    fail "kubernetes new exited $?: $(cat "$T/err")"
expect_eq "kubernetes new output" "10.244.1.17" "$out"
called "kubernetes new" "kubectl [--namespace] [builders] [run] [k8s-1-a] [--image] [quay.io/fedora/fedora:40] [--restart] [Never] [--labels] [resbus-pool=k8spool,app.kubernetes.io/managed-by=resbus] [--annotations] [resbus-name=k8s_1_A] [--command] [--] [sleep] [infinity]"
called "kubernetes new waits" "[wait] [--for] [condition=Ready] [pod/k8s-1-a]"
reset
if RESALLOC_NAME=k8s_1_A FAKE_K8S_READY=0 "$D/kubernetes/new" >/dev/null 2>&1; then
	fail "kubernetes new succeeded with a pod never ready"
else ok; fi
called "kubernetes new clean-up" "kubectl [delete] [pod] [k8s-1-a] [--ignore-not-found]"
reset
RESALLOC_ID=0 RESALLOC_NAME=k8s_1_A "$D/kubernetes/delete" 2>/dev/null || fail "kubernetes delete exited $?"
called "kubernetes delete" "kubectl [delete] [pod] [k8s-1-a] [--ignore-not-found] [--wait=false]"
out=$("$D/kubernetes/list" 2>/dev/null) || fail "kubernetes list exited $?"
expect_eq "kubernetes list" "k8s_1_A
k8s_2_b" "$out"
called "kubernetes list selects the pool" "[get] [pods] [--selector] [resbus-pool=k8spool]"
RESALLOC_NAME=k8s_1_A "$D/kubernetes/livecheck" 2>/dev/null || fail "kubernetes livecheck of a Running pod failed"
if RESALLOC_NAME=k8s_1_A FAKE_K8S_PHASE=Failed "$D/kubernetes/livecheck" 2>/dev/null; then
	fail "kubernetes livecheck of a Failed pod succeeded"
else ok; fi
unset RESBUS_K8S_IMAGE

# ---- fake podman ---------------------------------------------------------------
fake podman <<'EOF'
args=" $* "
case $args in
*" run "*) echo 4f2a9c0d1e3b ;;
*" inspect "*"State.Running"*) echo "${FAKE_PODMAN_RUNNING:-true}" ;;
*" inspect "*"IPAddress"*) echo "10.88.0.12 " ;;
*" rm "*) echo "$6" ;;
*" ps "*) printf 'pm_1_x\npm_2_y\n' ;;
*) echo "fake podman: unexpected call: $*" >&2; exit 2 ;;
esac
EOF
export RESALLOC_POOL_ID=pmpool RESBUS_PODMAN_IMAGE=registry.fedoraproject.org/fedora:40
reset
out=$(RESALLOC_NAME='pm_1_x' "$D/podman/new" 2>"$T/err") || fail "podman new exited $?: $(cat "$T/err")"
expect_eq "podman new output" "10.88.0.12" "$out"
called "podman new" "podman [run] [--detach] [--name] [pm_1_x] [--label] [resbus.pool=pmpool] [--label] [resbus.name=pm_1_x] [registry.fedoraproject.org/fedora:40] [sleep] [infinity]"
reset
if RESALLOC_NAME=pm_1_x FAKE_PODMAN_RUNNING=false "$D/podman/new" >/dev/null 2>&1; then
	fail "podman new succeeded with a stopped container"
else ok; fi
called "podman new clean-up" "podman [rm] [--force] [--ignore] [pm_1_x]"
reset
RESALLOC_NAME='pm 3/z' "$D/podman/delete" 2>/dev/null || fail "podman delete exited $?"
called "podman delete (sanitized name)" "podman [rm] [--force] [--ignore] [--time] [10] [pm-3-z]"
out=$("$D/podman/list" 2>/dev/null) || fail "podman list exited $?"
expect_eq "podman list" "pm_1_x
pm_2_y" "$out"
called "podman list filters the pool" "[ps] [--all] [--filter] [label=resbus.pool=pmpool]"
RESALLOC_NAME=pm_1_x "$D/podman/livecheck" 2>/dev/null || fail "podman livecheck of a running container failed"
if RESALLOC_NAME=pm_1_x FAKE_PODMAN_RUNNING=false "$D/podman/livecheck" 2>/dev/null; then
	fail "podman livecheck of a stopped container succeeded"
else ok; fi
unset RESBUS_PODMAN_IMAGE

# ---- fake virsh and virt-install -------------------------------------------------
fake virt-install <<'EOF'
[ "${FAKE_VIRT_INSTALL_FAIL:-0}" = 1 ] && exit 1
echo "Domain creation completed."
EOF
fake virsh <<'EOF'
[ "$1" = --connect ] && shift 2
case $1 in
domifaddr)
	printf ' Name       MAC address          Protocol     Address\n'
	printf -- '-------------------------------------------------------------------------------\n'
	printf ' vnet3      52:54:00:aa:bb:cc    ipv4         192.168.122.45/24\n' ;;
dominfo) [ "$2" = lv_gone ] && exit 1; echo "Name: $2" ;;
domstate) echo "${FAKE_VIRSH_STATE:-running}" ;;
destroy|undefine) echo "Domain '$2' $1ed" ;;
list) printf 'lv_1_a\nother_vm\nlv_2_b\n\n' ;;
desc) case $2 in lv_*) echo "resbus-pool=lvpool" ;; *) echo "" ;; esac ;;
*) echo "fake virsh: unexpected call: $*" >&2; exit 2 ;;
esac
EOF
export RESALLOC_POOL_ID=lvpool RESBUS_LIBVIRT_IMAGE=/var/lib/images/f40.qcow2
export RESBUS_LIBVIRT_DISK_DIR=$T/disks
mkdir -p "$T/disks"
reset
out=$(RESALLOC_NAME=lv_1_a RESBUS_LIBVIRT_URI=qemu:///system "$D/libvirt/new" 2>"$T/err") ||
    fail "libvirt new exited $?: $(cat "$T/err")"
expect_eq "libvirt new output" "192.168.122.45" "$out"
called "libvirt new" "virt-install [--connect] [qemu:///system] [--name] [lv_1_a] [--memory] [2048] [--vcpus] [2] [--import] [--disk] [path=$T/disks/lv_1_a.qcow2,format=qcow2,backing_store=/var/lib/images/f40.qcow2,backing_format=qcow2,size=20]"
called "libvirt new tags the pool" "[--metadata] [description=resbus-pool=lvpool]"
called "libvirt new asks for the address" "virsh [--connect] [qemu:///system] [domifaddr] [lv_1_a]"
reset
if RESALLOC_NAME=lv_1_a FAKE_VIRT_INSTALL_FAIL=1 "$D/libvirt/new" >/dev/null 2>&1; then
	fail "libvirt new succeeded although virt-install failed"
else ok; fi
called "libvirt new clean-up" "virsh [undefine] [lv_1_a] [--remove-all-storage]"
reset
touch "$T/disks/lv_1_a.qcow2"
RESALLOC_NAME=lv_1_a "$D/libvirt/delete" 2>/dev/null || fail "libvirt delete exited $?"
called "libvirt delete destroys" "virsh [destroy] [lv_1_a]"
called "libvirt delete undefines" "virsh [undefine] [lv_1_a] [--remove-all-storage]"
[ ! -e "$T/disks/lv_1_a.qcow2" ] && ok || fail "libvirt delete left the overlay disk"
reset
RESALLOC_NAME=lv_gone "$D/libvirt/delete" 2>/dev/null || fail "libvirt delete of nothing failed"
not_called "libvirt delete of nothing" "[undefine]"
if RESALLOC_NAME='../etc' "$D/libvirt/delete" 2>/dev/null; then
	fail "libvirt delete took the name '../etc'"
else ok; fi
out=$("$D/libvirt/list" 2>/dev/null) || fail "libvirt list exited $?"
expect_eq "libvirt list (only the pool's domains)" "lv_1_a
lv_2_b" "$out"
RESALLOC_NAME=lv_1_a "$D/libvirt/livecheck" 2>/dev/null || fail "libvirt livecheck of a running domain failed"
if RESALLOC_NAME=lv_1_a FAKE_VIRSH_STATE='shut off' "$D/libvirt/livecheck" 2>/dev/null; then
	fail "libvirt livecheck of a shut-off domain succeeded"
else ok; fi

# ---- wait-for-ssh ----------------------------------------------------------------
# A closed port on 127.0.0.1: gives up after its timeout, with status 1.
port=$((39000 + RANDOM % 1000))
while [ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]; do port=$((port + 1)); done
s=$(date +%s)
if "$D/helpers/wait-for-ssh" --timeout 2 --interval 1 --port "$port" 127.0.0.1 2>/dev/null; then
	fail "wait-for-ssh succeeded on closed port $port"
else
	rc=$?
	expect_eq "wait-for-ssh status on timeout" 1 "$rc"
fi
el=$(($(date +%s) - s))
[ "$el" -ge 2 ] && [ "$el" -le 6 ] && ok || fail "wait-for-ssh --timeout 2 took ${el}s"
"$D/helpers/wait-for-ssh" --timeout x 127.0.0.1 2>/dev/null
expect_eq "wait-for-ssh bad usage status" 2 "$?"
# A server sending an SSH greeting, started a second after the helper.
if command -v python3 >/dev/null 2>&1; then
	"$D/helpers/wait-for-ssh" --timeout 20 --interval 1 --port "$port" 127.0.0.1 2>"$T/ssh.err" &
	wpid=$!
	# Once it has tried and failed: it sleeps before its next attempt.
	if ! until_true 30 pgrep -P "$wpid" -x sleep; then
		fail "wait-for-ssh made no first attempt within 30 s"
	fi
	timeout 20 python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(5)
while True:
    c, _ = s.accept()
    c.sendall(b"SSH-2.0-resbus-test\r\n")
    c.close()
' "$port" &
	spid=$!
	wait "$wpid"
	expect_eq "wait-for-ssh status once SSH answers" 0 "$?"
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
else
	echo "cloud: no python3, the wait-for-ssh success case is not run" >&2
fi

echo "cloud: $CHECKS checks passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
