//! Geohash arithmetic exactly as Redis does it (geohash.c / geohash_helper.c): 26 steps per
//! axis interleaved into a 52-bit integer that is the sorted-set score, Mercator-safe latitude
//! limits, the 9-cell neighbourhood used by radius and box searches, and haversine distance on
//! Redis's Earth radius. Results must match Redis bit for bit, so the formulas are kept in
//! Redis's order of operations.

pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const STEP_MAX: u8 = 26;
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;
const D_R: f64 = std::f64::consts::PI / 180.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bits {
    pub bits: u64,
    pub step: u8,
}

#[derive(Clone, Copy, Debug)]
pub struct Area {
    pub lon_min: f64,
    pub lon_max: f64,
    pub lat_min: f64,
    pub lat_max: f64,
}

fn deg_rad(a: f64) -> f64 {
    a * D_R
}
fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// Spreads the 32 bits of `x` to the even bit positions.
fn spread(x: u32) -> u64 {
    let mut x = x as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    (x | (x >> 16)) as u32
}

/// Encodes with the given ranges; None outside Redis's coordinate limits.
pub fn encode_range(lon: f64, lat: f64, lat_min: f64, lat_max: f64, step: u8) -> Option<Bits> {
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    let mut lat_off = (lat - lat_min) / (lat_max - lat_min);
    let mut lon_off = (lon - LONG_MIN) / (LONG_MAX - LONG_MIN);
    lat_off *= (1u64 << step) as f64;
    lon_off *= (1u64 << step) as f64;
    Some(Bits { bits: spread(lat_off as u32) | (spread(lon_off as u32) << 1), step })
}

pub fn encode(lon: f64, lat: f64, step: u8) -> Option<Bits> {
    encode_range(lon, lat, LAT_MIN, LAT_MAX, step)
}

pub fn valid(lon: f64, lat: f64) -> bool {
    (LONG_MIN..=LONG_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

pub fn decode(h: Bits) -> Area {
    let ilat = squash(h.bits);
    let ilon = squash(h.bits >> 1);
    let div = (1u64 << h.step) as f64;
    let lat_scale = LAT_MAX - LAT_MIN;
    let lon_scale = LONG_MAX - LONG_MIN;
    Area {
        lat_min: LAT_MIN + (ilat as f64 * 1.0 / div) * lat_scale,
        lat_max: LAT_MIN + ((ilat as f64 + 1.0) * 1.0 / div) * lat_scale,
        lon_min: LONG_MIN + (ilon as f64 * 1.0 / div) * lon_scale,
        lon_max: LONG_MIN + ((ilon as f64 + 1.0) * 1.0 / div) * lon_scale,
    }
}

/// The centre of a cell, clamped to the valid range: what GEOPOS reports for a score.
pub fn decode_to_lonlat(h: Bits) -> (f64, f64) {
    let a = decode(h);
    let lon = ((a.lon_min + a.lon_max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat_min + a.lat_max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

pub fn score_to_lonlat(score: f64) -> (f64, f64) {
    decode_to_lonlat(Bits { bits: c_double_to_u64(score), step: STEP_MAX })
}

/// Redis's `(uint64_t)score` as x86-64 compilers emit it (a signed truncation, with 2^63
/// taken off first for large values), so a score no GEOADD wrote (-1, inf, 1e20, set by
/// ZADD) decodes to the same place as in Redis. Rust's `as` saturates instead.
fn c_double_to_u64(x: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    // cvttsd2si: out of range (and NaN) gives the "integer indefinite" value, i64::MIN.
    let cvtt = |v: f64| if v.is_nan() || !(-TWO63..TWO63).contains(&v) { i64::MIN } else { v as i64 };
    if x < TWO63 { cvtt(x) as u64 } else { (cvtt(x - TWO63) as u64) ^ (1 << 63) }
}

fn move_x(h: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> (64 - h.step as u32 * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step as u32 * 2);
    h.bits = x | y;
}

fn move_y(h: &mut Bits, d: i8) {
    if d == 0 {
        return;
    }
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step as u32 * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> (64 - h.step as u32 * 2);
    h.bits = x | y;
}

fn moved(h: Bits, dx: i8, dy: i8) -> Bits {
    let mut n = h;
    move_x(&mut n, dx);
    move_y(&mut n, dy);
    n
}

pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in meters, with Redis's shortcut when the longitudes are equal.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// A search shape: a circle (radius) or an axis-aligned box (width, height), in meters.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    Circle { radius: f64 },
    Box { width: f64, height: f64 },
}

/// Distance from the centre if the point is inside the shape.
pub fn within(shape: Shape, lon: f64, lat: f64, plon: f64, plat: f64) -> Option<f64> {
    match shape {
        Shape::Circle { radius } => {
            let d = distance(lon, lat, plon, plat);
            (d <= radius).then_some(d)
        }
        Shape::Box { width, height } => {
            if lat_distance(plat, lat) > height / 2.0 {
                return None;
            }
            if distance(plon, plat, lon, plat) > width / 2.0 {
                return None;
            }
            Some(distance(lon, lat, plon, plat))
        }
    }
}

fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The cells to scan for a search around (lon, lat): the centre cell first, then north, south,
/// east, west, NE, NW, SE, SW, with useless cells removed (None), as Redis computes them.
pub fn search_cells(lon: f64, lat: f64, shape: Shape) -> Vec<Option<Bits>> {
    let (width, height) = match shape {
        Shape::Circle { radius } => (radius, radius),
        Shape::Box { width, height } => (width / 2.0, height / 2.0),
    };
    let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
    let long_delta_top = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat + lat_delta).cos());
    let long_delta_bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat - lat_delta).cos());
    let southern = lat < 0.0;
    let min_lon = if southern { lon - long_delta_bottom } else { lon - long_delta_top };
    let max_lon = if southern { lon + long_delta_bottom } else { lon + long_delta_top };
    let min_lat = lat - lat_delta;
    let max_lat = lat + lat_delta;
    let radius_meters = match shape {
        Shape::Circle { radius } => radius,
        Shape::Box { width, height } => ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt(),
    };
    let mut steps = estimate_steps(radius_meters, lat);
    let center = |s: u8| encode(lon, lat, s).unwrap_or(Bits { bits: 0, step: s });
    let mut hash = center(steps);
    let (n, s, e, w) = (moved(hash, 0, 1), moved(hash, 0, -1), moved(hash, 1, 0), moved(hash, -1, 0));
    let decrease = decode(n).lat_max < max_lat
        || decode(s).lat_min > min_lat
        || decode(e).lon_max < max_lon
        || decode(w).lon_min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        hash = center(steps);
    }
    let area = decode(hash);
    let mut cells: [Option<Bits>; 9] = [
        Some(hash),
        Some(moved(hash, 0, 1)),
        Some(moved(hash, 0, -1)),
        Some(moved(hash, 1, 0)),
        Some(moved(hash, -1, 0)),
        Some(moved(hash, 1, 1)),
        Some(moved(hash, -1, 1)),
        Some(moved(hash, 1, -1)),
        Some(moved(hash, -1, -1)),
    ];
    if steps >= 2 {
        if area.lat_min < min_lat {
            cells[2] = None;
            cells[8] = None;
            cells[7] = None;
        }
        if area.lat_max > max_lat {
            cells[1] = None;
            cells[5] = None;
            cells[6] = None;
        }
        if area.lon_min < min_lon {
            cells[4] = None;
            cells[8] = None;
            cells[6] = None;
        }
        if area.lon_max > max_lon {
            cells[3] = None;
            cells[7] = None;
            cells[5] = None;
        }
    }
    cells.to_vec()
}

/// The score interval [min, max) covered by a cell.
pub fn cell_scores(h: Bits) -> (u64, u64) {
    let shift = 52 - h.step as u32 * 2;
    (h.bits << shift, (h.bits + 1) << shift)
}

/// GEOHASH's 11-character string: re-encoded on the standard [-90, 90] latitude range.
pub fn to_base32(lon: f64, lat: f64) -> Option<String> {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let h = encode_range(lon, lat, -90.0, 90.0, STEP_MAX)?;
    let mut s = String::with_capacity(11);
    for i in 0..11 {
        let idx = if i == 10 { 0 } else { ((h.bits >> (52 - (i + 1) * 5)) & 0x1f) as usize };
        s.push(ALPHABET[idx] as char);
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn score_casts_like_x86() {
        use super::c_double_to_u64 as c;
        assert_eq!(c(f64::INFINITY), 0);
        assert_eq!(c(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(c(-1.0), u64::MAX);
        assert_eq!(c(1e20), 0);
        assert_eq!(c(1.5), 1);
        assert_eq!(c(9_223_372_036_854_775_808.0), 1 << 63);
        assert_eq!(c(12_345_678.0), 12_345_678);
    }

    use super::*;

    #[test]
    fn matches_redis_for_palermo() {
        let h = encode(13.361389, 38.115556, STEP_MAX).unwrap();
        assert_eq!(h.bits, 3479099956230698);
        let (lon, lat) = score_to_lonlat(h.bits as f64);
        assert_eq!(crate::util::longdouble::LongDouble::from_f64(lon).to_human(), "13.36138933897018433");
        assert_eq!(crate::util::longdouble::LongDouble::from_f64(lat).to_human(), "38.11555639549629859");
        assert_eq!(to_base32(lon, lat).unwrap(), "sqc8b49rny0");
        let c = encode(15.087269, 37.502669, STEP_MAX).unwrap();
        let (clon, clat) = score_to_lonlat(c.bits as f64);
        assert_eq!(format!("{:.4}", distance(lon, lat, clon, clat) / 1000.0), "166.2742");
    }
}
