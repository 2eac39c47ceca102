#!/usr/bin/env bash
# Resolve Weir's local Flink and Kafka runtime from Maven Central and build the SQL runner.
#
#   scripts/flink-setup.sh            build (or reuse) the runtime; prints the output dir
#   scripts/flink-setup.sh --force    rebuild even if the stamp matches
#
# Output dir: $WEIR_CACHE_DIR/flink (default <repo>/.cache/flink), holding
#   flink.classpath   Flink jars, colon-separated absolute paths (JobManager, TaskManager,
#                     SQL Gateway, SQL runner)
#   kafka.classpath   the Kafka broker and tools (a separate classpath: other Scala/Jackson)
#   sql-runner.jar    Weir's runner; run it with -cp sql-runner.jar:$(cat flink.classpath)
#   versions.json     the pinned versions and the stamp key
#   stamp             key of the last good build: a hash of flink/**/pom.xml, the runner's
#                     sources, this script, the java version and the mvn install
# A second run with the same key only checks that every jar is still there (< 1 s).
# Progress goes to stderr; stdout carries only the output dir.
#
# Environment:
#   WEIR_CACHE_DIR    cache root (default <repo>/.cache)
#   WEIR_MAVEN_OPTS   extra arguments for mvn (e.g. -Dmaven.repo.local=/path)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FLINK_DIR="$ROOT/flink"
CACHE_ROOT="${WEIR_CACHE_DIR:-$ROOT/.cache}"
OUT="$CACHE_ROOT/flink"
FORCE=0
STAGING=""

log() { printf '[flink-setup %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { date +%s%3N; }
since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }

for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (try --help)" ;;
  esac
done

command -v java >/dev/null || die "java not found (Debian: apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null || die "mvn not found (Debian: apt-get install maven)"

java_version() { java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.version = //p'; }

JAVA_VERSION="$(java_version)"
[ "${JAVA_VERSION%%.*}" -ge 17 ] 2>/dev/null || die "Java 17 or newer needed, found ${JAVA_VERSION:-none}"

cache_key() {
  {
    find "$FLINK_DIR" -name pom.xml -not -path '*/target/*' | LC_ALL=C sort | xargs cat
    find "$FLINK_DIR/sql-runner/src" -type f | LC_ALL=C sort | xargs cat
    cat "${BASH_SOURCE[0]}"
    printf 'java %s\n' "$JAVA_VERSION"
    # mvn --version costs ~0.3 s; the Maven home path identifies the install well enough
    readlink -f "$(command -v mvn)"
  } | sha256sum | cut -c1-16
}

# Every jar named in a classpath file still exists (a wiped ~/.m2 invalidates the cache).
classpath_ok() {
  local file="$1" jar
  [ -s "$file" ] || return 1
  local IFS=':'
  for jar in $(cat "$file"); do [ -f "$jar" ] || return 1; done
}

outputs_ok() {
  [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$1" ] &&
    [ -s "$OUT/sql-runner.jar" ] && [ -s "$OUT/versions.json" ] &&
    classpath_ok "$OUT/flink.classpath" && classpath_ok "$OUT/kafka.classpath"
}

pom_property() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$FLINK_DIR/pom.xml" | sed -n 1p; }

write_versions() {
  cat >"$1/versions.json" <<EOF
{
  "flink": "$(pom_property flink.version)",
  "flinkKafkaConnector": "$(pom_property flink.kafka.connector.version)",
  "kafka": "$(pom_property kafka.version)",
  "log4j": "$(pom_property log4j.version)",
  "java": "$JAVA_VERSION",
  "key": "$2",
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
}

run_maven() { # $1 = output dir; further args go to mvn
  local dir="$1"; shift
  # shellcheck disable=SC2086 # WEIR_MAVEN_OPTS is a list of arguments
  mvn -q -B -f "$FLINK_DIR/pom.xml" -Dweir.cache.dir="$dir" ${WEIR_MAVEN_OPTS:-} "$@" package
}

maven_failed() { # $1 = maven log; keeps it as $OUT/maven.log (the staging dir is removed)
  cp "$1" "$OUT/maven.log"
  grep -E '^\[ERROR\]' "$1" | head -n 20 >&2 || true
  die "maven failed; full log: $OUT/maven.log"
}

main() {
  local started key
  started=$(now_ms)
  key="$(cache_key)"
  if [ "$FORCE" = 0 ] && outputs_ok "$key"; then
    log "cached: $OUT (key $key, $(since "$started"))"
    printf '%s\n' "$OUT"
    return
  fi

  mkdir -p "$OUT"
  exec 9>"$OUT/.lock"
  if ! flock -n 9; then
    log "another flink-setup is running; waiting for it"
    flock 9
    if [ "$FORCE" = 0 ] && outputs_ok "$key"; then
      log "cached: $OUT (built by the other run)"
      printf '%s\n' "$OUT"
      return
    fi
  fi

  log "building Flink/Kafka runtime (key $key) into $OUT"
  STAGING="$OUT/.staging.$$"
  local staging="$STAGING"
  rm -rf "$staging"
  mkdir -p "$staging"
  trap 'rm -rf "$STAGING"' EXIT

  local step
  step=$(now_ms)
  log "maven: trying offline (local repository only)"
  if run_maven "$staging" -o >"$staging/maven-offline.log" 2>&1; then
    log "maven: offline build done ($(since "$step"))"
  elif grep -q 'offline mode' "$staging/maven-offline.log"; then
    log "maven: resolving from Maven Central (first run: ~220 MB into ~/.m2)"
    step=$(now_ms)
    run_maven "$staging" >"$staging/maven.log" 2>&1 || maven_failed "$staging/maven.log"
    log "maven: done ($(since "$step"))"
  else
    maven_failed "$staging/maven-offline.log" # not a download problem: going online won't help
  fi

  for f in flink.classpath kafka.classpath sql-runner.jar; do
    [ -s "$staging/$f" ] || die "maven produced no $f"
  done
  classpath_ok "$staging/flink.classpath" || die "flink.classpath names a missing jar"
  classpath_ok "$staging/kafka.classpath" || die "kafka.classpath names a missing jar"
  write_versions "$staging" "$key"

  # Replace the outputs, then write the stamp last: a crash in between leaves no stamp.
  rm -f "$OUT/stamp"
  for f in flink.classpath kafka.classpath sql-runner.jar versions.json; do
    mv -f "$staging/$f" "$OUT/$f"
  done
  printf '%s\n' "$key" >"$OUT/stamp"

  log "flink $(pom_property flink.version), kafka $(pom_property kafka.version):" \
    "$(tr ':' '\n' <"$OUT/flink.classpath" | wc -l) + $(tr ':' '\n' <"$OUT/kafka.classpath" | wc -l) jars"
  log "ready: $OUT (setup took $(since "$started"))"
  printf '%s\n' "$OUT"
}

main
