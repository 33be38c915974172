//! Shutting down as Redis 7.0 does: SHUTDOWN and SIGTERM/SIGINT give lagging replicas up to
//! `shutdown-timeout` seconds to acknowledge the whole stream (writes paused meanwhile), then
//! save and exit. SHUTDOWN blocks its client until then; SHUTDOWN ABORT, or a failure to save,
//! cancels it, and the blocked clients get an error.

use tracing::{info, warn};

use crate::protocol::Reply;
use crate::server::ServerState;
use crate::server::state::PauseKind;

/// SHUTDOWN's modifiers, or those `shutdown-on-sigterm` / `shutdown-on-sigint` give a signal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownFlags {
    pub save: bool,
    pub nosave: bool,
    /// Do not wait for lagging replicas.
    pub now: bool,
    /// Exit even if the final save (or the first AOF) cannot be written.
    pub force: bool,
}

impl ShutdownFlags {
    /// A `shutdown-on-sig*` value: `default`, or any of save/nosave/now/force.
    pub fn from_config(v: &str) -> Self {
        let mut f = ShutdownFlags::default();
        for w in v.split_ascii_whitespace() {
            match w.to_ascii_lowercase().as_str() {
                "save" => f.save = true,
                "nosave" => f.nosave = true,
                "now" => f.now = true,
                "force" => f.force = true,
                _ => {}
            }
        }
        f
    }
}

/// A shutdown waiting for replicas (Redis's shutdown_mstime).
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    flags: ShutdownFlags,
    deadline_ms: u64,
}

/// What [`ServerState::prepare_shutdown`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Saved (as asked); the server exits after this loop iteration.
    Exit,
    /// Waiting for replicas (or already was): the cron finishes it.
    Waiting,
    /// It could not save: the shutdown was cancelled and the server runs on.
    Failed,
}

/// The error SHUTDOWN's clients get when the shutdown fails or is aborted.
pub const FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

impl ServerState {
    /// Redis's prepareForShutdown.
    pub fn prepare_shutdown(&mut self, mut flags: ShutdownFlags) -> Outcome {
        if self.shutdown_pending.is_some() {
            return Outcome::Waiting;
        }
        // A half-loaded data set must not overwrite the file it comes from.
        if self.loading.is_some() {
            flags.save = false;
            flags.nosave = true;
        }
        warn!("User requested shutdown...");
        let timeout = self.config.int("shutdown-timeout").max(0) as u64;
        if !flags.now && timeout != 0 && !self.ready_to_shutdown() {
            self.shutdown_pending = Some(Pending { flags, deadline_ms: self.now_ms.saturating_add(timeout * 1000) });
            if self.pause.is_none() {
                self.request_acks();
            }
            self.pause = Some((PauseKind::Write, u64::MAX));
            info!("Waiting for replicas before shutting down.");
            return Outcome::Waiting;
        }
        self.finish_shutdown(flags)
    }

    /// From cron: a signal asks for a shutdown, or a waiting one may finish.
    pub fn shutdown_cron(&mut self) {
        if let Some(p) = self.shutdown_pending {
            if self.now_ms >= p.deadline_ms || self.ready_to_shutdown() {
                self.finish_shutdown(p.flags);
            }
        } else if self.shutdown_asap && !self.exiting {
            let v = if self.last_signal_sigint { "shutdown-on-sigint" } else { "shutdown-on-sigterm" };
            let flags = ShutdownFlags::from_config(self.config.str(v));
            self.prepare_shutdown(flags);
        }
    }

    /// Milliseconds left for replicas to catch up (INFO's `shutdown_in_milliseconds`).
    pub fn shutdown_in_ms(&self) -> Option<i64> {
        self.shutdown_pending.map(|p| p.deadline_ms as i64 - self.now_ms as i64)
    }

    /// SHUTDOWN ABORT: false when no shutdown was asked for.
    pub fn abort_shutdown(&mut self) -> bool {
        if self.shutdown_pending.is_some() {
            self.cancel_shutdown();
        } else if self.shutdown_asap {
            self.shutdown_asap = false;
        } else {
            return false;
        }
        info!("Shutdown manually aborted.");
        true
    }

    /// Every replica acknowledged the whole stream (none attached counts).
    fn ready_to_shutdown(&self) -> bool {
        self.repl.replicas.iter().filter_map(|id| self.clients.get(id)).all(|s| s.repl_ack == self.repl.offset)
    }

    fn cancel_shutdown(&mut self) {
        self.shutdown_asap = false;
        self.shutdown_pending = None;
        let blocked: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, s)| {
                s.block.as_ref().is_some_and(|b| b.argv.first().is_some_and(|a| a.eq_ignore_ascii_case(b"shutdown")))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in blocked {
            crate::server::blocking::unblock_with(self, id, Some(Reply::Error(FAILED.into())));
        }
        if self.failover.is_none() {
            self.end_pause();
        }
    }

    /// Redis's finishShutdown: the lagging replicas are logged, running snapshots stopped,
    /// the AOF synced and the final snapshot saved; a failure cancels the shutdown unless
    /// `force`.
    fn finish_shutdown(&mut self, flags: ShutdownFlags) -> Outcome {
        let (mut replicas, mut lagging) = (0, 0);
        for s in self.repl.replicas.iter().filter_map(|id| self.clients.get(id)) {
            replicas += 1;
            if s.repl_ack != self.repl.offset {
                lagging += 1;
                let online = s.full_sync.is_none();
                let lag = if online { self.now_ms.saturating_sub(s.repl_ack_ms) / 1000 } else { 0 };
                warn!(
                    "Lagging replica {} reported offset {} behind master, lag={lag}, state={}.",
                    s.replica_name(),
                    self.repl.offset.saturating_sub(s.repl_ack),
                    if online { "online" } else { "wait_bgsave" },
                );
            }
        }
        if replicas > 0 {
            info!("{} of {replicas} replicas are in sync when shutting down.", replicas - lagging);
        }
        if self.bgsave_in_progress() {
            if self.aof_rewrite_in_progress() {
                if self.aof.as_ref().is_some_and(|a| a.state == crate::server::aof::AofState::WaitRewrite) {
                    if !flags.force {
                        warn!("Writing initial AOF, can't exit.");
                        return self.shutdown_failed();
                    }
                    warn!("Writing initial AOF. Exit anyway.");
                }
                warn!("There is a child rewriting the AOF. Killing it!");
            } else {
                warn!("There is a child saving an .rdb. Killing it!");
            }
            self.abort_bgsave();
        }
        if self.aof.is_some() {
            info!("Calling fsync() on the AOF file.");
            self.aof_flush();
            if let Some(Err(e)) = self.aof.as_mut().map(|a| a.sync()) {
                warn!("Fail to fsync the AOF file: {e}.");
            }
        }
        let save_points = !self.config.str("save").trim().is_empty();
        if (save_points && !flags.nosave) || flags.save {
            info!("Saving the final RDB snapshot before exiting.");
            if self.save_rdb().is_err() {
                if self.shutdown_insisted() {
                    crate::server::event_loop::exit_insisting();
                }
                if !flags.force {
                    warn!("Error trying to save the DB, can't exit.");
                    return self.shutdown_failed();
                }
                warn!("Error trying to save the DB. Exit anyway.");
            }
        }
        self.shutdown_pending = None;
        self.exiting = true;
        Outcome::Exit
    }

    fn shutdown_failed(&mut self) -> Outcome {
        warn!("Errors trying to shut down the server. Check the logs for more information.");
        self.cancel_shutdown();
        Outcome::Failed
    }
}

/// The last steps of a shutdown: no more connections, no unix socket file.
pub(super) fn leave(st: &mut ServerState) {
    if let Some(net) = st.net.as_deref_mut() {
        net.close_listeners();
    }
    let unixsocket = st.config.str("unixsocket");
    if !unixsocket.is_empty() {
        info!("Removing the unix socket file.");
        let _ = std::fs::remove_file(unixsocket);
    }
    info!("Ember is now ready to exit, bye bye...");
}

/// Redis's whileBlockedCron: a signal while a data set loads shuts the server down at once,
/// without saving (the half-loaded data must not overwrite its file) or waiting for replicas.
pub(super) fn shutdown_while_loading(st: &mut ServerState) {
    if st.loading.is_some() {
        shutdown_on_signal(st);
    }
}

/// The flag SIGTERM and SIGINT set, for code that waits outside the loop (a replica reading
/// its master's image) to stop waiting.
pub fn signal_flag(st: &ServerState) -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    st.net.as_deref().map(|n| std::sync::Arc::clone(&n.terminate))
}

/// A signal arrived while a load was under way (see [`shutdown_while_loading`]): the server
/// exits now, without saving.
pub fn shutdown_on_signal(st: &mut ServerState) {
    let Some(net) = st.net.as_deref_mut() else { return };
    if !net.terminate.swap(false, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let sigint = net.sigint.swap(false, std::sync::atomic::Ordering::SeqCst);
    warn!("Received {} scheduling shutdown...", if sigint { "SIGINT" } else { "SIGTERM" });
    let flags = ShutdownFlags { nosave: true, now: true, ..Default::default() };
    if st.prepare_shutdown(flags) == Outcome::Exit {
        leave(st);
        std::process::exit(0);
    }
    warn!("SIGTERM received but errors trying to shut down the server, check the logs for more information");
}
