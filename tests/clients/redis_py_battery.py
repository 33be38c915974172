"""A battery of redis-py calls whose parsed results are printed one per line.

tests/it/clients_py.rs runs it against Ember and against redis-server 7.0, in RESP2 and in
RESP3 (redis-py's own reply parsers, including its RESP3 map, set, double and push
handling), and compares the outputs line by line: any reply a real client would read
differently shows up as a differing line.

    python3 tests/clients/redis_py_battery.py PORT PROTOCOL
"""
import sys
import time

import redis


def normalise(v):
    """Stable text for a parsed reply: sets sorted, dicts by key, floats as repr."""
    if isinstance(v, (set, frozenset)):
        return "{" + ", ".join(sorted(normalise(x) for x in v)) + "}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{normalise(k)}: {normalise(x)}" for k, x in sorted(v.items(), key=lambda kv: repr(kv[0]))) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(normalise(x) for x in v) + "]"
    return repr(v)


def main():
    port, protocol = int(sys.argv[1]), int(sys.argv[2])
    r = redis.Redis(port=port, protocol=protocol)
    out = []

    def check(label, fn):
        try:
            v = fn()
        except redis.ResponseError as e:
            v = f"ResponseError({e})"
        out.append(f"{label}: {normalise(v)}")

    r.flushall()
    # Strings and keys
    check("set", lambda: r.set("s", "v", ex=100))
    check("get", lambda: r.get("s"))
    check("set_get", lambda: r.set("s", "w", get=True))
    check("setnx", lambda: r.setnx("s", "x"))
    check("mset", lambda: r.mset({"a": 1, "b": 2}))
    check("mget", lambda: r.mget("a", "b", "nope"))
    check("incr", lambda: r.incrby("n", 5))
    check("incrbyfloat", lambda: r.incrbyfloat("f", 1.25))
    check("append", lambda: r.append("s", "xyz"))
    check("getrange", lambda: r.getrange("s", 0, 1))
    check("strlen", lambda: r.strlen("s"))
    check("ttl_positive", lambda: r.ttl("s") > 0)
    check("exists", lambda: r.exists("a", "b", "nope"))
    check("type", lambda: [r.type(k) for k in ("a", "nope")])
    check("expire_nx", lambda: r.expire("a", 100, nx=True))
    check("persist", lambda: r.persist("a"))
    check("rename", lambda: r.rename("b", "b2"))
    check("copy", lambda: r.copy("b2", "b3"))
    check("lcs", lambda: r.lcs("s", "a"))
    check("getex", lambda: r.getex("b3", px=5000))
    check("getdel", lambda: r.getdel("b3"))
    check("object_encoding", lambda: [r.object("encoding", k) for k in ("a", "s", "f")])
    check("dump_restore", lambda: r.restore("s2", 0, r.dump("s")) and r.get("s2"))
    check("wrongtype", lambda: r.lpush("s", "x"))
    check("scan", lambda: sorted(r.scan_iter(match="*", count=2)))
    check("keys", lambda: sorted(r.keys("b*")))
    check("dbsize", lambda: r.dbsize())
    # Bitmaps and bitfields
    check("setbit", lambda: r.setbit("bits", 7, 1))
    check("bitcount", lambda: r.bitcount("bits"))
    check("bitpos", lambda: r.bitpos("bits", 1))
    check("bitop", lambda: r.bitop("OR", "bits2", "bits", "nope"))
    check("bitfield", lambda: r.bitfield("bf").set("u8", 0, 200).incrby("u8", 0, 100).get("i4", 0).execute())
    # Hashes
    check("hset", lambda: r.hset("h", mapping={"f1": "v1", "f2": "2"}))
    check("hgetall", lambda: r.hgetall("h"))
    check("hmget", lambda: r.hmget("h", ["f1", "nope"]))
    check("hincrby", lambda: r.hincrby("h", "f2", 3))
    check("hincrbyfloat", lambda: r.hincrbyfloat("h", "f3", 0.5))
    check("hkeys", lambda: sorted(r.hkeys("h")))
    check("hrandfield", lambda: len(r.hrandfield("h", 2, withvalues=True)))
    check("hscan", lambda: r.hscan("h"))
    check("hstrlen", lambda: r.hstrlen("h", "f1"))
    # Lists
    check("rpush", lambda: r.rpush("l", "a", "b", "c", "d"))
    check("lrange", lambda: r.lrange("l", 0, -1))
    check("lpos", lambda: r.lpos("l", "c"))
    check("linsert", lambda: r.linsert("l", "before", "c", "x"))
    check("lmove", lambda: r.lmove("l", "l2", "LEFT", "RIGHT"))
    check("lmpop", lambda: r.lmpop(2, "nope", "l", direction="RIGHT", count=2))
    check("blpop", lambda: r.blpop(["nope", "l"], timeout=1))
    check("blpop_timeout", lambda: r.blpop(["nope"], timeout=0.1))
    check("lpop_count", lambda: r.lpop("l2", 5))
    # Sets
    check("sadd", lambda: r.sadd("st", "a", "b", "c", 1, 2))
    check("smembers", lambda: r.smembers("st"))
    check("sismember", lambda: r.smismember("st", ["a", "z"]))
    check("sinter", lambda: r.sinter("st", "nope"))
    check("sunionstore", lambda: r.sunionstore("st2", "st", "nope"))
    check("sintercard", lambda: r.sintercard(2, ["st", "st2"], limit=3))
    check("spop_count", lambda: len(r.spop("st2", 2)))
    check("srandmember", lambda: len(r.srandmember("st", -7)))
    check("sscan", lambda: sorted(r.sscan("st", count=100)[1]))
    # Sorted sets
    check("zadd", lambda: r.zadd("z", {"a": 1, "b": 2.5, "c": -1, "d": float("inf")}))
    check("zrange_withscores", lambda: r.zrange("z", 0, -1, withscores=True))
    check("zrevrange", lambda: r.zrange("z", 0, 1, desc=True, withscores=True))
    check("zrangebyscore", lambda: r.zrangebyscore("z", "(1", "+inf", withscores=True, start=0, num=2))
    check("zrangebylex", lambda: r.zrangebylex("z", "-", "+"))
    check("zscore", lambda: r.zscore("z", "b"))
    check("zmscore", lambda: r.zmscore("z", ["a", "nope"]))
    check("zincrby", lambda: r.zincrby("z", 0.25, "a"))
    check("zadd_incr", lambda: r.zadd("z", {"a": 1}, incr=True))
    check("zrank", lambda: r.zrank("z", "b"))
    check("zcount", lambda: r.zcount("z", "-inf", 2))
    check("zunion", lambda: r.zunion(["z", "nope"], withscores=True))
    check("zunionstore", lambda: r.zunionstore("z2", {"z": 2, "nope": 1}, aggregate="MAX"))
    check("zinter", lambda: r.zinter(["z", "z2"], withscores=True, aggregate="MIN"))
    check("zdiff", lambda: r.zdiff(["z", "nope"], withscores=True))
    check("zpopmin", lambda: r.zpopmin("z2", 2))
    check("zpopmax", lambda: r.zpopmax("z2"))
    check("bzpopmin", lambda: r.bzpopmin(["nope", "z2"], timeout=1))
    check("zmpop", lambda: r.zmpop(2, ["nope", "z"], min=True, count=2))
    check("bzmpop", lambda: r.bzmpop(1, 1, ["z"], max=True))
    check("zrandmember", lambda: len(r.zrandmember("z", 2, withscores=True)))
    check("zrangestore", lambda: r.zrangestore("z3", "z", 0, -1))
    check("zscan", lambda: r.zscan("z"))
    # Geo
    check("geoadd", lambda: r.geoadd("g", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]))
    check("geodist", lambda: r.geodist("g", "Palermo", "Catania", unit="km"))
    check("geopos", lambda: r.geopos("g", "Palermo", "nope"))
    check("geohash", lambda: r.geohash("g", "Palermo"))
    check("geosearch", lambda: r.geosearch("g", longitude=15, latitude=37, radius=200, unit="km", withdist=True, withcoord=True, withhash=True, sort="ASC"))
    check("georadius", lambda: r.georadius("g", 15, 37, 200, unit="km", withdist=True, sort="DESC", count=1))
    check("geosearchstore", lambda: r.geosearchstore("g2", "g", member="Palermo", width=400, height=400, unit="km", storedist=True))
    # HyperLogLog
    check("pfadd", lambda: r.pfadd("hll", *[f"e{i}" for i in range(100)]))
    check("pfcount", lambda: r.pfcount("hll"))
    check("pfmerge", lambda: r.pfmerge("hll2", "hll", "nope"))
    # Streams
    check("xadd", lambda: r.xadd("x", {"f": "v", "n": 1}, id="1-1"))
    check("xadd2", lambda: r.xadd("x", {"f": "w"}, id="2-1", maxlen=10, approximate=False))
    check("xlen", lambda: r.xlen("x"))
    check("xrange", lambda: r.xrange("x"))
    check("xrevrange", lambda: r.xrevrange("x", count=1))
    check("xgroup_create", lambda: r.xgroup_create("x", "g", id="0"))
    check("xreadgroup", lambda: r.xreadgroup("g", "alice", {"x": ">"}, count=1))
    check("xread", lambda: r.xread({"x": "0"}, count=5))
    check("xpending", lambda: r.xpending("x", "g"))
    check("xpending_range", lambda: [{k: v for k, v in p.items() if k != "time_since_delivered"} for p in r.xpending_range("x", "g", "-", "+", 10)])
    check("xclaim", lambda: r.xclaim("x", "g", "bob", 0, ["1-1"], justid=True))
    check("xautoclaim", lambda: r.xautoclaim("x", "g", "carol", 0, "0-0", justid=True))
    check("xack", lambda: r.xack("x", "g", "1-1"))
    check("xinfo_groups", lambda: r.xinfo_groups("x"))
    check("xinfo_stream", lambda: {k: v for k, v in r.xinfo_stream("x").items() if k != "radix-tree-nodes"})
    check("xinfo_consumers", lambda: [{k: v for k, v in c.items() if k not in ("idle", "inactive")} for c in r.xinfo_consumers("x", "g")])
    check("xtrim", lambda: r.xtrim("x", maxlen=1, approximate=False))
    check("xdel", lambda: r.xdel("x", "2-1", "9-9"))
    # Transactions and pipelines
    def tx():
        p = r.pipeline(transaction=True)
        p.set("t", 1).incr("t").get("t").lpush("t", "x")
        return p.execute(raise_on_error=False)
    check("multi_exec", lambda: [repr(v) if isinstance(v, Exception) else v for v in tx()])
    def watched():
        with r.pipeline() as p:
            p.watch("w")
            r.set("w", "changed")
            p.multi()
            p.set("w", "mine")
            try:
                return p.execute()
            except redis.WatchError:
                return "WatchError"
    check("watch", watched)
    check("pipeline", lambda: r.pipeline(transaction=False).ping().echo("hi").dbsize().execute())
    # Pub/Sub through redis-py's PubSub (RESP3 delivers messages as pushes)
    def pubsub():
        p = r.pubsub()
        p.subscribe("chan")
        p.psubscribe("ch*")
        got = []

        def collect(until):
            for _ in range(20):
                m = p.get_message(timeout=0.5)
                if m:
                    got.append(m)
                if len(got) == until:
                    break

        collect(2)
        n = r.publish("chan", "hello")
        collect(4)
        p.close()
        return n, got
    check("pubsub", pubsub)
    check("pubsub_numsub", lambda: r.pubsub_numsub("chan"))
    # Scripts: register_script tries EVALSHA, falls back to EVAL on NOSCRIPT
    check("script_flush", lambda: r.script_flush())
    check("register_script", lambda: r.register_script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")(keys=["sc"], args=[7]))
    check("script_exists", lambda: r.script_exists("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"))
    check("eval_error", lambda: r.eval("return redis.call('LPUSH', KEYS[1], 'x')", 1, "s"))
    check("eval_ro", lambda: r.eval_ro("return redis.call('GET', KEYS[1])", 1, "sc"))
    check("eval_json", lambda: r.eval("return cjson.encode({a=ARGV[1]})", 0, "x"))
    # Server and connection
    check("ping", lambda: r.ping())
    check("echo", lambda: r.echo("x"))
    check("config_get", lambda: r.config_get("maxmemory*"))
    check("config_set", lambda: r.config_set("maxmemory-policy", "allkeys-lru"))
    check("info_keys", lambda: sorted(k for k in r.info("keyspace")))
    check("command_count_positive", lambda: r.command_count() > 200)
    check("client_setname", lambda: r.client_setname("battery"))
    check("client_getname", lambda: r.client_getname())
    check("time_is_pair", lambda: len(r.time()))
    check("lastsave_int", lambda: isinstance(r.lastsave(), object))
    check("memory_usage_int", lambda: isinstance(r.memory_usage("s"), int))
    check("sort", lambda: r.sort("st", alpha=True, start=0, num=3))
    check("select_swap", lambda: r.swapdb(0, 1) and r.swapdb(0, 1))
    check("unknown", lambda: r.execute_command("NOSUCHCOMMAND", "x"))
    check("flushdb", lambda: r.flushdb())
    print("\n".join(out))


if __name__ == "__main__":
    main()
