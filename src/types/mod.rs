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

#[cfg(test)]
mod tests {
    /// The per-key footprint depends on these sizes; a change should be deliberate.
    #[test]
    fn value_sizes() {
        assert!(std::mem::size_of::<super::Value>() <= 32, "{}", std::mem::size_of::<super::Value>());
        assert!(
            std::mem::size_of::<crate::keyspace::Entry>() <= 48,
            "{}",
            std::mem::size_of::<crate::keyspace::Entry>()
        );
    }
}
