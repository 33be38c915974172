#!/usr/bin/env python3
"""Cache benchmarks for maxmemory, Ember vs redis-server 7.0 in one run (measures, asserts nothing).

1. Hit rate: a Zipfian (s=0.99) GET / SET-on-miss workload over KEYS keys of VALUE_SIZE bytes
   (1M x 1 KB by default: over 10x more than fit in `maxmemory 64mb`), under allkeys-lru and
   allkeys-lfu. Prints both servers' hit rates.
2. Expiry lag: VOLATILE keys with TTLs spread over 10 s, never read again; prints the time from
   the last deadline until DBSIZE is 0 on each server.

    python3 benches/cache_workload.py            # needs target/release/ember-server, redis-server
    REQUESTS=2000000 KEYS=3000000 VALUE_SIZE=100 python3 benches/cache_workload.py
    POLICIES=allkeys-lru VOLATILE=0 python3 benches/cache_workload.py   # one policy, no expiry part
"""
import bisect
import os
import random
import socket
import subprocess
import sys
import tempfile
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, "target", "release", "ember-server")
KEYS = int(os.environ.get("KEYS", 1_000_000))
REQUESTS = int(os.environ.get("REQUESTS", 1_000_000))
VOLATILE = int(os.environ.get("VOLATILE", 1_000_000))
VALUE = b"v" * int(os.environ.get("VALUE_SIZE", 1000))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary, extra):
    port = free_port()
    d = tempfile.mkdtemp()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d] + extra
    if "redis-server" in binary:
        args += ["--appendonly", "no"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = redis.Redis(port=port)
    for _ in range(200):
        try:
            c.ping()
            return p, c
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"{binary} did not start")


def zipf_cdf(n, s):
    acc, cdf = 0.0, []
    for i in range(1, n + 1):
        acc += 1.0 / i**s
        cdf.append(acc)
    return [x / acc for x in cdf]


def hit_rate(client, keys):
    hits = 0
    batch = 1000
    for start_i in range(0, len(keys), batch):
        chunk = keys[start_i:start_i + batch]
        pipe = client.pipeline(transaction=False)
        for k in chunk:
            pipe.get(k)
        got = pipe.execute()
        pipe = client.pipeline(transaction=False)
        for k, v in zip(chunk, got):
            if v is None:
                pipe.set(k, VALUE)
            else:
                hits += 1
        pipe.execute()
    return hits / len(keys)


def expiry_lag(client, port):
    """Loads the volatile keys over a raw socket (redis-py is too slow for 1M commands), then
    waits for DBSIZE 0. Returns (seconds after the last deadline, Ember's longest stall in us)."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = time.time() + 15
    last = int((head + 10) * 1000)
    chunk = 10_000
    for c in range(0, VOLATILE, chunk):
        buf = bytearray()
        for i in range(c, min(c + chunk, VOLATILE)):
            at = b"%d" % int((head + 10 * i / VOLATILE) * 1000)
            key = b"vol:%d" % i
            buf += b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nx\r\n$4\r\nPXAT\r\n$%d\r\n%s\r\n" % (
                len(key), key, len(at), at)
        sock.sendall(buf)
        want = min(c + chunk, VOLATILE) - c
        got = 0
        while got < want:
            got += sock.recv(1 << 20).count(b"\r\n")
    sock.close()
    if time.time() * 1000 > last - 10_000:
        return None, None  # loading took longer than the head start
    client.config_resetstat()
    while client.dbsize() > 0:
        time.sleep(0.05)
    return time.time() - last / 1000, client.info("stats").get("eventloop_max_stall_us")


def main():
    if not os.path.exists(EMBER):
        raise SystemExit("build first: cargo build --release")
    rng = random.Random(42)
    cdf = zipf_cdf(KEYS, 0.99)
    keys = [b"key:%d" % bisect.bisect_left(cdf, rng.random()) for _ in range(REQUESTS)]
    print(f"hit rate, {REQUESTS} Zipf(0.99) requests over {KEYS} keys, maxmemory 64mb")
    for policy in os.environ.get("POLICIES", "allkeys-lru allkeys-lfu").split():
        rates = {}
        for name, binary in [("ember", EMBER), ("redis", "redis-server")]:
            p, c = start(binary, ["--maxmemory", "64mb", "--maxmemory-policy", policy])
            try:
                rates[name] = hit_rate(c, keys)
            finally:
                p.kill()
                p.wait()
        print(f"  {policy:12} ember {rates['ember']:.4f}  redis {rates['redis']:.4f}")
    if VOLATILE == 0:
        return 0
    print(f"expiry lag, {VOLATILE} keys with TTLs over 10 s: seconds from last deadline to empty")
    for name, binary in [("ember", EMBER), ("redis", "redis-server")]:
        p, c = start(binary, [])
        try:
            lag, stall = expiry_lag(c, c.connection_pool.connection_kwargs["port"])
        finally:
            p.kill()
            p.wait()
        line = "load too slow" if lag is None else f"{lag:.2f} s"
        if stall is not None:
            line += f", longest event-loop stall {stall / 1000:.1f} ms"
        print(f"  {name:6} {line}")


if __name__ == "__main__":
    sys.exit(main())
