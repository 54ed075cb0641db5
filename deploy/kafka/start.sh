#!/usr/bin/env bash
# Start a real single-node Apache Kafka broker (KRaft, combined
# broker+controller) on loopback for tests. Jars come from Maven Central via
# deploy/kafka/pom.xml and are cached; see deploy/kafka/README.md.
#
# On success prints:  KAFKA_BOOTSTRAP=127.0.0.1:<port>
#
# Env (all optional):
#   KAFKA_VERSION          Kafka version to fetch (default 4.1.1)
#   KAFKA_HOME_CACHE       cache dir for jars/runtime files (default deploy/kafka/.cache)
#   KAFKA_PORT             broker (PLAINTEXT) port (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default KAFKA_PORT+1, i.e. 19093)
#   KAFKA_DATA_DIR         log.dirs / metadata dir (default $KAFKA_HOME_CACHE/data-<port>)
#   KAFKA_HEAP_OPTS        JVM heap (default "-Xms256m -Xmx512m")
#   KAFKA_JVM_OPTS         extra JVM options, appended
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 90)
#   KAFKA_PYTHON           python with kafka-python for the readiness check
#                          (default <repo>/.venv/bin/python if present)
#   MVN, JAVA_HOME         which maven / java to use
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
CACHE="${KAFKA_HOME_CACHE:-$HERE/.cache}"
PORT="${KAFKA_PORT:-19092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
DATA_DIR="${KAFKA_DATA_DIR:-$CACHE/data-$PORT}"
TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
MVN="${MVN:-mvn}"
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi

LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
RUN="$CACHE/run-$PORT"           # pid file, logs, generated config (kept after stop)
PID_FILE="$RUN/kafka.pid"
LOG_FILE="$RUN/server.log"
BOOTSTRAP="127.0.0.1:$PORT"

log() { echo "[kafka/start] $*" >&2; }
die() { echo "[kafka/start] ERROR: $*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ && "$CPORT" =~ ^[0-9]+$ ]] || die "KAFKA_PORT/KAFKA_CONTROLLER_PORT must be numbers"
[[ "$PORT" != "$CPORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
command -v "$JAVA" >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
JAVA_MAJOR="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
if [[ "$KAFKA_VERSION" == 4.* && "${JAVA_MAJOR:-0}" -lt 17 ]]; then
  die "Kafka $KAFKA_VERSION brokers need Java 17+, '$JAVA' is Java ${JAVA_MAJOR:-?} (set JAVA_HOME)"
fi

mkdir -p "$CACHE" "$RUN"
# Runtime state only: keep it out of git wherever the cache lives (like venv's .gitignore).
[[ -f "$CACHE/.gitignore" ]] || echo '*' >"$CACHE/.gitignore"
CACHE="$(cd "$CACHE" && pwd)"; LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"; RUN="$CACHE/run-$PORT"
PID_FILE="$RUN/kafka.pid"; LOG_FILE="$RUN/server.log"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Our broker process? (pid alive and its command line carries our marker)
ours_running() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-Dclicktrail.kafka.run=$RUN " || return 1
}

# ---------------------------------------------------------------- already up?
if ours_running; then
  log "broker from this script already running (pid $(cat "$PID_FILE"), port $PORT, log $LOG_FILE)"
  echo "KAFKA_BOOTSTRAP=$BOOTSTRAP"
  exit 0
fi
rm -f "$PID_FILE"
for p in "$PORT" "$CPORT"; do
  port_open "$p" && die "port $p on 127.0.0.1 is already in use (and not by a broker this script started for KAFKA_PORT=$PORT with cache $CACHE); pick free KAFKA_PORT / KAFKA_CONTROLLER_PORT"
done

# ---------------------------------------------------------------- fetch jars
# Cache key: the pom's content + version; re-fetched only when missing/changed.
POM_KEY="$KAFKA_VERSION $(cksum <"$HERE/pom.xml" | cut -d' ' -f1)"
fetch_jars() {
  if [[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$POM_KEY" ]]; then return 0; fi
  command -v "$MVN" >/dev/null || die "maven ('$MVN') not found; needed once to fetch Kafka jars into $LIBS"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS ..."
  local tmp="$CACHE/kafka-$KAFKA_VERSION/libs.tmp.$$" mlog="$CACHE/kafka-$KAFKA_VERSION/mvn.log"
  rm -rf "$tmp"; mkdir -p "$tmp"
  if ! "$MVN" -B -q -Dstyle.color=never -f "$HERE/pom.xml" \
        dependency:copy-dependencies -DincludeScope=runtime \
        -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$tmp" >"$mlog" 2>&1; then
    rm -rf "$tmp"
    tail -n 40 "$mlog" >&2 || true
    die "maven could not fetch Kafka $KAFKA_VERSION (full output: $mlog)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "maven ran but kafka_2.13 jar is missing in $tmp"; }
  echo "$POM_KEY" >"$tmp/.complete"
  rm -rf "$LIBS"; mv "$tmp" "$LIBS"
}
if command -v flock >/dev/null; then
  mkdir -p "$CACHE/kafka-$KAFKA_VERSION"
  exec 9>"$CACHE/kafka-$KAFKA_VERSION/.fetch.lock"
  flock 9
  fetch_jars
  flock -u 9; exec 9>&-
else
  fetch_jars
fi
CLASSPATH="$LIBS/*"

# ---------------------------------------------------------------- config
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
echo "$DATA_DIR" >"$RUN/data_dir"      # read by stop.sh

cat >"$RUN/server.properties" <<EOF
# Generated by deploy/kafka/start.sh -- single-node KRaft broker for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

# Test-friendly defaults (single replica everywhere, fast group joins).
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
delete.topic.enable=true

# Small machine (2 cores).
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.retention.hours=24
log.segment.bytes=67108864
EOF

cat >"$RUN/log4j2.properties" <<'EOF'
# Everything to stdout (redirected to server.log by start.sh). Quiet but useful.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.logcleaner.name = kafka.log.LogCleaner
logger.logcleaner.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF

# HEAP_OPTS / KAFKA_JVM_OPTS are whitespace-separated option lists.
read -r -a HEAP_ARR <<<"$HEAP_OPTS"
read -r -a EXTRA_ARR <<<"${KAFKA_JVM_OPTS:-}"
JVM_OPTS=(
  "${HEAP_ARR[@]}"
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:TieredStopAtLevel=1
  -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$RUN/log4j2.properties"
  -Dkafka.logs.dir="$RUN"
  "${EXTRA_ARR[@]}"
)

# ---------------------------------------------------------------- format
if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
  # Random cluster id in Kafka's Uuid format: 16 random bytes, url-safe base64, no padding.
  CLUSTER_ID=""
  while [[ -z "$CLUSTER_ID" || "$CLUSTER_ID" == -* ]]; do
    CLUSTER_ID="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  log "formatting $DATA_DIR (cluster id $CLUSTER_ID)"
  if ! "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$RUN/log4j2.properties" \
        -cp "$CLASSPATH" kafka.tools.StorageTool format \
        -t "$CLUSTER_ID" -c "$RUN/server.properties" --ignore-formatted >"$RUN/format.log" 2>&1; then
    cat "$RUN/format.log" >&2
    die "kafka-storage format failed"
  fi
else
  log "reusing already formatted data dir $DATA_DIR"
fi

# ---------------------------------------------------------------- start
log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (controller 127.0.0.1:$CPORT), log: $LOG_FILE"
: >"$LOG_FILE"
# setsid: own session, so the broker outlives this script and its terminal.
# The -Dclicktrail.kafka.run marker lets start/stop recognise our process.
setsid "$JAVA" "${JVM_OPTS[@]}" "-Dclicktrail.kafka.run=$RUN" -cp "$CLASSPATH" kafka.Kafka "$RUN/server.properties" \
  </dev/null >>"$LOG_FILE" 2>&1 &
PID=$!
echo "$PID" >"$PID_FILE"

# ---------------------------------------------------------------- wait
fail() {
  echo "[kafka/start] ERROR: $1" >&2
  echo "----- last 60 lines of $LOG_FILE -----" >&2
  tail -n 60 "$LOG_FILE" >&2 || true
  echo "--------------------------------------" >&2
  if kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID" 2>/dev/null || true; sleep 2; kill -KILL "$PID" 2>/dev/null || true; fi
  rm -f "$PID_FILE"
  exit 1
}

PY="${KAFKA_PYTHON:-}"
if [[ -z "$PY" && -x "$REPO/.venv/bin/python" ]]; then PY="$REPO/.venv/bin/python"; fi
if [[ -n "$PY" ]] && ! "$PY" -c 'import kafka' 2>/dev/null; then PY=""; fi

# Metadata check: the broker answers a real Kafka request and lists itself.
metadata_ok() {
  if [[ -n "$PY" ]]; then
    "$PY" - "$BOOTSTRAP" <<'PYEOF' >/dev/null 2>&1
import sys
from kafka import KafkaAdminClient
a = KafkaAdminClient(bootstrap_servers=sys.argv[1], client_id="clicktrail-start-probe",
                     request_timeout_ms=5000, bootstrap_timeout_ms=5000)
try:
    c = a.describe_cluster()
    assert c.get("brokers"), c
finally:
    a.close()
PYEOF
  else
    grep -q "Kafka Server started" "$LOG_FILE"
  fi
}

start_ts=$SECONDS
while :; do
  kill -0 "$PID" 2>/dev/null || fail "broker process exited during startup"
  if port_open "$PORT" && metadata_ok; then break; fi
  (( SECONDS - start_ts >= TIMEOUT )) && fail "broker did not answer on $BOOTSTRAP within ${TIMEOUT}s"
  sleep 0.5
done

log "Kafka $KAFKA_VERSION up on $BOOTSTRAP after $((SECONDS - start_ts))s (pid $PID)"
echo "KAFKA_BOOTSTRAP=$BOOTSTRAP"
