//! A signed-in session: who, where, how, until when. Tokens live in the
//! [`SecretStore`]; everything else in `sessions.json`.
//!
//! Write order matters for refresh-token rotation: the new tokens go to the secret
//! store *before* the metadata, so a crash between the two leaves the newest refresh
//! token safe (an older one would already be consumed on the server).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rust_i18n::t;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::nocobase::User;
use super::profile::{ProfileName, SignInMethod};
use super::secrets::SecretStore;
use super::sensitive::Sensitive;
use super::store;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What kind of credential the session holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Grant {
    /// From NocoBase's OAuth provider: an access token plus a rotating refresh token.
    #[serde(rename_all = "camelCase")]
    OAuth { client_id: String },
    /// A NocoBase session token (the `embedded` method), kept alive by `x-new-token`.
    NocoBaseToken,
}

/// The non-secret part of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub profile: ProfileName,
    pub origin: String,
    pub authenticator: String,
    pub method: SignInMethod,
    pub grant: Grant,
    pub user: User,
    /// Unix seconds.
    pub signed_in_at: i64,
    /// When the current access token stops working (unix seconds), if known.
    pub expires_at: Option<i64>,
    /// The last refresh or renewal (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<i64>,
}

/// The secret part. Never serialised except into the secret store.
#[derive(Clone)]
pub struct Tokens {
    pub access: Sensitive<String>,
    pub refresh: Option<Sensitive<String>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(<redacted>)")
    }
}

#[derive(Serialize, Deserialize)]
struct TokensBlob {
    access: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
}

/// Why a session ended, in words a user understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EndReason {
    /// The server's session time limit (token policy) was reached.
    SessionLimit,
    /// The OAuth grant is gone: its time limit passed or it was revoked.
    GrantEnded,
    /// Signed out from another place (the token is blacklisted).
    SignedOutElsewhere,
    /// Another client renewed this same token first.
    RenewedElsewhere,
    /// The server no longer accepts the token (key or password changed, or expired).
    TokenRejected,
    /// The user account was deleted.
    UserRemoved,
    /// The user has no roles left.
    NoRoles,
    /// The user signed out here.
    SignedOut,
}

impl EndReason {
    pub fn message(self) -> String {
        let key = match self {
            EndReason::SessionLimit => "end.session_limit",
            EndReason::GrantEnded => "end.grant_ended",
            EndReason::SignedOutElsewhere => "end.signed_out_elsewhere",
            EndReason::RenewedElsewhere => "end.renewed_elsewhere",
            EndReason::TokenRejected => "end.token_rejected",
            EndReason::UserRemoved => "end.user_removed",
            EndReason::NoRoles => "end.no_roles",
            EndReason::SignedOut => "end.signed_out",
        };
        t!(key).into()
    }
}

/// The last time a session of a profile ended, for `status` and the tray.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ended {
    pub reason: EndReason,
    pub at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionsFile {
    #[serde(default)]
    sessions: BTreeMap<String, Session>,
    #[serde(default)]
    ended: BTreeMap<String, Ended>,
}

/// Sessions of all profiles: metadata in a file, tokens in the secret store.
#[derive(Clone)]
pub struct SessionStore {
    file: PathBuf,
    secrets: Arc<dyn SecretStore>,
}

impl SessionStore {
    pub fn new(file: PathBuf, secrets: Arc<dyn SecretStore>) -> SessionStore {
        SessionStore { file, secrets }
    }

    pub fn secrets_persistent(&self) -> bool {
        self.secrets.persistent()
    }

    fn secret_key(profile: &str) -> String {
        format!("session:{profile}")
    }

    fn read(&self) -> Result<SessionsFile> {
        // A corrupt sessions file is moved aside (kept) and treated as "no sessions":
        // the tokens are still in the keyring, but without who/where they are unusable.
        Ok(store::load_or_recover(&self.file)?.0)
    }

    /// The session of `profile`, if it has one whose tokens are still in the store.
    pub fn load(&self, profile: &str) -> Result<Option<(Session, Tokens)>> {
        let Some(session) = self.read()?.sessions.remove(profile) else {
            return Ok(None);
        };
        let Some(blob) = self.secrets.get(&Self::secret_key(profile))? else {
            return Ok(None);
        };
        let blob: TokensBlob = serde_json::from_str(blob.expose()).map_err(|_| Error::Keyring {
            detail: "stored tokens are unreadable".into(),
        })?;
        let tokens = Tokens {
            access: Sensitive::new(blob.access),
            refresh: blob.refresh.map(Sensitive::new),
        };
        Ok(Some((session, tokens)))
    }

    /// The metadata only (for status displays; no keyring access).
    pub fn peek(&self, profile: &str) -> Result<(Option<Session>, Option<Ended>)> {
        let mut file = self.read()?;
        Ok((file.sessions.remove(profile), file.ended.remove(profile)))
    }

    /// Stores a session: tokens first, then metadata.
    pub fn save(&self, session: &Session, tokens: &Tokens) -> Result<()> {
        let blob = TokensBlob {
            access: tokens.access.expose().clone(),
            refresh: tokens.refresh.as_ref().map(|r| r.expose().clone()),
        };
        let blob = Sensitive::new(serde_json::to_string(&blob).expect("plain strings serialise"));
        self.secrets
            .set(&Self::secret_key(session.profile.as_str()), &blob)?;
        let mut file = self.read()?;
        file.ended.remove(session.profile.as_str());
        file.sessions
            .insert(session.profile.to_string(), session.clone());
        store::save(&self.file, &file)
    }

    /// Forgets the session of `profile` and records why.
    pub fn end(&self, profile: &str, reason: EndReason) -> Result<()> {
        self.secrets.delete(&Self::secret_key(profile))?;
        let mut file = self.read()?;
        file.sessions.remove(profile);
        file.ended
            .insert(profile.to_owned(), Ended { reason, at: now() });
        store::save(&self.file, &file)
    }

    /// Removes every trace of `profile` (when the profile itself is deleted).
    pub fn forget(&self, profile: &str) -> Result<()> {
        self.secrets.delete(&Self::secret_key(profile))?;
        let mut file = self.read()?;
        file.sessions.remove(profile);
        file.ended.remove(profile);
        store::save(&self.file, &file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::secrets::MemoryStore;

    fn session(profile: &str) -> Session {
        Session {
            profile: ProfileName::parse(profile).unwrap(),
            origin: "https://h".into(),
            authenticator: "wecom".into(),
            method: SignInMethod::Device,
            grant: Grant::OAuth {
                client_id: "c".into(),
            },
            user: User {
                id: 2.into(),
                nickname: Some("张三".into()),
                ..User::default()
            },
            signed_in_at: 1,
            expires_at: Some(2),
            renewed_at: None,
        }
    }

    #[test]
    fn tokens_go_to_the_secret_store_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemoryStore::default());
        let store = SessionStore::new(dir.path().join("s.json"), secrets.clone());
        let tokens = Tokens {
            access: "ACCESS-SECRET".into(),
            refresh: Some("REFRESH-SECRET".into()),
        };
        store.save(&session("work"), &tokens).unwrap();
        let text = std::fs::read_to_string(dir.path().join("s.json")).unwrap();
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("张三"));
        let (s, t) = store.load("work").unwrap().unwrap();
        assert_eq!(s, session("work"));
        assert_eq!(t.refresh.unwrap().expose(), "REFRESH-SECRET");

        store.end("work", EndReason::SessionLimit).unwrap();
        assert!(store.load("work").unwrap().is_none());
        assert!(secrets.get("session:work").unwrap().is_none());
        let (s, ended) = store.peek("work").unwrap();
        assert!(s.is_none());
        assert_eq!(ended.unwrap().reason, EndReason::SessionLimit);
    }
}
