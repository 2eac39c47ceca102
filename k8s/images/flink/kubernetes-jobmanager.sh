#!/usr/bin/env bash
# kubernetes-jobmanager.sh <kubernetes-application|kubernetes-session> [-Dkey=value...]
# The JobManager of a native Kubernetes cluster, as the Flink Kubernetes Operator starts it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/flink-process.sh"
case "${1:-}" in
  kubernetes-application) main=org.apache.flink.kubernetes.entrypoint.KubernetesApplicationClusterEntrypoint ;;
  kubernetes-session) main=org.apache.flink.kubernetes.entrypoint.KubernetesSessionClusterEntrypoint ;;
  *) echo "usage: kubernetes-jobmanager.sh <kubernetes-application|kubernetes-session> [-Dkey=value...]" >&2; exit 2 ;;
esac
shift
run_flink_process JM "$main" "$@"
