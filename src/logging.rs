//! Log lines in Redis's format, so tools that read redis-server's log (Redis's own test
//! suite waits for "Ready to accept connections" and " PID: <pid>") read Ember's:
//!
//! `<pid>:<role> <dd Mon yyyy hh:mm:ss.mmm> <level> <message>`, role `M` (master) or `S`
//! (replica), level `.` debug, `-` verbose, `*` notice, `#` warning. `loglevel` picks the
//! lowest level written (Redis's four map onto tracing's: debug=TRACE, verbose=DEBUG,
//! notice=INFO, warning=WARN) and `logfile` the file (empty: standard output).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The tracing level a `loglevel` value lets through.
pub fn filter_for(loglevel: &str) -> &'static str {
    match loglevel {
        "debug" => "trace",
        "verbose" => "debug",
        "warning" => "warn",
        _ => "info",
    }
}

/// Formats events as Redis log lines.
pub struct RedisFormat;

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Days since 1970-01-01 as (year, month 1-12, day), by Howard Hinnant's civil_from_days.
fn civil(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as usize, d)
}

/// `dd Mon yyyy hh:mm:ss.mmm` (UTC).
pub fn timestamp(ms: u128) -> String {
    let mut s = String::with_capacity(24);
    let _ = write_timestamp(&mut s, ms);
    s
}

/// [`timestamp`] without allocating (the crash report writes it from a signal handler).
fn write_timestamp(w: &mut dyn fmt::Write, ms: u128) -> fmt::Result {
    let secs = (ms / 1000) as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    write!(
        w,
        "{d:02} {} {y} {:02}:{:02}:{:02}.{:03}",
        MONTHS[(m - 1).min(11)],
        t / 3600,
        t % 3600 / 60,
        t % 60,
        ms % 1000
    )
}

/// Whether this server is a replica now: its log lines say `S` instead of `M`, as Redis's.
static REPLICA: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called when the server becomes a replica or a master again.
pub fn set_replica_role(replica: bool) {
    REPLICA.store(replica, std::sync::atomic::Ordering::Relaxed);
}

fn role_char() -> char {
    if REPLICA.load(std::sync::atomic::Ordering::Relaxed) { 'S' } else { 'M' }
}

fn level_char(l: &Level) -> char {
    match *l {
        Level::TRACE => '.',
        Level::DEBUG => '-',
        Level::INFO => '*',
        _ => '#',
    }
}

/// A log line's start, `<pid>:<role> <timestamp> <level> `, written without allocating.
pub fn write_prefix(w: &mut dyn fmt::Write, level: char) -> fmt::Result {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    write!(w, "{}:{} ", std::process::id(), role_char())?;
    write_timestamp(w, ms)?;
    write!(w, " {level} ")
}

impl<S, N> FormatEvent<S, N> for RedisFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        write_prefix(&mut w, level_char(event.metadata().level()))?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_like_redis() {
        assert_eq!(timestamp(0), "01 Jan 1970 00:00:00.000");
        // 2026-12-04 17:41:29.123 UTC
        assert_eq!(timestamp(1_796_406_089_123), "04 Dec 2026 17:41:29.123");
        assert_eq!(timestamp(951_782_400_000), "29 Feb 2000 00:00:00.000");
        assert_eq!(filter_for("verbose"), "debug");
        assert_eq!(level_char(&Level::WARN), '#');
    }
}
