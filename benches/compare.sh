#!/usr/bin/env bash
# Ember vs redis-server on the same machine, in one run.
#
# Throughput: redis-benchmark (-t ping,set,get,incr,mset -c 50), unpipelined and with -P 32,
# alternating Ember and Redis for ROUNDS rounds; prints each server's median rps and the ratio.
# Memory: loads KEYS small string keys into each server and prints RSS bytes per key.
# Numbers are noisy on a shared 2-core machine: compare the ratios of one run, not absolutes.
#
#   benches/compare.sh            # ROUNDS=3 N=200000 KEYS=1000000 by default
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
N=${N:-200000}
KEYS=${KEYS:-1000000}
TESTS=${TESTS:-ping,set,get,incr,mset}

command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install redis-server redis-tools)"; exit 1; }
cargo build --release -q
EMBER=target/release/ember-server

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
EP=$(free_port); RP=$(free_port)
$EMBER --port "$EP" --bind 127.0.0.1 --save "" --dir "$WORK" >/dev/null &
EPID=$!
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null &
RPID=$!
trap 'kill $EPID $RPID 2>/dev/null; rm -rf "$WORK"' EXIT
for p in $EP $RP; do
  for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
done

# bench PORT PIPELINE -> lines "TEST rps"
bench() {
  redis-benchmark -p "$1" -t "$TESTS" -c 50 -n "$N" -P "$2" -r 100000 --csv 2>/dev/null \
    | tail -n +2 | tr -d '"()' | awk -F, '{gsub(/ /, "_", $1); print $1, $2}'
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

RES=$(mktemp)
for pipe in 1 32; do
  for r in $(seq "$ROUNDS"); do
    bench "$EP" "$pipe" | sed "s/^/ember $pipe /" >>"$RES"
    bench "$RP" "$pipe" | sed "s/^/redis $pipe /" >>"$RES"
  done
done

printf '%-22s %4s %14s %14s %8s\n' test pipe ember_rps redis_rps ratio
for pipe in 1 32; do
  for t in $(awk -v p="$pipe" '$2==p {print $3}' "$RES" | sort -u); do
    e=$(awk -v p="$pipe" -v t="$t" '$1=="ember" && $2==p && $3==t {print $4}' "$RES" | median)
    r=$(awk -v p="$pipe" -v t="$t" '$1=="redis" && $2==p && $3==t {print $4}' "$RES" | median)
    printf '%-22s %4s %14.0f %14.0f %8.2f\n' "$t" "$pipe" "$e" "$r" "$(echo "$e / $r" | bc -l)"
  done
done
rm -f "$RES"

# Memory per key: small string keys loaded through redis-cli --pipe.
rss() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1=="used_memory_rss" {print $2}'; }
load() {
  redis-cli -p "$1" flushall >/dev/null
  local before; before=$(rss "$1")
  python3 - "$KEYS" <<'PY' | redis-cli -p "$1" --pipe >/dev/null
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
for i in range(n):
    k = b"key:%012d" % i
    v = b"value:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
PY
  local after; after=$(rss "$1")
  echo $(( (after - before) / KEYS ))
}
EM=$(load "$EP"); RM=$(load "$RP")
printf '\nmemory per key (%d string keys, RSS): ember %d B, redis %d B, ratio %.2f\n' "$KEYS" "$EM" "$RM" "$(echo "$EM / $RM" | bc -l)"
