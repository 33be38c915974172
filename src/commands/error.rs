//! Command errors. `Display` is the exact text Redis 7.0 sends after the `-`, so clients that
//! parse error codes (`WRONGTYPE`, `NOAUTH`, `EXECABORT`, ...) behave the same against Ember.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR unknown command '{0}', with args beginning with: {1}")]
    UnknownCommand(String, String),
    #[error("ERR unknown subcommand '{0}'. Try {1} HELP.")]
    UnknownSubcommand(String, String),
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(&'static str),
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("ERR timeout is not an integer or out of range")]
    TimeoutNotInteger,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    /// `ERR ` followed by the text.
    #[error("ERR {0}")]
    Msg(String),
    /// The full error line, with its own code.
    #[error("{0}")]
    Raw(String),
    /// An error reply (full text) already counted in errorstats when a command replied it
    /// to a script that now replies it too.
    #[error("{0}")]
    Counted(String),
}

impl CmdError {
    pub fn msg(s: impl Into<String>) -> Self {
        CmdError::Msg(s.into())
    }

    /// What a command that may not run while a data set loads gets.
    pub fn loading() -> Self {
        CmdError::Raw("LOADING Redis is loading the dataset in memory".into())
    }

    /// The error code (first word), as INFO errorstats counts it.
    pub fn code(&self) -> String {
        // Redis looks for the code's end in the line's first 32 bytes, its `-` included, and
        // counts ERR when there is no space there.
        let text = self.to_string();
        match text.bytes().take(31).position(|c| c == b' ') {
            Some(n) => text[..n].to_string(),
            None => "ERR".into(),
        }
    }
}

pub type CmdResult = Result<crate::protocol::Reply, CmdError>;
