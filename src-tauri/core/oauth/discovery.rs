//! Finding NocoBase's OAuth provider: `<origin>/api/.well-known/oauth-authorization-server`.

use serde::Deserialize;
use url::Url;

use crate::core::error::{Error, Result};
use crate::core::nocobase::transport_error;
use crate::core::profile::Origin;

/// The parts of the server metadata the app uses. Every endpoint is checked to be on
/// the profile's origin, so a tampered document cannot send tokens elsewhere.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    #[serde(default)]
    pub registration_endpoint: Option<Url>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<Url>,
    #[serde(default)]
    pub revocation_endpoint: Option<Url>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl Metadata {
    pub fn supports_device_flow(&self) -> bool {
        self.device_authorization_endpoint.is_some()
    }

    fn validate(self, origin: &Origin) -> Result<Metadata> {
        let bad = |detail: String| Error::BadProviderMetadata { detail };
        if self.issuer.trim_end_matches('/') != origin.issuer() {
            return Err(bad(format!(
                "issuer {} is not {}",
                self.issuer,
                origin.issuer()
            )));
        }
        let endpoints = [
            Some(&self.authorization_endpoint),
            Some(&self.token_endpoint),
            self.registration_endpoint.as_ref(),
            self.device_authorization_endpoint.as_ref(),
            self.revocation_endpoint.as_ref(),
        ];
        for url in endpoints.into_iter().flatten() {
            if !origin.contains(url) {
                return Err(bad(format!("endpoint {url} is not on {origin}")));
            }
        }
        if !self
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
        {
            return Err(bad("PKCE S256 is not supported".into()));
        }
        if self.registration_endpoint.is_none() {
            return Err(bad("dynamic client registration is not offered".into()));
        }
        Ok(self)
    }
}

/// The provider's metadata, `Ok(None)` when the server has no provider (older
/// NocoBase, or the plugin disabled): then only the `embedded` method works.
pub async fn discover(http: &reqwest::Client, origin: &Origin) -> Result<Option<Metadata>> {
    let url = origin.api(".well-known/oauth-authorization-server");
    let response = http
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| transport_error(origin, &e))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport_error(origin, &e))?;
    if !status.is_success() {
        return Err(Error::Http {
            status: status.as_u16(),
            message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        });
    }
    let metadata: Metadata = serde_json::from_slice(&bytes).map_err(|_| Error::NotJson {
        url: url.clone(),
        status: status.as_u16(),
    })?;
    metadata.validate(origin).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: serde_json::Value) -> Metadata {
        serde_json::from_value(json).unwrap()
    }

    fn good() -> serde_json::Value {
        serde_json::json!({
            "issuer": "https://h/api",
            "authorization_endpoint": "https://h/api/idpOAuth/authorize",
            "token_endpoint": "https://h/api/idpOAuth/token",
            "registration_endpoint": "https://h/api/idpOAuth/register",
            "code_challenge_methods_supported": ["S256"]
        })
    }

    #[test]
    fn accepts_nocobase_metadata() {
        let origin = Origin::parse("https://h").unwrap();
        assert!(meta(good()).validate(&origin).is_ok());
    }

    #[test]
    fn refuses_foreign_endpoints_and_issuers() {
        let origin = Origin::parse("https://h").unwrap();
        let mut evil = good();
        evil["token_endpoint"] = "https://evil/token".into();
        assert!(meta(evil).validate(&origin).is_err());
        let mut mixup = good();
        mixup["issuer"] = "https://other/api".into();
        assert!(meta(mixup).validate(&origin).is_err());
        let mut plain = good();
        plain["code_challenge_methods_supported"] = serde_json::json!(["plain"]);
        assert!(meta(plain).validate(&origin).is_err());
    }
}
