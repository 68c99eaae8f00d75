#!/usr/bin/env bash
# Run a throwaway single-node Apache Kafka 4.x broker (KRaft, broker+controller
# in one JVM) on 127.0.0.1 for tests.
#
#   scripts/kafka.sh start    start in the background (no-op if running);
#                             the last stdout line is the bootstrap address
#   scripts/kafka.sh stop     stop it (idempotent)
#   scripts/kafka.sh status   "running <addr>" (exit 0) / "stopped <addr>" (exit 3)
#   scripts/kafka.sh restart  stop, then start on the same data (topics, offsets,
#                             transactions survive): a broker restart for chaos tests
#
# Needs only Java 17+ and Maven: Kafka's jars come from Maven Central (pom in
# scripts/kafka/) and are cached, so only the first start downloads anything.
# stdout carries nothing but the result; progress and errors go to stderr.
#
# Environment (all optional):
#   KAFKA_PORT (9092)  KAFKA_CONTROLLER_PORT (9093)
#   KAFKA_VERSION (4.1.1)           kafka_2.13 version fetched from Maven
#   STREAMSENSE_KAFKA_HOME (~/.cache/streamsense/kafka)  jar cache (lib/)
#   STREAMSENSE_KAFKA_RUN (/tmp/streamsense-kafka)       pid, config, logs, data
#   KAFKA_KEEP_DATA=1               keep the previous data instead of a fresh,
#                                   empty broker on every start
#   KAFKA_HEAP_OPTS ("-Xms1g -Xmx1g")
#   KAFKA_START_TIMEOUT (90)  KAFKA_STOP_TIMEOUT (20)   seconds
#   STREAMSENSE_KAFKA_PYTHON        python with confluent_kafka for the
#                                   readiness probe (default: repo .venv, python3;
#                                   "none" = rely on the log line only)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
TEMPLATE_DIR="$SCRIPT_DIR/kafka"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
CACHE_DIR="${STREAMSENSE_KAFKA_HOME:-$HOME/.cache/streamsense/kafka}"
LIB_DIR="$CACHE_DIR/lib"
RUN_DIR="${STREAMSENSE_KAFKA_RUN:-/tmp/streamsense-kafka}"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_DIR="$RUN_DIR/logs"
DATA_DIR="$RUN_DIR/data"
CONFIG="$RUN_DIR/server.properties"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-20}"
# Kafka's own default heap. With 512 MB the young generation filled every ~0.7 s under a
# 1,000 events/s pipeline and each collection paused the broker 5-10 ms, which set the p99
# of every client (bench/kafka_bench.py's bare floor: p99 6.8-14.5 ms; with 1 GB 2.6-6.5 ms).
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xms1g -Xmx1g}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
ADDRESS="127.0.0.1:$KAFKA_PORT"

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# RUN_DIR gets rm -rf'ed below; refuse values that would make that dangerous.
case "$RUN_DIR" in
  "" | "/" | "$HOME" | "$HOME/") die "refusing STREAMSENSE_KAFKA_RUN='$RUN_DIR'" ;;
esac

# True if pid $1 exists and is not a zombie. kill -0 alone is not enough: a
# broker that died while this script is still its parent (during start), or
# under a container init that never reaps, lingers as a zombie.
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Pid of our broker if it is running. The cmdline check guards against a stale
# pid file whose pid was reused by an unrelated process.
broker_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $CONFIG" || return 1
  echo "$pid"
}

# True if something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp,
# so no nc/ss needed).
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Serialise start/stop (e.g. two test sessions starting at once). The fd is
# closed for the broker itself (9>&- below), or it would hold the lock forever.
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w $((START_TIMEOUT + 60)) 9 || die "timed out waiting for $RUN_DIR/.lock"
}

# Download Kafka + log4j2 into $LIB_DIR once. The stamp records what the jars
# were fetched for, so editing the pom or KAFKA_VERSION triggers a refetch.
fetch_jars() {
  local stamp want tmp
  want="$KAFKA_VERSION $(sha256sum "$TEMPLATE_DIR/pom.xml" | cut -d' ' -f1)"
  stamp="$LIB_DIR/.fetched"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch Kafka jars)"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIB_DIR ..."
  mkdir -p "$CACHE_DIR"
  # Fetch into a temp dir and swap it in, so an interrupted download never
  # leaves a half-filled lib/ that looks complete.
  tmp="$(mktemp -d "$CACHE_DIR/lib.tmp.XXXXXX")"
  # sed: Maven 3.8 prints stray colour resets even with -q -B.
  if ! mvn -B -q -Dstyle.color=never -f "$TEMPLATE_DIR/pom.xml" \
      -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$tmp" 2>&1 \
      | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
    rm -rf "$tmp"
    die "maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  echo "$want" >"$tmp/.fetched"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
}

# The JVM command line shared by the storage tool and the broker. Logging is
# configured by our log4j2 file (the Maven jars ship no config of their own).
JAVA_CMD=("$JAVA" "${HEAP_OPTS[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -Djava.awt.headless=true
  -Dkafka.logs.dir="$LOG_DIR"
  -Dlog4j2.configurationFile="$TEMPLATE_DIR/log4j2.properties"
  -cp "$LIB_DIR/*")
java_cmd() { "${JAVA_CMD[@]}" "$@"; }

write_config() {
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_DATA_DIR@|$DATA_DIR|g" \
      "$TEMPLATE_DIR/server.properties.in" >"$CONFIG"
}

# KRaft refuses to start on an unformatted log dir. A fresh dir per start means
# every start gives an empty broker: no topics or offsets leak between runs.
format_storage() {
  local cluster_id
  if [[ "${KAFKA_KEEP_DATA:-0}" == 1 && -f "$DATA_DIR/meta.properties" ]]; then
    return 0
  fi
  rm -rf "$DATA_DIR"
  # Same format as `kafka-storage random-uuid` (16 random bytes, base64url, no
  # padding; Kafka avoids a leading '-'), without paying a ~1 s JVM start.
  cluster_id="-"
  while [[ "$cluster_id" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  java_cmd kafka.tools.StorageTool format --standalone \
    -t "$cluster_id" -c "$CONFIG" >>"$LOG_DIR/format.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/format.log" >&2; die "formatting $DATA_DIR failed"; }
}

# Python with confluent_kafka for an end-to-end metadata request, if there is
# one; the script must also work without it (log line check only).
probe_python() {
  local py
  [[ "${STREAMSENSE_KAFKA_PYTHON:-}" == none ]] && return 1
  for py in "${STREAMSENSE_KAFKA_PYTHON:-}" "$REPO_DIR/.venv/bin/python" python3; do
    if [[ -z "$py" ]] || ! command -v "$py" >/dev/null 2>&1; then
      continue
    fi
    if "$py" -c 'import confluent_kafka' 2>/dev/null; then
      echo "$py"
      return 0
    fi
  done
  return 1
}

metadata_ok() {
  "$1" - "$ADDRESS" <<'EOF' >/dev/null 2>&1
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)
sys.exit(0 if md.brokers else 1)
EOF
}

show_logs() {
  log "---- tail of $LOG_DIR/kafka.out ----"
  tail -n 20 "$LOG_DIR/kafka.out" >&2 2>/dev/null || true
  log "---- tail of $LOG_DIR/server.log ----"
  tail -n 40 "$LOG_DIR/server.log" >&2 2>/dev/null || true
}

# Ready = process alive, "Kafka Server started" logged (our log4j2 config keeps
# kafka.server at INFO for this), port accepting, and, when a confluent_kafka
# python is around, a real metadata round trip.
wait_ready() {
  local pid="$1" deadline=$((SECONDS + START_TIMEOUT)) py=""
  py="$(probe_python)" || py=""
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      show_logs
      rm -f "$PID_FILE"
      die "broker exited during startup (logs in $LOG_DIR)"
    fi
    if grep -q "Kafka Server started" "$LOG_DIR/server.log" 2>/dev/null \
        && port_open "$KAFKA_PORT" \
        && { [[ -z "$py" ]] || metadata_ok "$py"; }; then
      return 0
    fi
    sleep 0.25
  done
  show_logs
  die "broker not ready after ${START_TIMEOUT}s (still running as pid $pid; logs in $LOG_DIR)"
}

cmd_start() {
  local pid port t0=$SECONDS
  take_lock
  if pid="$(broker_pid)"; then
    log "already running (pid $pid)"
    echo "$ADDRESS"
    return 0
  fi
  rm -f "$PID_FILE"
  command -v "$JAVA" >/dev/null || die "java not found (Kafka 4.x needs Java 17+)"
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    port_open "$port" && die "127.0.0.1:$port is already in use by another process"
  done

  fetch_jars
  rm -rf "$LOG_DIR"
  mkdir -p "$LOG_DIR"
  write_config
  format_storage

  log "starting Kafka $KAFKA_VERSION on $ADDRESS (logs: $LOG_DIR)"
  # nohup + no stdin: the broker outlives this script and its terminal.
  nohup "${JAVA_CMD[@]}" kafka.Kafka "$CONFIG" \
    >"$LOG_DIR/kafka.out" 2>&1 </dev/null 9>&- &
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
  # Controlled shutdown normally takes a few seconds; don't hang a test run
  # on a wedged JVM.
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
    KAFKA_KEEP_DATA=1 cmd_start
    ;;
  *)
    echo "usage: $0 start|stop|status|restart" >&2
    exit 2
    ;;
esac
