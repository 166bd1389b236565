//! NocoBase's built-in OAuth 2.1 provider (plugin-idp-oauth, on by default in 2.2).

pub mod discovery;
pub mod registry;
pub mod tokens;

pub use discovery::{discover, Metadata};
pub use registry::{ClientKind, ClientRegistry, Registration};
