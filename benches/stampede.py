#!/usr/bin/env python3
"""A cache stampede, Ember with leases vs redis-server 7.0 with plain cache-aside (measures,
asserts nothing).

CLIENTS threads, each with its own connection, miss one hot key at the same moment; the
loader (the "database query") takes LOADER_MS. Plain cache-aside (GET, on a miss load and
SET) runs the loader once per client that missed; with leases (examples/cache_lease.py's
get_or_load: GETLEASE ... WAIT, the lease holder loads and SETLEASEs) it runs once. Printed
per server, medians over ROUNDS: loader calls, and the p50 / p99 latency of a client's read.

    python3 benches/stampede.py     # needs target/release/ember-server, redis-server, redis-py
    CLIENTS=200 LOADER_MS=50 ROUNDS=5 python3 benches/stampede.py
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
from cache_lease import get_or_load  # noqa: E402

EMBER = os.environ.get("EMBER", os.path.join(ROOT, "target", "release", "ember-server"))
CLIENTS = int(os.environ.get("CLIENTS", 200))
LOADER_MS = int(os.environ.get("LOADER_MS", 50))
ROUNDS = int(os.environ.get("ROUNDS", 3))
KEY = "hot"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary):
    port = free_port()
    d = tempfile.mkdtemp()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d, "--maxclients", "10000"]
    if "redis-server" in binary:
        args += ["--appendonly", "no"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return p, port
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"{binary} did not start")


def plain(cache, loader):
    value = cache.get(KEY)
    if value is None:
        value = loader()
        cache.set(KEY, value, ex=60)
    return value


def one_round(port, leases):
    calls = []
    lock = threading.Lock()

    def loader():
        with lock:
            calls.append(1)
        time.sleep(LOADER_MS / 1000)
        return b"row data"

    conns = [redis.Redis(host="127.0.0.1", port=port) for _ in range(CLIENTS)]
    for c in conns:
        c.ping()
    conns[0].delete(KEY)
    barrier = threading.Barrier(CLIENTS)
    latencies = []

    def client(c):
        barrier.wait()
        t = time.perf_counter()
        v = get_or_load(c, KEY, loader, 60) if leases else plain(c, loader)
        elapsed = time.perf_counter() - t
        assert v == b"row data"
        with lock:
            latencies.append(elapsed * 1000)

    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    latencies.sort()
    return len(calls), latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]


def main():
    servers = {"ember (leases)": start(EMBER), "redis (cache-aside)": start("redis-server")}
    results = {name: [] for name in servers}
    try:
        for _ in range(ROUNDS):
            for name, (_, port) in servers.items():
                results[name].append(one_round(port, leases=name.startswith("ember")))
    finally:
        for p, _ in servers.values():
            p.terminate()
    print(f"{CLIENTS} clients miss one key at once, loader {LOADER_MS} ms, medians of {ROUNDS} rounds")
    print(f"{'server':<22}{'loader calls':>14}{'p50 ms':>10}{'p99 ms':>10}")
    for name, rs in results.items():
        calls = statistics.median(r[0] for r in rs)
        p50 = statistics.median(r[1] for r in rs)
        p99 = statistics.median(r[2] for r in rs)
        print(f"{name:<22}{calls:>14.0f}{p50:>10.1f}{p99:>10.1f}")


if __name__ == "__main__":
    main()
