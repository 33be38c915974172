// A battery of ioredis calls whose results are printed one per line.
//
// tests/it/client_libraries.rs runs it against Ember and against redis-server 7.0 and
// compares the outputs: ioredis's ready check (INFO), its reply parser, pipelines, MULTI,
// Pub/Sub, blocking pops, scanStream and error objects all read Ember as they read Redis.
//
//   node tests/clients/node/ioredis_battery.js PORT
"use strict";
const Redis = require("ioredis");

function normalise(v) {
  if (v instanceof Error) return `Error(${v.message})`;
  if (Buffer.isBuffer(v)) return `Buffer(${v.toString("hex")})`;
  if (Array.isArray(v)) return "[" + v.map(normalise).join(", ") + "]";
  if (v && typeof v === "object") {
    return "{" + Object.keys(v).sort().map((k) => `${k}: ${normalise(v[k])}`).join(", ") + "}";
  }
  return JSON.stringify(v);
}

async function main() {
  const port = Number(process.argv[2]);
  const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  const out = [];
  const check = async (label, fn) => {
    let v;
    try {
      v = await fn();
    } catch (e) {
      v = e;
    }
    out.push(`${label}: ${normalise(v)}`);
  };

  await r.flushall();
  await check("set", () => r.set("s", "v", "EX", 100));
  await check("get", () => r.get("s"));
  await check("getBuffer", () => r.getBuffer("s"));
  await check("mset", () => r.mset({ a: 1, b: 2 }));
  await check("mget", () => r.mget("a", "b", "nope"));
  await check("incrby", () => r.incrby("n", 5));
  await check("incrbyfloat", () => r.incrbyfloat("f", "1.25"));
  await check("wrongtype", () => r.lpush("s", "x"));
  await check("not_integer", () => r.incr("s"));
  await check("hset", () => r.hset("h", { f1: "v1", f2: "2" }));
  await check("hgetall", () => r.hgetall("h"));
  await check("hincrby", () => r.hincrby("h", "f2", 3));
  await check("rpush", () => r.rpush("l", "a", "b", "c"));
  await check("lrange", () => r.lrange("l", 0, -1));
  await check("blpop", () => r.blpop("nope", "l", 1));
  await check("blpop_timeout", () => r.blpop("nope", 0.1));
  await check("lmpop", () => r.lmpop(2, "nope", "l", "RIGHT", "COUNT", 5));
  await check("sadd", () => r.sadd("st", "a", "b", "c"));
  await check("smembers", async () => (await r.smembers("st")).sort());
  await check("zadd", () => r.zadd("z", 1, "a", 2.5, "b", "-inf", "c"));
  await check("zrange", () => r.zrange("z", 0, -1, "WITHSCORES"));
  await check("zrangebyscore", () => r.zrangebyscore("z", "(1", "+inf", "WITHSCORES", "LIMIT", 0, 5));
  await check("zscore", () => r.zscore("z", "b"));
  await check("zincrby", () => r.zincrby("z", "0.5", "a"));
  await check("zpopmin", () => r.zpopmin("z", 2));
  await check("bzpopmax", () => r.bzpopmax("nope", "z", 1));
  await check("geoadd", () => r.geoadd("g", 13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"));
  await check("geosearch", () => r.geosearch("g", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km", "ASC", "WITHDIST", "WITHCOORD"));
  await check("pfadd", () => r.pfadd("hll", "a", "b", "c"));
  await check("pfcount", () => r.pfcount("hll"));
  await check("xadd", () => r.xadd("x", "1-1", "f", "v"));
  await check("xgroup", () => r.xgroup("CREATE", "x", "g", "0"));
  await check("xreadgroup", () => r.xreadgroup("GROUP", "g", "c", "COUNT", 1, "STREAMS", "x", ">"));
  await check("xread", () => r.xread("COUNT", 5, "STREAMS", "x", "0"));
  await check("xpending", () => r.xpending("x", "g"));
  await check("xinfo_groups", () => r.xinfo("GROUPS", "x"));
  await check("setbit", () => r.setbit("bits", 7, 1));
  await check("bitfield", () => r.bitfield("bf", "SET", "u8", 0, 200, "INCRBY", "u8", 0, 100, "GET", "i4", 0));
  await check("pipeline", () => r.pipeline().set("p", 1).incr("p").get("p").lpush("p", "x").exec());
  await check("multi", () => r.multi().set("t", 1).incr("t").get("t").exec());
  await check("multi_error", () => r.multi().set("t", 1).lpush("t", "x").exec());
  await check("multi_queue_error", () => r.multi().set("t", 1).call("NOSUCH").exec());
  await check("watch_broken", async () => {
    await r.watch("w");
    const other = new Redis({ port, host: "127.0.0.1" });
    await other.set("w", "changed");
    other.disconnect();
    return r.multi().set("w", "mine").exec();
  });
  await check("scanStream", () => new Promise((resolve) => {
    const keys = [];
    r.scanStream({ match: "*", count: 3 }).on("data", (k) => keys.push(...k)).on("end", () => resolve(keys.sort()));
  }));
  await check("pubsub", async () => {
    const sub = new Redis({ port, host: "127.0.0.1" });
    const got = [];
    const done = new Promise((resolve) => {
      sub.on("message", (ch, m) => { got.push(["message", ch, m]); if (got.length === 2) resolve(); });
      sub.on("pmessage", (p, ch, m) => { got.push(["pmessage", p, ch, m]); if (got.length === 2) resolve(); });
    });
    await sub.subscribe("chan");
    await sub.psubscribe("ch*");
    const n = await r.publish("chan", "hello");
    await done;
    sub.disconnect();
    return [n, got.sort()];
  });
  await check("info_has_server", async () => (await r.info("server")).includes("redis_version:7.0.15"));
  // Redis lists the matches in its hash table's order: compared as sorted pairs.
  await check("config_get", async () => {
    const flat = await r.config("GET", "maxmemory*");
    const pairs = [];
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], flat[i + 1]]);
    return pairs.sort();
  });
  await check("client_setname", () => r.client("SETNAME", "battery"));
  await check("client_getname", () => r.client("GETNAME"));
  await check("unknown", () => r.call("NOSUCHCOMMAND", "x"));
  await check("ping", () => r.ping());
  await check("dbsize", () => r.dbsize());
  r.disconnect();
  console.log(out.join("\n"));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
