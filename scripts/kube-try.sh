#!/usr/bin/env bash
# Weir on a real single-node Kubernetes cluster on this machine, in one command (as root):
#
#   scripts/kube-try.sh [<dir>]    (default <dir>: a new folder under /tmp)
#
# It starts the node (scripts/kube-node.sh), installs the Flink Kubernetes Operator
# (scripts/kube-operator.sh) and Weir's Flink image, starts Weir's Kafka broker and an
# S3-compatible store (scripts/s3proxy.sh) on the node IP, applies deploy/namespace.yaml
# and deploy/rbac.yaml, and runs the gateway in the foreground (`npm start`) with
# WEIR_RUNTIME=kubernetes and the gateway ServiceAccount's permissions only. Activations
# then run as pods of the operator. Ctrl-C stops the gateway and everything the script
# started, and the node cleans up after itself.
#
# Previews are off by default (WEIR_PREVIEW_POOL_SIZE=0: they answer UNAVAILABLE): the
# preview session cluster with 2 idle TaskManager pods asks for the node's 2 CPUs, so no
# job would run beside it. WEIR_PREVIEW_POOL_SIZE=2 turns them on (the gateway reaches the
# session cluster through k8s/node/preview-access.yaml's Services).
#
# Environment: PORT (default 4000), WEIR_PREVIEW_POOL_SIZE (default 0), WEIR_CACHE_DIR
# (builds, as the other scripts).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=kube-try
# shellcheck source=scripts/kube-lib.sh
source "$ROOT/scripts/kube-lib.sh"

[ "$(id -u)" -eq 0 ] || die "the node needs root (network, cgroups, mounts)"
dir="${1:-$(mktemp -d /tmp/weir-try.XXXXXX)}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
started="$(now_ms)"
log "working in $dir (node, Kafka, object store and gateway data)"

stop_everything() {
  local status=$?
  trap - EXIT INT TERM
  log "stopping what was started in $dir"
  [ -d "$dir/kafka" ] && (cd "$ROOT" && npx tsx scripts/kafka-broker.ts stop "$dir/kafka") || true
  [ -d "$dir/s3" ] && bash "$ROOT/scripts/s3proxy.sh" stop "$dir/s3" || true
  [ -d "$dir/node" ] && bash "$ROOT/scripts/kube-node.sh" stop "$dir/node" || true
  exit "$status"
}
trap stop_everything EXIT
trap 'exit 130' INT TERM

log "building what is missing (cached; the first time takes a while)"
bash "$ROOT/scripts/kube-node.sh" build >/dev/null
read -r _ image_tar image_ref < <(bash "$ROOT/scripts/kube-images.sh" build flink)

log "starting the node"
mkdir -p "$dir/node"
bash "$ROOT/scripts/kube-node.sh" start "$dir/node" >/dev/null
env_value() { sed -n "s/^$1=//p" "$2"; }
node_ip="$(env_value NODE_IP "$dir/node/env")"
kubectl=("$(env_value KUBECTL "$dir/node/env")" --kubeconfig "$dir/node/kubeconfig")

log "installing the operator and Weir's Flink image"
bash "$ROOT/scripts/kube-operator.sh" install "$dir/node"
bash "$ROOT/scripts/kube-node.sh" import "$dir/node" "$image_tar"

log "starting Kafka and the object store on $node_ip"
mkdir -p "$dir/kafka" "$dir/s3"
(cd "$ROOT" && npx tsx scripts/kafka-broker.ts start "$dir/kafka" "$node_ip") >"$dir/kafka.env"
bash "$ROOT/scripts/s3proxy.sh" start "$dir/s3" "$node_ip" >/dev/null

log "applying deploy/namespace.yaml and deploy/rbac.yaml; the gateway acts as their ServiceAccount"
"${kubectl[@]}" apply --server-side -f "$ROOT/deploy/namespace.yaml" -f "$ROOT/deploy/rbac.yaml" \
  -f "$ROOT/k8s/node/preview-access.yaml" >/dev/null
token="$("${kubectl[@]}" -n weir-system create token weir-gateway --duration 24h)"
APISERVER_URL="$(env_value APISERVER_URL "$dir/node/env")"
CA_FILE="$(env_value CA_FILE "$dir/node/env")"
write_kubeconfig "$dir/gateway.kubeconfig" weir-node weir-gateway "$token"
chmod 600 "$dir/gateway.kubeconfig"

kafka_bootstrap="$(env_value KAFKA_BOOTSTRAP "$dir/kafka.env")"
s3_endpoint="$(env_value S3_ENDPOINT "$dir/s3/env")"
apiserver_port="${APISERVER_URL##*:}"
export WEIR_RUNTIME=kubernetes
export WEIR_DATA_DIR="$dir/gateway"
export WEIR_K8S_KUBECONFIG="$dir/gateway.kubeconfig"
export WEIR_K8S_FLINK_IMAGE="$image_ref"
export WEIR_K8S_STORAGE_DIR="s3://$(env_value S3_BUCKET "$dir/s3/env")"
export WEIR_K8S_FLINK_CONFIG="{\"s3.endpoint\":\"$s3_endpoint\",\"s3.path.style.access\":\"true\",\"s3.access-key\":\"$(env_value S3_ACCESS_KEY "$dir/s3/env")\",\"s3.secret-key\":\"$(env_value S3_SECRET_KEY "$dir/s3/env")\"}"
export WEIR_K8S_KAFKA_BOOTSTRAP="$kafka_bootstrap"
export WEIR_K8S_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT
export WEIR_K8S_KAFKA_SASL_MECHANISM=PLAIN
export WEIR_K8S_KAFKA_USERNAME="$(env_value KAFKA_USERNAME "$dir/kafka.env")"
export WEIR_K8S_KAFKA_PASSWORD="$(env_value KAFKA_PASSWORD "$dir/kafka.env")"
export WEIR_K8S_EGRESS="[{\"cidr\":\"$node_ip/32\",\"ports\":[${kafka_bootstrap##*:},${s3_endpoint##*:},$apiserver_port]},{\"cidr\":\"198.19.0.1/32\",\"ports\":[443]}]"
export WEIR_K8S_PREVIEW_JOBMANAGER_URL=http://198.19.15.81:8081 # k8s/node/preview-access.yaml
export WEIR_K8S_PREVIEW_GATEWAY_URL=http://198.19.15.83:8083
export WEIR_PREVIEW_POOL_SIZE="${WEIR_PREVIEW_POOL_SIZE:-0}"
log "ready in $(since "$started"); the gateway follows (Ctrl-C stops everything)"
cd "$ROOT"
npm start
