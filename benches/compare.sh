#!/usr/bin/env bash
# Ember vs redis-server on the same machine, in one run.
#
# Throughput: redis-benchmark (-c 50), unpipelined and with -P 32, one run per test,
# alternating Ember and Redis for ROUNDS rounds; prints each server's median CPU per request
# (utime+stime from /proc/PID/stat over the run / requests) and its ratio first, then the
# median rps and its ratio.
# Memory: loads KEYS small string keys (with and without TTLs), HASHES hashes of 10 short
# fields, SETS sets of 20 small integers, LISTS lists of 10,000 short items, ZSETS sorted sets
# of 10 members, one 1,000,000-member sorted set and one stream of 1,000,000 entries of 3
# small fields into each server and prints RSS bytes per key or element.
# Numbers are noisy on a shared 2-core machine: compare the ratios of one run, not absolutes.
#
#   benches/compare.sh            # ROUNDS=3 N=200000 KEYS=1000000 by default
#   ONLY=memory benches/compare.sh    # just the memory loads (ONLY=throughput for the rest)
#   ONLY=throughput TESTS=ping CUSTOM='ZRANGE|GEO' benches/compare.sh   # a subset
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
N=${N:-200000}
KEYS=${KEYS:-1000000}
TESTS=${TESTS:-ping,set,get,incr,mset,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_300}
HASHES=${HASHES:-100000}
SETS=${SETS:-100000}
LISTS=${LISTS:-1000}
ZSETS=${ZSETS:-100000}
BIGZSET=${BIGZSET:-1000000}
BIGSTREAM=${BIGSTREAM:-1000000}
ONLY=${ONLY:-all}
CUSTOM=${CUSTOM:-.}   # regex selecting custom loads by name

command -v redis-server >/dev/null || { echo "redis-server is required (apt-get install redis-server redis-tools)"; exit 1; }
cargo build --release -q
EMBER=${EMBER:-target/release/ember-server}

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

# Server CPU (utime+stime, clock ticks) of PID so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# us_per PID TICKS_BEFORE REQUESTS -> microseconds of server CPU per request since then
us_per() { echo "($(ticks "$1") - $2) * 1000000 / $HZ / $3" | bc -l; }

# bench PORT PID PIPELINE -> lines "TEST rps cpu_us_per_request", one benchmark run per test
# so each gets its own CPU measure (PING's two variants share one).
bench() {
  local t before out lines
  for t in ${TESTS//,/ }; do
    before=$(ticks "$2")
    out=$(redis-benchmark -p "$1" -t "$t" -c 50 -n "$N" -P "$3" -r 100000 --csv 2>/dev/null | tail -n +2 | tr -d '"()')
    lines=$(echo "$out" | grep -c .)
    cpu=$(us_per "$2" "$before" $((N * lines)))
    echo "$out" | awk -F, -v c="$cpu" '{gsub(/ /, "_", $1); print $1, $2, c}'
  done
}

# Big keys for the custom loads, written to both servers before the runs: a 10,000-item list,
# a 100,000-member set, a 100,000-field hash, a 1,000,000-member sorted set (members named
# like redis-benchmark's zero-padded __rand_int__), 100,000 geo points around Berlin and a
# 1,500,000-entry stream (IDs N-1, 3 small fields) with a consumer group for the XREADGROUP
# load (1.5M entries outlast its reads over all rounds).
load_big_keys() {
  python3 - <<'PY' | redis-cli -p "$1" --pipe >/dev/null
import sys, random
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
for c in range(0, 10000, 1000):
    cmd(b"RPUSH", b"biglist", *[b"item:%d" % i for i in range(c, c + 1000)])
for c in range(0, 100000, 1000):
    cmd(b"SADD", b"bigset", *[b"member:%d" % i for i in range(c, c + 1000)])
    args = [b"HSET", b"bighash"]
    for i in range(c, c + 1000):
        args += [b"field:%d" % i, b"value:%d" % i]
    cmd(*args)
for c in range(0, 1000000, 1000):
    args = [b"ZADD", b"zbig"]
    for i in range(c, c + 1000):
        args += [b"%d" % i, b"m:%012d" % i]
    cmd(*args)
for c in range(1, 1500001, 1000):
    for i in range(c, c + 1000):
        cmd(b"XADD", b"bigstream", b"%d-1" % i, b"name", b"user%d" % i, b"age", b"%d" % (i % 90), b"city", b"c%d" % (i % 50))
cmd(b"XGROUP", b"CREATE", b"bigstream", b"g", b"0")
cmd(b"FUNCTION", b"LOAD", b"REPLACE", b"#!lua name=bench\nredis.register_function('benchget', function(keys) return redis.call('GET', keys[1]) end)")
rng = random.Random(7)
for c in range(0, 100000, 1000):
    args = [b"GEOADD", b"geo"]
    for i in range(c, c + 1000):
        args += [b"%.6f" % (13.0 + rng.random()), b"%.6f" % (52.2 + rng.random() * 0.6), b"p:%d" % i]
    cmd(*args)
PY
}

# Custom command loads: name|requests|command (requests 0 = N). redis-benchmark's
# __rand_int__ is zero-padded, which bit offsets refuse, so the bitmap loads use fixed offsets
# across a 512 MB range.
CUSTOM_LOADS=(
  "SETBIT_512MB_range|0|SETBIT bitmap 4294967000 1"
  "GETBIT_512MB_range|0|GETBIT bitmap 123456789"
  "BITCOUNT_1MB|0|BITCOUNT bitmap 0 1000000"
  "PFADD|0|PFADD hll element:__rand_int__"
  "PFCOUNT_10_keys|0|PFCOUNT hll hll1 hll2 hll3 hll4 hll5 hll6 hll7 hll8 hll9"
  "ZADD_1M_range|0|ZADD zbench __rand_int__ member:__rand_int__"
  "ZRANK|0|ZRANK zbench member:__rand_int__"
  "ZRANK_1M_members|0|ZRANK zbig m:__rand_int__"
  "ZRANGE_1M_100_by_rank|20000|ZRANGE zbig 500000 500099 WITHSCORES"
  "ZRANGEBYSCORE_1M_10|0|ZRANGEBYSCORE zbig __rand_int__ +inf LIMIT 0 10"
  "GEOSEARCH_100k_10km|2000|GEOSEARCH geo FROMLONLAT 13.4 52.5 BYRADIUS 10 km COUNT 10 ASC"
  "XADD|0|XADD xstream * field value"
  "XRANGE_100_of_1.5M|0|XRANGE bigstream __rand_int__ + COUNT 100"
  "XREADGROUP_COUNT_1|0|XREADGROUP GROUP g consumer COUNT 1 STREAMS bigstream >"
  "XACK|0|XACK bigstream g __rand_int__-1"
  "EVAL_GET|0|EVAL return(redis.call('GET',KEYS[1])) 1 key:__rand_int__"
  "FCALL_GET|0|FCALL benchget 1 key:__rand_int__"
  "LRANGE_10k_items|2000|LRANGE biglist 0 -1"
  "SMEMBERS_100k|200|SMEMBERS bigset"
  "HGETALL_100k|200|HGETALL bighash"
)
# custom PORT PID PIPELINE -> lines "NAME rps cpu_us_per_request"
custom() {
  for load in "${CUSTOM_LOADS[@]}"; do
    name=${load%%|*}
    [[ $name =~ $CUSTOM ]] || continue
    rest=${load#*|}
    n=${rest%%|*}
    [ "$n" = 0 ] && n=$N
    read -r -a cmdline <<<"${rest#*|}"
    before=$(ticks "$2")
    rps=$( (redis-benchmark -p "$1" -c 50 -n "$n" -P "$3" -r 1000000 --csv "${cmdline[@]}" 2>/dev/null || true) \
      | grep -v '^"test"' | tail -n 1 | tr -d '"' | awk -F, '{print $(NF-6)}')
    echo "$name $rps $(us_per "$2" "$before" "$n")"
  done
}

# ratio A B -> A/B, or 0 when either is missing (a test that printed no line on one side)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b + 0 == 0) print 0; else print a / b}'; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

if [ "$ONLY" != memory ]; then
load_big_keys "$EP"
load_big_keys "$RP"
RES=$(mktemp)
for pipe in 1 32; do
  for r in $(seq "$ROUNDS"); do
    bench "$EP" "$EPID" "$pipe" | sed "s/^/ember $pipe /" >>"$RES"
    bench "$RP" "$RPID" "$pipe" | sed "s/^/redis $pipe /" >>"$RES"
    custom "$EP" "$EPID" "$pipe" | sed "s/^/ember $pipe /" >>"$RES"
    custom "$RP" "$RPID" "$pipe" | sed "s/^/redis $pipe /" >>"$RES"
  done
done

# CPU per request first (what a server costs: on 2 cores one client caps both servers' rps),
# then requests per second.
printf '%-22s %4s %10s %10s %8s %12s %12s %8s\n' test pipe ember_us redis_us cpu_ratio ember_rps redis_rps rps_ratio
for pipe in 1 32; do
  for t in $(awk -v p="$pipe" '$2==p {print $3}' "$RES" | sort -u); do
    e=$(awk -v p="$pipe" -v t="$t" '$1=="ember" && $2==p && $3==t {print $4}' "$RES" | median)
    r=$(awk -v p="$pipe" -v t="$t" '$1=="redis" && $2==p && $3==t {print $4}' "$RES" | median)
    ec=$(awk -v p="$pipe" -v t="$t" '$1=="ember" && $2==p && $3==t {print $5}' "$RES" | median)
    rc=$(awk -v p="$pipe" -v t="$t" '$1=="redis" && $2==p && $3==t {print $5}' "$RES" | median)
    printf '%-22s %4s %10.3f %10.3f %8.2f %12.0f %12.0f %8.2f\n' "$t" "$pipe" "$ec" "$rc" \
      "$(ratio "$ec" "$rc")" "${e:-0}" "${r:-0}" "$(ratio "$e" "$r")"
  done
done
rm -f "$RES"
fi
[ "$ONLY" = throughput ] && exit 0

# Memory: each data set is loaded into a freshly started pair of servers, so freed memory
# from the throughput runs (which allocators keep) cannot hide in the measurement.
rss() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1=="used_memory_rss" {print $2}'; }
start_pair() {
  MEP=$(free_port); MRP=$(free_port)
  $EMBER --port "$MEP" --bind 127.0.0.1 --save "" --dir "$WORK" >/dev/null &
  MEPID=$!
  redis-server --port "$MRP" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" >/dev/null &
  MRPID=$!
  for p in $MEP $MRP; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
}
# per_element PORT KIND COUNT ELEMENTS_PER_KEY -> RSS bytes per element
per_element() {
  redis-cli -p "$1" memory purge >/dev/null
  local before; before=$(rss "$1")
  python3 - "$2" "$3" "$4" <<'PY' | redis-cli -p "$1" --pipe >/dev/null
import sys
kind, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout.buffer
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
for i in range(n):
    if kind == "string":
        cmd(b"SET", b"key:%012d" % i, b"value:%d" % i)
    elif kind == "string+ttl":
        cmd(b"SET", b"key:%012d" % i, b"value:%d" % i, b"EX", b"%d" % (3600 + i % 3600))
    elif kind == "hash":
        args = [b"HSET", b"hash:%d" % i]
        for f in range(per):
            args += [b"field%d" % f, b"v%d" % (i + f)]
        cmd(*args)
    elif kind == "set":
        cmd(b"SADD", b"set:%d" % i, *[b"%d" % (i % 1000 + m * 7) for m in range(per)])
    elif kind == "list":
        for chunk in range(0, per, 500):
            cmd(b"RPUSH", b"list:%d" % i, *[b"item%d" % (chunk + m) for m in range(min(500, per - chunk))])
    elif kind == "stream":
        for m in range(per):
            cmd(b"XADD", b"stream:%d" % i, b"%d-1" % (m + 1), b"name", b"user%d" % m, b"age", b"%d" % (m % 90), b"city", b"c%d" % (m % 50))
    elif kind == "zset":
        for chunk in range(0, per, 500):
            args = [b"ZADD", b"zset:%d" % i]
            for m in range(chunk, min(chunk + 500, per)):
                args += [b"%d" % ((i * 7 + m * 13) % 100000), b"member:%d" % m]
            cmd(*args)
PY
  # Both servers return pages freed while loading to the OS first (jemalloc keeps dirty pages
  # for a while), so RSS shows what the data holds, not the allocator's recent history.
  redis-cli -p "$1" memory purge >/dev/null
  local after; after=$(rss "$1")
  awk -v a="$after" -v b="$before" -v n="$(( $3 * $4 ))" 'BEGIN {printf "%.1f\n", (a - b) / n}'
}
printf '\n%-34s %10s %10s %8s\n' "memory (RSS bytes per element)" ember redis ratio
for spec in "string $KEYS 1" "string+ttl $KEYS 1" "hash $HASHES 10" "set $SETS 20" "list $LISTS 10000" \
  "zset $ZSETS 10" "zset 1 $BIGZSET" "stream 1 $BIGSTREAM"; do
  set -- $spec
  start_pair
  e=$(per_element "$MEP" "$1" "$2" "$3"); r=$(per_element "$MRP" "$1" "$2" "$3")
  kill $MEPID $MRPID 2>/dev/null; wait $MEPID $MRPID 2>/dev/null || true
  printf '%-34s %10.1f %10.1f %8.2f\n' "$1 ($2 keys x $3)" "$e" "$r" "$(ratio "$e" "$r")"
done
