# resbus libvirt driver: what new, delete, list and livecheck share.
# Sourced (POSIX sh), never run.
# shellcheck shell=sh disable=SC2034,SC2154 # used and set by the sourcing scripts
#
# A resource is one domain named RESALLOC_NAME whose description is
# "resbus-pool=<pool>", booted from a copy-on-write overlay
# RESBUS_LIBVIRT_DISK_DIR/<name>.qcow2 of the image RESBUS_LIBVIRT_IMAGE.
# The hypervisor is RESBUS_LIBVIRT_URI (else libvirt's own default,
# LIBVIRT_DEFAULT_URI); its access rights are the worker host's.

virsh_cmd=${RESBUS_LIBVIRT_VIRSH:-virsh}
virt_install_cmd=${RESBUS_LIBVIRT_VIRT_INSTALL:-virt-install}
disk_dir=${RESBUS_LIBVIRT_DISK_DIR:-/var/lib/libvirt/images}

die() {
	echo "libvirt/$prog: $*" >&2
	exit 1
}

vsh() {
	if [ -n "${RESBUS_LIBVIRT_URI:-}" ]; then
		"$virsh_cmd" --connect "$RESBUS_LIBVIRT_URI" "$@"
	else
		"$virsh_cmd" "$@"
	fi
}

check_name() {
	case $1 in
	'' | *[!A-Za-z0-9_.:-]* | .*)
		die "bad domain name '$1'"
		;;
	esac
}
