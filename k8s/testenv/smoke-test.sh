#!/usr/bin/env bash
# End-to-end check of the test control plane: start, quota controller, CRD schema
# validation, count quota on a custom resource, namespace deletion, stop.
#
#   k8s/testenv/smoke-test.sh [dir]      (default: a fresh temporary dir, removed at the end)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TESTENV="$ROOT/scripts/kube-testenv.sh"
command -v jq >/dev/null || { echo "jq not found (Debian: apt-get install jq)" >&2; exit 1; }

dir="${1:-}"
own_dir=0
if [ -z "$dir" ]; then dir="$(mktemp -d)"; own_dir=1; fi

log() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
now_ms() { date +%s%3N; }

cleanup() {
  "$TESTENV" stop "$dir" >/dev/null 2>&1 || true
  if [ "$own_dir" = 1 ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT

t0="$(now_ms)"
"$TESTENV" start "$dir" >/dev/null
log "start took $(( $(now_ms) - t0 )) ms"
# shellcheck disable=SC1091
. "$dir/env"

# request <method> <path> [body]: sets CODE and BODY
request() {
  local out
  out="$(curl -sS --max-time 30 --cacert "$CA_FILE" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -X "$1" ${3:+--data-binary "$3"} \
    -w '\n%{http_code}' "$APISERVER_URL$2")"
  CODE="${out##*$'\n'}"
  BODY="${out%$'\n'*}"
}
expect() { [ "$CODE" = "$1" ] || fail "$2: expected HTTP $1, got $CODE: $(printf '%s' "$BODY" | head -c 600)"; }

# --- namespace + ResourceQuota: the quota controller fills status.hard
request POST /api/v1/namespaces '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"smoke"}}'
expect 201 "create namespace"
request POST /api/v1/namespaces/smoke/resourcequotas '{
  "apiVersion":"v1","kind":"ResourceQuota","metadata":{"name":"quota"},
  "spec":{"hard":{"pods":"10","requests.cpu":"4","count/flinkdeployments.flink.apache.org":"1"}}}'
expect 201 "create resourcequota"
t0="$(now_ms)"
until request GET /api/v1/namespaces/smoke/resourcequotas/quota && [ "$(jq -r '.status.hard.pods // empty' <<<"$BODY")" = "10" ]; do
  [ $(( $(now_ms) - t0 )) -lt 30000 ] || fail "status.hard not filled within 30s: $BODY"
  sleep 0.1
done
log "quota status.hard filled after $(( $(now_ms) - t0 )) ms: $(jq -c .status <<<"$BODY")"

# --- FlinkDeployment: a valid one is stored, an invalid upgradeMode is a 422
flink_deployment() { # name upgradeMode
  cat <<EOF
{"apiVersion":"flink.apache.org/v1beta1","kind":"FlinkDeployment",
 "metadata":{"name":"$1"},
 "spec":{"image":"flink:1.20","flinkVersion":"v1_20","serviceAccount":"flink",
   "flinkConfiguration":{"taskmanager.numberOfTaskSlots":"1"},
   "jobManager":{"resource":{"memory":"1024m","cpu":0.5}},
   "taskManager":{"resource":{"memory":"1024m","cpu":0.5}},
   "job":{"jarURI":"local:///opt/flink/usrlib/job.jar","parallelism":1,"upgradeMode":"$2"}}}
EOF
}
request POST /apis/flink.apache.org/v1beta1/namespaces/smoke/flinkdeployments "$(flink_deployment ok last-state)"
expect 201 "create valid FlinkDeployment"
log "valid FlinkDeployment created"

request POST /apis/flink.apache.org/v1beta1/namespaces/smoke/flinkdeployments "$(flink_deployment bad bogus)"
expect 422 "invalid upgradeMode"
log "invalid upgradeMode rejected: $(jq -r .message <<<"$BODY")"

request POST /apis/flink.apache.org/v1beta1/namespaces/smoke/flinkdeployments "$(flink_deployment second stateless)"
expect 403 "second FlinkDeployment over count quota"
log "count quota enforced: $(jq -r .message <<<"$BODY")"

# --- status subresource, written the way the operator does
status_patch() { # content-type: prints body, then the HTTP code on the last line
  curl -sS --cacert "$CA_FILE" -H "Authorization: Bearer $ADMIN_TOKEN" -H "Content-Type: $1" -X PATCH \
    --data-binary '{"status":{"lifecycleState":"STABLE","jobStatus":{"state":"RUNNING"},"jobManagerDeploymentStatus":"READY"}}' \
    -w '\n%{http_code}' "$APISERVER_URL/apis/flink.apache.org/v1beta1/namespaces/smoke/flinkdeployments/ok/status"
}
out="$(status_patch application/strategic-merge-patch+json)"
[ "${out##*$'\n'}" = 415 ] || fail "strategic merge patch on a custom resource should be 415: $out"
out="$(status_patch application/merge-patch+json)"
[ "${out##*$'\n'}" = 200 ] || fail "merge patch of status: $out"
out="${out%$'\n'*}"
[ "$(jq -r .status.jobStatus.state <<<"$out")" = RUNNING ] || fail "status patch: $out"
log "status subresource patched with a merge patch (strategic merge: 415)"

# --- namespace deletion: the namespace controller empties and removes it
request DELETE /api/v1/namespaces/smoke
expect 200 "delete namespace"
t0="$(now_ms)"
until request GET /api/v1/namespaces/smoke && [ "$CODE" = 404 ]; do
  [ $(( $(now_ms) - t0 )) -lt 60000 ] || fail "namespace still there after 60s: $(jq -c .status <<<"$BODY")"
  sleep 0.2
done
log "namespace gone after $(( $(now_ms) - t0 )) ms"

for pid in "$ETCD_PID" "$APISERVER_PID" "$CONTROLLER_MANAGER_PID"; do
  log "pid $pid $(cat "/proc/$pid/comm"): $(awk '/^VmRSS|^VmHWM/ { printf "%s %.0f MiB  ", $1, $2 / 1024 }' "/proc/$pid/status")"
done

"$TESTENV" stop "$dir" >/dev/null
for pid in "$ETCD_PID" "$APISERVER_PID" "$CONTROLLER_MANAGER_PID"; do
  ! kill -0 "$pid" 2>/dev/null || fail "pid $pid still alive after stop"
done
log "stopped; no process left. PASS"
