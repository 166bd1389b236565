//! The core: everything the product does, with no Tauri types.
//! The CLI (`crate::cli`) and the desktop shell call into it; it never calls them.

pub mod callback;
pub mod context;
pub mod error;
pub mod jwt;
pub mod keeper;
pub mod links;
pub mod nocobase;
pub mod oauth;
pub mod opener;
pub mod paths;
pub mod profile;
pub mod secrets;
pub mod sensitive;
pub mod session;
pub mod signin;
pub mod signout;
pub mod store;
pub mod workbench;

pub use context::Context;
pub use error::{Error, Result};
