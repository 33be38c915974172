//! Access control lists as Redis 7.0 has them: users with passwords (kept as SHA-256), and
//! selectors saying which commands, keys and channels they may use.
//!
//! This module holds the users and the rule language; it knows commands only through a
//! [`Catalog`] the command layer builds from its table (ids, full names, categories,
//! subcommands), so the server can own the users without naming the command layer.

pub mod categories;
pub mod log;
pub mod user;

use std::collections::BTreeMap;

pub use log::{AclLog, Denial};
pub use user::{Selector, User};

/// One command or subcommand as ACL rules see it.
#[derive(Debug, Clone)]
pub struct CmdInfo {
    /// `get`, `config|get`.
    pub full: &'static str,
    /// Its categories (bits of [`categories`]).
    pub categories: u32,
    /// For a subcommand, its container's id.
    pub parent: Option<usize>,
    pub subcommands: Vec<usize>,
    /// Allowed before authentication (AUTH, HELLO): never denied.
    pub no_auth: bool,
}

/// Every command, indexed by id, in table order.
pub type Catalog = [CmdInfo];

/// The users, by name in byte order (ACL USERS / LIST order), and the log of denials.
pub struct Acl {
    pub users: BTreeMap<Vec<u8>, User>,
    pub log: AclLog,
}

impl Acl {
    /// Only `default`: on, no password, every command, key and channel.
    pub fn new(catalog: &Catalog) -> Acl {
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), User::default_user(catalog));
        Acl { users, log: AclLog::default() }
    }

    pub fn get(&self, name: &[u8]) -> Option<&User> {
        self.users.get(name)
    }

    /// `requirepass`: the default user's password (empty: nopass), as Redis sets it.
    pub fn set_requirepass(&mut self, pass: &str, catalog: &Catalog) {
        if let Some(u) = self.users.get_mut(&b"default"[..]) {
            let rule: Vec<u8> = if pass.is_empty() { b"nopass".to_vec() } else { [b">", pass.as_bytes()].concat() };
            let _ = u.apply(b"resetpass", catalog);
            let _ = u.apply(&rule, catalog);
        }
    }

    /// Whether the default user may do anything (the common case: no check is needed).
    pub fn default_unrestricted(&self) -> bool {
        self.users.get(&b"default"[..]).is_some_and(|u| u.unrestricted())
    }
}
