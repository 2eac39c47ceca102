#!/usr/bin/env bash
# kubernetes-taskmanager.sh [-Dkey=value...]
# A TaskManager of a native Kubernetes cluster; its JobManager's resource manager creates
# the pod and passes the memory plan and the resource id as -D arguments.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/flink-process.sh"
run_flink_process TM org.apache.flink.kubernetes.taskmanager.KubernetesTaskExecutorRunner "$@"
