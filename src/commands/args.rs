//! Argument helpers shared by every family: strict integer and float parsing with Redis's error
//! texts, and case-insensitive keyword matching.

use bytes::Bytes;

use super::error::CmdError;
use crate::util::numfmt::{parse_f64, parse_i64};

/// Case-insensitive comparison with an ASCII keyword.
pub fn is(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// A non-negative integer with a custom error (Redis words these per command).
pub fn uint_or(arg: &[u8], err: CmdError) -> Result<u64, CmdError> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(err),
    }
}

pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_f64(arg).ok_or(CmdError::NotFloat)
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies an argument into an owned buffer so stored data never pins a client's read buffer.
pub fn owned(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
}
