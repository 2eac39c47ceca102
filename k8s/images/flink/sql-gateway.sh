#!/usr/bin/env bash
# sql-gateway.sh start-foreground [-Dkey=value...]
# Flink's SQL Gateway in the foreground, as Flink's own script of that name runs it: the
# preview session cluster's SQL Gateway Deployment (runtime/kubernetes/preview-manifests.ts)
# starts it so. Its JVM flags come from FLINK_ENV_JAVA_OPTS; its configuration is
# $FLINK_CONF_DIR/config.yaml plus the -D arguments; logs go to the console.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/flink-process.sh"
if [ "${1:-}" != start-foreground ]; then
  echo "usage: sql-gateway.sh start-foreground [-Dkey=value...] (only the foreground mode: a container runs one process)" >&2
  exit 2
fi
shift
module_flags=()
mapfile -t module_flags <"$FLINK_HOME/conf-default/jvm-options.txt"
echo "Starting Flink SQL Gateway"
# shellcheck disable=SC2086 # FLINK_ENV_JAVA_OPTS holds space-separated flags
exec java "${module_flags[@]}" ${FLINK_ENV_JAVA_OPTS:-} \
  -Dlog.file=/dev/null \
  -Dlog4j.configurationFile="file:$FLINK_CONF_DIR/log4j-console.properties" \
  -Dlog4j2.configurationFile="file:$FLINK_CONF_DIR/log4j-console.properties" \
  -classpath "$(flink_classpath)" org.apache.flink.table.gateway.SqlGateway "$@"
