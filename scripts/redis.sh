#!/usr/bin/env bash
# Run a redis-server on 127.0.0.1 for tests and benchmarks: by default throwaway (no RDB
# snapshots, no AOF, data in memory only); with REDIS_PERSIST=1 an append-only file in the run
# directory, fsynced every second and on shutdown, so a stop and start keeps the data (as an
# online store's Redis must: features lost on a restart would be served as empty windows).
#
#   scripts/redis.sh start    start in the background (no-op if running); returns once the
#                             server answers PING; the last stdout line is host:port
#   scripts/redis.sh stop     stop it by pid (idempotent)
#   scripts/redis.sh status   "running <addr>" (exit 0) / "stopped" (exit 3)
#
# If redis-server is not installed, start installs Debian's package with apt-get (as root,
# which CI is). stdout carries nothing but the result; progress and errors go to stderr.
#
# Environment (all optional):
#   REDIS_PORT                 port to use (default: the first free one from 16379 up)
#   STREAMSENSE_REDIS_RUN (/tmp/streamsense-redis)   pid, address, log
#   REDIS_START_TIMEOUT (30)  REDIS_STOP_TIMEOUT (10)   seconds
#   REDIS_MAXMEMORY (1gb)      the server's memory cap
#   REDIS_PERSIST (0)          1: keep the data across stop/start (AOF in the run directory)
set -euo pipefail

RUN_DIR="${STREAMSENSE_REDIS_RUN:-/tmp/streamsense-redis}"
PID_FILE="$RUN_DIR/redis.pid"
ADDR_FILE="$RUN_DIR/address"
LOG_FILE="$RUN_DIR/redis.log"
START_TIMEOUT="${REDIS_START_TIMEOUT:-30}"
STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-10}"
MAXMEMORY="${REDIS_MAXMEMORY:-1gb}"

log() { echo "redis.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

case "$RUN_DIR" in
  "" | "/" | "$HOME" | "$HOME/") die "refusing STREAMSENSE_REDIS_RUN='$RUN_DIR'" ;;
esac

# True if pid $1 exists and is not a zombie.
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# Pid of our server if it runs; the cmdline check guards against a reused pid.
server_pid() {
  local pid
  [[ -f "$PID_FILE" && -f "$ADDR_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(cat "$ADDR_FILE")" || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# PING over bash's /dev/tcp (no redis-cli needed): true once the server answers +PONG.
pong() (
  reply=""
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || true
  [[ "$reply" == "+PONG"* ]]
)

free_port() {
  local port
  for ((port = 16379; port < 16479; port++)); do
    port_open "$port" || {
      echo "$port"
      return 0
    }
  done
  die "no free port in 16379-16478"
}

take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w $((START_TIMEOUT + 300)) 9 || die "timed out waiting for $RUN_DIR/.lock"
}

ensure_installed() {
  command -v redis-server >/dev/null 2>&1 && return 0
  log "redis-server not found: installing Debian's redis-server package"
  [[ "$(id -u)" == 0 ]] || die "redis-server is not installed and installing it needs root"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq redis-server; } >&2 \
    || die "apt-get install redis-server failed"
  command -v redis-server >/dev/null 2>&1 || die "redis-server still not found after install"
}

cmd_start() {
  local pid port addr deadline
  take_lock
  if pid="$(server_pid)"; then
    log "already running (pid $pid)"
    cat "$ADDR_FILE"
    return 0
  fi
  rm -f "$PID_FILE" "$ADDR_FILE"
  ensure_installed
  if [[ -n "${REDIS_PORT:-}" ]]; then
    port="$REDIS_PORT"
    port_open "$port" && die "127.0.0.1:$port is already in use by another process"
  else
    port="$(free_port)"
  fi
  addr="127.0.0.1:$port"
  appendonly=no
  [[ "${REDIS_PERSIST:-0}" == 1 ]] && appendonly=yes
  log "starting redis-server on $addr (log: $LOG_FILE, append-only file: $appendonly)"
  # Foreground server under nohup, so $! is its pid; the lock fd is closed for it.
  nohup redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
    --save "" --appendonly "$appendonly" --appendfsync everysec --dir "$RUN_DIR" \
    --daemonize no \
    --maxmemory "$MAXMEMORY" --logfile "$LOG_FILE" \
    >/dev/null 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "$addr" >"$ADDR_FILE"
  deadline=$((SECONDS + START_TIMEOUT))
  until pong "$port" 2>/dev/null; do
    if ! alive "$pid"; then
      tail -n 20 "$LOG_FILE" >&2 2>/dev/null || true
      rm -f "$PID_FILE" "$ADDR_FILE"
      die "redis-server exited during startup"
    fi
    ((SECONDS < deadline)) || die "redis-server not ready after ${START_TIMEOUT}s (pid $pid)"
    sleep 0.05
  done
  log "ready (pid $pid)"
  echo "$addr"
}

cmd_stop() {
  local pid i
  take_lock
  if ! pid="$(server_pid)"; then
    rm -f "$PID_FILE" "$ADDR_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 20; i++)); do
    alive "$pid" || break
    sleep 0.05
  done
  if alive "$pid"; then
    log "still alive after ${STOP_TIMEOUT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$PID_FILE" "$ADDR_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(server_pid)"; then
    echo "running $(cat "$ADDR_FILE") (pid $pid)"
    return 0
  fi
  echo "stopped"
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
