# Shared by scripts/kube-testenv.sh (a control plane) and scripts/kube-node.sh (a whole
# single-node cluster): logging, cached Go builds, processes started in a folder of their
# own, free ports, waits with a deadline, and calls to the apiserver. Source it; it runs
# nothing by itself. The sourcing script sets LOG_TAG, CACHE_ROOT, START_TIMEOUT,
# PORT_LOCKS, BUILD_JOBS and COMPONENTS (the processes stop_all stops, in that order).

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
# The reason is kept: a failed start repeats it last, after the logs it printed, where a
# reader (or a test that keeps the end of stderr) finds it.
FAILURE=""
die() { FAILURE="$*"; log "error: $*"; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found (Debian: apt-get install $2)"; }
now_ms() { date +%s%3N; }
since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%03ds' $((ms / 1000)) $((ms % 1000)); }

# ---------------------------------------------------------------------------- build

# The -ldflags that make a Kubernetes binary report its release (not v0.0.0-master).
kube_ldflags() {
  local v="$1" major minor
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  printf '%s' "$flags"
}

# go_build_progress <total packages or ""> <go build args...>: runs `go build -v` (or
# `go install -v`) and logs every 100 compiled packages instead of the raw package list.
go_build_progress() {
  local total="$1"; shift
  local start; start="$(now_ms)"
  "$@" 2>&1 | {
    # -v prints one import path per compiled package; anything else is a message to show.
    local n=0 last=0 line
    while IFS= read -r line; do
      if [[ "$line" =~ ^[A-Za-z0-9._/~@-]+$ ]]; then
        n=$((n + 1))
        if [ $((n - last)) -ge 100 ]; then
          last=$n
          log "compiled $n${total:+/$total} packages ($(since "$start"))"
        fi
      else
        printf '%s\n' "$line" >&2
      fi
    done
    log "compiled $n packages (the rest were in the Go build cache)"
  }
}

# with_build_lock <key dir> <have-binaries command...>: returns 0 holding the key dir's
# lock when the binaries still have to be built, 1 when they are there (maybe built by
# another run that held the lock meanwhile).
with_build_lock() {
  local key_dir="$1"; shift
  mkdir -p "$key_dir"
  exec 9>"$key_dir/build.lock"
  if ! flock -n 9; then
    log "another build of the same key is running; waiting for it"
    flock 9
  fi
  ! "$@"
}

# Binaries of other keys (an older go.sum or launcher) unused for a week.
prune_build_cache() {
  local parent="$1" keep="$2"
  find "$parent" -mindepth 1 -maxdepth 1 -type d -mtime +7 ! -path "$keep" \
    -exec sh -c 'echo "[$0] removing unused $1" >&2; rm -rf "$1"' "$LOG_TAG" {} \;
}

# ---------------------------------------------------------------------------- processes

pid_file() { printf '%s/run/%s.pid' "$1" "$2"; }

# Alive and really ours: every process is started with <dir> in its arguments.
ours_alive() {
  local dir="$1" pid="$2" cmdline
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  cmdline="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ $cmdline == *"$dir/"* ]]
}

read_pid() { local f; f="$(pid_file "$1" "$2")"; if [ -f "$f" ]; then cat "$f"; fi; }

stop_all() {
  local dir="$1" name pid waited stopped=()
  for name in "${COMPONENTS[@]}"; do
    pid="$(read_pid "$dir" "$name")"
    if ours_alive "$dir" "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      waited=0
      # ours_alive is false as soon as the process has exited (a zombie has no cmdline).
      while ours_alive "$dir" "$pid"; do
        if [ "$waited" -eq 150 ]; then
          log "$name (pid $pid) ignored SIGTERM for 15s; killing it"
          kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
        waited=$((waited + 1))
      done
      log "stopped $name (pid $pid)"
      stopped+=("$pid")
    fi
    rm -f "$(pid_file "$dir" "$name")"
  done
  # Then wait until the exited processes are gone from the process table: reap our own
  # children (a failed start); others are reaped by their new parent, which some init
  # processes only do every second or two.
  waited=0
  for pid in "${stopped[@]}"; do
    wait "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
    kill -0 "$pid" 2>/dev/null && log "pid $pid has exited but is not reaped yet"
  done
  return 0
}

start_process() {
  local dir="$1" name="$2"; shift 2
  # Own session, no terminal, output to a log: the process outlives this script.
  setsid "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
  local pid=$! waited=0
  # Until it has exec'd the binary, $! is a copy of this shell, whose command line does
  # not name our folder: ours_alive would take that moment for an exit (it did, on a
  # loaded machine). Wait for the exec, or for the process to be gone (5 s at most).
  while kill -0 "$pid" 2>/dev/null && ! ours_alive "$dir" "$pid" && [ "$waited" -lt 100 ]; do
    sleep 0.05
    waited=$((waited + 1))
  done
  printf '%s\n' "$pid" >"$(pid_file "$dir" "$name")"
  log "started $name (pid $pid, log $dir/logs/$name.log)"
}

# ---------------------------------------------------------------------------- ports

RESERVED_PORTS=()
release_ports() {
  local p
  for p in "${RESERVED_PORTS[@]}"; do rmdir "$PORT_LOCKS/$p" 2>/dev/null || true; done
  RESERVED_PORTS=()
}

# Sets PORT to a port below Linux's ephemeral range (32768+) that nothing listens on,
# reserved (mkdir is atomic) against other starts running at the same time until this
# start ends. Not used as $(free_port): the reservation must be recorded in this shell.
free_port() {
  local p tries=0
  mkdir -p "$PORT_LOCKS"
  while [ $tries -lt 200 ]; do
    tries=$((tries + 1))
    p=$((20000 + RANDOM % 12000))
    [ -z "$(ss -Htln "sport = :$p")" ] || continue
    # A reservation older than 10 minutes belongs to a start that died.
    find "$PORT_LOCKS" -maxdepth 1 -name "$p" -mmin +10 -exec rmdir {} \; 2>/dev/null || true
    mkdir "$PORT_LOCKS/$p" 2>/dev/null || continue
    RESERVED_PORTS+=("$p")
    PORT="$p"
    return
  done
  die "no free port found"
}

# ---------------------------------------------------------------------------- waits

tail_logs() {
  local dir="$1" name
  for name in "$@"; do
    [ "$name" = "$dir" ] && continue
    [ -s "$dir/logs/$name.log" ] || continue
    printf -- '----- last lines of %s -----\n' "$dir/logs/$name.log" >&2
    tail -n 40 "$dir/logs/$name.log" >&2
  done
}

START_DIR=""
on_start_exit() {
  local status=$?
  release_ports
  if [ $status -ne 0 ] && [ -n "$START_DIR" ]; then
    log "start failed; stopping what was started"
    "${START_FAILURE_CLEANUP:-stop_all}" "$START_DIR"
    log "start failed: ${FAILURE:-exit status $status}"
  fi
}

# wait_until <what> <component whose log explains a failure> <command...>
wait_until() {
  local what="$1" component="$2"; shift 2
  local deadline=$(( $(date +%s) + START_TIMEOUT )) pid
  until "$@"; do
    pid="$(read_pid "$START_DIR" "$component")"
    if ! ours_alive "$START_DIR" "$pid"; then
      tail_logs "$START_DIR" "$component"
      die "$component exited while waiting for $what"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail_logs "$START_DIR" "$component"
      die "timed out after ${START_TIMEOUT}s waiting for $what"
    fi
    sleep 0.2
  done
}

api() { # api <method> <path> [curl args...]: prints the body, fails on HTTP >= 400
  local method="$1" path="$2"; shift 2
  curl -sS --fail-with-body --max-time 30 --cacert "$CA_FILE" \
    -H "Authorization: Bearer $ADMIN_TOKEN" -X "$method" "$@" "$APISERVER_URL$path"
}

etcd_ready() { grep -q '^etcd ready' "$START_DIR/logs/etcd.log" 2>/dev/null; }
apiserver_ready() {
  [ -s "$CA_FILE" ] && [ "$(api GET /readyz 2>/dev/null)" = "ok" ]
}
crd_established() {
  # pretty=false: the apiserver pretty-prints JSON for a curl User-Agent.
  # Not `api ... | grep -q`: grep quits at the first match, curl then dies of SIGPIPE
  # on the rest of the ~1 MB body, and pipefail turns that into "not established".
  local body
  body="$(api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$1?pretty=false" 2>/dev/null)" || return 1
  grep -qF '"type":"Established","status":"True"' <<<"$body"
}

# write_kubeconfig <file> <cluster name> <user> <token>: a kubeconfig for that token,
# trusting the apiserver's CA ($CA_FILE) at $APISERVER_URL.
write_kubeconfig() {
  local file="$1" name="$2" user="$3" token="$4"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $name
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 "$CA_FILE")
users:
- name: $user
  user:
    token: $token
contexts:
- name: $name
  context:
    cluster: $name
    user: $user
current-context: $name
EOF
  chmod 600 "$file"
}
