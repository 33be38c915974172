//! ACL LOG: the recent denials (commands, keys, channels, failed AUTH), newest first. A
//! denial like one of the last ten within 60 seconds bumps that entry's count instead of
//! adding one, as Redis groups them.

use std::collections::VecDeque;

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    Command,
    Key,
    Channel,
    Auth,
}

impl Denial {
    pub fn name(self) -> &'static str {
        match self {
            Denial::Command => "command",
            Denial::Key => "key",
            Denial::Channel => "channel",
            Denial::Auth => "auth",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub count: u64,
    pub reason: Denial,
    /// toplevel, multi, lua.
    pub context: &'static str,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub ctime_ms: u64,
    pub client_info: String,
}

#[derive(Debug, Default)]
pub struct AclLog {
    pub entries: VecDeque<Entry>,
}

const GROUPING_MS: u64 = 60_000;

impl AclLog {
    /// Records a denial; `max`: acllog-max-len.
    pub fn add(&mut self, e: Entry, max: usize) {
        let found = self.entries.iter().take(10).position(|c| {
            c.reason == e.reason
                && c.context == e.context
                && c.object == e.object
                && c.username == e.username
                && e.ctime_ms.saturating_sub(c.ctime_ms) <= GROUPING_MS
        });
        if let Some(i) = found
            && let Some(mut c) = self.entries.remove(i)
        {
            c.count += 1;
            c.ctime_ms = e.ctime_ms;
            c.client_info = e.client_info;
            self.entries.push_front(c);
            return;
        }
        self.entries.push_front(e);
        self.entries.truncate(max);
    }
}
