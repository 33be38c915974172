#!/usr/bin/env python3
"""Pub/Sub fan-out, Ember vs redis-server 7.0 in one run (measures, asserts nothing).

1. One publisher, SUBSCRIBERS subscribers of one channel: messages delivered per second.
2. One subscriber with PATTERNS patterns (one per channel), one publisher spreading messages
   over those channels: every PUBLISH is matched against all patterns.

The publisher is redis-benchmark (pipelined); subscribers are raw sockets counting bytes, so
a run ends when every subscriber has received every message. Each scenario runs ROUNDS times
per server, alternating servers; medians and the Ember/Redis ratio are printed.

    python3 benches/pubsub_fanout.py     # needs target/release/ember-server, redis-server
    MESSAGES=200000 SUBSCRIBERS=100 ROUNDS=5 python3 benches/pubsub_fanout.py
"""
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, "target", "release", "ember-server")
MESSAGES = int(os.environ.get("MESSAGES", 100_000))
SUBSCRIBERS = int(os.environ.get("SUBSCRIBERS", 100))
PATTERNS = int(os.environ.get("PATTERNS", 100))
ROUNDS = int(os.environ.get("ROUNDS", 3))
PAYLOAD = "x" * int(os.environ.get("PAYLOAD", 16))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary):
    port = free_port()
    d = tempfile.mkdtemp()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d]
    if "redis-server" in binary:
        args += ["--appendonly", "no"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{binary} did not start")


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def subscribe(port, verb, names):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    s.sendall(resp(verb, *names))
    # Read the confirmations (one per name) before publishing starts.
    got = b""
    while got.count(verb.lower().encode()) < len(names):
        got += s.recv(65536)
    s.setblocking(False)
    return s


def message_len(kind, channel, pattern=None):
    parts = ["message", channel, PAYLOAD] if kind == "message" else ["pmessage", pattern, channel, PAYLOAD]
    return len(resp(*parts))


def run(port, socks, expected_bytes, bench_args):
    sel = selectors.DefaultSelector()
    left = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
        left[s] = expected_bytes[s]
    t0 = time.perf_counter()
    pub = subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-n", str(MESSAGES), "-c", "1", "-P", "64", "-q"] + bench_args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    remaining = len(socks)
    while remaining:
        ready = sel.select(timeout=30)
        if not ready:
            raise SystemExit("no message for 30 s")
        for key, _ in ready:
            s = key.fileobj
            data = s.recv(1 << 20)
            if not data:
                raise SystemExit("a subscriber was disconnected")
            left[s] -= len(data)
            if left[s] <= 0:
                sel.unregister(s)
                remaining -= 1
    elapsed = time.perf_counter() - t0
    pub.wait()
    for s in socks:
        s.close()
    return elapsed


def fanout(port):
    socks = [subscribe(port, "SUBSCRIBE", ["news"]) for _ in range(SUBSCRIBERS)]
    per = message_len("message", "news") * MESSAGES
    elapsed = run(port, socks, {s: per for s in socks}, ["PUBLISH", "news", PAYLOAD])
    return MESSAGES * SUBSCRIBERS / elapsed


def patterns(port):
    # redis-benchmark writes __rand_int__ as 12 zero-padded digits.
    pats = [f"ch:{i:012d}:*" for i in range(PATTERNS)]
    s = subscribe(port, "PSUBSCRIBE", pats)
    # redis-benchmark's __rand_int__ picks the channel: every message matches exactly one
    # pattern, and every frame has the same length.
    expected = message_len("pmessage", f"ch:{0:012d}:x", f"ch:{0:012d}:*") * MESSAGES
    elapsed = run(port, [s], {s: expected}, ["-r", str(PATTERNS), "PUBLISH", "ch:__rand_int__:x", PAYLOAD])
    return MESSAGES / elapsed


def main():
    if not os.path.exists(EMBER):
        raise SystemExit("build first: cargo build --release")
    servers = {"ember": start(EMBER), "redis": start("redis-server")}
    try:
        for name, scenario in [
            (f"1 publisher -> {SUBSCRIBERS} subscribers (deliveries/s)", fanout),
            (f"1 subscriber, {PATTERNS} patterns (messages/s)", patterns),
        ]:
            results = {"ember": [], "redis": []}
            for _ in range(ROUNDS):
                for srv in ("ember", "redis"):
                    results[srv].append(scenario(servers[srv][1]))
            e, r = statistics.median(results["ember"]), statistics.median(results["redis"])
            print(f"{name:55} ember {e:12,.0f}  redis {r:12,.0f}  ratio {e / r:.2f}")
            sys.stdout.flush()
    finally:
        for p, _ in servers.values():
            p.kill()


if __name__ == "__main__":
    main()
