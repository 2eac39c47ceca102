#!/usr/bin/env bash
# s3proxy (an S3-compatible server on a local folder, from Maven Central): the object
# store for checkpoints, savepoints and HA metadata of Flink pods on the local node
# (scripts/kube-node.sh), reached through Flink's S3 plugin as production reaches S3.
#
#   scripts/s3proxy.sh jar                  fetch (or reuse) the jar; prints its path
#   scripts/s3proxy.sh start <dir> <host>   serve <dir>/data on <host>:<free port> with
#                                           fresh credentials and the bucket weir-flink;
#                                           writes <dir>/env (S3_ENDPOINT, S3_ACCESS_KEY,
#                                           S3_SECRET_KEY, S3_BUCKET) and prints it
#   scripts/s3proxy.sh stop <dir>           stop it (the data stays in <dir>/data)
#
# Environment: WEIR_CACHE_DIR (default <repo>/.cache; the jar in s3proxy/<version>/).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${WEIR_CACHE_DIR:-$ROOT/.cache}"
VERSION=2.6.0
JAR_NAME="s3proxy-$VERSION-jar-with-dependencies.jar"
BUCKET=weir-flink
LOG_TAG=s3proxy
START_TIMEOUT=90
PORT_LOCKS="${TMPDIR:-/tmp}/weir-kube-testenv-ports"
COMPONENTS=(s3proxy)
# shellcheck source=scripts/kube-lib.sh
source "$ROOT/scripts/kube-lib.sh"

cmd_jar() {
  local dir="$CACHE_ROOT/s3proxy/$VERSION"
  if [ ! -s "$dir/$JAR_NAME" ]; then
    need mvn maven
    log "fetching org.gaul:s3proxy:$VERSION (jar-with-dependencies) from Maven Central"
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    mvn -B -q ${WEIR_MAVEN_OPTS:-} org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
      -Dartifact="org.gaul:s3proxy:$VERSION:jar:jar-with-dependencies" -DoutputDirectory="$dir" >&2 ||
      die "could not fetch org.gaul:s3proxy:$VERSION from Maven Central"
  fi
  printf '%s\n' "$dir/$JAR_NAME"
}

answers() { curl -s -o /dev/null --max-time 2 "$1/"; }

cmd_start() {
  local dir="${1:?usage: $0 start <dir> <host>}" host="${2:?usage: $0 start <dir> <host>}"
  mkdir -p "$dir/logs" "$dir/run" "$dir/data/$BUCKET"
  dir="$(cd "$dir" && pwd)"
  need java openjdk-17-jre-headless
  need curl curl
  local jar; jar="$(cmd_jar)"
  START_DIR="$dir"
  trap on_start_exit EXIT
  free_port
  local port="$PORT"
  local access secret
  access="weir-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  (
    umask 077
    cat >"$dir/s3proxy.properties" <<EOF
s3proxy.endpoint=http://$host:$port
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$access
s3proxy.credential=$secret
jclouds.provider=filesystem
jclouds.filesystem.basedir=$dir/data
EOF
  )
  local started; started="$(now_ms)"
  start_process "$dir" s3proxy java -Xmx256m -XX:+UseSerialGC -jar "$jar" --properties "$dir/s3proxy.properties"
  wait_until "s3proxy on $host:$port" s3proxy answers "http://$host:$port"
  START_DIR=""
  {
    printf 'S3_ENDPOINT=http://%s:%s\n' "$host" "$port"
    printf 'S3_ACCESS_KEY=%s\n' "$access"
    printf 'S3_SECRET_KEY=%s\n' "$secret"
    printf 'S3_BUCKET=%s\n' "$BUCKET"
  } >"$dir/env"
  chmod 600 "$dir/env"
  log "ready on http://$host:$port in $(since "$started"); stop with: $0 stop $dir"
  cat "$dir/env"
}

cmd_stop() {
  local dir="${1:?usage: $0 stop <dir>}"
  dir="$(cd "$dir" && pwd)"
  stop_all "$dir"
}

case "${1:-}" in
  jar) shift; cmd_jar "$@" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
