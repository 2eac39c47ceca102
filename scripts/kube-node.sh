#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, built from source modules and
# Debian packages: the control plane of scripts/kube-testenv.sh (etcd, kube-apiserver,
# kube-controller-manager with every controller) plus kube-scheduler, containerd + runc,
# kubelet, kube-proxy (iptables), the bridge CNI, CoreDNS, and kube-router's NetworkPolicy
# controller (iptables + ipset) as the NetworkPolicy enforcer.
#
#   scripts/kube-node.sh build          build (or reuse) the binaries and images
#   scripts/kube-node.sh start <dir>    start a cluster in <dir>; waits until the node is
#                                       Ready and a pod resolves kubernetes.default.svc;
#                                       prints <dir>/env
#   scripts/kube-node.sh stop <dir>     stop it and remove everything it made outside <dir>:
#                                       processes, containers, mounts, cgroups, network
#                                       namespaces, links, iptables and nftables rules, sysctls
#   scripts/kube-node.sh status <dir>   show which of its processes are alive
#   scripts/kube-node.sh import <dir> <image.tar>   import an image into the node's containerd
#
# One node per machine (it owns host-wide things: iptables, cgroups, the bridge), so a
# start refuses while another node runs. It needs root. Addresses stay inside 198.18.0.0/15
# (reserved for benchmarking): node 198.19.255.1 on a link of its own, pods 198.18.0.0/16,
# services 198.19.0.0/20, cluster DNS 198.19.0.10.
#
# Environment: WEIR_CACHE_DIR, WEIR_KUBE_BUILD_JOBS, WEIR_KUBE_START_TIMEOUT and
# WEIR_KUBE_CRD_DIR as for scripts/kube-testenv.sh; all of the operator's CRDs are installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE_DIR="$ROOT/k8s/testenv"
CACHE_ROOT="${WEIR_CACHE_DIR:-$ROOT/.cache}"
START_TIMEOUT="${WEIR_KUBE_START_TIMEOUT:-90}"
BUILD_JOBS="${WEIR_KUBE_BUILD_JOBS:-$(nproc)}"
PORT_LOCKS="${TMPDIR:-/tmp}/weir-kube-testenv-ports"
TESTENV="$ROOT/scripts/kube-testenv.sh"
LOG_TAG=kube-node
# shellcheck source=scripts/kube-lib.sh
. "$ROOT/scripts/kube-lib.sh"

# The node's processes, in stop order; the control plane is kube-testenv's.
COMPONENTS=(kube-router kube-proxy kubelet kube-scheduler containerd)

NODE_NAME=weir-node
NODE_LINK=weir-node0
NODE_IP=198.19.255.1
POD_CIDR=198.18.0.0/16
POD_GATEWAY=198.18.0.1
BRIDGE=weir-cni0
CLUSTER_DNS=198.19.0.10
SERVICE_CIDR=198.19.0.0/20
CGROUP_ROOT=weir-node
# Held (as a file naming the cluster's dir) while a node runs on this machine.
ACTIVE_FILE=/run/weir-kube-node.active

COREDNS_MODULE=github.com/coredns/coredns
COREDNS_VERSION=v1.14.2
# Only its NetworkPolicy controller runs (--run-firewall): kube-network-policies needs the
# nftables `queue` expression, which this machine's kernel lacks, and the advisory against
# v2.1.0 (GHSA-phqm-jgc3-qf8g) concerns its service proxy, which stays off.
KUBE_ROUTER_MODULE=github.com/cloudnativelabs/kube-router/v2
KUBE_ROUTER_VERSION=v2.1.0
NODE_TARGETS=(k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-scheduler
  k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
BUILD_GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
DEBIAN_PACKAGES=(containerd runc containernetworking-plugins iptables ipset nftables conntrack
  busybox-static iproute2 util-linux)

# Host settings a node needs, restored by stop to what they were before start.
SYSCTLS=(net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  vm.overcommit_memory=1 kernel.panic=10 kernel.panic_on_oops=1)

# ---------------------------------------------------------------------------- build

cache_key() {
  {
    cat "$MODULE_DIR/go.mod" "$MODULE_DIR/go.sum" "$ROOT/k8s/node/pause.c" "$ROOT/scripts/oci-image.mjs"
    go version
    gcc --version | sed -n 1p
    printf '%s\n' "$BUILD_GOFLAGS" "$COREDNS_VERSION" "$KUBE_ROUTER_VERSION" "$(kube_ldflags "$(kube_version)")"
  } | sha256sum | cut -c1-16
}

kube_version() { (cd "$MODULE_DIR" && go list -m -f '{{.Version}}' k8s.io/kubernetes); }
build_dir() { printf '%s/kube-node/%s' "$CACHE_ROOT" "$(cache_key)"; }
IMAGES=(pause busybox coredns)
have_build() {
  local b
  for b in kubelet kube-scheduler kube-proxy kubectl coredns kube-router pause; do
    [ -x "$1/bin/$b" ] || return 1
  done
  for b in "${IMAGES[@]}"; do [ -s "$1/images/$b.tar" ] || return 1; done
}

image_ref() {
  case "$1" in
    pause) echo weir.local/pause:1 ;;
    busybox) echo weir.local/busybox:1 ;;
    coredns) echo "weir.local/coredns:$COREDNS_VERSION" ;;
  esac
}

# build_image <out dir> <name>: a one-layer image of a static binary (and busybox for
# the test image), owned by root, run as the user its pod spec names.
build_image() {
  local out="$1" name="$2" rootfs="$1/rootfs-$2"
  rm -rf "$rootfs"; mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  printf 'root:x:0:0:root:/:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/bin/sh\nflink:x:9999:9999:flink:/:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\nflink:x:9999:\n' >"$rootfs/etc/group"
  local entrypoint
  case "$name" in
    pause) cp "$out/bin/pause" "$rootfs/bin/pause"; entrypoint='["/bin/pause"]' ;;
    busybox)
      cp /bin/busybox "$rootfs/bin/busybox"
      local applet
      for applet in sh cat echo ls nc nslookup ping sleep wget id; do ln -s busybox "$rootfs/bin/$applet"; done
      entrypoint='["/bin/sh"]' ;;
    coredns) cp "$out/bin/coredns" "$rootfs/bin/coredns"; entrypoint='["/bin/coredns"]' ;;
  esac
  node "$ROOT/scripts/oci-image.mjs" --layer "$rootfs" --ref "$(image_ref "$name")" \
    --out "$out/images/$name.tar" --entrypoint "$entrypoint" >&2
  rm -rf "$rootfs"
}

cmd_build() {
  command -v go >/dev/null || die "go not found (Go 1.26 or newer is needed)"
  need gcc gcc; need node nodejs
  local out; out="$(build_dir)"
  if have_build "$out"; then
    touch "$out"
    log "cached: $out"
    printf '%s\n' "$out"
    return
  fi
  if ! with_build_lock "$out" have_build "$out"; then
    log "cached (built by the other run): $out"
    printf '%s\n' "$out"
    return
  fi
  local start tmp version total
  start="$(now_ms)"
  version="$(kube_version)"
  tmp="$out/tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/bin" "$tmp/images"

  total="$(cd "$MODULE_DIR" && GOFLAGS="$BUILD_GOFLAGS" go list -deps "${NODE_TARGETS[@]}" | wc -l)"
  log "building kubelet, kube-scheduler, kube-proxy, kubectl (k8s.io/kubernetes $version): $total packages"
  (
    cd "$MODULE_DIR"
    GOFLAGS="$BUILD_GOFLAGS" go_build_progress "$total" go build -p "$BUILD_JOBS" -v \
      -ldflags "$(kube_ldflags "$version")" -o "$tmp/bin/" "${NODE_TARGETS[@]}"
  ) || die "go build of the node binaries failed after $(since "$start")"

  # Their own modules, at their own released go.mod/go.sum (go install pkg@version), static
  # so that their images hold nothing but the binary.
  log "building CoreDNS $COREDNS_VERSION and kube-router $KUBE_ROUTER_VERSION (Go module proxy)"
  GOBIN="$tmp/bin" CGO_ENABLED=0 go_build_progress "" go install -p "$BUILD_JOBS" -v -trimpath \
    -ldflags "-s -w" "$COREDNS_MODULE@$COREDNS_VERSION" \
    || die "go install $COREDNS_MODULE@$COREDNS_VERSION failed"
  GOBIN="$tmp/bin" CGO_ENABLED=0 go_build_progress "" go install -p "$BUILD_JOBS" -v -trimpath \
    -ldflags "-s -w" "$KUBE_ROUTER_MODULE/cmd/kube-router@$KUBE_ROUTER_VERSION" \
    || die "go install $KUBE_ROUTER_MODULE/cmd/kube-router@$KUBE_ROUTER_VERSION failed"
  gcc -static -O2 -Wall -Wextra -Werror -o "$tmp/bin/pause" "$ROOT/k8s/node/pause.c"
  strip "$tmp/bin/pause"

  local image
  for image in "${IMAGES[@]}"; do build_image "$tmp" "$image"; done
  have_build "$tmp" || die "the build left something out: $(ls "$tmp/bin" "$tmp/images" | tr '\n' ' ')"
  rm -rf "$out/bin" "$out/images"
  mv "$tmp/bin" "$tmp/images" "$out/"
  rmdir "$tmp"
  touch "$out"
  prune_build_cache "$CACHE_ROOT/kube-node" "$out"
  log "built in $(since "$start"): $(cd "$out" && du -sh bin images | awk '{printf "%s %s  ", $2, $1}')"
  printf '%s\n' "$out"
}

# ---------------------------------------------------------------------------- checks

check_host() {
  [ "$(id -u)" -eq 0 ] || die "a node needs root (network, cgroups, mounts)"
  local package missing=()
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] || die "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
  [ -x /usr/lib/cni/bridge ] || die "no CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins)"
  [ -d /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
  [ -d /proc/sys/net/bridge ] || die "bridge netfilter is missing (modprobe br_netfilter)"
  [ -d /sys/fs/cgroup/memory ] || die "no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory"
}

# ---------------------------------------------------------------------------- start

# The cgroup v1 hierarchies (one per controller group), and with `all` also the v2
# `unified` one, where runc puts a container too on a hybrid machine.
cgroup_hierarchies() {
  local d
  for d in /sys/fs/cgroup/*/; do
    d="${d%/}"
    [ -f "$d/cgroup.procs" ] && [ ! -L "$d" ] || continue
    if [ "$(basename "$d")" != unified ] || [ "${1:-}" = all ]; then printf '%s\n' "$d"; fi
  done
}

node_ready() {
  local body
  body="$(api GET "/api/v1/nodes/$NODE_NAME?pretty=false" 2>/dev/null)" || return 1
  grep -qF '"type":"Ready","status":"True"' <<<"$body"
}

containerd_serving() { ctr --address "$1/containerd/containerd.sock" version >/dev/null 2>&1; }

kubectl_() { "$BUILD/bin/kubectl" --kubeconfig "$START_DIR/kubeconfig" "$@"; }

deployment_available() {
  [ "$(kubectl_ -n "$1" get deployment "$2" -o 'jsonpath={.status.availableReplicas}' 2>/dev/null)" = "1" ]
}
# kube-router's filter chains exist once its first full sync is done.
network_policy_synced() { iptables -S KUBE-ROUTER-FORWARD >/dev/null 2>&1; }
pod_succeeded() {
  local phase
  phase="$(kubectl_ -n "$1" get pod "$2" -o 'jsonpath={.status.phase}' 2>/dev/null)"
  [ "$phase" = Failed ] && { kubectl_ -n "$1" logs "$2" >&2 || true; die "pod $1/$2 failed"; }
  [ "$phase" = Succeeded ]
}

containerd_config() {
  local dir="$1"
  cat <<EOF
version = 2
root = "$dir/containerd/root"
state = "$dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$dir/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$(image_ref pause)"
  # Root here lacks CAP_SYS_RESOURCE: the default -998 for sandboxes is refused, and runc
  # then fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  # Network namespaces under the state dir, not /var/run/netns: stop finds them all.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$dir/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
}

cni_config() {
  local dir="$1"
  cat <<EOF
{
  "cniVersion": "1.0.0",
  "name": "weir",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$dir/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

kubelet_config() {
  local dir="$1"
  cat <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$dir/containerd/containerd.sock
# cgroup v1 (hybrid) with containerd 1.6, which cannot tell the kubelet its driver.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: /$CGROUP_ROOT
failSwapOn: false
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
clusterDNS: [$CLUSTER_DNS]
clusterDomain: cluster.local
resolvConf: $dir/resolv.conf
# Container logs under the node's folder, not /var/log/pods: stop removes them with it.
podLogsDir: $dir/pod-logs
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $dir/auth/kubelet-client-ca.crt }
authorization:
  mode: Webhook
# Images are imported, never pulled: garbage collection must not remove them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2% }
# Lowering its own oom_score_adj needs CAP_SYS_RESOURCE, which root lacks here.
oomScoreAdj: 0
serializeImagePulls: false
EOF
}

kube_proxy_config() {
  local dir="$1" healthz_port metrics_port
  free_port; healthz_port="$PORT"
  free_port; metrics_port="$PORT"
  cat <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $dir/auth/kube-proxy.kubeconfig }
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$healthz_port
metricsBindAddress: 127.0.0.1:$metrics_port
nodePortAddresses: [$NODE_IP/32]
# Leave nf_conntrack_max as it is.
conntrack: { maxPerCore: 0 }
EOF
}

on_node_start_failure() {
  local dir="$1"
  tail_logs "$dir" containerd kubelet kube-proxy kube-scheduler
  cleanup_node "$dir"
}

cmd_start() {
  local dir="${1:?usage: $0 start <dir>}"
  check_host
  # containerd unpacks image layers with this umask; under a restrictive one (a gateway's
  # 077, say) directories it creates are owner-only and a pod's non-root user cannot even
  # stat its own entry point ("permission denied").
  umask 022
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$ACTIVE_FILE" ]; then
    local other; other="$(cat "$ACTIVE_FILE")"
    if [ -d "$other/run" ] && cmd_status "$other" >/dev/null 2>&1; then
      die "a node is already running on this machine (in $other); stop it first: $0 stop $other"
    fi
    log "a node in $other did not stop cleanly; cleaning up after it"
    cleanup_node "$other"
  fi
  BUILD="$(cmd_build)"
  local started; started="$(now_ms)"
  printf '%s\n' "$dir" >"$ACTIVE_FILE"
  START_DIR="$dir"
  START_FAILURE_CLEANUP=on_node_start_failure
  trap on_start_exit EXIT

  rm -rf "$dir/containerd" "$dir/cni" "$dir/kubelet" "$dir/node"
  mkdir -p "$dir/containerd" "$dir/cni/net.d" "$dir/cni/ipam" "$dir/kubelet" "$dir/node"

  # Host settings, remembered for stop.
  local setting key
  : >"$dir/node/sysctls"
  for setting in "${SYSCTLS[@]}"; do
    key="${setting%%=*}"
    printf '%s=%s\n' "$key" "$(sysctl -n "$key")" >>"$dir/node/sysctls"
    sysctl -q -w "$setting" >/dev/null
  done
  # iptables (its nf_tables backend) makes tables on first use, kube-router ipsets; stop
  # removes the new ones.
  nft list tables >"$dir/node/nft-tables-before"
  ipset list -n >"$dir/node/ipsets-before"
  local hierarchy
  cgroup_hierarchies | while read -r hierarchy; do mkdir -p "$hierarchy/$CGROUP_ROOT"; done
  # The node's address on a link of its own. A bridge without ports, not a dummy link:
  # this kernel has no dummy driver (and no modules to load).
  ip link add "$NODE_LINK" type bridge || die "could not create the link $NODE_LINK"
  ip addr add "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_LINK" up
  # Service addresses stay on this machine. Without this route a connection to one goes
  # out of the default route while kube-proxy has no rule for it yet, and the machine's
  # egress answers it (HTTP 404, empty body, kept alive): an HTTP client polling a new
  # Service kept that connection and never reached the pod. Now such a packet goes into
  # the portless link and the connect fails; kube-proxy's DNAT reroutes the ones it knows.
  ip route add "$SERVICE_CIDR" dev "$NODE_LINK"
  printf 'nameserver %s\n' "$NODE_IP" >"$dir/resolv.conf"

  # The control plane, in node mode; its env file gives the URL, CA and admin token.
  KUBE_NODE_IP="$NODE_IP" KUBE_NODE_NAME="$NODE_NAME" WEIR_KUBE_CRDS=all "$TESTENV" start "$dir" >/dev/null
  APISERVER_URL="$(sed -n 's/^APISERVER_URL=//p' "$dir/env")"
  ADMIN_TOKEN="$(sed -n 's/^ADMIN_TOKEN=//p' "$dir/env")"
  CA_FILE="$(sed -n 's/^CA_FILE=//p' "$dir/env")"

  start_process "$dir" kube-scheduler "$BUILD/bin/kube-scheduler" \
    --kubeconfig "$dir/auth/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/auth/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/auth/kube-scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0

  containerd_config "$dir" >"$dir/containerd/config.toml"
  start_process "$dir" containerd containerd --config "$dir/containerd/config.toml"
  wait_until "containerd to serve" containerd containerd_serving "$dir"
  local image
  for image in "${IMAGES[@]}"; do import_image "$dir" "$BUILD/images/$image.tar"; done
  log "containerd ready, images imported ($(since "$started"))"

  cni_config "$dir" >"$dir/cni/net.d/10-weir.conflist"
  kubelet_config "$dir" >"$dir/node/kubelet.yaml"
  start_process "$dir" kubelet "$BUILD/bin/kubelet" \
    --config "$dir/node/kubelet.yaml" \
    --kubeconfig "$dir/auth/kubelet.kubeconfig" \
    --root-dir "$dir/kubelet" \
    --cert-dir "$dir/kubelet/pki" \
    --node-ip "$NODE_IP" \
    --hostname-override "$NODE_NAME"
  kube_proxy_config "$dir" >"$dir/node/kube-proxy.yaml"; release_ports
  start_process "$dir" kube-proxy "$BUILD/bin/kube-proxy" --config "$dir/node/kube-proxy.yaml"
  wait_until "node $NODE_NAME to be Ready" kubelet node_ready
  log "node $NODE_NAME Ready ($(since "$started"))"

  sed -e "s|@COREDNS_IMAGE@|$(image_ref coredns)|" "$ROOT/k8s/node/addons.yaml" |
    kubectl_ apply --server-side --field-manager weir-kube-node -f - >/dev/null
  # The NetworkPolicy controller alone: no routing (the bridge does it), no service proxy.
  start_process "$dir" kube-router "$BUILD/bin/kube-router" \
    --kubeconfig "$dir/auth/kube-router.kubeconfig" \
    --hostname-override "$NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --enable-ipv6=false --health-port 0 --metrics-port 0
  wait_until "CoreDNS to be available" kubelet deployment_available kube-system coredns
  wait_until "kube-router's NetworkPolicy controller to sync" kube-router network_policy_synced "$dir"
  log "CoreDNS and the NetworkPolicy controller run ($(since "$started"))"

  # The proof that pods, services, DNS and the service network work together.
  # It tries for a minute: CoreDNS can be available a moment before kube-proxy has
  # written the rules for its service address (seen once, on a loaded machine).
  kubectl_ -n default run dns-check --image "$(image_ref busybox)" --image-pull-policy Never \
    --restart Never --command -- sh -c \
    'i=0; while [ $i -lt 60 ]; do nslookup kubernetes.default.svc.cluster.local && exit 0; sleep 1; i=$((i + 1)); done; exit 1' >/dev/null
  wait_until "a pod to resolve kubernetes.default.svc" kubelet pod_succeeded default dns-check
  kubectl_ -n default delete pod dns-check --wait=false >/dev/null
  log "a pod resolved kubernetes.default.svc ($(since "$started"))"

  {
    printf 'NODE_NAME=%s\n' "$NODE_NAME"
    printf 'NODE_IP=%s\n' "$NODE_IP"
    printf 'POD_CIDR=%s\n' "$POD_CIDR"
    printf 'KUBECTL=%s\n' "$BUILD/bin/kubectl"
    printf 'KUBE_NODE_IMAGES=%s\n' "$BUILD/images"
    printf 'CONTAINERD_ADDRESS=%s\n' "$dir/containerd/containerd.sock"
  } >>"$dir/env"
  log "ready in $(since "$started"); stop with: $0 stop $dir"
  cat "$dir/env"
}

import_image() {
  local dir="$1" tar="$2"
  ctr --address "$dir/containerd/containerd.sock" -n k8s.io images import \
    --snapshotter overlayfs "$tar" >/dev/null \
    || die "importing $tar into containerd failed"
}

cmd_import() {
  local dir="${1:?usage: $0 import <dir> <image.tar>}" tar="${2:?usage: $0 import <dir> <image.tar>}"
  dir="$(cd "$dir" && pwd)"
  import_image "$dir" "$tar"
  log "imported $tar"
}

# ---------------------------------------------------------------------------- stop

# Kills every process in the node's cgroups (containers and their shims' children).
kill_cgroup_processes() {
  local hierarchy pids
  for hierarchy in $(cgroup_hierarchies all); do
    [ -d "$hierarchy/$CGROUP_ROOT" ] || continue
    pids="$(find "$hierarchy/$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)"
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  done
}

remove_cgroups() {
  local hierarchy
  for hierarchy in $(cgroup_hierarchies all); do
    [ -d "$hierarchy/$CGROUP_ROOT" ] || continue
    # Deepest first; a cgroup is removed with rmdir once no process is left in it.
    find "$hierarchy/$CGROUP_ROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ ! -d "$hierarchy/$CGROUP_ROOT" ] || log "warning: $hierarchy/$CGROUP_ROOT is still there"
  done
}

unmount_under() {
  local dir="$1" mount_point
  # /proc/self/mounts escapes spaces as \040; our paths have none. Deepest first.
  awk -v prefix="$dir/" 'index($2, prefix) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r mount_point; do
      umount "$mount_point" 2>/dev/null || umount -l "$mount_point" 2>/dev/null || true
    done
}

# Removes the chains kube-proxy, the kubelet and the CNI plugins made (KUBE-*, CNI-*) and
# every rule that jumps to them, in each table, and leaves every other rule alone.
remove_iptables_rules() {
  local tool saved kept
  for tool in iptables ip6tables; do
    command -v "$tool-save" >/dev/null || continue
    saved="$("$tool-save" 2>/dev/null)" || continue
    grep -qE '(KUBE|CNI)-' <<<"$saved" || continue
    kept="$(grep -vE '^:(KUBE|CNI)-|^-A (KUBE|CNI)-|-j (KUBE|CNI)-|-g (KUBE|CNI)-' <<<"$saved")"
    "$tool-restore" <<<"$kept" || log "warning: $tool-restore failed; some KUBE-/CNI- rules may be left"
  done
}

remove_ipsets() {
  local dir="$1" set
  [ -f "$dir/node/ipsets-before" ] || return 0
  { ipset list -n | grep -vxF -f "$dir/node/ipsets-before" || true; } | while read -r set; do
    ipset destroy "$set" 2>/dev/null || log "warning: could not remove ipset $set"
  done
  rm -f "$dir/node/ipsets-before"
}

cleanup_node() {
  local dir="$1" name pid
  # The node's processes, then whatever their containers left.
  for name in "${COMPONENTS[@]}"; do
    pid="$(read_pid "$dir" "$name")"
    if [ "$name" = containerd ] && ours_alive "$dir" "$pid"; then
      # Let containerd stop the containers it runs, before it goes.
      ctr --address "$dir/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null |
        while read -r task; do
          ctr --address "$dir/containerd/containerd.sock" -n k8s.io tasks kill -s KILL "$task" >/dev/null 2>&1 || true
        done
    fi
  done
  stop_all "$dir"
  # The shims (their command lines name our containerd's socket) and the containers.
  local shim
  for shim in $(pgrep -f "containerd-shim-runc-v2 .*-address $dir/containerd/" || true); do
    kill -KILL "$shim" 2>/dev/null || true
  done
  kill_cgroup_processes
  local waited=0
  while pgrep -f "containerd-shim-runc-v2 .*-address $dir/containerd/" >/dev/null && [ $waited -lt 50 ]; do
    sleep 0.1; waited=$((waited + 1))
  done
  "$TESTENV" stop "$dir" >/dev/null 2>&1 || true

  unmount_under "$dir"
  local netns
  for netns in "$dir"/containerd/state/io.containerd.grpc.v1.cri/netns/* /var/run/netns/cni-*; do
    [ -e "$netns" ] || continue
    case "$netns" in
      /var/run/netns/*) # Only ones no process uses (another tool's would be in use).
        ip netns pids "$(basename "$netns")" 2>/dev/null | grep -q . && continue ;;
    esac
    umount "$netns" 2>/dev/null || true
    rm -f "$netns"
  done
  remove_cgroups
  ip link del "$BRIDGE" 2>/dev/null || true
  ip link del "$NODE_LINK" 2>/dev/null || true
  remove_iptables_rules
  remove_ipsets "$dir"
  if [ -f "$dir/node/nft-tables-before" ]; then
    local table
    { nft list tables | grep -vxF -f "$dir/node/nft-tables-before" || true; } | while read -r table; do
      nft delete ${table} 2>/dev/null || log "warning: could not remove nftables $table"
    done
    rm -f "$dir/node/nft-tables-before"
  fi
  if [ -f "$dir/node/sysctls" ]; then
    local setting
    while read -r setting; do sysctl -q -w "$setting" >/dev/null || true; done <"$dir/node/sysctls"
    rm -f "$dir/node/sysctls"
  fi
  # The kubelet links every container's log from /var/log/containers (a fixed path).
  find /var/log/containers -maxdepth 1 -type l -lname "$dir/pod-logs/*" -delete 2>/dev/null || true
  rm -rf "$dir/containerd" "$dir/kubelet" "$dir/cni" "$dir/pod-logs"
  if [ -f "$ACTIVE_FILE" ] && [ "$(cat "$ACTIVE_FILE")" = "$dir" ]; then rm -f "$ACTIVE_FILE"; fi
}

cmd_stop() {
  local dir="${1:?usage: $0 stop <dir>}"
  [ -d "$dir" ] || die "no such directory: $dir"
  dir="$(cd "$dir" && pwd)"
  [ "$(id -u)" -eq 0 ] || die "stopping a node needs root"
  local started; started="$(now_ms)"
  cleanup_node "$dir"
  log "stopped and cleaned up in $(since "$started")"
}

cmd_status() {
  local dir="${1:?usage: $0 status <dir>}" name pid all=0
  dir="$(cd "$dir" && pwd)"
  for name in "${COMPONENTS[@]}"; do
    pid="$(read_pid "$dir" "$name")"
    if ours_alive "$dir" "$pid"; then echo "$name running (pid $pid)"; else echo "$name stopped"; all=1; fi
  done
  "$TESTENV" status "$dir" || all=1
  return $all
}

case "${1:-}" in
  build) cmd_build ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  import) shift; cmd_import "$@" ;;
  *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
