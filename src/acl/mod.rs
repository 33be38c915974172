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
use std::sync::atomic::{AtomicBool, Ordering};

/// `acl-pubsub-default allchannels`: new users (and `reset`) may use every channel.
static PUBSUB_DEFAULT_ALL: AtomicBool = AtomicBool::new(false);

pub fn set_pubsub_default_all(all: bool) {
    PUBSUB_DEFAULT_ALL.store(all, Ordering::Relaxed);
}

pub fn pubsub_default_all() -> bool {
    PUBSUB_DEFAULT_ALL.load(Ordering::Relaxed)
}

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

impl Acl {
    /// The users of an ACL file (`user <name> <rules...>` lines), replacing all but the
    /// default user, which takes the file's rules if it names it. Nothing changes on error;
    /// the error is Redis's text naming `filename` and the line.
    pub fn load_file(&mut self, text: &str, filename: &str, catalog: &Catalog) -> Result<(), String> {
        let mut users = BTreeMap::new();
        let mut errors = String::new();
        for (i, raw) in text.split('\n').enumerate() {
            let n = i + 1;
            let line = raw.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() {
                continue;
            }
            let words: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
            if words.len() < 2 || words[0] != "user" {
                errors.push_str(&format!("{filename}:{n} should start with user keyword followed by the username. "));
                continue;
            }
            let name = words[1];
            if users.contains_key(name.as_bytes()) {
                errors.push_str(&format!("WARNING: Duplicate user '{name}' found on line {n}. "));
                continue;
            }
            let rules: Vec<String> = words[2..].iter().map(|w| w.to_string()).collect();
            let mut u = User::new(catalog);
            let mut syntax = false;
            match merge_selector_words(&rules) {
                Err(_) => errors.push_str(&format!("{filename}:{n}: Unmatched parenthesis in selector definition.")),
                Ok(rules) => {
                    for r in rules {
                        if let Err(e) = u.apply(&r, catalog) {
                            if e == user::RuleError::UnknownCommand {
                                errors.push_str(&format!(
                                    "{filename}:{n}: Error in applying operation '{}': {}. ",
                                    String::from_utf8_lossy(&r),
                                    e.text()
                                ));
                            } else if !syntax {
                                errors.push_str(&format!("{filename}:{n}: {}. ", e.text()));
                                syntax = true;
                            }
                        }
                    }
                }
            }
            users.insert(name.as_bytes().to_vec(), u);
        }
        if !errors.is_empty() {
            return Err(errors.trim_end().to_string());
        }
        users.entry(b"default".to_vec()).or_insert_with(|| User::default_user(catalog));
        self.users = users;
        Ok(())
    }

    /// The `user` lines of the config file, at start-up (Redis's errors abort it).
    pub fn load_config_users(&mut self, lines: &[Vec<String>], catalog: &Catalog) -> Result<(), String> {
        for words in lines {
            let Some((name, rules)) = words.split_first() else { continue };
            if name.bytes().any(|c| c.is_ascii_whitespace() || c == 0) {
                return Err(format!(
                    "Error in user declaration '{name}': Usernames can't contain spaces or null characters"
                ));
            }
            let mut u = if name == "default" { User::default_user(catalog) } else { User::new(catalog) };
            if name == "default" {
                let _ = u.apply(b"reset", catalog);
            }
            let rules = merge_selector_words(rules)
                .map_err(|_| format!("Error in user declaration '{name}': Unmatched parenthesis in selector"))?;
            for r in rules {
                u.apply(&r, catalog).map_err(|e| format!("Error in user declaration '{name}': {}", e.text()))?;
            }
            self.users.insert(name.as_bytes().to_vec(), u);
        }
        Ok(())
    }

    /// Every user as ACL LIST shows it (ACL SAVE's file, CONFIG REWRITE's `user` lines).
    pub fn list_lines(&self, catalog: &Catalog) -> Vec<String> {
        self.users.iter().map(|(n, u)| format!("user {} {}", String::from_utf8_lossy(n), u.describe(catalog))).collect()
    }
}

/// Rules with selectors split over several words (`(~key`, `+get)`) joined; the index of
/// the word opening a selector that is never closed, as the error.
pub fn merge_selector_words<W: AsRef<[u8]>>(words: &[W]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(Vec<u8>, usize)> = None;
    for (i, w) in words.iter().enumerate() {
        let w = w.as_ref();
        let closes = w.last() == Some(&b')');
        if let Some((sel, _)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(w);
            if closes {
                out.extend(open.take().map(|(s, _)| s));
            }
            continue;
        }
        if w.first() == Some(&b'(') && !closes {
            open = Some((w.to_vec(), i));
            continue;
        }
        out.push(w.to_vec());
    }
    match open {
        Some((_, i)) => Err(i),
        None => Ok(out),
    }
}
