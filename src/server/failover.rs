//! FAILOVER: a master hands its role to one of its replicas without losing a write, as Redis
//! 7.0 does it. Writes are paused; once a replica (the one named with TO, or any) has
//! acknowledged the whole stream, this server becomes its replica and sends `PSYNC <replid>
//! <offset> FAILOVER`, on which the replica promotes itself and answers `+CONTINUE`; the
//! pause then ends (writes get `-READONLY` from now on). TIMEOUT aborts a failover whose
//! replica never catches up, or with FORCE fails over to the named one anyway; FAILOVER ABORT
//! cancels it.

use tracing::info;

use super::ServerState;
use super::state::PauseKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Writes are paused; waiting for a replica to acknowledge the whole stream.
    WaitForSync,
    /// This server is connecting to the target as its replica.
    InProgress,
}

#[derive(Debug, Clone)]
pub struct Failover {
    pub phase: Phase,
    pub target: Option<(String, u16)>,
    /// Unix ms after which the wait ends (abort, or fail over anyway under FORCE).
    pub deadline_ms: Option<u64>,
    pub force: bool,
}

impl Failover {
    /// INFO's master_failover_state.
    pub fn state_name(f: Option<&Failover>) -> &'static str {
        match f.map(|f| f.phase) {
            None => "no-failover",
            Some(Phase::WaitForSync) => "waiting-for-sync",
            Some(Phase::InProgress) => "failover-in-progress",
        }
    }
}

impl ServerState {
    /// Starts a failover (the command checked its arguments and the replicas).
    pub fn start_failover(&mut self, f: Failover) {
        match &f.target {
            Some((h, p)) => info!("FAILOVER requested to {h}:{p}."),
            None => info!("FAILOVER requested to any replica."),
        }
        self.failover = Some(f);
        self.pause = Some((PauseKind::Write, u64::MAX));
    }

    /// The ip and listening port of the attached replica matching `target`, or of any
    /// replica that acknowledged the whole stream when `target` is None.
    pub fn failover_candidate(&self, target: Option<&(String, u16)>, caught_up: bool) -> Option<(String, u16)> {
        self.repl.replicas.iter().filter_map(|id| self.clients.get(id)).find_map(|s| {
            let ip = s.addr.rsplit_once(':').map_or(s.addr.as_str(), |(ip, _)| ip);
            let matches = target.is_none_or(|(h, p)| h.eq_ignore_ascii_case(ip) && *p == s.replica_port);
            (matches && (!caught_up || s.repl_ack == self.repl.offset)).then(|| (ip.to_string(), s.replica_port))
        })
    }

    /// From cron: a waiting failover times out or starts once its replica caught up.
    pub fn update_failover(&mut self) {
        let Some(f) = self.failover.clone() else { return };
        if f.phase != Phase::WaitForSync {
            return;
        }
        if f.deadline_ms.is_some_and(|d| d <= self.now_ms) {
            match f.target {
                Some((host, port)) if f.force => {
                    info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                    self.fail_over_to(host, port);
                }
                _ => self.abort_failover("Replica never caught up before timeout"),
            }
            return;
        }
        if let Some((host, port)) = self.failover_candidate(f.target.as_ref(), true) {
            info!("Failover target {host}:{port} is synced, failing over.");
            self.fail_over_to(host, port);
        }
    }

    fn fail_over_to(&mut self, host: String, port: u16) {
        if let Some(f) = self.failover.as_mut() {
            f.phase = Phase::InProgress;
            f.target = Some((host.clone(), port));
        }
        self.replicate_from(host, port);
    }

    /// The target answered the PSYNC: the failover is over.
    pub fn finish_failover(&mut self) {
        if self.failover.take().is_some() {
            self.end_pause();
        }
    }

    /// Cancels a failover; one already under way makes this server a master again.
    pub fn abort_failover(&mut self, why: &str) {
        let Some(f) = self.failover.take() else { return };
        match &f.target {
            Some((h, p)) => info!("FAILOVER to {h}:{p} aborted: {why}"),
            None => info!("FAILOVER to any replica aborted: {why}"),
        }
        if f.phase == Phase::InProgress {
            self.stop_replicating();
        }
        self.end_pause();
    }

    pub fn failing_over(&self) -> bool {
        self.failover.as_ref().is_some_and(|f| f.phase == Phase::InProgress)
    }
}
