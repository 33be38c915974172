#!/usr/bin/env bash
# Runs Redis 7.0.15's own test suite (external mode) against a release build of ember-server.
#
#   scripts/redis-suite.sh [UNIT ...]     default: every unit with externally runnable tests
#
# Ember is started on a free port with DEBUG enabled (the suite uses it, as Redis's CI does)
# and data in a temporary folder. Units run one at a time; when Ember stops answering after a
# unit, that unit is recorded as a crash and a fresh Ember is started for the next one. Tests
# in tests/redis-suite/skip.txt (one line of reason each) are skipped.
#
# Exit status 0 only when no unit crashed or timed out and at least the floor in
# tests/redis-suite/floor.txt passed (a run of named units checks crashes and timeouts only).
# Environment: REDIS_TESTS_SUITE (the suite's folder; default tests/redis-suite/upstream),
# UNIT_TIMEOUT (per unit, default 300 s), EMBER_BIN (skip the build).
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# The suite is vendored (tests/redis-suite/upstream: Redis's tests/ at 7.0.15, BSD licence, with
# the shared runner), so a clean clone runs it with nothing beside it.
suite=${REDIS_TESTS_SUITE:-$repo/tests/redis-suite/upstream}
if [ ! -x "$suite/run.sh" ]; then
  echo "redis-suite: Redis's test suite not found at $suite (set REDIS_TESTS_SUITE)" >&2
  exit 2
fi
for tool in tclsh redis-cli; do
  command -v "$tool" >/dev/null || { echo "redis-suite: $tool is missing (apt-get install tcl redis-tools)" >&2; exit 2; }
done

bin=${EMBER_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin ember-server || exit 2
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/ember-server
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ember-suite.XXXXXX")
pid=""
port=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$pid" ] && wait "$pid" 2>/dev/null
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() {
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(timeout 5 redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]
}

start_ember() {
  cleanup
  port=$(free_port)
  local dir="$work/data-$port"
  mkdir -p "$dir"
  (cd "$dir" && exec "$bin" --port "$port" --enable-debug-command yes --save "" >>"$work/ember.log" 2>&1) &
  pid=$!
  for _ in $(seq 1 100); do
    alive && return 0
    sleep 0.1
  done
  echo "redis-suite: ember-server did not start (log: $work/ember.log)" >&2
  exit 2
}

units=("$@")
full=0
if [ ${#units[@]} -eq 0 ]; then
  full=1
  # The list run-suite.sh calls "default": units with tests that run against an external server.
  units=(unit/dump unit/protocol unit/keyspace unit/scan unit/info-command unit/type/string
    unit/type/incr unit/type/list unit/type/list-2 unit/type/list-3 unit/type/set unit/type/zset
    unit/type/hash unit/type/stream unit/type/stream-cgroups unit/sort unit/expire unit/other
    unit/multi unit/quit unit/latency-monitor integration/redis-cli unit/pubsub unit/slowlog
    unit/scripting unit/functions unit/introspection unit/introspection-2 unit/bitops
    unit/bitfield unit/geo unit/hyperloglog unit/lazyfree unit/pause unit/querybuf
    unit/tracking unit/violations unit/replybufsize)
fi

skipfile=$work/skip.txt
grep -v '^\s*\(#\|$\)' tests/redis-suite/skip.txt | sed 's/\s*#.*$//' >"$skipfile"

echo "# Redis test suite against ember-server (work folder $work)"
passed=0 failed=0 skipped=0 crashes=0 timeouts=0
for unit in "${units[@]}"; do
  alive || start_ember
  line=$(REDIS_TESTS_WORK="$work/suite" REDIS_TESTS_SKIPFILE="$skipfile" UNIT_TIMEOUT="${UNIT_TIMEOUT:-300}" \
    REDIS_TESTS_STALL="${REDIS_TESTS_STALL:-120}" "$suite/run.sh" external 127.0.0.1 "$port" "$unit" 2>&1 |
    grep -E "^$unit ")
  if ! alive; then
    line="$line (ember-server died)"
    line=${line/status=ok/status=crash}
    sed -n '/panicked/,+5p' "$work/ember.log" | tail -20
  fi
  echo "$line"
  p=$(sed -n 's/.*passed=\([0-9]*\).*/\1/p' <<<"$line"); f=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$line")
  s=$(sed -n 's/.*skipped=\([0-9]*\).*/\1/p' <<<"$line")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
  case "$line" in
    *status=timeout*) timeouts=$((timeouts + 1)) ;;
    *status=ok*) ;;
    *) crashes=$((crashes + 1)) ;;
  esac
done
floor=$(grep -o '^[0-9]*' tests/redis-suite/floor.txt | head -1)
echo "TOTAL passed=$passed failed=$failed skipped=$skipped crashes=$crashes timeouts=$timeouts floor=$floor"
echo "# failed tests: grep -h '^\[err\]' $work/suite/tests/tmp/runner-logs/*/*.log"
status=0
if [ "$crashes" -gt 0 ] || [ "$timeouts" -gt 0 ]; then
  echo "redis-suite: FAILED: $crashes unit(s) crashed, $timeouts timed out" >&2
  status=1
fi
if [ "$full" = 1 ] && [ "$passed" -lt "$floor" ]; then
  echo "redis-suite: FAILED: $passed tests passed, below the floor of $floor" >&2
  status=1
fi
exit $status
