#!/usr/bin/env bash
# A real Kubernetes control plane for tests: embedded etcd + kube-apiserver +
# kube-controller-manager, built from Go modules (k8s/testenv) and cached.
#
#   scripts/kube-testenv.sh build          build (or reuse) the binaries; prints the bin dir
#   scripts/kube-testenv.sh start <dir>    start a control plane in <dir>; prints <dir>/env
#   scripts/kube-testenv.sh stop <dir>     stop it and wait until every process is gone
#   scripts/kube-testenv.sh status <dir>   show which of its processes are alive
#   scripts/kube-testenv.sh stop-apiserver <dir>   kill only the apiserver (an outage)
#   scripts/kube-testenv.sh start-apiserver <dir>  start it again, same flags; waits for /readyz
#
# Several environments can run at once, each in its own <dir> with its own ports.
# Progress goes to stderr; stdout carries only the result (bin dir, or env file).
#
# Environment:
#   WEIR_CACHE_DIR            cache root (default <repo>/.cache); binaries go to
#                             $WEIR_CACHE_DIR/kube/<key>/bin, key = hash of go.sum, go.mod,
#                             the etcd launcher, go version and build flags
#   WEIR_KUBE_BUILD_JOBS      go build -p (default: number of CPUs)
#   WEIR_KUBE_START_TIMEOUT   seconds to wait for each start-up step (default 90)
#   WEIR_KUBE_CRD_DIR         the Flink Kubernetes Operator 1.15.0 CRDs (its Helm chart's
#                             crds/*.yml; default: those of the operator's release source,
#                             unpacked by scripts/flink-operator.sh source)
#   WEIR_KUBE_CRDS            which of them to install: `weir` (default: flinkdeployments
#                             and flinksessionjobs, what Weir writes) or `all` (what the
#                             operator itself needs; scripts/kube-node.sh sets it)
#   KUBE_NODE_IP, KUBE_NODE_NAME   set by scripts/kube-node.sh only: a control plane for a
#                             cluster with a node (apiserver on that address, services in
#                             198.19.0.0/20, Node+RBAC authorization, every controller, one
#                             token per component); see that script
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODULE_DIR="$ROOT/k8s/testenv"
CACHE_ROOT="${WEIR_CACHE_DIR:-$ROOT/.cache}"
CRD_DIR="${WEIR_KUBE_CRD_DIR:-}"
CRDS="${WEIR_KUBE_CRDS:-weir}"
NODE_IP="${KUBE_NODE_IP:-}"
NODE_NAME="${KUBE_NODE_NAME:-}"
START_TIMEOUT="${WEIR_KUBE_START_TIMEOUT:-90}"
BUILD_JOBS="${WEIR_KUBE_BUILD_JOBS:-$(nproc)}"
PORT_LOCKS="${TMPDIR:-/tmp}/weir-kube-testenv-ports"

# The order matters for stop: controller-manager first, etcd last.
COMPONENTS=(kube-controller-manager kube-apiserver etcd)
BUILD_TARGETS=(./cmd/etcd k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager)
BUILD_GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
LOG_TAG=kube-testenv
# shellcheck source=scripts/kube-lib.sh
. "$ROOT/scripts/kube-lib.sh"

# ---------------------------------------------------------------------------- build

kube_version() { (cd "$MODULE_DIR" && go list -m -f '{{.Version}}' k8s.io/kubernetes); }

cache_key() {
  {
    cat "$MODULE_DIR/go.mod" "$MODULE_DIR/go.sum" "$MODULE_DIR/cmd/etcd/main.go"
    go version
    printf '%s\n' "$BUILD_GOFLAGS" "$(kube_ldflags "$(kube_version)")"
  } | sha256sum | cut -c1-16
}

bin_dir() { printf '%s/kube/%s/bin' "$CACHE_ROOT" "$(cache_key)"; }

have_binaries() { [ -x "$1/etcd" ] && [ -x "$1/kube-apiserver" ] && [ -x "$1/kube-controller-manager" ]; }

cmd_build() {
  command -v go >/dev/null || die "go not found (Go 1.26 or newer is needed)"
  local bin; bin="$(bin_dir)"
  local key_dir; key_dir="$(dirname "$bin")"
  if have_binaries "$bin"; then
    touch "$key_dir"
    log "cached: $bin"
    printf '%s\n' "$bin"
    return
  fi
  if ! with_build_lock "$key_dir" have_binaries "$bin"; then
    log "cached (built by the other run): $bin"
    printf '%s\n' "$bin"
    return
  fi

  local version start tmp total
  version="$(kube_version)"
  start="$(now_ms)"
  tmp="$key_dir/bin.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  total="$(cd "$MODULE_DIR" && GOFLAGS="$BUILD_GOFLAGS" go list -deps "${BUILD_TARGETS[@]}" | wc -l)"
  log "building etcd, kube-apiserver, kube-controller-manager (k8s.io/kubernetes $version) into $bin"
  log "go build -p $BUILD_JOBS, $total packages in the graph; a cold build takes many minutes on 2 cores"

  local status=0
  (
    cd "$MODULE_DIR"
    GOFLAGS="$BUILD_GOFLAGS" go_build_progress "$total" go build -p "$BUILD_JOBS" -v \
      -ldflags "$(kube_ldflags "$version")" -o "$tmp/" "${BUILD_TARGETS[@]}"
  ) || status=$?
  if [ "$status" -ne 0 ] || ! have_binaries "$tmp"; then
    rm -rf "$tmp"
    die "go build failed after $(since "$start")"
  fi
  rm -rf "$bin"
  mv "$tmp" "$bin"
  touch "$key_dir"
  prune_build_cache "$CACHE_ROOT/kube" "$key_dir"
  log "built in $(since "$start"): $(cd "$bin" && du -sh etcd kube-apiserver kube-controller-manager | awk '{printf "%s %s  ", $2, $1}')"
  printf '%s\n' "$bin"
}

# ---------------------------------------------------------------------------- start

# The identities of a cluster with a node: a token per component, in the groups its
# built-in RBAC bindings (or the Node authorizer) expect, and the client certificate the
# apiserver shows the kubelet (logs, exec), signed by a CA only the kubelet trusts.
node_identities() {
  local dir="$1" user token
  for user in kube-controller-manager kube-scheduler kube-proxy kubelet kube-router; do
    token="$(openssl rand -hex 32)"
    printf '%s\n' "$token" >"$dir/auth/$user.token"
    case "$user" in
      kubelet) printf '%s,system:node:%s,node-%s,"system:nodes"\n' "$token" "$NODE_NAME" "$NODE_NAME" ;;
      *) printf '%s,system:%s,%s\n' "$token" "$user" "$user" ;;
    esac
  done >>"$dir/auth/tokens.csv"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=weir-kubelet-client-ca \
    -keyout "$dir/auth/kubelet-client-ca.key" -out "$dir/auth/kubelet-client-ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$dir/auth/kubelet-client.key" -out "$dir/auth/kubelet-client.csr" 2>/dev/null
  openssl x509 -req -in "$dir/auth/kubelet-client.csr" -days 30 \
    -CA "$dir/auth/kubelet-client-ca.crt" -CAkey "$dir/auth/kubelet-client-ca.key" -CAcreateserial \
    -out "$dir/auth/kubelet-client.crt" 2>/dev/null
}

default_service_account() { api GET /api/v1/namespaces/default/serviceaccounts/default >/dev/null 2>&1; }

cmd_start() {
  local dir="${1:?usage: $0 start <dir>}"
  need openssl openssl; need curl curl; need ss iproute2; need flock util-linux; need setsid util-linux
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local name pid
  for name in "${COMPONENTS[@]}"; do
    pid="$(read_pid "$dir" "$name")"
    if ours_alive "$dir" "$pid"; then die "$name is already running in $dir (pid $pid); run: $0 stop $dir"; fi
  done

  local bin; bin="$(cmd_build)"
  local started; started="$(now_ms)"
  START_DIR="$dir"
  trap on_start_exit EXIT

  # A fresh control plane every time: no state from an earlier run survives.
  rm -rf "$dir/etcd" "$dir/certs" "$dir/logs" "$dir/run" "$dir/auth" "$dir/env" "$dir/kubeconfig"
  mkdir -p "$dir/certs" "$dir/logs" "$dir/run" "$dir/auth"
  chmod 700 "$dir/auth"

  local etcd_client etcd_peer api_port
  free_port; etcd_client="$PORT"
  free_port; etcd_peer="$PORT"
  free_port; api_port="$PORT"

  ADMIN_TOKEN="$(openssl rand -hex 32)"
  printf '%s,admin,admin,"system:masters"\n' "$ADMIN_TOKEN" >"$dir/auth/tokens.csv"
  openssl genrsa -out "$dir/auth/service-account.key" 2048 2>/dev/null
  local address=127.0.0.1
  [ -z "$NODE_IP" ] || address="$NODE_IP"
  APISERVER_URL="https://$address:$api_port"
  CA_FILE="$dir/certs/apiserver.crt"
  # Flags that differ between a bare control plane (tests play the node and the operator)
  # and one with a real node (scripts/kube-node.sh).
  local api_mode=() kcm_mode=() kcm_kubeconfig="$dir/kubeconfig"
  if [ -z "$NODE_IP" ]; then
    api_mode=(--service-cluster-ip-range 10.96.0.0/24
      --authorization-mode RBAC
      --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota
      # Without it the apiserver logs every 10 s that the `kubernetes` Endpoints "may not
      # be in the loopback range".
      --endpoint-reconciler-type none)
    kcm_mode=(--controllers resourcequota-controller,namespace-controller,garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller
      --use-service-account-credentials=false)
  else
    [ -n "$NODE_NAME" ] || die "KUBE_NODE_NAME must be set with KUBE_NODE_IP"
    node_identities "$dir"
    api_mode=(--service-cluster-ip-range 198.19.0.0/20
      --authorization-mode Node,RBAC
      --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,NodeRestriction
      --allow-privileged=true
      # The node's name resolves nowhere; its InternalIP is the --node-ip.
      --kubelet-preferred-address-types InternalIP
      --kubelet-client-certificate "$dir/auth/kubelet-client.crt"
      --kubelet-client-key "$dir/auth/kubelet-client.key")
    kcm_mode=(--controllers '*' --use-service-account-credentials=true)
    kcm_kubeconfig="$dir/auth/kube-controller-manager.kubeconfig"
  fi

  start_process "$dir" etcd "$bin/etcd" --data-dir "$dir/etcd" \
    --client-port "$etcd_client" --peer-port "$etcd_peer"
  wait_until "etcd to serve clients" etcd etcd_ready
  log "etcd ready on 127.0.0.1:$etcd_client ($(since "$started"))"

  # The command line is kept so that stop-apiserver/start-apiserver can bring the same
  # apiserver (same port, certificates, tokens, etcd) back after a simulated outage.
  local api_cmd=("$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address "$address" --advertise-address "$address" --secure-port "$api_port" \
    --cert-dir "$dir/certs" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/auth/service-account.key" \
    --service-account-signing-key-file "$dir/auth/service-account.key" \
    --token-auth-file "$dir/auth/tokens.csv" \
    "${api_mode[@]}")
  printf '%s\n' "${api_cmd[@]}" >"$dir/run/kube-apiserver.cmd"
  start_process "$dir" kube-apiserver "${api_cmd[@]}"
  wait_until "kube-apiserver /readyz" kube-apiserver apiserver_ready
  log "kube-apiserver ready at $APISERVER_URL ($(since "$started"))"

  write_kubeconfig "$dir/kubeconfig" weir-testenv admin "$ADMIN_TOKEN"
  local user
  if [ -n "$NODE_IP" ]; then
    for user in kube-controller-manager kube-scheduler kube-proxy kubelet kube-router; do
      write_kubeconfig "$dir/auth/$user.kubeconfig" weir-testenv "$user" "$(cat "$dir/auth/$user.token")"
    done
  fi

  # CRDs before the controller-manager, so that its quota and garbage-collector
  # controllers discover the Flink resources at start-up instead of at a later rescan.
  [ -n "$CRD_DIR" ] || CRD_DIR="$("$ROOT/scripts/flink-operator.sh" source)/helm/flink-kubernetes-operator/crds"
  local crd crd_name crd_names=()
  for crd in "$CRD_DIR"/*.yml "$CRD_DIR"/*.yaml; do
    [ -f "$crd" ] || continue
    case "$CRDS:$(basename "$crd")" in
      all:*|weir:flinkdeployments.*|weir:flinksessionjobs.*) ;;
      weir:*) continue ;;
      *) die "WEIR_KUBE_CRDS must be weir or all, not $CRDS" ;;
    esac
    crd_name="$(sed -n 's/^  name: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$crd" | sed -n 1p)"
    [ -n "$crd_name" ] || die "no metadata.name in $crd"
    # Server-side apply: idempotent, and no last-applied annotation (the FlinkDeployment
    # CRD is ~540 KB, far over the 256 KB annotation limit of client-side apply).
    local out
    out="$(api PATCH "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$crd_name?fieldManager=weir-testenv&force=true&pretty=false" \
      -H 'Content-Type: application/apply-patch+yaml' --data-binary "@$crd" 2>&1)" \
      || die "applying $crd failed: ${out:0:2000}"
    crd_names+=("$crd_name")
  done
  [ "${#crd_names[@]}" -gt 0 ] || log "warning: no CRDs found in $CRD_DIR"
  for crd_name in "${crd_names[@]}"; do
    wait_until "CRD $crd_name to be Established" kube-apiserver crd_established "$crd_name"
  done
  log "CRDs established: ${crd_names[*]:-none} ($(since "$started"))"

  start_process "$dir" kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$kcm_kubeconfig" \
    --leader-elect=false \
    --secure-port 0 \
    --service-account-private-key-file "$dir/auth/service-account.key" \
    --root-ca-file "$CA_FILE" \
    "${kcm_mode[@]}"
  # The default ServiceAccount appears once the controllers run.
  wait_until "the controller-manager to create the default ServiceAccount" kube-controller-manager default_service_account
  log "kube-controller-manager running ($(since "$started"))"

  {
    printf 'WEIR_KUBE_DIR=%s\n' "$dir"
    printf 'APISERVER_URL=%s\n' "$APISERVER_URL"
    printf 'ADMIN_TOKEN=%s\n' "$ADMIN_TOKEN"
    printf 'KUBECONFIG=%s\n' "$dir/kubeconfig"
    printf 'CA_FILE=%s\n' "$CA_FILE"
    printf 'ETCD_URL=http://127.0.0.1:%s\n' "$etcd_client"
    printf 'ETCD_PID=%s\n' "$(read_pid "$dir" etcd)"
    printf 'APISERVER_PID=%s\n' "$(read_pid "$dir" kube-apiserver)"
    printf 'CONTROLLER_MANAGER_PID=%s\n' "$(read_pid "$dir" kube-controller-manager)"
  } >"$dir/env"
  chmod 600 "$dir/env"
  log "ready in $(since "$started"); stop with: $0 stop $dir"
  cat "$dir/env"
}

cmd_stop() {
  local dir="${1:?usage: $0 stop <dir>}"
  [ -d "$dir" ] || die "no such directory: $dir"
  dir="$(cd "$dir" && pwd)"
  stop_all "$dir"
  rm -f "$dir/env"
}

cmd_status() {
  local dir="${1:?usage: $0 status <dir>}" name pid all=0
  dir="$(cd "$dir" && pwd)"
  for name in "${COMPONENTS[@]}"; do
    pid="$(read_pid "$dir" "$name")"
    if ours_alive "$dir" "$pid"; then echo "$name running (pid $pid)"; else echo "$name stopped"; all=1; fi
  done
  return $all
}

# Simulated outages: the apiserver alone goes away and comes back with the same flags.
cmd_stop_apiserver() {
  local dir="${1:?usage: $0 stop-apiserver <dir>}" pid
  dir="$(cd "$dir" && pwd)"
  pid="$(read_pid "$dir" kube-apiserver)"
  ours_alive "$dir" "$pid" || die "kube-apiserver is not running in $dir"
  # SIGKILL, like a crash: a graceful stop waits up to a minute for open watches to drain.
  kill -KILL "$pid"
  while ours_alive "$dir" "$pid"; do sleep 0.05; done
  rm -f "$(pid_file "$dir" kube-apiserver)"
  log "stopped kube-apiserver (pid $pid)"
}

cmd_start_apiserver() {
  local dir="${1:?usage: $0 start-apiserver <dir>}" pid
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/run/kube-apiserver.cmd" ] && [ -f "$dir/env" ] || die "no control plane was started in $dir"
  pid="$(read_pid "$dir" kube-apiserver)"
  if ours_alive "$dir" "$pid"; then die "kube-apiserver is already running in $dir (pid $pid)"; fi
  APISERVER_URL="$(sed -n 's/^APISERVER_URL=//p' "$dir/env")"
  ADMIN_TOKEN="$(sed -n 's/^ADMIN_TOKEN=//p' "$dir/env")"
  CA_FILE="$(sed -n 's/^CA_FILE=//p' "$dir/env")"
  START_DIR="$dir"
  local started api_cmd=()
  started="$(now_ms)"
  mapfile -t api_cmd <"$dir/run/kube-apiserver.cmd"
  mv -f "$dir/logs/kube-apiserver.log" "$dir/logs/kube-apiserver.$(date +%s%N).log" 2>/dev/null || true
  start_process "$dir" kube-apiserver "${api_cmd[@]}"
  wait_until "kube-apiserver /readyz" kube-apiserver apiserver_ready
  pid="$(read_pid "$dir" kube-apiserver)"
  sed -i "s/^APISERVER_PID=.*/APISERVER_PID=$pid/" "$dir/env"
  log "kube-apiserver ready again at $APISERVER_URL ($(since "$started"))"
}

case "${1:-}" in
  build) cmd_build ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  stop-apiserver) shift; cmd_stop_apiserver "$@" ;;
  start-apiserver) shift; cmd_start_apiserver "$@" ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
