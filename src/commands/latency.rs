//! LATENCY family: the latency monitor's events (LATEST, HISTORY, RESET, DOCTOR, GRAPH) and
//! the per-command latency histograms (HISTOGRAM). The records live in server::latency.

use bytes::Bytes;

use super::args::lossy;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, container, help_reply, table};
use crate::protocol::Reply;
use crate::server::latency::Histogram;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("latency", -2, container)
    .doc("server", "A container for latency diagnostics commands", "2.8.13", "Depends on subcommand.")
    .subcommands(SUBCOMMANDS)];

const ADMIN_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("doctor", 2, latency_doctor).flags(ADMIN_FLAGS).doc(
        "server",
        "Return a human readable latency analysis report.",
        "2.8.13",
        "O(1)",
    ),
    CommandSpec::new("graph", 3, latency_graph).flags(ADMIN_FLAGS).doc(
        "server",
        "Return a latency graph for the event.",
        "2.8.13",
        "O(1)",
    ),
    CommandSpec::new("histogram", -2, latency_histogram).flags(ADMIN_FLAGS).doc(
        "server",
        "Return the cumulative distribution of latencies of a subset of commands or all.",
        "7.0.0",
        "O(N) where N is the number of commands with latency information being retrieved.",
    ),
    CommandSpec::new("history", 3, latency_history).flags(ADMIN_FLAGS).doc(
        "server",
        "Return timestamp-latency samples for the event.",
        "2.8.13",
        "O(1)",
    ),
    CommandSpec::new("latest", 2, latency_latest).flags(ADMIN_FLAGS).doc(
        "server",
        "Return the latest latency samples for all events.",
        "2.8.13",
        "O(1)",
    ),
    CommandSpec::new("reset", -2, latency_reset).flags(ADMIN_FLAGS).doc(
        "server",
        "Reset latency data for one or more events.",
        "2.8.13",
        "O(1)",
    ),
    CommandSpec::new("help", 2, latency_help).flags(LOADING | STALE).doc(
        "server",
        "Show helpful text about the different subcommands.",
        "2.8.13",
        "O(1)",
    ),
];

fn latency_latest(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let events = &ctx.srv.latency.events;
    Ok(Reply::Array(
        events
            .iter()
            .filter_map(|(name, s)| {
                let last = s.samples.back()?;
                Some(Reply::Array(vec![
                    Reply::bulk_str(name),
                    Reply::Int(last.time as i64),
                    Reply::Int(last.latency as i64),
                    Reply::Int(s.max as i64),
                ]))
            })
            .collect(),
    ))
}

fn latency_history(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let name = lossy(argv[2]);
    let Some(s) = ctx.srv.latency.events.get(name.as_str()) else { return Ok(Reply::Array(vec![])) };
    Ok(Reply::Array(
        s.samples.iter().map(|x| Reply::Array(vec![Reply::Int(x.time as i64), Reply::Int(x.latency as i64)])).collect(),
    ))
}

fn latency_reset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let names: Vec<String> = argv[2..].iter().map(|a| lossy(a)).collect();
    Ok(Reply::Int(ctx.srv.latency.reset(&names) as i64))
}

fn latency_doctor(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let report = ctx.srv.latency.doctor(ctx.srv.hot.latency_threshold_ms);
    Ok(Reply::Verbatim(Bytes::from(report)))
}

fn latency_graph(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let name = lossy(argv[2]);
    match ctx.srv.latency.graph(&name) {
        Some(g) => Ok(Reply::Verbatim(Bytes::from(g))),
        None => Err(CmdError::msg(format!("No samples available for event '{name}'"))),
    }
}

/// `calls N histogram_usec {bound: cumulative count, ...}` for one command.
fn histogram_reply(h: &Histogram) -> Reply {
    Reply::Map(vec![
        (Reply::bulk_str("calls"), Reply::Int(h.total as i64)),
        (
            Reply::bulk_str("histogram_usec"),
            Reply::Map(
                h.cumulative().into_iter().map(|(us, n)| (Reply::Int(us as i64), Reply::Int(n as i64))).collect(),
            ),
        ),
    ])
}

/// LATENCY HISTOGRAM [command ...]: every command with calls, or the named ones (a container
/// brings its subcommands; `parent|sub` names one; unknown names are skipped).
fn latency_histogram(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let t = table();
    let stats = &ctx.srv.stats.commands;
    let with_data = |id: usize| stats.get(id).map(|s| &s.latency).filter(|h| h.total > 0);
    let mut ids: Vec<usize> = Vec::new();
    if argv.len() == 2 {
        ids.extend(t.entries().iter().map(|e| e.id));
        ids.sort_by_key(|&i| t.entries()[i].full);
    } else {
        for name in &argv[2..] {
            let lower = name.to_ascii_lowercase();
            let entry = match lower.iter().position(|&c| c == b'|') {
                Some(p) => t.get(&lower[..p]).and_then(|parent| t.sub(parent, &lower[p + 1..])),
                None => t.get(&lower),
            };
            let Some(e) = entry else { continue };
            ids.push(e.id);
            ids.extend(e.subs.iter().copied());
        }
    }
    let out = ids
        .into_iter()
        .filter_map(|id| with_data(id).map(|h| (Reply::bulk_str(t.entries()[id].full), histogram_reply(h))))
        .collect();
    Ok(Reply::Map(out))
}

fn latency_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    ))
}
