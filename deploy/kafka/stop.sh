#!/usr/bin/env bash
# Stop the broker started by deploy/kafka/start.sh (same KAFKA_PORT /
# KAFKA_HOME_CACHE) and remove its data dir unless KAFKA_KEEP_DATA=1.
# Idempotent: no broker running -> exit 0.
#
# Env: KAFKA_HOME_CACHE, KAFKA_PORT (as for start.sh), KAFKA_KEEP_DATA=1,
#      KAFKA_STOP_TIMEOUT (seconds between SIGTERM and SIGKILL, default 30).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${KAFKA_HOME_CACHE:-$HERE/.cache}"
PORT="${KAFKA_PORT:-19092}"
TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

log() { echo "[kafka/stop] $*" >&2; }

if [[ ! -d "$CACHE/run-$PORT" ]]; then
  log "no broker state for port $PORT under $CACHE; nothing to stop"
  exit 0
fi
RUN="$(cd "$CACHE/run-$PORT" && pwd)"
PID_FILE="$RUN/kafka.pid"

is_ours() {  # pid alive and carrying start.sh's marker for this run dir
  kill -0 "$1" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "-Dclicktrail.kafka.run=$RUN "
}

pid="$(cat "$PID_FILE" 2>/dev/null || true)"
if [[ "$pid" =~ ^[0-9]+$ ]] && is_ours "$pid"; then
  log "stopping broker pid $pid (port $PORT)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + TIMEOUT))
  while is_ours "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
  if is_ours "$pid"; then
    log "broker did not exit within ${TIMEOUT}s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do is_ours "$pid" || break; sleep 0.1; done
  fi
  if is_ours "$pid"; then log "ERROR: broker pid $pid still alive"; exit 1; fi
  log "broker stopped"
else
  log "no broker from start.sh running on port $PORT"
fi
rm -f "$PID_FILE"

if [[ "${KAFKA_KEEP_DATA:-0}" == "1" ]]; then
  log "KAFKA_KEEP_DATA=1: keeping data dir"
  exit 0
fi
data_dir="$(cat "$RUN/data_dir" 2>/dev/null || true)"
if [[ -n "$data_dir" && -d "$data_dir" ]]; then
  # Only delete what looks like a Kafka data dir (formatted, or still empty).
  if [[ -f "$data_dir/meta.properties" || -z "$(ls -A "$data_dir")" ]]; then
    rm -rf -- "$data_dir"
    log "removed data dir $data_dir"
  else
    log "WARNING: $data_dir does not look like a Kafka data dir (no meta.properties); not removing it"
  fi
fi
rm -f "$RUN/data_dir"
exit 0
