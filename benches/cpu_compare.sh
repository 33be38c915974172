#!/usr/bin/env bash
# Server CPU per request, Ember against redis-server (and optionally an older Ember build),
# in one run: for each redis-benchmark test, the server's utime+stime from /proc/PID/stat
# over the run, divided by the requests. On a 2-core machine one redis-benchmark caps every
# server's throughput, so requests per second say little; CPU per request is what a server
# costs. Runs alternate between servers, ROUNDS times; the median is printed.
#
#   benches/cpu_compare.sh                          # Ember (target/release) vs Redis
#   BASE=/path/to/old/ember-server benches/cpu_compare.sh   # a third column: the old build
#   TESTS=set,get N=2000000 P=32 ROUNDS=5 benches/cpu_compare.sh
#   TLS=1 P=1 benches/cpu_compare.sh               # over TLS (tls-port, client certificates)
#   PIN=1 benches/cpu_compare.sh     # servers on CPU 1, redis-benchmark on CPU 0 (less noise)
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS=${TESTS:-ping,set,get,incr,lpush,lpop,sadd,hset,zadd,lrange_100}
N=${N:-1000000}
P=${P:-16}
ROUNDS=${ROUNDS:-3}
EMBER=${EMBER:-target/release/ember-server}
BASE=${BASE:-}
TLS=${TLS:-0}
PIN=${PIN:-0}
SRV_CPU=(); CLI_CPU=()
if [ "$PIN" = 1 ]; then SRV_CPU=(taskset -c 1); CLI_CPU=(taskset -c 0); fi

command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install redis-server redis-tools)"; exit 1; }
[ -x "$EMBER" ] || cargo build --release -q
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
# With TLS=1 both servers serve only a tls-port, with certificates made here (a CA, a server
# and a client certificate), and every client presents its certificate (tls-auth-clients yes).
SRV_TLS=(); CLI_TLS=()
if [ "$TLS" = 1 ]; then
  (cd "$WORK" &&
    openssl req -x509 -new -nodes -newkey rsa:2048 -sha256 -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.crt &&
    for who in server client; do
      openssl req -new -nodes -newkey rsa:2048 -subj "/CN=bench-$who" -keyout $who.key -out $who.csr &&
      printf 'keyUsage = digitalSignature, keyEncipherment\nsubjectAltName = IP:127.0.0.1\n' > $who.ext &&
      openssl x509 -req -in $who.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 -extfile $who.ext -out $who.crt
    done) >/dev/null 2>&1 || { echo "openssl failed making the TLS certificates"; exit 1; }
  SRV_TLS=(--tls-cert-file "$WORK/server.crt" --tls-key-file "$WORK/server.key" --tls-ca-cert-file "$WORK/ca.crt")
  CLI_TLS=(--tls --cacert "$WORK/ca.crt" --cert "$WORK/client.crt" --key "$WORK/client.key")
fi
declare -A PORT PID
start() { # name binary
  local p; p=$(free_port)
  local ports=(--port "$p")
  [ "$TLS" = 1 ] && ports=(--port 0 --tls-port "$p" "${SRV_TLS[@]}")
  if [ "$2" = redis-server ]; then
    "${SRV_CPU[@]}" redis-server "${ports[@]}" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null &
  else
    "${SRV_CPU[@]}" "$2" "${ports[@]}" --bind 127.0.0.1 --save "" --dir "$WORK" >/dev/null &
  fi
  PID[$1]=$!; PORT[$1]=$p
  for _ in $(seq 100); do redis-cli -p "$p" "${CLI_TLS[@]}" ping >/dev/null 2>&1 && return; sleep 0.05; done
  echo "$1 did not start"; exit 1
}
NAMES=(ember redis)
start ember "$EMBER"
start redis redis-server
if [ -n "$BASE" ]; then NAMES+=(base); start base "$BASE"; fi
trap 'for n in "${NAMES[@]}"; do kill "${PID[$n]}" 2>/dev/null; done; rm -rf "$WORK"' EXIT

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# us_per_request NAME TEST
us_per_request() {
  local before after
  before=$(ticks "${PID[$1]}")
  "${CLI_CPU[@]}" redis-benchmark -p "${PORT[$1]}" "${CLI_TLS[@]}" -t "$2" -c 50 -n "$N" -P "$P" -r 100000 -q >/dev/null 2>&1
  after=$(ticks "${PID[$1]}")
  python3 -c "print(f'{($after - $before) / $HZ * 1e6 / $N:.3f}')"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"; }

printf '%-12s' test; for n in "${NAMES[@]}"; do printf '%14s' "${n}_us/req"; done; printf '%13s\n' ember/redis
IFS=, read -ra LIST <<< "$TESTS"
for t in "${LIST[@]}"; do
  declare -A SAMPLES=()
  for _ in $(seq "$ROUNDS"); do
    for n in "${NAMES[@]}"; do SAMPLES[$n]+="$(us_per_request "$n" "$t") "; done
  done
  printf '%-12s' "$t"
  declare -A MED=()
  for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    MED[$n]=$(median ${SAMPLES[$n]}); printf '%14s' "${MED[$n]}"
  done
  python3 -c "r=${MED[redis]}; print(f'{${MED[ember]}/r if r else 0:13.2f}')"
  unset SAMPLES MED
done
