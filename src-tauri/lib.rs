//! NocoBase WeCom Companion: sign in to NocoBase with WeCom and stay signed in.
//!
//! `core` knows nothing of Tauri; `sandbox` is a stand-in NocoBase + WeCom server;
//! `cli` is the command line over the core.

pub mod cli;
pub mod core;
pub mod i18n;
pub mod sandbox;
pub mod shell;

rust_i18n::i18n!("ui/locales", fallback = "en-US");
