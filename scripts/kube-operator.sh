#!/usr/bin/env bash
# Installs the real Flink Kubernetes Operator 1.15.0 into a cluster started by
# scripts/kube-node.sh, the way its Helm chart would (k8s/operator/operator.yaml), and
# waits until it is healthy.
#
#   scripts/kube-operator.sh install <node dir>   build (cached), import, apply, wait
#
# The operator is built from its release source (scripts/flink-operator.sh), its image
# here (scripts/kube-images.sh operator). Its configuration is the chart's own conf/
# files plus the overrides below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
START_TIMEOUT="${WEIR_KUBE_START_TIMEOUT:-180}"

LOG_TAG=kube-operator
# shellcheck source=scripts/kube-lib.sh
. "$ROOT/scripts/kube-lib.sh"

# Appended to the chart's default configuration. The intervals are the chart's own
# overrides, shortened where a test on one machine would otherwise wait for nothing.
OVERRIDES='
kubernetes.operator.reconcile.interval: 15 s
kubernetes.operator.observer.progress-check.interval: 2 s
kubernetes.operator.health.probe.enabled: true
kubernetes.operator.health.probe.port: 8085
'

cmd_install() {
  local dir="${1:?usage: $0 install <node dir>}"
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/env" ] || die "no node runs in $dir (scripts/kube-node.sh start $dir)"
  local kubectl; kubectl="$(sed -n 's/^KUBECTL=//p' "$dir/env")"
  [ -x "$kubectl" ] || die "no kubectl in $dir/env"
  local k=("$kubectl" --kubeconfig "$dir/kubeconfig")
  local started; started="$(now_ms)"

  local operator; operator="$(bash "$ROOT/scripts/flink-operator.sh" build)"
  local image tar ref
  read -r image tar ref < <(bash "$ROOT/scripts/kube-images.sh" build operator)
  [ "$image" = operator ] || die "scripts/kube-images.sh gave no operator image"
  bash "$ROOT/scripts/kube-node.sh" import "$dir" "$tar"
  log "image $ref imported ($(since "$started"))"

  sed "s|@OPERATOR_IMAGE@|$ref|" "$ROOT/k8s/operator/operator.yaml" |
    "${k[@]}" apply --server-side --field-manager weir-kube-operator -f - >/dev/null
  local conf="$dir/operator-conf"
  rm -rf "$conf"; mkdir -p "$conf"
  { cat "$operator/conf/flink-conf.yaml"; printf '%s' "$OVERRIDES"; } >"$conf/config.yaml"
  cp "$conf/config.yaml" "$conf/flink-conf.yaml"
  cp "$operator/conf/log4j-operator.properties" "$operator/conf/log4j-console.properties" "$conf/"
  "${k[@]}" -n flink-operator create configmap flink-operator-config --from-file "$conf" \
    --dry-run=client -o yaml | "${k[@]}" apply --server-side --field-manager weir-kube-operator -f - >/dev/null

  local deadline=$(( $(date +%s) + START_TIMEOUT ))
  until [ "$("${k[@]}" -n flink-operator get deployment flink-kubernetes-operator \
      -o 'jsonpath={.status.availableReplicas}' 2>/dev/null)" = 1 ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      "${k[@]}" -n flink-operator get pods -o wide >&2 || true
      "${k[@]}" -n flink-operator logs deployment/flink-kubernetes-operator --tail 60 >&2 || true
      die "the operator was not healthy after ${START_TIMEOUT}s"
    fi
    sleep 1
  done
  log "operator healthy ($(since "$started"))"
}

case "${1:-}" in
  install) shift; cmd_install "$@" ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
