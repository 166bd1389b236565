//! Dynamic client registration, once per server and callback kind, cached in
//! `oauth-clients.json` (client ids are public; no secret is involved: the app is a
//! public native client, RFC 8252 §8.4).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::discovery::Metadata;
use crate::core::error::{Error, Result};
use crate::core::nocobase::transport_error;
use crate::core::profile::Origin;
use crate::core::store;

pub const CLIENT_NAME: &str = "NocoBase WeCom Companion";

/// Which redirect a client was registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClientKind {
    /// `http://127.0.0.1:<port>/callback` (any port works for native clients).
    Loopback,
    /// `<scheme>:/oauth/callback`, where the server accepts custom schemes.
    DeepLink,
    /// The device grant: no redirect at all.
    Device,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerClients {
    #[serde(default)]
    clients: BTreeMap<ClientKind, String>,
    /// The server refused our deep-link redirect; do not ask on every sign-in.
    #[serde(default)]
    deep_link_refused: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientsFile {
    #[serde(default)]
    servers: BTreeMap<String, ServerClients>,
}

/// The outcome of asking to register.
pub enum Registration {
    Registered(String),
    /// The server refused the redirect (NocoBase 2.2 refuses custom schemes).
    RedirectRefused(String),
}

pub struct ClientRegistry {
    file: PathBuf,
}

impl ClientRegistry {
    pub fn new(file: PathBuf) -> ClientRegistry {
        ClientRegistry { file }
    }

    fn read(&self) -> Result<ClientsFile> {
        Ok(store::load_or_recover(&self.file)?.0)
    }

    pub fn cached(&self, origin: &Origin, kind: ClientKind) -> Result<Option<String>> {
        Ok(self
            .read()?
            .servers
            .get(origin.as_str())
            .and_then(|s| s.clients.get(&kind).cloned()))
    }

    pub fn deep_link_refused(&self, origin: &Origin) -> Result<bool> {
        Ok(self
            .read()?
            .servers
            .get(origin.as_str())
            .is_some_and(|s| s.deep_link_refused))
    }

    fn update(&self, origin: &Origin, f: impl FnOnce(&mut ServerClients)) -> Result<()> {
        let mut file = self.read()?;
        f(file.servers.entry(origin.as_str().to_owned()).or_default());
        store::save(&self.file, &file)
    }

    /// Drops a cached client the server no longer knows.
    pub fn forget(&self, origin: &Origin, kind: ClientKind) -> Result<()> {
        self.update(origin, |s| {
            s.clients.remove(&kind);
        })
    }

    /// The cached client id, or a new registration.
    pub async fn client_id(
        &self,
        http: &reqwest::Client,
        origin: &Origin,
        metadata: &Metadata,
        kind: ClientKind,
        redirect_uri: Option<&str>,
    ) -> Result<Registration> {
        if let Some(id) = self.cached(origin, kind)? {
            return Ok(Registration::Registered(id));
        }
        let outcome = register(http, origin, metadata, kind, redirect_uri).await?;
        match &outcome {
            Registration::Registered(id) => self.update(origin, |s| {
                s.clients.insert(kind, id.clone());
            })?,
            Registration::RedirectRefused(_) if kind == ClientKind::DeepLink => {
                self.update(origin, |s| s.deep_link_refused = true)?
            }
            Registration::RedirectRefused(_) => {}
        }
        Ok(outcome)
    }
}

async fn register(
    http: &reqwest::Client,
    origin: &Origin,
    metadata: &Metadata,
    kind: ClientKind,
    redirect_uri: Option<&str>,
) -> Result<Registration> {
    let endpoint = metadata
        .registration_endpoint
        .as_ref()
        .ok_or_else(|| Error::Registration {
            detail: "no registration endpoint".into(),
        })?;
    let mut body = json!({
        "client_name": CLIENT_NAME,
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "scope": "openid api offline_access",
    });
    match kind {
        ClientKind::Device => {
            body["grant_types"] = json!([
                "urn:ietf:params:oauth:grant-type:device_code",
                "refresh_token"
            ]);
            body["response_types"] = json!([]);
        }
        ClientKind::Loopback | ClientKind::DeepLink => {
            body["grant_types"] = json!(["authorization_code", "refresh_token"]);
            body["response_types"] = json!(["code"]);
            body["redirect_uris"] = json!([redirect_uri.unwrap_or_default()]);
        }
    }
    let response = http
        .post(endpoint.clone())
        .json(&body)
        .send()
        .await
        .map_err(|e| transport_error(origin, &e))?;
    let status = response.status();
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        return answer
            .get("client_id")
            .and_then(|v| v.as_str())
            .map(|id| Registration::Registered(id.to_owned()))
            .ok_or_else(|| Error::Registration {
                detail: "the answer has no client_id".into(),
            });
    }
    let error = answer.get("error").and_then(|v| v.as_str()).unwrap_or("");
    let description = answer
        .get("error_description")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    if status == reqwest::StatusCode::BAD_REQUEST
        && matches!(error, "invalid_client_metadata" | "invalid_redirect_uri")
        && description.contains("redirect")
    {
        return Ok(Registration::RedirectRefused(description));
    }
    Err(Error::Registration {
        detail: format!("{} {error} {description}", status.as_u16()),
    })
}
