//! Where the app keeps its files. Secrets never go here (see `secrets`).
//!
//! On Linux: `$XDG_CONFIG_HOME/<id>/` for settings (profiles, OAuth client ids)
//! and `$XDG_DATA_HOME/<id>/` for session metadata and lock files. Tests point the
//! XDG variables at a temporary directory.

use std::path::{Path, PathBuf};

/// The reverse-DNS identifier shared with `tauri.conf.json`; also the deep-link scheme.
pub const APP_ID: &str = "com.nocobase.wecomcompanion";
/// The deep-link scheme (RFC 8252 §7.1: reverse DNS, so it contains a dot).
pub const SCHEME: &str = APP_ID;

#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    /// The per-user directories of this OS.
    pub fn from_os() -> Paths {
        let config = dirs::config_dir().unwrap_or_else(|| PathBuf::from("."));
        let data = dirs::data_dir().unwrap_or_else(|| config.clone());
        Paths {
            config_dir: config.join(APP_ID),
            data_dir: data.join(APP_ID),
        }
    }

    /// Everything under one directory (tests, portable use).
    pub fn under(root: &Path) -> Paths {
        Paths {
            config_dir: root.join("config"),
            data_dir: root.join("data"),
        }
    }

    /// Separate files for `--sandbox` runs, so trying the app out never touches the
    /// user's real profiles and sessions.
    pub fn for_sandbox(&self) -> Paths {
        Paths {
            config_dir: self.config_dir.join("sandbox"),
            data_dir: self.data_dir.join("sandbox"),
        }
    }

    pub fn profiles_file(&self) -> PathBuf {
        self.config_dir.join("profiles.json")
    }

    pub fn clients_file(&self) -> PathBuf {
        self.config_dir.join("oauth-clients.json")
    }

    pub fn sessions_file(&self) -> PathBuf {
        self.data_dir.join("sessions.json")
    }

    pub fn lock_file(&self, profile: &str) -> PathBuf {
        // Profile names are validated to be file-name safe (see `profile::ProfileName`).
        self.data_dir.join("locks").join(format!("{profile}.lock"))
    }
}
