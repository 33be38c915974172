#!/usr/bin/env bash
# Replication, Ember beside redis-server 7.0 in one run (each master gets a replica of its
# own kind):
#   1. full sync of KEYS keys (DEBUG POPULATE): seconds from REPLICAOF to the link being up,
#      and the master's peak extra memory meanwhile (PSS of the master and any child it
#      forks, sampled every 10 ms, above what it held before);
#   2. SET at -P 32 with the replica attached: the master's CPU per request (utime+stime
#      from /proc/PID/stat over the run / requests), the replica's too;
#   3. replication lag under that load: the largest gap between the master's offset and the
#      replica's sampled during the run, and how long the replica took to catch up after it.
# Measures, never asserts.
#
# Both masters sync to disk first, then diskless (repl-diskless-sync yes, no delay).
#
#   benches/replication.sh              # KEYS=1000000 N=2000000 MODES="no yes"
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-1000000}
N=${N:-2000000}
MODES=${MODES:-no yes}
EMBER=${EMBER:-target/release/ember-server}
command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install redis-server redis-tools)"; exit 1; }
[ -x "$EMBER" ] || cargo build --release -q
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # kind port dir -> pid
  mkdir -p "$3"
  if [ "$1" = redis ]; then
    (cd "$3" && exec redis-server --port "$2" --bind 127.0.0.1 --save "" --appendonly no --enable-debug-command yes \
      --repl-diskless-sync "$MODE" --repl-diskless-sync-delay 0 >/dev/null 2>&1) &
  else
    (cd "$3" && exec "$OLDPWD/$EMBER" --port "$2" --bind 127.0.0.1 --save "" --dir . --enable-debug-command yes \
      --repl-diskless-sync "$MODE" --repl-diskless-sync-delay 0 >/dev/null 2>&1) &
  fi
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 200); do redis-cli -p "$2" ping >/dev/null 2>&1 && break; sleep 0.05; done
  echo "$pid"
}
field() { redis-cli -p "$1" info "$2" | tr -d '\r' | awk -F: -v f="$3" '$1==f {print $2}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '%-15s %12s %14s %14s %14s %14s %12s\n' server sync_s sync_extra_MB master_us/req replica_us/req max_lag_bytes catchup_ms
for MODE in $MODES; do
for kind in ember redis; do
  mp=$(free_port); rp=$(free_port)
  mpid=$(start "$kind" "$mp" "$WORK/$kind-m")
  rpid=$(start "$kind" "$rp" "$WORK/$kind-r")
  redis-cli -p "$mp" debug populate "$KEYS" key 16 >/dev/null
  # Full sync: time to link up, and the master side's peak PSS above its baseline.
  sync=$(python3 - "$mp" "$rp" "$mpid" <<'PY'
import subprocess, sys, time, os
mp, rp, mpid = sys.argv[1], sys.argv[2], int(sys.argv[3])
def pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(l.split()[1]) for l in f if l.startswith("Pss:")) * 1024
    except OSError:
        return 0
def family(pid):
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(k) for k in kids]
base = sum(pss(p) for p in family(mpid))
start = time.time()
subprocess.run(["redis-cli", "-p", rp, "replicaof", "127.0.0.1", mp], capture_output=True)
peak = base
while True:
    peak = max(peak, sum(pss(p) for p in family(mpid)))
    info = subprocess.run(["redis-cli", "-p", rp, "info", "replication"], capture_output=True, text=True).stdout
    if "master_link_status:up" in info:
        break
    if time.time() - start > 600:
        break
    time.sleep(0.01)
print(f"{time.time() - start:.2f} {(peak - base) / 1e6:.1f}")
PY
)
  # Write load with the replica attached; the lag is sampled meanwhile.
  lagfile=$WORK/$kind-lag
  ( max=0; while kill -0 "$mpid" 2>/dev/null && [ ! -f "$WORK/stop" ]; do
      m=$(field "$mp" replication master_repl_offset); r=$(field "$rp" replication master_repl_offset)
      [ -n "$m" ] && [ -n "$r" ] && [ $((m - r)) -gt "$max" ] && max=$((m - r))
      echo "$max" >"$lagfile"; sleep 0.05
    done ) &
  sampler=$!
  mb=$(ticks "$mpid"); rb=$(ticks "$rpid")
  redis-benchmark -p "$mp" -t set -c 50 -n "$N" -P 32 -r 1000000 -q >/dev/null 2>&1
  ma=$(ticks "$mpid"); ra=$(ticks "$rpid")
  t0=$(date +%s%N)
  target=$(field "$mp" replication master_repl_offset)
  while [ "$(field "$rp" replication master_repl_offset)" -lt "$target" ]; do sleep 0.001; done
  catchup=$(( ($(date +%s%N) - t0) / 1000000 ))
  touch "$WORK/stop"; wait "$sampler" 2>/dev/null || true; rm -f "$WORK/stop"
  hz=$(getconf CLK_TCK)
  mus=$(python3 -c "print(f'{($ma - $mb) / $hz * 1e6 / $N:.3f}')")
  rus=$(python3 -c "print(f'{($ra - $rb) / $hz * 1e6 / $N:.3f}')")
  read -r sync_s sync_mb <<<"$sync"
  label=$kind-$([ "$MODE" = yes ] && echo diskless || echo disk)
  printf '%-15s %12s %14s %14s %14s %14s %12s\n' "$label" "$sync_s" "$sync_mb" "$mus" "$rus" "$(cat "$lagfile" 2>/dev/null || echo 0)" "$catchup"
  kill "$mpid" "$rpid" 2>/dev/null || true
done
done
