#!/usr/bin/env bash
# Weir's container images for Kubernetes, built on this machine with no Docker engine and
# no registry: folders packed into docker-archive tarballs by scripts/oci-image.mjs, for
# `ctr images import` (scripts/kube-node.sh import) or `docker load`.
#
#   scripts/kube-images.sh build <image>...   build (or reuse); prints "<image> <tar> <ref>"
#   scripts/kube-images.sh list               the images and what each holds
#
# Images (they behave as the Dockerfiles in deploy/ describe: same paths, same users, same
# entry points; test/runtime/kubernetes/e2e checks that):
#   base      Debian (debootstrap from this machine's own Debian mirror) + Java 17 JRE
#   flink     base + Flink 1.20.3 (the jars flink/ resolves, plus flink-kubernetes), the
#             Kafka SQL connector, Weir's SQL runner at /opt/weir/sql-runner.jar, the S3
#             filesystem plugin (plugins/s3-fs-presto, as deploy/flink.Dockerfile), and
#             Weir's entry scripts for the operator's native mode and the preview SQL
#             Gateway (k8s/images/flink/);
#             user flink (9999) owns /opt/flink and /opt/weir
#   operator  base + the Flink Kubernetes Operator 1.15.0 (scripts/flink-operator.sh),
#             laid out as its own Dockerfile does
#   gateway   base + this machine's Node 20 at /usr/local/bin/node (where the node:20
#             image has it) + the gateway in /app as deploy/gateway.Dockerfile lays it
#             out (production node_modules, package.json, src, migrations,
#             flink/memory.json, flink/conf/log4j2-console.properties), owned by root,
#             run as user weir (10001):
#             node --import tsx src/main.ts
#
# Environment: WEIR_CACHE_DIR (default <repo>/.cache; images in kube-images/<key>/).
set -euo pipefail
# An image's files must be readable by the user its containers run as, whatever umask the
# caller has: a gateway or test process restricts its own to 077 (platform/private-files),
# and a layer built under it has a root folder only root may enter.
umask 022

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${WEIR_CACHE_DIR:-$ROOT/.cache}"
OUT_ROOT="$CACHE_ROOT/kube-images"
FLINK_VERSION=1.20.3
# flink-kubernetes (native mode) of 1.20.2 and 1.20.3 is not on Maven Central as served
# here; 1.20.1 is, and the operator 1.15.0 itself builds against it.
FLINK_KUBERNETES_VERSION=1.20.1
# The same for the S3 filesystem plugin: flink-s3-fs-presto 1.20.0 is the one served.
FLINK_S3_VERSION=1.20.0
OPERATOR_VERSION=1.15.0
SUITE=bookworm
BASE_PACKAGES=openjdk-17-jre-headless,ca-certificates,procps

LOG_TAG=kube-images
# shellcheck source=scripts/kube-lib.sh
. "$ROOT/scripts/kube-lib.sh"

# The first Debian mirror this machine's apt uses (deb822 or one-line format).
debian_mirror() {
  local uri
  uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [ -n "$uri" ] || uri="$(awk '$1 == "deb" && $0 ~ /debian/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)"
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list(.d)"
  printf '%s' "$uri"
}

hash_of() { sha256sum | cut -c1-16; }

# Images are ~0.3-0.6 GB each and every change of an input makes a new one: of each kind,
# keep the one just used and the most recently used other one (another checkout's, say).
# `touch` on every use keeps "recently used" true.
prune_images() {
  local kind="$1" keep="$2" dir kept=0
  touch "$keep"
  while IFS= read -r dir; do
    [ "$dir" = "$keep" ] && continue
    kept=$((kept + 1))
    [ "$kept" -le 1 ] && continue
    log "removing the unused image $dir"
    rm -rf "$dir"
  done < <(ls -1dt "$OUT_ROOT/$kind"-* 2>/dev/null || true)
}

# ---------------------------------------------------------------------------- base

# Keys hash what makes an image: its inputs and the functions that build it (not this
# whole script, so that editing one image does not rebuild the others).
base_key() { printf '%s\n' "$SUITE" "$BASE_PACKAGES" "$(sha256sum <"$ROOT/scripts/oci-image.mjs")" "$(declare -f build_base)" | hash_of; }

# The base layer: a Debian root with Java 17, users flink (9999) and weir (10001).
build_base() {
  local dir="$OUT_ROOT/base-$(base_key)"
  if [ -s "$dir/layer.tar" ]; then printf '%s\n' "$dir/layer.tar"; return; fi
  [ "$(id -u)" -eq 0 ] || die "building the base image needs root (debootstrap)"
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  local start; start="$(now_ms)"
  rm -rf "$dir"; mkdir -p "$dir"
  log "base: debootstrap $SUITE (minbase + $BASE_PACKAGES); first run downloads ~150 MB of packages"
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$dir/rootfs" "$(debian_mirror)" \
    >"$dir/debootstrap.log" 2>&1 || { tail -n 30 "$dir/debootstrap.log" >&2; die "debootstrap failed"; }
  chroot "$dir/rootfs" /usr/sbin/groupadd --system --gid 9999 flink
  chroot "$dir/rootfs" /usr/sbin/useradd --system --uid 9999 --gid 9999 --home-dir /opt/flink --no-create-home flink
  chroot "$dir/rootfs" /usr/sbin/groupadd --system --gid 10001 weir
  chroot "$dir/rootfs" /usr/sbin/useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home weir
  # What only the package manager needs, and what differs run to run.
  rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"* \
    "$dir/rootfs/var/log/"* "$dir/rootfs/usr/share/doc/"* "$dir/rootfs/usr/share/man/"* \
    "$dir/rootfs/var/cache/ldconfig/aux-cache" "$dir/rootfs/etc/machine-id"
  find "$dir/rootfs/dev" -mindepth 1 -delete
  node "$ROOT/scripts/oci-image.mjs" --layer "$dir/rootfs" --layer-out "$dir/layer.tar" >&2
  rm -rf "$dir/rootfs"
  log "base: built in $(since "$start"), $(du -h "$dir/layer.tar" | cut -f1)"
  printf '%s\n' "$dir/layer.tar"
}

# ---------------------------------------------------------------------------- flink

maven_copy() {
  local artifact="$1" out="$2"
  # shellcheck disable=SC2086
  mvn -B -q ${WEIR_MAVEN_OPTS:-} org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
    -Dartifact="$artifact" -DoutputDirectory="$out" >&2 || die "could not fetch $artifact from Maven Central"
}

# flink/'s classpath, plus flink-kubernetes (native mode) and the S3 plugin from Maven Central.
flink_jars() {
  local flink_dir="$1" lib="$2" plugins="$3"
  local jars=()
  IFS=: read -r -a jars <"$flink_dir/flink.classpath" || [ "${#jars[@]}" -gt 0 ] # no newline at its end
  cp "${jars[@]}" "$lib/"
  maven_copy "org.apache.flink:flink-kubernetes:$FLINK_KUBERNETES_VERSION" "$lib"
  mkdir -p "$plugins/s3-fs-presto"
  maven_copy "org.apache.flink:flink-s3-fs-presto:$FLINK_S3_VERSION" "$plugins/s3-fs-presto"
}

build_flink() {
  local base; base="$(build_base)"
  local flink_dir; flink_dir="$(bash "$ROOT/scripts/flink-setup.sh")"
  local key; key="$(printf '%s\n' "$base" "$(cat "$flink_dir/stamp")" "$FLINK_KUBERNETES_VERSION" "$FLINK_S3_VERSION" \
    "$(cd "$ROOT/k8s/images/flink" && sha256sum ./*)" "$(sha256sum <"$ROOT/flink/jvm-options.txt")" \
    "$(sha256sum <"$ROOT/flink/conf/log4j2-console.properties")" \
    "$(declare -f build_flink flink_jars maven_copy)" | hash_of)"
  local dir="$OUT_ROOT/flink-$key" ref="weir.local/flink:$FLINK_VERSION-java17"
  if [ -s "$dir/image.tar" ]; then printf 'flink %s %s\n' "$dir/image.tar" "$ref"; return; fi
  local start; start="$(now_ms)"
  rm -rf "$dir"; mkdir -p "$dir/layer/opt/flink/lib" "$dir/layer/opt/flink/bin" "$dir/layer/opt/flink/conf" \
    "$dir/layer/opt/flink/conf-default" "$dir/layer/opt/flink/log" "$dir/layer/opt/flink/plugins" \
    "$dir/layer/opt/weir/spec"
  local layer="$dir/layer"
  flink_jars "$flink_dir" "$layer/opt/flink/lib" "$layer/opt/flink/plugins"
  cp "$flink_dir/sql-runner.jar" "$layer/opt/weir/sql-runner.jar"
  local images="$ROOT/k8s/images/flink"
  cp "$images/docker-entrypoint.sh" "$layer/docker-entrypoint.sh"
  cp "$images/kubernetes-jobmanager.sh" "$images/kubernetes-taskmanager.sh" "$images/sql-gateway.sh" "$images/flink-process.sh" \
    "$layer/opt/flink/bin/"
  cp "$images/config.yaml" "$layer/opt/flink/conf/config.yaml"
  cp "$images/log4j-quiet.properties" "$layer/opt/flink/conf-default/"
  grep -v '^[[:space:]]*\(#\|$\)' "$ROOT/flink/jvm-options.txt" >"$layer/opt/flink/conf-default/jvm-options.txt"
  cp "$ROOT/flink/conf/log4j2-console.properties" "$layer/opt/flink/conf/log4j-console.properties"
  chmod 755 "$layer/docker-entrypoint.sh" "$layer/opt/flink/bin/"*.sh
  chmod -R go+rX,go-w "$layer" # see the umask above
  chown -R 9999:9999 "$layer/opt/flink" "$layer/opt/weir"
  node "$ROOT/scripts/oci-image.mjs" --layer "$base" --layer "$layer" --ref "$ref" --out "$dir/image.tar" \
    --entrypoint '["/docker-entrypoint.sh"]' --user 9999 --workdir /opt/flink \
    --env FLINK_HOME=/opt/flink --env FLINK_PLUGINS_DIR=/opt/flink/plugins --env JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 >&2
  rm -rf "$layer"
  log "flink: built in $(since "$start")"
  printf 'flink %s %s\n' "$dir/image.tar" "$ref"
}

# ---------------------------------------------------------------------------- operator

build_operator() {
  local base; base="$(build_base)"
  local operator; operator="$(bash "$ROOT/scripts/flink-operator.sh" build)"
  local key; key="$(printf '%s\n' "$base" "$operator" "$(declare -f build_operator)" | hash_of)"
  local dir="$OUT_ROOT/operator-$key" ref="weir.local/flink-kubernetes-operator:$OPERATOR_VERSION"
  if [ -s "$dir/image.tar" ]; then printf 'operator %s %s\n' "$dir/image.tar" "$ref"; return; fi
  local start; start="$(now_ms)"
  rm -rf "$dir"; mkdir -p "$dir/layer/flink-kubernetes-operator" "$dir/layer/opt/flink/log" "$dir/layer/opt/flink/operator-lib"
  local layer="$dir/layer"
  cp "$operator/lib/"*.jar "$layer/flink-kubernetes-operator/"
  cp "$operator/LICENSE" "$operator/NOTICE" "$layer/flink-kubernetes-operator/"
  install -m 755 "$operator/docker-entrypoint.sh" "$layer/docker-entrypoint.sh"
  cp -r "$operator/plugins" "$layer/opt/flink/plugins"
  cp -r "$operator/log4j" "$layer/opt/flink/log/log4j"
  chown -R 9999:9999 "$layer/opt/flink" "$layer/flink-kubernetes-operator"
  node "$ROOT/scripts/oci-image.mjs" --layer "$base" --layer "$layer" --ref "$ref" --out "$dir/image.tar" \
    --entrypoint '["/docker-entrypoint.sh"]' --cmd '["help"]' --user 9999 --workdir /flink-kubernetes-operator \
    --env FLINK_HOME=/opt/flink --env FLINK_PLUGINS_DIR=/opt/flink/plugins \
    --env OPERATOR_VERSION="$OPERATOR_VERSION" \
    --env OPERATOR_JAR="flink-kubernetes-operator-$OPERATOR_VERSION-shaded.jar" \
    --env KUBERNETES_STANDALONE_JAR="flink-kubernetes-standalone-$OPERATOR_VERSION.jar" \
    --env OPERATOR_LIB=/opt/flink/operator-lib \
    --env JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64 >&2
  rm -rf "$layer"
  log "operator: built in $(since "$start")"
  printf 'operator %s %s\n' "$dir/image.tar" "$ref"
}

# ---------------------------------------------------------------------------- gateway

# What goes into /app, as deploy/gateway.Dockerfile copies it (run in $ROOT); the lock
# file only for npm ci.
gateway_files() { find package.json package-lock.json src migrations flink/memory.json flink/conf/log4j2-console.properties -type f ! -name '*.test.ts' | LC_ALL=C sort; }

build_gateway() {
  local base; base="$(build_base)"
  local node_bin; node_bin="$(readlink -f "$(command -v node)")" || die "node not found"
  local node_version; node_version="$("$node_bin" --version)"
  case "$node_version" in v20.*) ;; *) die "the gateway image takes this machine's Node, which must be 20 (found $node_version)" ;; esac
  local key; key="$(printf '%s\n' "$base" "$node_version" "$(sha256sum "$node_bin")" "$(cd "$ROOT" && gateway_files | xargs sha256sum)" \
    "$(declare -f build_gateway gateway_files)" | hash_of)"
  local dir="$OUT_ROOT/gateway-$key" ref="weir.local/gateway:0.1.0"
  if [ -s "$dir/image.tar" ]; then printf 'gateway %s %s\n' "$dir/image.tar" "$ref"; return; fi
  local start; start="$(now_ms)"
  rm -rf "$dir"; mkdir -p "$dir/layer/usr/local/bin" "$dir/layer/app"
  local layer="$dir/layer"
  install -m 755 "$node_bin" "$layer/usr/local/bin/node"
  (cd "$ROOT" && gateway_files | tar -T - -cf -) | tar -xf - -C "$layer/app"
  log "gateway: npm ci --omit=dev (production dependencies only; from the npm cache when there)"
  (cd "$layer/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2) \
    || die "npm ci --omit=dev failed for the gateway image"
  rm -f "$layer/app/package-lock.json"
  chown -R 0:0 "$layer/app"
  node "$ROOT/scripts/oci-image.mjs" --layer "$base" --layer "$layer" --ref "$ref" --out "$dir/image.tar" \
    --cmd '["node", "--import", "tsx", "src/main.ts"]' --user 10001:10001 --workdir /app \
    --env NODE_ENV=production --env HOST=0.0.0.0 --env PORT=4000 --env WEIR_DATA_DIR=/tmp/weir >&2
  rm -rf "$layer"
  log "gateway: built in $(since "$start")"
  printf 'gateway %s %s\n' "$dir/image.tar" "$ref"
}

cmd_build() {
  [ "$#" -gt 0 ] || die "usage: $0 build <base|flink|operator|gateway>..."
  mkdir -p "$OUT_ROOT"
  exec 8>"$OUT_ROOT/build.lock"
  flock 8
  local image line
  for image in "$@"; do
    case "$image" in
      base) line="base $(build_base) -" ;;
      flink) line="$(build_flink)" ;;
      operator) line="$(build_operator)" ;;
      gateway) line="$(build_gateway)" ;;
      *) die "unknown image: $image (base, flink, operator, gateway)" ;;
    esac
    printf '%s\n' "$line"
    # "<image> <tar> <ref>": the tar's folder is the one in use.
    line="${line#* }"
    prune_images "$image" "$(dirname "${line%% *}")"
    # Flink and the operator rest on the base: keep the one they were built on.
    [ "$image" = base ] || prune_images base "$(dirname "$(build_base)")"
  done
}

case "${1:-}" in
  build) shift; cmd_build "$@" ;;
  list) sed -n '9,24p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
