# Sourced by kubernetes-jobmanager.sh and kubernetes-taskmanager.sh: runs one Flink
# process in the foreground, the way Flink's own distribution scripts do (there is no
# Flink distribution on Maven Central, so Weir's image carries these instead):
#   - the JVM's memory flags come from Flink's BashJavaUtils, computed from the mounted
#     configuration ($FLINK_CONF_DIR/config.yaml) and the -D arguments, so the process
#     fits the pod's memory exactly as Flink plans it;
#   - the Java 17 module flags every Flink JVM needs, then env.java.opts.all and the
#     role's env.java.opts.<role> from the configuration;
#   - logs go to the console (log4j-console.properties), where the kubelet collects them.

FLINK_HOME="${FLINK_HOME:-/opt/flink}"
FLINK_CONF_DIR="${FLINK_CONF_DIR:-$FLINK_HOME/conf}"
export FLINK_HOME FLINK_CONF_DIR

flink_classpath() {
  local jar classpath=""
  for jar in "$FLINK_HOME"/lib/*.jar; do classpath="${classpath:+$classpath:}$jar"; done
  printf '%s' "$classpath"
}

# bash_java_utils <command> [-Dkey=value...]: the result lines of Flink's BashJavaUtils.
bash_java_utils() {
  local command="$1"; shift
  local output
  if ! output="$(java -Xmx128m -classpath "$(flink_classpath)" \
    -Dlog4j.configurationFile="file:$FLINK_HOME/conf-default/log4j-quiet.properties" \
    org.apache.flink.runtime.util.bash.BashJavaUtils "$command" --configDir "$FLINK_CONF_DIR" "$@" 2>&1)"; then
    printf 'flink-process: BashJavaUtils %s failed:\n%s\n' "$command" "$output" >&2
    exit 1
  fi
  printf '%s\n' "$output" | sed -n 's/^BASH_JAVA_UTILS_EXEC_RESULT://p'
}

# config_value <key>: one option of the mounted configuration. config.yaml may be nested
# YAML, so Flink itself flattens it (as its own scripts do) into one `key: value` a line.
# Call load_config first, in this shell (config_value runs in $(...), a subshell).
FLAT_CONFIG=""
load_config() { FLAT_CONFIG="$(bash_java_utils UPDATE_AND_GET_FLINK_CONFIGURATION -flatten)"; }
config_value() {
  local key; key="$(printf '%s' "$1" | sed 's/\./\\./g')"
  printf '%s\n' "$FLAT_CONFIG" | sed -n "s/^$key:[[:space:]]*//p" | sed -n 1p |
    sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}

# run_flink_process <JM|TM> <main class> [args...]
run_flink_process() {
  local role="$1" main="$2"; shift 2
  load_config
  local command role_opts
  case "$role" in
    JM) command=GET_JM_RESOURCE_PARAMS role_opts="$(config_value env.java.opts.jobmanager)" ;;
    TM) command=GET_TM_RESOURCE_PARAMS role_opts="$(config_value env.java.opts.taskmanager)" ;;
    *) echo "flink-process: unknown role $role" >&2; exit 2 ;;
  esac
  local results jvm_params dynamic_configs
  results="$(bash_java_utils "$command" "$@")"
  jvm_params="$(printf '%s\n' "$results" | sed -n 1p)"
  dynamic_configs="$(printf '%s\n' "$results" | sed -n 2p)"
  if [ -z "$jvm_params" ]; then
    echo "flink-process: BashJavaUtils $command gave no JVM parameters" >&2
    exit 1
  fi
  local module_flags=()
  mapfile -t module_flags <"$FLINK_HOME/conf-default/jvm-options.txt"
  echo "Starting Flink ${role} (${main##*.}) with ${jvm_params}"
  # shellcheck disable=SC2086 # the parameters are space-separated flags, as Flink prints them
  exec java "${module_flags[@]}" $jvm_params $(config_value env.java.default-opts.all) \
    $(config_value env.java.opts.all) $role_opts \
    -Dlog.file=/dev/null \
    -Dlog4j.configurationFile="file:$FLINK_CONF_DIR/log4j-console.properties" \
    -Dlog4j2.configurationFile="file:$FLINK_CONF_DIR/log4j-console.properties" \
    -classpath "$(flink_classpath)" "$main" --configDir "$FLINK_CONF_DIR" "$@" $dynamic_configs
}
