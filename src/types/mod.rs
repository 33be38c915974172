//! The stored values. Each type hides its encodings behind methods; `encoding_name()` exists only
//! for OBJECT ENCODING and the persistence writer.

pub mod string;

pub use string::StrValue;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(StrValue),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding_name(),
        }
    }
}
