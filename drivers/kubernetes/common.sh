# resbus kubernetes driver: what new, delete, list and livecheck share.
# Sourced (POSIX sh), never run.
# shellcheck shell=sh disable=SC2034,SC2154 # used and set by the sourcing scripts
#
# A resource is one pod, named after RESALLOC_NAME made a DNS label
# (lower case, "-" for anything else, at most 63 characters), labelled
# resbus-pool=<pool> and annotated resbus-name=<RESALLOC_NAME>.  The
# cluster and the credentials are kubectl's own: the worker host's
# kubeconfig (KUBECONFIG, ~/.kube/config) or RESBUS_K8S_CONTEXT.

kubectl_cmd=${RESBUS_K8S_CLI:-kubectl}

die() {
	echo "kubernetes/$prog: $*" >&2
	exit 1
}

# kubectl with the configured context and namespace.
kc() {
	if [ -n "${RESBUS_K8S_CONTEXT:-}" ]; then
		set -- --context "$RESBUS_K8S_CONTEXT" "$@"
	fi
	if [ -n "${RESBUS_K8S_NAMESPACE:-}" ]; then
		set -- --namespace "$RESBUS_K8S_NAMESPACE" "$@"
	fi
	"$kubectl_cmd" "$@"
}

# A DNS label (RFC 1123) from $1.
dns_label() {
	printf '%s' "$1" | tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9-]/-/g' \
	    -e 's/^-*//' | cut -c 1-63 | sed -e 's/-*$//'
}
