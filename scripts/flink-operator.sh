#!/usr/bin/env bash
# Builds the Apache Flink Kubernetes Operator 1.15.0 from its release source with Maven
# (its jars are not on Maven Central; its dependencies are), cached by the source's sha256.
#
#   scripts/flink-operator.sh build     build (or reuse); prints the output dir
#   scripts/flink-operator.sh source    unpack (or reuse) the source; prints its dir
#
# Output dir: lib/ (flink-kubernetes-standalone-1.15.0.jar and
# flink-kubernetes-operator-1.15.0-shaded.jar), log4j/ (its logging jars), plugins/,
# crds/ (the Helm chart's CRDs), conf/ (the Helm chart's default configuration), and its
# docker-entrypoint.sh (how its image starts it).
#
# Environment:
#   WEIR_OPERATOR_SOURCE  the release source tarball (default: the vendored copy beside
#                         the checkout, ../shared/vendor/flink-kubernetes-operator-1.15.0-src.tar.gz)
#   WEIR_CACHE_DIR        cache root (default <repo>/.cache); output in flink-operator/<key>
#   WEIR_MAVEN_OPTS       extra arguments for mvn (e.g. -Dmaven.repo.local=/path)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${WEIR_CACHE_DIR:-$ROOT/.cache}"
SOURCE="${WEIR_OPERATOR_SOURCE:-$ROOT/../shared/vendor/flink-kubernetes-operator-1.15.0-src.tar.gz}"
SOURCE_SHA256=5df540cc2276f2f29e6aef03a5ccb3fbfb72cbc7e2725762267b21107127a53c
VERSION=1.15.0

LOG_TAG=flink-operator
# shellcheck source=scripts/kube-lib.sh
. "$ROOT/scripts/kube-lib.sh"

key() { printf '%s-%s' "${SOURCE_SHA256:0:16}" "$(java -version 2>&1 | sed -n 1p | sha256sum | cut -c1-8)"; }
out_dir() { printf '%s/flink-operator/%s' "$CACHE_ROOT" "$(key)"; }

have_build() {
  [ -s "$1/lib/flink-kubernetes-operator-$VERSION-shaded.jar" ] &&
    [ -s "$1/lib/flink-kubernetes-standalone-$VERSION.jar" ] &&
    [ -d "$1/log4j" ] && [ -d "$1/plugins" ] && [ -d "$1/crds" ] && [ -f "$1/conf/flink-conf.yaml" ] && [ -f "$1/docker-entrypoint.sh" ]
}

cmd_source() {
  [ -f "$SOURCE" ] || die "no operator source at $SOURCE (set WEIR_OPERATOR_SOURCE)"
  local dir="$CACHE_ROOT/flink-operator/src-${SOURCE_SHA256:0:16}"
  mkdir -p "$CACHE_ROOT/flink-operator"
  exec 8>"$CACHE_ROOT/flink-operator/source.lock"
  flock 8 # several test control planes may start at once
  if [ ! -f "$dir/.unpacked" ]; then
    local actual; actual="$(sha256sum "$SOURCE" | cut -d' ' -f1)"
    [ "$actual" = "$SOURCE_SHA256" ] || die "$SOURCE has sha256 $actual, expected $SOURCE_SHA256"
    rm -rf "$dir"; mkdir -p "$dir"
    tar -xzf "$SOURCE" -C "$dir" --strip-components 1
    touch "$dir/.unpacked"
    log "unpacked $SOURCE into $dir"
  fi
  printf '%s\n' "$dir"
}

cmd_build() {
  command -v mvn >/dev/null || die "mvn not found (Maven 3.8+ with Java 17 is needed)"
  local out; out="$(out_dir)"
  if have_build "$out"; then
    log "cached: $out"
    printf '%s\n' "$out"
    return
  fi
  local src; src="$(cmd_source)"
  mkdir -p "$out"
  exec 9>"$out/build.lock"
  flock 9
  if have_build "$out"; then printf '%s\n' "$out"; return; fi
  local start; start="$(now_ms)"
  log "building the operator $VERSION with Maven (first run: ~5 min and ~300 MB into ~/.m2)"
  # package, not install: nothing of the operator lands in the local Maven repository.
  # antrun is skipped because the API module's CRD compatibility check downloads the
  # previous release's CRD from the internet; the rest skips checks that only matter upstream.
  # shellcheck disable=SC2086
  (cd "$src" && mvn -B -ntp ${WEIR_MAVEN_OPTS:-} package \
    -pl flink-kubernetes-standalone,flink-kubernetes-operator-api,flink-autoscaler,flink-kubernetes-operator -am \
    -DskipTests -Dmaven.antrun.skip=true -Dcheckstyle.skip -Dspotless.check.skip=true -Drat.skip=true \
    -Djacoco.skip=true -Dmaven.javadoc.skip=true -Dmaven.source.skip=true) 2>&1 |
    grep -E --line-buffered '^\[INFO\] (Building |BUILD|Total time)|^\[ERROR\]' >&2 ||
    die "the Maven build failed after $(since "$start") (run it by hand in $src for the whole log)"

  local tmp="$out/tmp.$$" target="$src/flink-kubernetes-operator/target"
  rm -rf "$tmp"; mkdir -p "$tmp/lib" "$tmp/conf"
  cp "$target/flink-kubernetes-operator-$VERSION-shaded.jar" "$tmp/lib/"
  cp "$src/flink-kubernetes-standalone/target/flink-kubernetes-standalone-$VERSION.jar" "$tmp/lib/"
  cp -r "$target/log4j" "$tmp/log4j"
  cp -r "$target/plugins" "$tmp/plugins"
  cp -r "$src/helm/flink-kubernetes-operator/crds" "$tmp/crds"
  cp "$src/helm/flink-kubernetes-operator/conf/"* "$tmp/conf/"
  cp "$src/LICENSE" "$src/NOTICE" "$src/docker-entrypoint.sh" "$tmp/"
  rm -rf "$out/lib" "$out/log4j" "$out/plugins" "$out/crds" "$out/conf" "$out/LICENSE" "$out/NOTICE" "$out/docker-entrypoint.sh"
  mv "$tmp/"* "$out/"
  rmdir "$tmp"
  have_build "$out" || die "the build left something out of $out"
  log "built in $(since "$start"): $(du -sh "$out/lib" | cut -f1) of jars in $out/lib"
  printf '%s\n' "$out"
}

case "${1:-}" in
  build) cmd_build ;;
  source) cmd_source ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
