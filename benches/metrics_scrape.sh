#!/usr/bin/env bash
# What the metrics endpoint costs: Ember's CPU per request under redis-benchmark -P 32, with
# nobody scraping and with a scraper fetching /metrics every INTERVAL seconds (default 1,
# fifteen times Prometheus's usual rate), rounds alternating; medians printed side by side.
#
#   benches/metrics_scrape.sh                 # TESTS=set,get N=2000000 P=32 ROUNDS=3 INTERVAL=1
set -euo pipefail
cd "$(dirname "$0")/.."
TESTS=${TESTS:-set,get}
N=${N:-2000000}
P=${P:-32}
ROUNDS=${ROUNDS:-3}
INTERVAL=${INTERVAL:-1}
EMBER=${EMBER:-target/release/ember-server}
[ -x "$EMBER" ] || cargo build --release -q
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WORK=$(mktemp -d)
PORT=$(free_port); MPORT=$(free_port)
"$EMBER" --port "$PORT" --bind 127.0.0.1 --save "" --dir "$WORK" --metrics-port "$MPORT" >"$WORK/ember.log" 2>&1 &
PID=$!
SCRAPER=""
trap 'kill $PID $SCRAPER 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
HZ=$(getconf CLK_TCK)
run() { # test -> µs of server CPU per request
  local before after
  before=$(ticks)
  redis-benchmark -p "$PORT" -t "$1" -c 50 -n "$N" -P "$P" -r 100000 -q >/dev/null 2>&1
  after=$(ticks)
  python3 -c "print(f'{($after - $before) / $HZ * 1e6 / $N:.4f}')"
}
# The scraper is python itself (its PID is the one killed), fetching and parsing nothing.
SCRAPE='
import sys, time, urllib.request
port, interval = int(sys.argv[1]), float(sys.argv[2])
while True:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read()
    time.sleep(interval)
'
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.4f}')" "$@"; }
printf '%-8s %16s %16s %8s\n' test quiet_us/req scraped_us/req ratio
IFS=, read -ra LIST <<< "$TESTS"
for t in "${LIST[@]}"; do
  quiet=(); scraped=()
  for _ in $(seq "$ROUNDS"); do
    quiet+=("$(run "$t")")
    python3 -c "$SCRAPE" "$MPORT" "$INTERVAL" & SCRAPER=$!
    scraped+=("$(run "$t")")
    kill "$SCRAPER" 2>/dev/null; wait "$SCRAPER" 2>/dev/null || true; SCRAPER=""
  done
  q=$(median "${quiet[@]}"); s=$(median "${scraped[@]}")
  printf '%-8s %16s %16s %8s\n' "$t" "$q" "$s" "$(python3 -c "print(f'{$s/$q:.3f}')")"
done
# The scrape itself, measured directly: server CPU over 200 back-to-back scrapes.
before=$(ticks)
python3 -c '
import sys, urllib.request
for _ in range(200):
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read()
' "$MPORT"
after=$(ticks)
bytes=$(python3 -c 'import sys, urllib.request; print(len(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read()))' "$MPORT")
python3 -c "print(f'one scrape: {($after - $before) / $HZ * 1e3 / 200:.2f} ms of server CPU for a {$bytes}-byte page')"
