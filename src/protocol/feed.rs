//! A stream of commands as RESP, for the AOF and the replication stream.

use super::encode_command as encode;

/// A stream of commands in RESP, with a SELECT wherever the database changes.
#[derive(Default)]
pub struct Feed {
    pub buf: Vec<u8>,
    current_db: Option<usize>,
}

impl Feed {
    /// Appends one command run in `db`; EXEC needs no SELECT of its own.
    pub fn push(&mut self, db: usize, argv: &[&[u8]]) {
        let exec = argv.first().is_some_and(|a| a.eq_ignore_ascii_case(b"EXEC"));
        if !exec && self.current_db != Some(db) {
            let n = db.to_string();
            encode(&mut self.buf, &[b"SELECT", n.as_bytes()]);
            self.current_db = Some(db);
        }
        encode(&mut self.buf, argv);
    }

    /// Appends a command that runs in any database (PING), with no SELECT.
    pub fn push_anywhere(&mut self, argv: &[&[u8]]) {
        encode(&mut self.buf, argv);
    }

    /// The database the stream's commands run in now, if it has selected one.
    pub fn current_db(&self) -> Option<usize> {
        self.current_db
    }

    /// The next command gets a SELECT whatever its database (a new log file, a new replica).
    pub fn forget_db(&mut self) {
        self.current_db = None;
    }
}
