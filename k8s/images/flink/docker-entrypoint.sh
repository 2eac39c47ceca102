#!/usr/bin/env bash
# The entry point of Weir's Flink image (kubernetes.entry.path). The Flink Kubernetes
# Operator, in native mode, starts every JobManager and TaskManager container as
#   /docker-entrypoint.sh bash -c 'kubernetes-jobmanager.sh kubernetes-application'
#   /docker-entrypoint.sh bash -c 'kubernetes-taskmanager.sh -Dkey=value ...'
# so the arguments are a command to run, with Flink's scripts on the PATH.
set -euo pipefail
export FLINK_HOME="${FLINK_HOME:-/opt/flink}"
export PATH="$FLINK_HOME/bin:$PATH"
if [ "$#" -eq 0 ]; then
  echo "usage: /docker-entrypoint.sh <command> [args...] (e.g. kubernetes-jobmanager.sh kubernetes-session)" >&2
  exit 2
fi
exec "$@"
