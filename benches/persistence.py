#!/usr/bin/env python3
"""Snapshots, Ember vs redis-server 7.0 in one run (measures, asserts nothing).

For KEYS keys of VALUE bytes (1M x 1 KB, about 1 GB, by default):
  * SAVE time, and load time at start-up from that file;
  * BGSAVE under a concurrent write load (redis-benchmark SET over the same keys): its
    duration, the extra memory it costs (Ember: RSS growth of the one process; Redis: the
    private dirty pages of the forked child plus the parent's growth, i.e. copy-on-write),
    and the longest PING round trip seen meanwhile.

    python3 benches/persistence.py          # needs target/release/ember-server, redis-server
    KEYS=200000 python3 benches/persistence.py
    ONLY=aof python3 benches/persistence.py  # SET throughput with appendfsync everysec / always
"""
import os
import socket
import subprocess
import tempfile
import statistics
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, "target", "release", "ember-server")
KEYS = int(os.environ.get("KEYS", 1_000_000))
VALUE = int(os.environ.get("VALUE", 1000))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self.read()

    def read(self):
        line = self.f.readline()
        t = line[:1]
        if t == b"$":
            n = int(line[1:])
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            return [self.read() for _ in range(int(line[1:]))]
        return line[1:].strip()

    def info(self, field):
        for line in self.cmd("INFO", "all").decode().splitlines():
            if line.startswith(field + ":"):
                return line.split(":", 1)[1]
        return None


def start(binary, d, port):
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d]
    if "redis-server" in binary:
        args += ["--appendonly", "no"]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while True:
        try:
            c = Client(port)
            if c.cmd("PING") == b"PONG":
                return p, c, time.time() - t0
        except OSError:
            pass
        time.sleep(0.01)


def load(port):
    value = b"x" * VALUE
    gen = subprocess.Popen(["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    chunk = bytearray()
    for i in range(KEYS):
        key = b"key:%d" % i
        chunk += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value)
        if len(chunk) > 1 << 20:
            gen.stdin.write(chunk)
            chunk = bytearray()
    gen.stdin.write(chunk)
    gen.stdin.close()
    gen.wait()


def private_dirty(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def run(name, binary):
    d = tempfile.mkdtemp()
    port = free_port()
    p, c, _ = start(binary, d, port)
    load(port)
    t0 = time.time()
    c.cmd("SAVE")
    save_s = time.time() - t0
    c.cmd("SHUTDOWN", "NOSAVE")
    p.wait()
    p, c, load_s = start(binary, d, port)
    assert int(c.info("db0").split(",")[0].split("=")[1]) == KEYS
    base = private_dirty(p.pid)
    # Concurrent writes over the same keys while BGSAVE runs.
    bench = None if os.environ.get("NO_WRITES") else subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-n", "100000000", "-r", str(KEYS), "-d", str(VALUE), "-c", "4", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if bench:
        time.sleep(1)
        base = private_dirty(p.pid)
    pinger = Client(port)
    worst = [0.0]
    stop = threading.Event()

    def ping_loop():
        while not stop.is_set():
            t = time.perf_counter()
            pinger.cmd("PING")
            worst[0] = max(worst[0], time.perf_counter() - t)
            time.sleep(0.001)

    th = threading.Thread(target=ping_loop)
    th.start()
    if name == "ember":
        c.cmd("CONFIG", "RESETSTAT")
    t0 = time.time()
    c.cmd("BGSAVE")
    peak = 0
    while True:
        extra = private_dirty(p.pid) - base + sum(private_dirty(k) for k in children(p.pid))
        peak = max(peak, extra)
        if c.info("rdb_bgsave_in_progress") == "0":
            break
        time.sleep(0.02)
    bg_s = time.time() - t0
    stop.set()
    th.join()
    stall = c.info("eventloop_max_stall_us") if name == "ember" else None
    if bench:
        bench.kill()
    c.cmd("SHUTDOWN", "NOSAVE")
    p.wait()
    return save_s, load_s, bg_s, peak, worst[0], stall


def statistics_median(v):
    return statistics.median(v)


def aof_throughput(binary, fsync, pipeline):
    """SET requests per second with the AOF on."""
    d = tempfile.mkdtemp()
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", d,
            "--appendonly", "yes", "--appendfsync", fsync]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            if Client(port).cmd("PING") == b"PONG":
                break
        except OSError:
            time.sleep(0.01)
    n = 200000 if fsync == "everysec" or pipeline > 1 else 20000
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(n), "-r", "100000", "-d", "100",
         "-c", "50", "-P", str(pipeline), "--csv"], capture_output=True, text=True).stdout
    p.kill()
    p.wait()
    for line in out.splitlines():
        if line.startswith('"SET"'):
            return float(line.split(",")[1].strip('"'))
    return 0.0


def main():
    if not os.path.exists(EMBER):
        raise SystemExit("build first: cargo build --release")
    if os.environ.get("ONLY") == "aof":
        for fsync in ["everysec", "always"]:
            for pipe in [1, 32]:
                e = statistics_median([aof_throughput(EMBER, fsync, pipe) for _ in range(3)])
                r = statistics_median([aof_throughput("redis-server", fsync, pipe) for _ in range(3)])
                print(f"  AOF {fsync:8} SET -P {pipe:2}: ember {e:10,.0f}  redis {r:10,.0f}  ratio {e / r:.2f}")
        return
    data_mb = KEYS * (VALUE + 20) / 1e6
    print(f"{KEYS} keys x {VALUE} bytes (~{data_mb:.0f} MB)")
    res = {n: run(n, b) for n, b in [("ember", EMBER), ("redis", "redis-server")]}
    e, r = res["ember"], res["redis"]
    print(f"  SAVE            ember {e[0]:6.2f} s   redis {r[0]:6.2f} s   ratio {e[0] / r[0]:.2f}")
    print(f"  load at start   ember {e[1]:6.2f} s   redis {r[1]:6.2f} s   ratio {e[1] / r[1]:.2f}")
    print(f"  BGSAVE (writes) ember {e[2]:6.2f} s   redis {r[2]:6.2f} s")
    print(f"  BGSAVE extra memory  ember {e[3] / 1e6:7.1f} MB ({100 * e[3] / (data_mb * 1e6):.1f}% of data)"
          f"   redis {r[3] / 1e6:7.1f} MB ({100 * r[3] / (data_mb * 1e6):.1f}%)")
    print(f"  longest PING during BGSAVE  ember {e[4] * 1000:.1f} ms   redis {r[4] * 1000:.1f} ms"
          f"   (ember event-loop max stall {int(e[5]) / 1000:.1f} ms)")


if __name__ == "__main__":
    main()
