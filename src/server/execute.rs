//! From a decoded request to bytes in the client's output buffer.
//!
//! The command layer (`commands/`) sits above the server: its handlers reach the server's
//! state. So the server cannot name it; it is given one [`Executor`] at start-up and reaches
//! commands through it alone: client requests, the AOF's replay, the master's stream and
//! blocked clients' retries.

use crate::protocol::{Reply, encode};
use crate::server::client::ReplyMode;
use crate::server::{ServerState, Session};

/// What the server needs of the command layer.
pub trait Executor: Sync {
    /// Checks and runs (or queues) one request as a client's: existence, arity,
    /// authentication, OOM, MULTI queueing, then the handler.
    fn execute(&self, st: &mut ServerState, sess: &mut Session, argv: &[&[u8]]) -> Reply;
    /// Runs a blocked client's command again once a key it waits on is ready (the checks it
    /// passed when it blocked are not repeated).
    fn retry(&self, st: &mut ServerState, sess: &mut Session, argv: &[&[u8]]) -> Reply;
    /// The command's statistics slot, None for an unknown command or a wrong arity.
    fn stat_slot(&self, argv: &[&[u8]]) -> Option<usize>;
    /// Whether `name` is a command (the AOF refuses to load a file naming an unknown one).
    fn knows(&self, name: &[u8]) -> bool;
    /// Every command as ACL rules see them (ids are the command table's).
    fn acl_catalog(&self) -> &'static crate::acl::Catalog;
    /// The metrics endpoint's page (Prometheus text format).
    fn metrics(&self, st: &mut ServerState) -> String;
}

/// Runs one request and appends its reply (if any) to the session's output buffer.
pub fn process(st: &mut ServerState, sess: &mut Session, argv: &[&[u8]]) {
    if argv.is_empty() {
        // A replica loading its image sends newlines as a sign of life (see
        // replica::ping_master_while_loading): they count as an acknowledgement's time.
        if sess.replica {
            sess.repl_ack_ms = st.now_ms;
        }
        return;
    }
    // CLIENT REPLY SKIP armed by the previous command silences this one only; a CLIENT REPLY
    // run now sets the mode its own reply obeys.
    if sess.reply_mode == ReplyMode::Skip {
        sess.reply_mode = ReplyMode::Skipping;
    }
    let reply = st.executor.execute(st, sess, argv);
    let skipped = sess.reply_mode == ReplyMode::Skipping;
    if skipped {
        sess.reply_mode = ReplyMode::On;
    }
    // Pub/Sub pushes (subscription confirmations) are delivered whatever the reply mode.
    // A replica gets the write stream only (its REPLCONF ACKs are not answered).
    let silenced = ((skipped || sess.reply_mode != ReplyMode::On) && !reply.is_push()) || sess.replica;
    if let Some(req) = sess.block.as_ref() {
        // The command blocked: no reply until a key is ready, the timeout passes or CLIENT UNBLOCK.
        st.blocking.register(sess.id, req);
        for k in &req.keys {
            st.dbs[req.db].set_blocked(k, true);
        }
    } else if !silenced && !sess.close_asap {
        let before = sess.out.len();
        encode(&reply, sess.resp, &mut sess.out);
        st.stats.net_output_bytes += (sess.out.len() - before) as u64;
        sess.note_reply(sess.out.len() - before);
        if sess.over_output_limit(&st.hot.obuf, st.now_ms) {
            tracing::warn!("Client id={} addr={} closed for overcoming of output buffer limits.", sess.id, sess.addr);
            sess.close_asap = true;
            sess.close_after_reply = true;
            sess.out = Default::default();
        }
    }
    if !sess.after_reply.is_empty() {
        st.send_after_reply(sess);
    }
    // CLIENT CACHING applies to the next command only (or to a whole MULTI/EXEC).
    if sess.caching && sess.multi.is_none() && !argv[0].eq_ignore_ascii_case(b"client") {
        sess.caching = false;
    }
    // A command allowed while a script is busy must not serve blocked clients: the script
    // is still running (Redis's "unblocked command" regression).
    if st.running_script.is_none() {
        crate::server::blocking::serve_ready(st, sess);
    }
}
