//! A user and its selectors: the rule language of ACL SETUSER, the description ACL LIST and
//! GETUSER give back, and the permission checks, as Redis 7.0's acl.c has them.

use super::{Catalog, CmdInfo};
use crate::util::glob::glob_match;

/// Key pattern permissions (`%R~`, `%W~`, `~` is both).
pub const READ: u8 = 1;
pub const WRITE: u8 = 2;

/// Why a rule was refused: Redis's texts (ACLSetUserStringError).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    UnknownCommand,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    SubcommandFirstArg,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::KeyAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// What a selector lets a user run and touch.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    allowed: Vec<u64>,
    /// Set by +@all only: commands that do not exist yet are allowed too (Redis's reserved bit).
    future: bool,
    /// Every command, no bit test needed (cleared by any removal).
    all_commands: bool,
    /// Allowed first arguments of otherwise denied commands (`+select|0`).
    first_args: Vec<(usize, Vec<String>)>,
    pub all_keys: bool,
    pub keys: Vec<(u8, Vec<u8>)>,
    pub all_channels: bool,
    pub channels: Vec<Vec<u8>>,
}

/// A command as the checks see it: its id, its arguments, where its keys are (with READ /
/// WRITE) and its channels (with whether each is a pattern).
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub id: usize,
    pub argv: &'a [&'a [u8]],
    pub keys: &'a [(usize, u8)],
    pub channels: &'a [(usize, bool)],
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Ok,
    /// Ordered as Redis ranks errors to report (ACL_DENIED_CMD < KEY < CHANNEL).
    DeniedCmd,
    DeniedKey(usize),
    DeniedChannel(usize),
}

impl Selector {
    fn new(catalog: &Catalog) -> Selector {
        Selector {
            allowed: vec![0; catalog.len().div_ceil(64)],
            future: false,
            all_commands: false,
            first_args: Vec::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels: super::pubsub_default_all(),
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if let Some(w) = self.allowed.get_mut(id / 64) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
                self.all_commands = false;
            }
        }
    }

    /// Allows or denies a command and, for a container, all its subcommands.
    fn change_perm(&mut self, catalog: &Catalog, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.first_args.retain(|(c, _)| *c != id);
        for &sub in &catalog[id].subcommands {
            self.set_bit(sub, allow);
        }
    }

    fn set_category(&mut self, catalog: &Catalog, cat: u32, allow: bool) {
        for (id, c) in catalog.iter().enumerate() {
            if c.categories & cat != 0 {
                self.change_perm(catalog, id, allow);
            }
        }
    }

    fn count_category(&self, catalog: &Catalog, cat: u32) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for (id, c) in catalog.iter().enumerate() {
            if c.categories & cat != 0 {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    /// One selector rule (Redis's ACLSetSelector).
    fn apply(&mut self, op: &[u8], catalog: &Catalog) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.all_keys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.all_keys = false;
            self.keys.clear();
        } else if is("allchannels") || op == b"&*" {
            self.all_channels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.allowed.iter_mut().for_each(|w| *w = u64::MAX);
            self.future = true;
            self.all_commands = true;
            self.first_args.clear();
        } else if is("nocommands") || is("-@all") {
            self.allowed.iter_mut().for_each(|w| *w = 0);
            self.future = false;
            self.all_commands = false;
            self.first_args.clear();
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.all_keys {
                return Err(RuleError::KeyAfterAll);
            }
            let (mut flags, mut at) = (0u8, 1);
            if op[0] == b'%' {
                loop {
                    match op.get(at).map(u8::to_ascii_uppercase) {
                        Some(b'R') if flags & READ == 0 => flags |= READ,
                        Some(b'W') if flags & WRITE == 0 => flags |= WRITE,
                        Some(b'~') => {
                            at += 1;
                            break;
                        }
                        _ => return Err(RuleError::Syntax),
                    }
                    at += 1;
                }
            } else {
                flags = READ | WRITE;
            }
            let pat = &op[at..];
            if pat.iter().any(|c| c.is_ascii_whitespace()) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|(_, p)| p == pat) {
                Some((f, _)) => *f |= flags,
                None => self.keys.push((flags, pat.to_vec())),
            }
        } else if op[0] == b'&' {
            if self.all_channels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pat = &op[1..];
            if pat.iter().any(|c| c.is_ascii_whitespace()) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|p| p == pat) {
                self.channels.push(pat.to_vec());
            }
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let cat = super::categories::by_name(&op[2..]).ok_or(RuleError::UnknownCommand)?;
            self.set_category(catalog, cat, op[0] == b'+');
        } else if op[0] == b'+' || op[0] == b'-' {
            let name = String::from_utf8_lossy(&op[1..]).to_ascii_lowercase();
            if let Some(id) = lookup(catalog, &name) {
                self.change_perm(catalog, id, op[0] == b'+');
                return Ok(());
            }
            // `+cmd|firstarg` for a command without subcommands (SELECT 0, DEBUG OBJECT).
            let Some((cmd, arg)) = name.rsplit_once('|') else { return Err(RuleError::UnknownCommand) };
            let id = lookup(catalog, cmd).ok_or(RuleError::UnknownCommand)?;
            if op[0] == b'-' || !catalog[id].subcommands.is_empty() {
                return Err(RuleError::UnknownCommand);
            }
            if catalog[id].parent.is_some() {
                return Err(RuleError::SubcommandFirstArg);
            }
            if arg.is_empty() {
                return Err(RuleError::Syntax);
            }
            match self.first_args.iter_mut().find(|(c, _)| *c == id) {
                Some((_, args)) => {
                    if !args.iter().any(|a| a == arg) {
                        args.push(arg.to_string());
                    }
                }
                None => self.first_args.push((id, vec![arg.to_string()])),
            }
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// The command rules, as Redis 7.0 describes them: +@all or -@all, the categories that
    /// fit best, then single commands for what they leave different.
    pub fn describe_commands(&self, catalog: &Catalog) -> String {
        let additive = !self.future;
        let mut rules = String::from(if additive { "-@all " } else { "+@all " });
        let mut fake = Selector::new(catalog);
        let _ = fake.apply(if additive { b"-@all" } else { b"+@all" }, catalog);
        let mut temp = self.clone();
        let mut applied = [false; super::categories::NAMES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(catalog, 1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            fake.set_category(catalog, 1 << j, additive);
            temp.set_category(catalog, 1 << j, !additive);
            rules.push(if additive { '+' } else { '-' });
            rules.push('@');
            rules.push_str(super::categories::NAMES[j]);
            rules.push(' ');
            applied[j] = true;
        }
        for (id, c) in catalog.iter().enumerate() {
            if c.parent.is_some() {
                continue;
            }
            self.describe_single(catalog, &mut fake, &mut rules, id);
            for &sub in &c.subcommands {
                self.describe_single(catalog, &mut fake, &mut rules, sub);
            }
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, catalog: &Catalog, fake: &mut Selector, rules: &mut String, id: usize) {
        let mine = self.bit(id);
        if mine != fake.bit(id) {
            rules.push(if mine { '+' } else { '-' });
            rules.push_str(catalog[id].full);
            rules.push(' ');
            fake.change_perm(catalog, id, mine);
        }
        if !mine && let Some((_, args)) = self.first_args.iter().find(|(c, _)| *c == id) {
            for a in args {
                rules.push_str(&format!("+{}|{a} ", catalog[id].full));
            }
        }
    }

    /// The key patterns as ACL LIST shows them (`~*` for all keys).
    pub fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        let pats: Vec<String> = self
            .keys
            .iter()
            .map(|(f, p)| {
                let prefix = match *f {
                    READ => "%R~",
                    WRITE => "%W~",
                    _ => "~",
                };
                format!("{prefix}{}", String::from_utf8_lossy(p))
            })
            .collect();
        pats.join(" ")
    }

    /// The channel patterns as GETUSER shows them (ACL LIST prefixes `resetchannels`).
    pub fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        let pats: Vec<String> = self.channels.iter().map(|p| format!("&{}", String::from_utf8_lossy(p))).collect();
        pats.join(" ")
    }

    /// The whole selector as ACL LIST shows it.
    pub fn describe(&self, catalog: &Catalog) -> String {
        let mut parts = Vec::new();
        let keys = self.describe_keys();
        if !keys.is_empty() {
            parts.push(keys);
        }
        if self.all_channels {
            parts.push("&*".into());
        } else {
            parts.push("resetchannels".into());
            let ch = self.describe_channels();
            if !ch.is_empty() {
                parts.push(ch);
            }
        }
        parts.push(self.describe_commands(catalog));
        parts.join(" ")
    }

    /// Whether this selector lets the command run: its bit or allowed first argument, then
    /// its keys (position, ACL flags READ/WRITE) and channels (position, is a pattern).
    pub fn check(&self, catalog: &Catalog, r: Request) -> Verdict {
        let Request { id, argv, keys, channels } = r;
        let info: &CmdInfo = &catalog[id];
        if !self.all_commands && !info.no_auth && !self.bit(id) {
            let idx = if info.parent.is_some() { 2 } else { 1 };
            let first = argv.get(idx).map(|a| String::from_utf8_lossy(a).to_ascii_lowercase());
            let ok = match (first, self.first_args.iter().find(|(c, _)| *c == id)) {
                (Some(f), Some((_, args))) => args.contains(&f),
                _ => false,
            };
            if !ok {
                return Verdict::DeniedCmd;
            }
        }
        if !self.all_keys {
            for &(pos, flags) in keys {
                if !self.key_allowed(argv.get(pos).copied().unwrap_or_default(), flags) {
                    return Verdict::DeniedKey(pos);
                }
            }
        }
        if !self.all_channels {
            for &(pos, pattern) in channels {
                if !self.channel_allowed(argv.get(pos).copied().unwrap_or_default(), pattern) {
                    return Verdict::DeniedChannel(pos);
                }
            }
        }
        Verdict::Ok
    }

    /// Every key with `flags` allowed: all keys, or a `*` pattern with those permissions.
    pub fn unrestricted_keys(&self, flags: u8) -> bool {
        self.all_keys || self.keys.iter().any(|(f, p)| f & flags == flags && p == b"*")
    }

    pub fn key_allowed(&self, key: &[u8], flags: u8) -> bool {
        self.all_keys || self.keys.iter().any(|(f, p)| f & flags == flags && glob_match(p, key, false))
    }

    /// A channel (or, for PSUBSCRIBE, a pattern, which must equal an allowed one literally).
    pub fn channel_allowed(&self, ch: &[u8], pattern: bool) -> bool {
        self.all_channels || self.channels.iter().any(|p| if pattern { p == ch } else { glob_match(p, ch, false) })
    }

    pub fn unrestricted(&self) -> bool {
        self.all_commands && self.all_keys && self.all_channels
    }
}

/// A command's id by full name (`get`, `config|get`).
pub fn lookup(catalog: &Catalog, full: &str) -> Option<usize> {
    catalog.iter().position(|c| c.full == full)
}

/// A user: whether it may authenticate, its passwords, and its selectors (the root first).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub enabled: bool,
    pub nopass: bool,
    /// `Some(true)`: sanitize-payload, `Some(false)`: skip-sanitize-payload.
    pub sanitize: Option<bool>,
    /// SHA-256 hex digests, in the order they were added.
    pub passwords: Vec<String>,
    pub root: Selector,
    pub selectors: Vec<Selector>,
}

/// SHA-256 of a password, in lower-case hex (how passwords are stored and shown).
pub fn hash_password(pass: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(pass);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The digest a password rule names: `>pass` / `<pass` hash the clear text, `#hash` /
/// `!hash` give it (64 lower-case hex digits).
fn digest_of(op: &[u8]) -> Result<String, RuleError> {
    match op[0] {
        b'>' | b'<' => Ok(hash_password(&op[1..])),
        _ if valid_hash(&op[1..]) => Ok(String::from_utf8_lossy(&op[1..]).into_owned()),
        _ => Err(RuleError::BadHash),
    }
}

impl User {
    /// A new user: off, no password, nothing allowed.
    pub fn new(catalog: &Catalog) -> User {
        User {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::new(catalog),
            selectors: Vec::new(),
        }
    }

    pub fn default_user(catalog: &Catalog) -> User {
        let mut u = User::new(catalog);
        for r in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(r.as_bytes(), catalog);
        }
        u
    }

    /// One SETUSER rule (Redis's ACLSetUser).
    pub fn apply(&mut self, op: &[u8], catalog: &Catalog) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let h = digest_of(op)?;
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let h = digest_of(op)?;
            let at = self.passwords.iter().position(|p| *p == h).ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(at);
        } else if op[0] == b'(' && op.len() >= 2 && op[op.len() - 1] == b')' {
            let mut s = Selector::new(catalog);
            for rule in op[1..op.len() - 1].split(|c| *c == b' ').filter(|r| !r.is_empty()) {
                s.apply(rule, catalog)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.clear();
        } else if is("reset") {
            for r in ["resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "clearselectors", "-@all"] {
                self.apply(r.as_bytes(), catalog)?;
            }
            if super::pubsub_default_all() {
                self.apply(b"allchannels", catalog)?;
            }
        } else {
            self.root.apply(op, catalog)?;
        }
        Ok(())
    }

    /// Whether `pass` is one of its passwords (compared as digests, in constant time).
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = hash_password(pass);
        let mut ok = false;
        for p in &self.passwords {
            let same = p.len() == h.len() && p.bytes().zip(h.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
            ok |= same;
        }
        ok
    }

    /// The flags as ACL LIST and GETUSER show them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// The user as ACL LIST shows it, after `user <name> `.
    pub fn describe(&self, catalog: &Catalog) -> String {
        let mut parts: Vec<String> = self.flag_names().into_iter().map(String::from).collect();
        parts.extend(self.passwords.iter().map(|p| format!("#{p}")));
        parts.push(self.root.describe(catalog));
        let mut out = parts.join(" ");
        for s in &self.selectors {
            out.push_str(&format!(" ({})", s.describe(catalog)));
        }
        out
    }

    /// Checks every selector; the first that allows wins. Otherwise the error Redis reports:
    /// the command if no selector could run it, else the last key or channel refused.
    pub fn check(&self, catalog: &Catalog, r: Request) -> Verdict {
        let mut worst = Verdict::DeniedCmd;
        for s in std::iter::once(&self.root).chain(&self.selectors) {
            let v = s.check(catalog, r);
            if v == Verdict::Ok {
                return v;
            }
            if v > worst {
                worst = v;
            }
        }
        worst
    }

    pub fn unrestricted(&self) -> bool {
        self.enabled && self.nopass && self.root.unrestricted()
    }

    /// Whether some selector lets the command run and touch any key with `flags` (SORT's BY
    /// and GET read keys the arguments do not name).
    pub fn full_key_access(&self, catalog: &Catalog, r: Request, flags: u8) -> bool {
        let r = Request { channels: &[], ..r };
        std::iter::once(&self.root)
            .chain(&self.selectors)
            .any(|s| s.check(catalog, r) == Verdict::Ok && s.unrestricted_keys(flags))
    }

    /// Whether a subscription (a channel, or a pattern taken literally) is still allowed by
    /// some selector (Redis kills subscribers whose channels were revoked).
    pub fn subscription_allowed(&self, name: &[u8], pattern: bool) -> bool {
        std::iter::once(&self.root).chain(&self.selectors).any(|s| s.channel_allowed(name, pattern))
    }
}
