//! Lua scripting: the engine behind EVAL and FUNCTION (one Lua 5.1 state, as Redis embeds),
//! the conversions between replies and Lua values, function libraries, and the libraries
//! Redis bundles with its Lua (cjson, cmsgpack, struct, bit).

pub mod cjson;
pub mod cmsgpack;
mod convert;
pub mod engine;
pub mod ldb;
mod library;
mod luaerr;
mod raw;
pub mod structlib;

pub use engine::{Engine, FunctionDef, Host, Library, Outcome, ScriptFlags, Target, shebang_flags};
pub use library::library_name;
