"""Cache-aside with Ember's leases: one database query per miss, however many clients miss.

The shape of examples/cache_aside.py (check the cache, fall back to SQLite on a miss, fill
the cache), with GETLEASE / SETLEASE instead of GET / SET. When the key is missing, the first
client gets a lease and queries the database; the others wait for its fill instead of all
querying at once (a cache stampede).

    python3 examples/cache_lease.py                 # Ember on localhost:6379
    EMBER_PORT=7000 python3 examples/cache_lease.py
    python3 examples/cache_lease.py --stampede 200  # 200 threads miss one key at once
"""
import json
import os
import sqlite3
import sys
import threading
import time

import redis

CACHE_KEY = "example_data"
CACHE_TTL_SECONDS = 60
# How long a client may take to fill a key before others may try (ms), and how long the
# others wait for it.
LEASE_MS = 5000
WAIT_MS = 5000


def get_or_load(cache, key, loader, ttl_seconds, lease_ms=LEASE_MS, wait_ms=WAIT_MS, stale_ms=None):
    """The cached value of `key`; on a miss, `loader()` runs in one client only. With
    `stale_ms`, the value is served for that long past its TTL while one client reloads it."""
    stale = ("STALE", stale_ms) if stale_ms else ()
    for _ in range(10):
        value, token = cache.execute_command("GETLEASE", key, lease_ms, "WAIT", wait_ms)
        if token is not None:
            # Ours to fill (a miss), or to refresh (a stale value). A stale token -- the key
            # was deleted or written meanwhile -- fills nothing: SETLEASE answers None.
            value = loader()
            cache.execute_command("SETLEASE", key, token, value, "EX", ttl_seconds, *stale)
            return value
        if value is not None:
            return value
        # The lease lapsed without a fill: ask again (the next caller gets the lease).
    return loader()


def open_database(path):
    connection = sqlite3.connect(path, check_same_thread=False)
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS example_table (id INTEGER PRIMARY KEY, name TEXT)")
    if cursor.execute("SELECT COUNT(*) FROM example_table").fetchone()[0] == 0:
        cursor.executemany("INSERT INTO example_table (name) VALUES (?)", [("alpha",), ("beta",), ("gamma",)])
        connection.commit()
    return connection


def stampede(port, clients, database):
    """`clients` threads miss one key at the same moment; prints how often the database was
    queried."""
    calls = []
    lock = threading.Lock()

    def loader():
        with lock:
            calls.append(1)
            rows = database.cursor().execute("SELECT * FROM example_table").fetchall()
        time.sleep(0.05)  # a slow query
        return json.dumps(rows)

    start = threading.Barrier(clients)
    results = []

    def client():
        cache = redis.Redis(host="localhost", port=port)
        start.wait()
        results.append(json.loads(get_or_load(cache, CACHE_KEY, loader, CACHE_TTL_SECONDS)))
        cache.close()

    redis.Redis(host="localhost", port=port).delete(CACHE_KEY)
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == clients and all(r == results[0] for r in results)
    print(f"clients: {clients}, loader calls: {len(calls)}")


def main():
    port = int(os.environ.get("EMBER_PORT", "6379"))
    database = open_database(os.environ.get("EXAMPLE_DB", "example.db"))
    if len(sys.argv) == 3 and sys.argv[1] == "--stampede":
        stampede(port, int(sys.argv[2]), database)
        return
    cache = redis.Redis(host="localhost", port=port)
    loaded = []

    def loader():
        loaded.append(1)
        return json.dumps(database.cursor().execute("SELECT * FROM example_table").fetchall())

    data = json.loads(get_or_load(cache, CACHE_KEY, loader, CACHE_TTL_SECONDS))
    print("Data stored in Ember:" if loaded else "Data read from Ember:", data)
    database.close()
    cache.close()


if __name__ == "__main__":
    main()
