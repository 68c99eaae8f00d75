#!/usr/bin/env bash
# Run a throwaway single-node Apache Pulsar (standalone mode: broker, one bookie and a RocksDB
# metadata store in one JVM) on 127.0.0.1 for tests.
#
#   scripts/pulsar.sh start    start in the background (no-op if running);
#                              the last stdout line is the broker URL
#                              (pulsar://host:port?admin=http://host:port)
#   scripts/pulsar.sh stop     stop it (idempotent)
#   scripts/pulsar.sh status   "running <url>" (exit 0) / "stopped <url>" (exit 3)
#   scripts/pulsar.sh restart  stop, then start on the same data (a broker restart)
#
# Needs only Java 17+ and Maven: Pulsar's jars come from Maven Central (pom in
# scripts/pulsar/) and are cached, so only the first start downloads anything (~250 MB).
# stdout carries nothing but the result; progress and errors go to stderr.
#
# Environment (all optional):
#   PULSAR_PORT (16650)  PULSAR_HTTP_PORT (18080)  PULSAR_BOOKIE_PORT (13181)
#   PULSAR_VERSION (4.2.4)          org.apache.pulsar:pulsar-broker version fetched from Maven
#   STREAMSENSE_PULSAR_HOME (~/.cache/streamsense/pulsar)  jar cache (lib/)
#   STREAMSENSE_PULSAR_RUN (/tmp/streamsense-pulsar)       pid, config, logs, data
#   PULSAR_KEEP_DATA=1              keep the previous data instead of a fresh broker
#   PULSAR_MEM ("-Xms512m -Xmx1g -XX:MaxDirectMemorySize=1g")
#   PULSAR_START_TIMEOUT (120)  PULSAR_STOP_TIMEOUT (20)   seconds
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE_DIR="$SCRIPT_DIR/pulsar"

PULSAR_VERSION="${PULSAR_VERSION:-4.2.4}"
PULSAR_PORT="${PULSAR_PORT:-16650}"
PULSAR_HTTP_PORT="${PULSAR_HTTP_PORT:-18080}"
PULSAR_BOOKIE_PORT="${PULSAR_BOOKIE_PORT:-13181}"
CACHE_DIR="${STREAMSENSE_PULSAR_HOME:-$HOME/.cache/streamsense/pulsar}"
LIB_DIR="$CACHE_DIR/lib"
RUN_DIR="${STREAMSENSE_PULSAR_RUN:-/tmp/streamsense-pulsar}"
PID_FILE="$RUN_DIR/pulsar.pid"
LOG_DIR="$RUN_DIR/logs"
DATA_DIR="$RUN_DIR/data"
CONFIG="$RUN_DIR/standalone.conf"
START_TIMEOUT="${PULSAR_START_TIMEOUT:-120}"
STOP_TIMEOUT="${PULSAR_STOP_TIMEOUT:-20}"
read -r -a MEM_OPTS <<<"${PULSAR_MEM:--Xms512m -Xmx1g -XX:MaxDirectMemorySize=1g}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# The broker URL streamsense takes (--broker): the binary protocol plus the admin API.
ADDRESS="pulsar://127.0.0.1:$PULSAR_PORT?admin=http://127.0.0.1:$PULSAR_HTTP_PORT"
HEALTH_URL="http://127.0.0.1:$PULSAR_HTTP_PORT/admin/v2/brokers/health"
NAMESPACES_URL="http://127.0.0.1:$PULSAR_HTTP_PORT/admin/v2/namespaces/public"

log() { echo "pulsar.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# RUN_DIR gets rm -rf'ed below; refuse values that would make that dangerous.
case "$RUN_DIR" in
  "" | "/" | "$HOME" | "$HOME/") die "refusing STREAMSENSE_PULSAR_RUN='$RUN_DIR'" ;;
esac

# True if pid $1 exists and is not a zombie (a broker that died while this script is still
# its parent lingers as one).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Pid of our broker if it is running; the cmdline check guards against a reused pid.
broker_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config $CONFIG" || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Serialise start/stop; the fd is closed for the broker itself (9>&- below).
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w $((START_TIMEOUT + 60)) 9 || die "timed out waiting for $RUN_DIR/.lock"
}

# Download Pulsar's jars into $LIB_DIR once; the stamp names the version and the pom, so a
# change to either triggers a refetch. Fetched into a temp dir and swapped in whole.
fetch_jars() {
  local stamp want tmp
  want="$PULSAR_VERSION $(sha256sum "$TEMPLATE_DIR/pom.xml" | cut -d' ' -f1)"
  stamp="$LIB_DIR/.fetched"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Pulsar jars)"
  log "fetching Pulsar $PULSAR_VERSION jars from Maven Central into $LIB_DIR ..."
  mkdir -p "$CACHE_DIR"
  tmp="$(mktemp -d "$CACHE_DIR/lib.tmp.XXXXXX")"
  if ! mvn -B -q -Dstyle.color=never -f "$TEMPLATE_DIR/pom.xml" \
      -Dpulsar.version="$PULSAR_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp" 2>&1 \
      | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
    rm -rf "$tmp"
    die "maven could not fetch org.apache.pulsar:pulsar-broker:$PULSAR_VERSION"
  fi
  echo "$want" >"$tmp/.fetched"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
}

write_config() {
  sed -e "s|@PULSAR_PORT@|$PULSAR_PORT|g" \
      -e "s|@PULSAR_HTTP_PORT@|$PULSAR_HTTP_PORT|g" \
      "$TEMPLATE_DIR/standalone.conf.in" >"$CONFIG"
}

show_logs() {
  log "---- tail of $LOG_DIR/pulsar.out ----"
  tail -n 20 "$LOG_DIR/pulsar.out" >&2 2>/dev/null || true
  log "---- errors in $LOG_DIR/pulsar.log ----"
  grep -E " (ERROR|FATAL) " "$LOG_DIR/pulsar.log" 2>/dev/null | tail -n 20 >&2 || true
}

# Ready = process alive, the broker's health check answers 200 (it writes and reads a
# message on its own health-check topic, so the bookie and the metadata store work too), and
# the namespace topics go to exists: standalone creates public/default after the broker
# answers, and a topic created before then is refused ("Namespace not found").
wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      show_logs
      rm -f "$PID_FILE"
      die "broker exited during startup (logs in $LOG_DIR)"
    fi
    if port_open "$PULSAR_HTTP_PORT" && port_open "$PULSAR_PORT" \
        && curl -sf -m 10 "$HEALTH_URL" >/dev/null 2>&1 \
        && curl -sf -m 10 "$NAMESPACES_URL" 2>/dev/null | grep -q '"public/default"'; then
      return 0
    fi
    sleep 0.5
  done
  show_logs
  die "broker not ready after ${START_TIMEOUT}s (still running as pid $pid; logs in $LOG_DIR)"
}

cmd_start() {
  local pid port t0=$SECONDS wipe=(--wipe-data)
  take_lock
  if pid="$(broker_pid)"; then
    log "already running (pid $pid)"
    echo "$ADDRESS"
    return 0
  fi
  rm -f "$PID_FILE"
  command -v "$JAVA" >/dev/null || die "java not found (Pulsar 4.x needs Java 17+)"
  command -v curl >/dev/null || die "curl not found (used for the readiness check)"
  for port in "$PULSAR_PORT" "$PULSAR_HTTP_PORT" "$PULSAR_BOOKIE_PORT"; do
    port_open "$port" && die "127.0.0.1:$port is already in use by another process"
  done

  fetch_jars
  rm -rf "$LOG_DIR"
  mkdir -p "$LOG_DIR"
  write_config
  if [[ "${PULSAR_KEEP_DATA:-0}" == 1 && -d "$DATA_DIR" ]]; then
    wipe=()
  else
    rm -rf "$DATA_DIR"
  fi

  log "starting Pulsar $PULSAR_VERSION on $ADDRESS (admin http://127.0.0.1:$PULSAR_HTTP_PORT, logs: $LOG_DIR)"
  # The --add-opens are those of Pulsar's own bin/pulsar: without them the load manager and
  # GC metrics log an IllegalAccessException at every start.
  nohup "$JAVA" "${MEM_OPTS[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true \
    --add-opens java.base/java.io=ALL-UNNAMED \
    --add-opens java.base/java.nio=ALL-UNNAMED \
    --add-opens java.base/jdk.internal.platform=ALL-UNNAMED \
    --add-opens java.base/sun.net=ALL-UNNAMED \
    --add-opens java.management/sun.management=ALL-UNNAMED \
    --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
    -Dpulsar.log.dir="$LOG_DIR" \
    -Dlog4j2.configurationFile="$TEMPLATE_DIR/log4j2.properties" \
    -cp "$LIB_DIR/*" org.apache.pulsar.PulsarStandaloneStarter \
    --config "$CONFIG" --no-functions-worker --no-stream-storage \
    --metadata-dir "$DATA_DIR/metadata" --bookkeeper-dir "$DATA_DIR/bookkeeper" \
    --bookkeeper-port "$PULSAR_BOOKIE_PORT" "${wipe[@]}" \
    >"$LOG_DIR/pulsar.out" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  wait_ready "$pid"
  log "ready in $((SECONDS - t0))s (pid $pid)"
  echo "$ADDRESS"
}

cmd_stop() {
  local pid i
  take_lock
  if ! pid="$(broker_pid)"; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 4; i++)); do
    alive "$pid" || break
    sleep 0.25
  done
  if alive "$pid"; then
    log "still alive after ${STOP_TIMEOUT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      alive "$pid" || break
      sleep 0.25
    done
    alive "$pid" && die "pid $pid survived KILL"
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(broker_pid)"; then
    echo "running $ADDRESS (pid $pid)"
    return 0
  fi
  echo "stopped $ADDRESS"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart)
    cmd_stop
    PULSAR_KEEP_DATA=1 cmd_start
    ;;
  *)
    echo "usage: $0 start|stop|status|restart" >&2
    exit 2
    ;;
esac
