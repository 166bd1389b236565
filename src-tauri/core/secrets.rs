//! Where tokens live: the OS credential store, or memory. Never a plain file.
//!
//! [`SecretStore`] is the only way the rest of the core reads or writes a secret. The
//! product uses [`KeyringStore`] (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows); tests use [`MemoryStore`]. When no keyring works the app says
//! so and keeps the session in memory only.

use std::collections::HashMap;
use std::sync::Mutex;

use super::error::{Error, Result};
use super::sensitive::Sensitive;

pub trait SecretStore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Sensitive<String>>>;
    fn set(&self, key: &str, value: &Sensitive<String>) -> Result<()>;
    fn delete(&self, key: &str) -> Result<()>;
    /// Whether secrets survive this process (false for the in-memory store).
    fn persistent(&self) -> bool;
}

/// The OS keyring, one entry per key under the service name `<APP_ID>`.
pub struct KeyringStore {
    service: String,
}

impl KeyringStore {
    pub fn new(service: impl Into<String>) -> KeyringStore {
        KeyringStore {
            service: service.into(),
        }
    }

    /// Writes, reads back and deletes a probe entry: the only reliable way to know
    /// that a keyring is there *and unlocked*.
    pub fn probe(&self) -> Result<()> {
        // A name of its own: processes probing at the same time must not see (or
        // delete) each other's entry.
        let key = format!("probe:{}:{}", std::process::id(), rand::random::<u64>());
        let probe = Sensitive::from("probe");
        self.set(&key, &probe)?;
        let back = self.get(&key)?;
        self.delete(&key)?;
        match back {
            Some(v) if v == probe => Ok(()),
            _ => Err(Error::Keyring {
                detail: "the keyring did not return what was stored".into(),
            }),
        }
    }

    fn entry(&self, key: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(&self.service, key).map_err(keyring_error)
    }
}

fn keyring_error(e: keyring::Error) -> Error {
    Error::Keyring {
        detail: e.to_string(),
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, key: &str) -> Result<Option<Sensitive<String>>> {
        match self.entry(key)?.get_password() {
            Ok(v) => Ok(Some(Sensitive::new(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn set(&self, key: &str, value: &Sensitive<String>) -> Result<()> {
        self.entry(key)?
            .set_password(value.expose())
            .map_err(keyring_error)
    }

    fn delete(&self, key: &str) -> Result<()> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn persistent(&self) -> bool {
        true
    }
}

/// Secrets held by this process only.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Sensitive<String>>>,
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Sensitive<String>>> {
        Ok(self.lock().get(key).cloned())
    }

    fn set(&self, key: &str, value: &Sensitive<String>) -> Result<()> {
        self.lock().insert(key.to_owned(), value.clone());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.lock().remove(key);
        Ok(())
    }

    fn persistent(&self) -> bool {
        false
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sensitive<String>>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryStore::default();
        assert!(s.get("k").unwrap().is_none());
        s.set("k", &Sensitive::from("v")).unwrap();
        assert_eq!(s.get("k").unwrap().unwrap().expose(), "v");
        s.delete("k").unwrap();
        s.delete("k").unwrap();
        assert!(s.get("k").unwrap().is_none());
        assert!(!s.persistent());
    }
}
