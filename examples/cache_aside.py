"""Cache-aside with Ember in front of SQLite.

The shape of the user's original example: check the cache, fall back to the database on a
miss, fill the cache, serve later reads from it. Two changes make it work with today's
redis-py: rows are serialised as JSON (redis-py refuses to SET a Python list), and the cached
copy gets a TTL so the cache cannot serve stale data forever.

    python3 examples/cache_aside.py            # Ember (or Redis) on localhost:6379
    EMBER_PORT=7000 python3 examples/cache_aside.py
"""
import json
import os
import sqlite3

import redis

CACHE_KEY = "example_data"
CACHE_TTL_SECONDS = 60


def open_database(path):
    connection = sqlite3.connect(path)
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE IF NOT EXISTS example_table (id INTEGER PRIMARY KEY, name TEXT)")
    if cursor.execute("SELECT COUNT(*) FROM example_table").fetchone()[0] == 0:
        cursor.executemany("INSERT INTO example_table (name) VALUES (?)", [("alpha",), ("beta",), ("gamma",)])
        connection.commit()
    return connection


def main():
    port = int(os.environ.get("EMBER_PORT", "6379"))
    cache = redis.Redis(host="localhost", port=port)
    database = open_database(os.environ.get("EXAMPLE_DB", "example.db"))
    cursor = database.cursor()

    # Is the data in the cache?
    if cache.exists(CACHE_KEY):
        # It is: read it from the cache.
        data = json.loads(cache.get(CACHE_KEY))
        print("Data read from Ember:", data)
    else:
        # It is not: query the database...
        cursor.execute("SELECT * FROM example_table")
        data = cursor.fetchall()
        # ...and store the result in the cache for next time.
        cache.set(CACHE_KEY, json.dumps(data), ex=CACHE_TTL_SECONDS)
        print("Data stored in Ember:", data)

    database.close()
    cache.close()


if __name__ == "__main__":
    main()
