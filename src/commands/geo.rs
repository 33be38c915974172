//! Geo family: a command family over the sorted-set type, exactly as Redis stores it — the
//! score is the 52-bit interleaved geohash — so GEO data moves between Ember and Redis and
//! ZRANGE on a geo key shows the same scores. Searches scan the same 9 cells as Redis, in the
//! same order, so unsorted results come out in Redis's order too.

use crate::keyspace::notify as ev;
use bytes::Bytes;

use super::access::read;
use super::args::{Conditions, is};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys};
use crate::protocol::Reply;
use crate::types::geohash::{self, Shape};
use crate::types::{Value, ZSetValue};
use crate::util::longdouble::LongDouble;
use crate::util::numfmt::{parse_f64, parse_i64};

const STORE_SEARCH: Keys = Keys { first: 1, last: 2, step: 1 };

macro_rules! g {
    ($name:expr, $arity:expr, $flags:expr, $keys:expr, $summary:expr, $since:expr, $handler:expr) => {
        CommandSpec::new($name, $arity, $handler).flags($flags).keys($keys).doc(
            "geo",
            $summary,
            $since,
            "O(log(N)) for each item added",
        )
    };
}

pub static COMMANDS: &[CommandSpec] = &[
    g!(
        "geoadd",
        -5,
        WRITE | DENYOOM,
        KEY1,
        "Add one or more geospatial items in the geospatial index represented using a sorted set",
        "3.2.0",
        geoadd
    ),
    g!(
        "geodist",
        -4,
        READONLY,
        KEY1,
        "Returns the distance between two members of a geospatial index",
        "3.2.0",
        geodist
    ),
    g!(
        "geohash",
        -2,
        READONLY,
        KEY1,
        "Returns members of a geospatial index as standard geohash strings",
        "3.2.0",
        geohash_cmd
    ),
    g!(
        "geopos",
        -2,
        READONLY,
        KEY1,
        "Returns longitude and latitude of members of a geospatial index",
        "3.2.0",
        geopos
    ),
    g!(
        "georadius",
        -6,
        WRITE | DENYOOM | MOVABLEKEYS,
        KEY1,
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point",
        "3.2.0",
        georadius
    ),
    g!("georadius_ro", -6, READONLY, KEY1, "A read-only variant for GEORADIUS", "3.2.10", georadius_ro),
    g!(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM | MOVABLEKEYS,
        KEY1,
        "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member",
        "3.2.0",
        georadiusbymember
    ),
    g!(
        "georadiusbymember_ro",
        -5,
        READONLY,
        KEY1,
        "A read-only variant for GEORADIUSBYMEMBER",
        "3.2.10",
        georadiusbymember_ro
    ),
    g!(
        "geosearch",
        -7,
        READONLY,
        KEY1,
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.",
        "6.2.0",
        geosearch
    ),
    g!(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        STORE_SEARCH,
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.",
        "6.2.0",
        geosearchstore
    ),
];

fn human(v: f64) -> Reply {
    Reply::DoubleText(LongDouble::from_f64(v).to_human())
}

fn dist_reply(d: f64) -> Reply {
    Reply::Bulk(Bytes::from(format!("{d:.4}")))
}

fn lonlat(args: &[&[u8]]) -> Result<(f64, f64), CmdError> {
    let lon = parse_f64(args[0]).ok_or(CmdError::NotFloat)?;
    let lat = parse_f64(args[1]).ok_or(CmdError::NotFloat)?;
    if !geohash::valid(lon, lat) {
        return Err(CmdError::msg(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")));
    }
    Ok((lon, lat))
}

fn unit(a: &[u8]) -> Result<f64, CmdError> {
    if is(a, "m") {
        Ok(1.0)
    } else if is(a, "km") {
        Ok(1000.0)
    } else if is(a, "ft") {
        Ok(0.3048)
    } else if is(a, "mi") {
        Ok(1609.34)
    } else {
        Err(CmdError::msg("unsupported unit provided. please use M, KM, FT, MI"))
    }
}

fn geoadd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (c, taken) = Conditions::leading(&argv[2..], &["nx", "xx", "ch"]);
    let Conditions { nx, xx, ch, .. } = c;
    let rest = &argv[2 + taken..];
    if !rest.len().is_multiple_of(3) || rest.is_empty() || (xx && nx) {
        return Err(CmdError::Syntax);
    }
    let mut zadd_args: Vec<Bytes> = vec![Bytes::from_static(b"zadd"), Bytes::copy_from_slice(argv[1])];
    for (flag, on) in [("nx", nx), ("xx", xx), ("ch", ch)] {
        if on {
            zadd_args.push(Bytes::from_static(flag.as_bytes()));
        }
    }
    for t in rest.chunks(3) {
        let (lon, lat) = lonlat(&t[0..2])?;
        let bits = geohash::encode(lon, lat, geohash::STEP_MAX).map_or(0, |b| b.bits);
        zadd_args.push(Bytes::from(bits.to_string()));
        zadd_args.push(Bytes::copy_from_slice(t[2]));
    }
    let entry = super::table().get(b"zadd").ok_or_else(|| CmdError::msg("zadd missing"))?;
    (entry.spec.handler)(ctx, &crate::protocol::views(&zadd_args))
}

/// A member's (lon, lat) from its geohash score.
fn member_pos(z: &ZSetValue, m: &[u8]) -> Option<(f64, f64)> {
    z.score(m).map(geohash::score_to_lonlat)
}

fn geodist(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let to_meter = match argv.len() {
        4 => 1.0,
        5 => unit(argv[4])?,
        _ => return Err(CmdError::Syntax),
    };
    let Some(z) = read::<ZSetValue>(ctx.db(), argv[1])? else { return Ok(Reply::Null) };
    let (Some(a), Some(b)) = (member_pos(z, argv[2]), member_pos(z, argv[3])) else { return Ok(Reply::Null) };
    Ok(dist_reply(geohash::distance(a.0, a.1, b.0, b.1) / to_meter))
}

fn geohash_cmd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let z = read::<ZSetValue>(ctx.db(), argv[1])?;
    Ok(Reply::Array(
        argv[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| member_pos(z, m))
                    .and_then(|(lon, lat)| geohash::to_base32(lon, lat))
                    .map_or(Reply::Null, |s| Reply::Bulk(Bytes::from(s)))
            })
            .collect(),
    ))
}

fn geopos(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let z = read::<ZSetValue>(ctx.db(), argv[1])?;
    Ok(Reply::Array(
        argv[2..]
            .iter()
            .map(|m| {
                z.and_then(|z| member_pos(z, m))
                    .map_or(Reply::NullArray, |(lon, lat)| Reply::Array(vec![human(lon), human(lat)]))
            })
            .collect(),
    ))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Radius,
    RadiusMember,
    Search,
    SearchStore,
}

struct Point {
    member: Vec<u8>,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// Members inside `shape` around (lon, lat), scanning the cells in Redis's order; stops at
/// `limit` when positive (ANY).
fn search(z: &ZSetValue, lon: f64, lat: f64, shape: Shape, limit: usize) -> Vec<Point> {
    let mut out = Vec::new();
    let mut last: Option<geohash::Bits> = None;
    for cell in geohash::search_cells(lon, lat, shape).into_iter().flatten() {
        // With a huge radius neighbours can coincide: skip a cell equal to the previous one.
        if last == Some(cell) {
            continue;
        }
        if limit > 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::cell_scores(cell);
        let (min, max) = (min as f64, max as f64);
        let lo = z.count_before(|s, _| s < min);
        let hi = z.count_before(|s, _| s < max);
        for (m, s) in z.range(lo, hi, false) {
            let (plon, plat) = geohash::score_to_lonlat(s);
            if let Some(d) = geohash::within(shape, lon, lat, plon, plat) {
                out.push(Point { member: m.to_vec(), score: s, lon: plon, lat: plat, dist: d });
                if limit > 0 && out.len() >= limit {
                    break;
                }
            }
        }
        last = Some(cell);
    }
    out
}

fn geo_generic(ctx: &mut Ctx, argv: &[&[u8]], mode: Mode, readonly: bool) -> CmdResult {
    let src = if mode == Mode::SearchStore { 2 } else { 1 };
    let mut store: Option<(Bytes, bool)> =
        if mode == Mode::SearchStore { Some((Bytes::copy_from_slice(argv[1]), false)) } else { None };
    let db = ctx.db();
    let exists = match db.get(argv[src]) {
        None => false,
        Some(v) if v.as_zset().is_some() => true,
        Some(_) => return Err(CmdError::WrongType),
    };
    // Read without copying: the borrow ends once the matching points are collected.
    let dbi = ctx.sess.db;
    let z: Option<&ZSetValue> = if exists { ctx.srv.dbs[dbi].view(argv[src]).and_then(|v| v.as_zset()) } else { None };
    let mut center: Option<(f64, f64)> = None;
    let mut shape: Option<(Shape, f64)> = None;
    let base = match mode {
        Mode::Radius => {
            center = Some(lonlat(&argv[2..4])?);
            let r = parse_f64(argv[4]).ok_or_else(|| CmdError::msg("need numeric radius"))?;
            if r < 0.0 {
                return Err(CmdError::msg("radius cannot be negative"));
            }
            let u = unit(argv[5])?;
            shape = Some((Shape::Circle { radius: r * u }, u));
            6
        }
        Mode::RadiusMember => {
            if let Some(z) = z {
                center = Some(
                    member_pos(z, argv[2]).ok_or_else(|| CmdError::msg("could not decode requested zset member"))?,
                );
                let r = parse_f64(argv[3]).ok_or_else(|| CmdError::msg("need numeric radius"))?;
                if r < 0.0 {
                    return Err(CmdError::msg("radius cannot be negative"));
                }
                let u = unit(argv[4])?;
                shape = Some((Shape::Circle { radius: r * u }, u));
            }
            5
        }
        Mode::Search => 2,
        Mode::SearchStore => 3,
    };
    let search_mode = matches!(mode, Mode::Search | Mode::SearchStore);
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort: Option<bool> = None; // Some(true) = ASC
    let mut count: i64 = 0;
    let rest = &argv[base.min(argv.len())..];
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        let left = rest.len() - i - 1;
        if is(a, "withdist") {
            withdist = true;
        } else if is(a, "withhash") {
            withhash = true;
        } else if is(a, "withcoord") {
            withcoord = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            sort = Some(true);
        } else if is(a, "desc") {
            sort = Some(false);
        } else if is(a, "count") && left >= 1 {
            count = parse_i64(rest[i + 1]).ok_or(CmdError::NotInteger)?;
            if count <= 0 {
                return Err(CmdError::msg("COUNT must be > 0"));
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && left >= 1 && !readonly && !search_mode {
            store = Some((Bytes::copy_from_slice(rest[i + 1]), is(a, "storedist")));
            i += 1;
        } else if is(a, "storedist") && mode == Mode::SearchStore {
            if let Some(s) = store.as_mut() {
                s.1 = true;
            }
        } else if is(a, "frommember") && left >= 1 && search_mode && !fromloc {
            if let Some(z) = z {
                center = Some(
                    member_pos(z, rest[i + 1])
                        .ok_or_else(|| CmdError::msg("could not decode requested zset member"))?,
                );
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && left >= 2 && search_mode && !frommember {
            center = Some(lonlat(&rest[i + 1..i + 3])?);
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && left >= 2 && search_mode && !bybox {
            let r = parse_f64(rest[i + 1]).ok_or_else(|| CmdError::msg("need numeric radius"))?;
            if r < 0.0 {
                return Err(CmdError::msg("radius cannot be negative"));
            }
            let u = unit(rest[i + 2])?;
            shape = Some((Shape::Circle { radius: r * u }, u));
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && left >= 3 && search_mode && !byradius {
            let w = parse_f64(rest[i + 1]).ok_or_else(|| CmdError::msg("need numeric width"))?;
            let h = parse_f64(rest[i + 2]).ok_or_else(|| CmdError::msg("need numeric height"))?;
            if w < 0.0 || h < 0.0 {
                return Err(CmdError::msg("height or width cannot be negative"));
            }
            let u = unit(rest[i + 3])?;
            shape = Some((Shape::Box { width: w * u, height: h * u }, u));
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        let what = if mode == Mode::SearchStore { "GEOSEARCHSTORE" } else { "STORE option in GEORADIUS" };
        return Err(CmdError::msg(format!("{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options")));
    }
    let name = String::from_utf8_lossy(argv[0]).into_owned();
    if search_mode && !(frommember || fromloc) {
        return Err(CmdError::msg(format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    }
    if search_mode && !(byradius || bybox) {
        return Err(CmdError::msg(format!("exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    }
    if any && count == 0 {
        return Err(CmdError::msg("the ANY argument requires COUNT argument"));
    }
    let (Some(z), Some((lon, lat)), Some((shape, conversion))) = (z, center, shape) else {
        return Ok(match store {
            // A missing source still deletes the destination, with its `del` event.
            Some((dst, _)) => {
                if ctx.db().remove(&dst).is_some() {
                    ctx.notify(ev::GENERIC, "del", &dst);
                }
                Reply::Int(0)
            }
            None => Reply::Array(vec![]),
        });
    };
    if count != 0 && sort.is_none() && !any {
        sort = Some(true);
    }
    let mut points = search(z, lon, lat, shape, if any { count as usize } else { 0 });
    if let Some(asc) = sort {
        points.sort_by(|a, b| {
            let o = a.dist.partial_cmp(&b.dist).unwrap_or(std::cmp::Ordering::Equal);
            if asc { o } else { o.reverse() }
        });
    }
    if count > 0 {
        points.truncate(count as usize);
    }
    match store {
        None => {
            let opts = withdist as usize + withhash as usize + withcoord as usize;
            let out = points
                .into_iter()
                .map(|p| {
                    if opts == 0 {
                        return Reply::Bulk(Bytes::from(p.member));
                    }
                    let mut item = vec![Reply::Bulk(Bytes::from(p.member))];
                    if withdist {
                        item.push(dist_reply(p.dist / conversion));
                    }
                    if withhash {
                        item.push(Reply::Int(p.score as i64));
                    }
                    if withcoord {
                        item.push(Reply::Array(vec![human(p.lon), human(p.lat)]));
                    }
                    Reply::Array(item)
                })
                .collect();
            Ok(Reply::Array(out))
        }
        Some((dst, storedist)) => {
            let lim = ctx.srv.hot.zset;
            let n = points.len();
            let db = ctx.db();
            if n == 0 {
                if db.remove(&dst).is_some() {
                    ctx.notify(ev::GENERIC, "del", &dst);
                }
            } else {
                let maxlen = points.iter().map(|p| p.member.len()).max().unwrap_or(0);
                let mut out = ZSetValue::for_first(maxlen, lim);
                for p in &points {
                    out.set(&p.member, if storedist { p.dist / conversion } else { p.score }, lim);
                }
                db.set(&dst, Value::ZSet(out), false);
                let event = if is(argv[0], "geosearchstore") { "geosearchstore" } else { "georadiusstore" };
                ctx.notify(ev::ZSET, event, &dst);
            }
            Ok(Reply::Int(n as i64))
        }
    }
}

fn georadius(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    geo_generic(ctx, argv, Mode::Radius, false)
}
fn georadius_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    geo_generic(ctx, argv, Mode::Radius, true)
}
fn georadiusbymember(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    geo_generic(ctx, argv, Mode::RadiusMember, false)
}
fn georadiusbymember_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    geo_generic(ctx, argv, Mode::RadiusMember, true)
}
fn geosearch(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    geo_generic(ctx, argv, Mode::Search, true)
}
fn geosearchstore(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    geo_generic(ctx, argv, Mode::SearchStore, false)
}
